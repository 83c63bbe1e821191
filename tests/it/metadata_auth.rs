//! Key metadata is authenticated (issue 18, low item): write access to the
//! keystore alone cannot grant a key. A grant written into the store
//! directly is refused (and audited) by the real server over mTLS; removing
//! the metadata key does not make the keystore pass for an unauthenticated
//! one; the committed legacy keystore is migrated, also after a crash in
//! the middle of the migration.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use common::{BILLING, SHIPPING, TestServer, audit_records, proto};
use tonic::Code;
use tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES;
use tresor::identity::Identity;
use tresor::master_key::FileMasterKey;
use tresor::model::{KeyId, Operation, OperationSet};
use tresor::service::Service;
use tresor::store::{KeyStore, KeyUpdate, SledKeyStore};
use tresor_crypto::Context;

const KEY: &str = "billing/records";
const OTHER: &str = "billing/untouched";

/// Adds a Decrypt grant for SHIPPING to `key` by writing the store
/// directly, as someone with write access to the keystore could: the
/// record keeps the tag it had.
async fn grant_behind_tresors_back(store: &dyn KeyStore, key: &str) {
    let id = KeyId::parse(key).expect("id");
    let shipping = Identity::parse(SHIPPING).expect("identity");
    store
        .update_key(&id, &|current| {
            let mut edited = current.clone();
            edited.grants.insert(
                shipping.clone(),
                [Operation::Decrypt].into_iter().collect::<OperationSet>(),
            );
            Ok(KeyUpdate::metadata(edited))
        })
        .await
        .expect("write the store directly");
}

#[tokio::test]
async fn a_grant_written_into_the_keystore_directly_is_refused_and_audited() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key(KEY, BILLING).await;
    admin.create_key(OTHER, BILLING).await;
    let mut billing = server.client(BILLING).await;
    let sealed = billing
        .encrypt(KEY, b"card 4111", &[])
        .await
        .expect("encrypt")
        .ciphertext;
    drop((admin, billing));
    let fixture = server.stop().await;

    {
        let store = SledKeyStore::open(&fixture.data_dir()).expect("open keystore");
        grant_behind_tresors_back(&store, KEY).await;
    }

    let server = TestServer::start_with(fixture, DEFAULT_MAX_PLAINTEXT_BYTES).await;
    let mut shipping = server.client(SHIPPING).await;
    let stolen = shipping.decrypt(KEY, &sealed, &[]).await;
    assert!(
        stolen.is_err(),
        "the grant written behind tresor's back was honoured"
    );
    let status = common::assert_code(stolen, Code::DataLoss);
    assert_eq!(
        status
            .metadata()
            .get("x-tresor-reason")
            .map(|v| v.as_bytes()),
        Some(b"KEY_RECORD_TAMPERED".as_slice())
    );
    // The owner is refused too: the record cannot be trusted at all.
    let mut billing = server.client(BILLING).await;
    common::assert_code(billing.decrypt(KEY, &sealed, &[]).await, Code::DataLoss);
    common::assert_code(billing.decrypt(KEY, &sealed, &[]).await, Code::DataLoss);
    // Other keys keep working.
    billing
        .encrypt(OTHER, b"fine", &[])
        .await
        .expect("an untouched key still serves");
    // An admin's listing leaves the tampered key out.
    let mut admin = server.admin().await;
    let listed = admin
        .admin
        .list_keys(proto::ListKeysRequest::default())
        .await
        .expect("list")
        .into_inner();
    let ids: Vec<&str> = listed.keys.iter().map(|k| k.key_id.as_str()).collect();
    assert_eq!(ids, [OTHER]);

    let file = tresor::service::default_audit_file(&server.fixture.data_dir());
    drop((shipping, billing, admin));
    let _fixture = server.stop().await;
    let reports: Vec<_> = audit_records(&file)
        .into_iter()
        .filter(|r| r["operation"] == "tampered-key-record")
        .collect();
    assert_eq!(reports.len(), 1, "audited once per key: {reports:#?}");
    assert_eq!(reports[0]["key_id"], KEY);
}

