//! Which identity a client certificate names, end to end: certificates made
//! here by a CA the server trusts, presented over mTLS to a real server.
//! Names from different certificate fields never meet in one string space.

use crate::common;

use common::{ADMIN, BILLING, Clients, Fixture, TestServer, assert_code, proto};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tonic::Code;
use tresor::pki::{CertificateAuthority, CertifiedKey};
use zeroize::Zeroizing;

const KEY: &str = "identity/records";

/// A client CA whose signing key the test holds, so it can sign any name.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new() -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "identity test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let pem = params.self_signed(&key).expect("CA cert").pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A client certificate with exactly these SANs, CN and extensions.
    fn issue(&self, edit: impl FnOnce(&mut CertificateParams)) -> CertifiedKey {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        edit(&mut params);
        let cert = params.signed_by(&key, &self.issuer).expect("leaf cert");
        CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: Zeroizing::new(key.serialize_pem()),
        }
    }

    fn with_cn(&self, cn: &str) -> CertifiedKey {
        self.issue(|params| params.distinguished_name.push(DnType::CommonName, cn))
    }

    fn with_sans(&self, sans: Vec<SanType>) -> CertifiedKey {
        self.issue(|params| params.subject_alt_names = sans)
    }
}

fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().expect("ia5"))
}

fn dns(s: &str) -> SanType {
    SanType::DnsName(s.try_into().expect("ia5"))
}

/// A SAN extension with one URI SAN of raw UTF-8 bytes (rcgen writes only
/// ASCII there, but a CA can sign anything).
fn raw_uri_san(uri: &str) -> CustomExtension {
    let bytes = uri.as_bytes();
    let mut names = vec![0x86, u8::try_from(bytes.len()).expect("short")];
    names.extend_from_slice(bytes);
    let mut value = vec![0x30, u8::try_from(names.len()).expect("short")];
    value.extend(names);
    CustomExtension::from_oid_content(&[2, 5, 29, 17], value)
}

/// A server trusting `ca` for clients, with `KEY` owned by `owner`.
async fn server_with_key(ca: &TestCa, owner: &str) -> TestServer {
    let mut fixture = Fixture::new();
    let key_pem = ca.issuer.key().serialize_pem();
    fixture.ca = CertificateAuthority::from_pem(&ca.pem, &key_pem).expect("load test CA");
    fixture.server_cert = fixture
        .ca
        .issue_server(&["localhost".to_owned()], &[])
        .expect("server cert");
    let server = TestServer::start_with(fixture, tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES).await;
    server.admin().await.create_key(KEY, owner).await;
    server
}

async fn connect(server: &TestServer, cert: &CertifiedKey) -> Clients {
    common::connect(server.addr, &server.fixture.ca.cert_pem(), Some(cert))
        .await
        .expect("the TLS layer accepts every certificate of the client CA")
}

/// Every call of `client` is refused as unauthenticated, saying nothing
/// about the names in its certificate.
async fn assert_unauthenticated(client: &mut Clients, names: &[&str]) {
    let data = assert_code(client.encrypt(KEY, b"x", &[]).await, Code::Unauthenticated);
    let admin = assert_code(
        client.admin.get_status(proto::StatusRequest {}).await,
        Code::Unauthenticated,
    );
    for status in [data, admin] {
        for name in names {
            assert!(!status.message().contains(name), "{status:?}");
        }
    }
}

#[tokio::test]
async fn a_common_name_spelling_the_admin_uri_is_not_the_admin() {
    let ca = TestCa::new();
    let server = server_with_key(&ca, BILLING).await;
    let mut client = connect(&server, &ca.with_cn(ADMIN)).await;
    assert_unauthenticated(&mut client, &[ADMIN]).await;
    // The real admin still is.
    server
        .admin()
        .await
        .admin
        .get_status(proto::StatusRequest {})
        .await
        .expect("admin served");
}

#[tokio::test]
async fn two_uri_sans_are_unauthenticated() {
    let ca = TestCa::new();
    let server = server_with_key(&ca, BILLING).await;
    for sans in [
        vec![uri(BILLING), uri(ADMIN)],
        vec![uri(ADMIN), uri(BILLING)],
    ] {
        let mut client = connect(&server, &ca.with_sans(sans)).await;
        assert_unauthenticated(&mut client, &[ADMIN, BILLING]).await;
    }
}

#[tokio::test]
async fn the_common_name_is_ignored_when_a_san_extension_exists() {
    let ca = TestCa::new();
    let server = server_with_key(&ca, "billing").await;
    let cert = ca.issue(|params| {
        params
            .distinguished_name
            .push(DnType::CommonName, "billing");
        params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    });
    let mut client = connect(&server, &cert).await;
    assert_unauthenticated(&mut client, &["billing"]).await;
}

#[tokio::test]
async fn a_bidi_override_in_a_san_is_unauthenticated() {
    let ca = TestCa::new();
    let server = server_with_key(&ca, BILLING).await;
    let spoof = "spiffe://test.tresor/\u{202E}nimda";
    let cert = ca.issue(|params| params.custom_extensions.push(raw_uri_san(spoof)));
    let mut client = connect(&server, &cert).await;
    assert_unauthenticated(&mut client, &[spoof]).await;
}