#[tokio::test]
async fn removing_the_metadata_key_does_not_make_the_keystore_legacy() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key(KEY, BILLING).await;
    drop(admin);
    let fixture = server.stop().await;
    {
        let store = SledKeyStore::open(&fixture.data_dir()).expect("open keystore");
        let root = store.root().await.expect("root").expect("initialised");
        let stripped = tresor::store::StoredRoot {
            metadata_key: None,
            ..root.clone()
        };
        store
            .replace_root(&root, &stripped)
            .await
            .expect("strip the metadata key");
        grant_behind_tresors_back(&store, KEY).await;
    }
    let store = Arc::new(SledKeyStore::open(&fixture.data_dir()).expect("open keystore"));
    let master = Arc::new(FileMasterKey::open(&fixture.master_key_file()).expect("master"));
    let options = fixture.settings(DEFAULT_MAX_PLAINTEXT_BYTES).service;
    let opened = Service::open(store.clone(), master, options).await;
    let err = opened.expect_err("a keystore without its metadata key must not open");
    assert!(err.to_string().contains("metadata key"), "{err}");
    // Nothing was re-tagged: the edited record still fails.
    let key = store
        .key(&KeyId::parse(KEY).expect("id"))
        .await
        .expect("read")
        .expect("key");
    assert!(
        key.grants
            .contains_key(&Identity::parse(SHIPPING).expect("id"))
    );
}

#[tokio::test]
async fn the_legacy_fixture_is_migrated_even_after_a_crash_mid_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::copy_dir(
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/keystore-fixtures/keystore-v1"
        )),
        dir.path(),
    );
    #[cfg(unix)]
    if dir.path().join("master.key").exists() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("master.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
    }
    let data = dir.path().join("data");
    let master_file = dir.path().join("master.key");
    {
        let store = SledKeyStore::open(&data).expect("open fixture");
        let keys = store.list_keys("", None, 100).await.expect("list");
        assert!(!keys.is_empty());
        assert!(
            keys.iter().all(|k| k.tag.is_none()),
            "the fixture predates tags"
        );
    }

    // An offline command that opens the root key migrates too; crash it
    // after every record is tagged, before the root is re-wrapped.
    let other_master = dir.path().join("other.key");
    FileMasterKey::generate(&other_master).expect("master key");
    let crashed = common::cli::command([
        "master-key",
        "rotate",
        "--data-dir",
        data.to_str().expect("utf8"),
        "--from-master-key-file",
        master_file.to_str().expect("utf8"),
        "--to-master-key-file",
        other_master.to_str().expect("utf8"),
    ])
    .env("TRESOR_CRASH_AT", "metadata-auth:after-tagging")
    .output()
    .expect("run tresor");
    assert!(!crashed.status.success(), "the crash point was not reached");
    assert!(
        String::from_utf8_lossy(&crashed.stderr).contains("metadata-auth:after-tagging"),
        "{}",
        String::from_utf8_lossy(&crashed.stderr)
    );

    // The next open finishes the migration, and everything decrypts.
    let store = Arc::new(SledKeyStore::open(&data).expect("open"));
    let master = Arc::new(FileMasterKey::open(&master_file).expect("master"));
    let fixture = common::Fixture::new();
    let mut options = fixture.settings(DEFAULT_MAX_PLAINTEXT_BYTES).service;
    options.audit = None;
    let service = Service::open(store.clone(), master.clone(), options.clone())
        .await
        .expect("open after the crash");
    let owner = Identity::parse("spiffe://unit/owner").expect("identity");
    let lines = std::fs::read_to_string(dir.path().join("ciphertexts.txt")).expect("read");
    let mut checked = 0;
    for line in lines
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let fields: Vec<&str> = line.split(' ').collect();
        let context: Context = if fields[1] == "-" {
            Context::new()
        } else {
            fields[1]
                .split(',')
                .map(|pair| pair.split_once('=').expect("k=v"))
                .collect()
        };
        let ciphertext = hex::decode(fields[3]).expect("hex");
        let opened = service
            .decrypt(
                &owner,
                &KeyId::parse(fields[0]).expect("id"),
                &ciphertext,
                &context,
            )
            .await
            .expect("fixture ciphertext decrypts after migration");
        assert_eq!(
            opened.plaintext.expose(),
            hex::decode(fields[2]).expect("hex")
        );
        checked += 1;
    }
    assert!(checked >= 6);
    drop(service);
    let keys = store.list_keys("", None, 100).await.expect("list");
    assert!(keys.iter().all(|k| k.tag.is_some()), "every record tagged");

    // Migrated for good: a record edited now is refused, not re-tagged.
    let first = keys[0].id.clone();
    grant_behind_tresors_back(store.as_ref(), first.as_str()).await;
    let service = Service::open(store.clone(), master, options)
        .await
        .expect("reopen");
    let shipping = Identity::parse(SHIPPING).expect("identity");
    let refused = service
        .decrypt(&shipping, &first, b"irrelevant", &Context::new())
        .await;
    assert!(
        matches!(refused, Err(tresor::error::Error::TamperedKeyRecord(_))),
        "{refused:?}"
    );
}