#[tokio::test]
async fn an_upper_case_dns_san_is_the_lower_case_identity() {
    let ca = TestCa::new();
    let server = server_with_key(&ca, "billing.example.org").await;
    let cert = ca.with_sans(vec![dns("BILLING.Example.ORG")]);
    let mut client = connect(&server, &cert).await;
    client
        .encrypt(KEY, b"owned", &[])
        .await
        .expect("the owner, whatever the case of its DNS SAN");
}

#[tokio::test]
async fn a_common_name_identity_is_not_the_dns_name_of_the_same_spelling() {
    let ca = TestCa::new();
    let server = server_with_key(&ca, "billing").await;
    let mut admin = server.admin().await;
    admin.create_key("identity/cn", "cn:billing").await;
    let mut client = connect(&server, &ca.with_cn("billing")).await;
    assert_code(client.encrypt(KEY, b"x", &[]).await, Code::PermissionDenied);
    client
        .encrypt("identity/cn", b"owned", &[])
        .await
        .expect("cn:billing owns it");
}

#[tokio::test]
async fn owners_and_grantees_that_look_like_another_kind_are_refused() {
    let ca = TestCa::new();
    let server = server_with_key(&ca, BILLING).await;
    let mut admin = server.admin().await;
    for owner in [
        "cn:spiffe://test.tresor/admin",
        "billing service",
        "dns:a/b",
        "x\u{202E}",
    ] {
        let status = assert_code(
            admin
                .admin
                .create_key(proto::CreateKeyRequest {
                    key_id: "identity/bad".into(),
                    owner: owner.into(),
                    ..Default::default()
                })
                .await,
            Code::InvalidArgument,
        );
        assert!(status.message().starts_with("owner: "), "{status:?}");
    }
}

#[tokio::test]
async fn a_grantee_an_older_release_stored_opens_and_can_be_revoked() {
    use tresor::identity::{Identity, IdentityKind};
    use tresor::model::{KeyId, Operation, OperationSet};
    use tresor::store::{KeyStore, KeyUpdate, SledKeyStore};

    let ca = TestCa::new();
    let fixture = server_with_key(&ca, BILLING).await.stop().await;
    // What an older release could store: a name no kind fits today.
    let old = Identity::parse_stored("billing service").expect("legacy name");
    assert_eq!(old.kind(), IdentityKind::Legacy);
    {
        let store = SledKeyStore::open(&fixture.data_dir()).expect("open keystore");
        let id = KeyId::parse(KEY).expect("key id");
        let update = |key: &tresor::model::KeyMetadata| {
            let mut key = key.clone();
            key.grants
                .insert(old.clone(), OperationSet::from_iter([Operation::Encrypt]));
            Ok(KeyUpdate::metadata(key))
        };
        store.update_key(&id, &update).await.expect("add old grant");
        as_an_older_release_left_it(&store, &fixture.master_key_file()).await;
    }
    let server = TestServer::start_with(fixture, tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES).await;
    let mut admin = server.admin().await;
    let grantees = |info: proto::KeyInfo| -> Vec<String> {
        info.grants.into_iter().map(|g| g.grantee).collect()
    };
    assert_eq!(
        grantees(admin.key(KEY).await.expect("key")),
        ["billing service"]
    );
    let grant = |grantee: &str| proto::GrantRequest {
        key_id: KEY.into(),
        grantee: grantee.into(),
        operations: vec![proto::Operation::Encrypt.into()],
        ..Default::default()
    };
    // No new grant to such a name, but the old one can be revoked.
    assert_code(
        admin.admin.create_grant(grant("billing service")).await,
        Code::InvalidArgument,
    );
    admin
        .admin
        .revoke_grant(grant("billing service"))
        .await
        .expect("revoke the old grant");
    assert!(grantees(admin.key(KEY).await.expect("key")).is_empty());
}

/// Turns a keystore this release made into one as a release before
/// 2026-12-04 left it (the root wrapped for the bare keystore id, no
/// metadata key, records untagged), so that a record written into it
/// directly stands for what an older release stored: the next start
/// migrates it and tags the record.
async fn as_an_older_release_left_it(
    store: &tresor::store::SledKeyStore,
    master_file: &std::path::Path,
) {
    use tresor::master_key::{FileMasterKey, MasterKey};
    use tresor::store::{KeyStore, KeyUpdate, RootWrapping, StoredRoot};

    let master = FileMasterKey::open(master_file).expect("master key");
    let root = store.root().await.expect("root").expect("initialised");
    let authenticated = format!("{}/metadata-authenticated-v1", root.keystore_id);
    let key = master
        .unwrap_root_key(
            &root.current.wrapped_root_key,
            &authenticated,
            root.generation,
        )
        .await
        .expect("unwrap");
    let legacy = StoredRoot {
        current: RootWrapping {
            wrapped_root_key: master
                .wrap_root_key(&key, &root.keystore_id, root.generation)
                .await
                .expect("wrap"),
            ..root.current.clone()
        },
        metadata_key: None,
        ..root.clone()
    };
    store
        .replace_root(&root, &legacy)
        .await
        .expect("downgrade root");
    for listed in store.list_keys("", None, 1000).await.expect("list") {
        let untag = |key: &tresor::model::KeyMetadata| {
            Ok(KeyUpdate::metadata(tresor::model::KeyMetadata {
                conditional_grants: Vec::new(),
                purpose: Default::default(),
                labels: Default::default(),
                tag: None,
                ..key.clone()
            }))
        };
        store.update_key(&listed.id, &untag).await.expect("untag");
    }
}
