//! Control plane over real mTLS: admin-only calls, isolation between
//! services, listing, grants, key states, minimum decryption version,
//! deletion scheduling, seal/unseal with health, concurrent rotation.

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{ADMIN, BILLING, Clients, SHIPPING, TestServer, assert_code, proto};
use proto::{KeyState, Operation};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const KEY: &str = "billing/records";
const MISSING: &str = "billing/no-such-key";
const DAY: i64 = 86_400;

async fn server_with_billing_key() -> (TestServer, Clients, Clients) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key(KEY, BILLING).await;
    let billing = server.client(BILLING).await;
    (server, admin, billing)
}

fn key_req(key_id: &str) -> proto::KeyRequest {
    proto::KeyRequest {
        key_id: key_id.into(),
    }
}

fn grant_req(key_id: &str, grantee: &str, operations: &[i32]) -> proto::GrantRequest {
    proto::GrantRequest {
        key_id: key_id.into(),
        grantee: grantee.into(),
        operations: operations.to_vec(),
    }
}

fn ops(operations: &[Operation]) -> Vec<i32> {
    operations.iter().map(|op| *op as i32).collect()
}

fn now_unix() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after epoch")
            .as_secs(),
    )
    .expect("fits")
}

fn into_inner<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Result<T, tonic::Status> {
    result.map(tonic::Response::into_inner)
}

async fn re_encrypt(
    clients: &mut Clients,
    key_id: &str,
    ciphertext: &[u8],
) -> Result<proto::EncryptResponse, tonic::Status> {
    into_inner(
        clients
            .crypto
            .re_encrypt(proto::ReEncryptRequest {
                key_id: key_id.into(),
                ciphertext: ciphertext.to_vec(),
                context: Default::default(),
            })
            .await,
    )
}

async fn data_key(
    clients: &mut Clients,
    key_id: &str,
) -> Result<proto::GenerateDataKeyResponse, tonic::Status> {
    into_inner(
        clients
            .crypto
            .generate_data_key(proto::GenerateDataKeyRequest {
                key_id: key_id.into(),
                context: Default::default(),
            })
            .await,
    )
}

async fn status(clients: &mut Clients) -> Result<proto::SealStatus, tonic::Status> {
    into_inner(clients.admin.get_status(proto::StatusRequest {}).await)
}

async fn list(
    clients: &mut Clients,
    prefix: &str,
    page_size: u32,
    page_token: &str,
) -> Result<proto::ListKeysResponse, tonic::Status> {
    into_inner(
        clients
            .admin
            .list_keys(proto::ListKeysRequest {
                prefix: prefix.into(),
                page_size,
                page_token: page_token.into(),
            })
            .await,
    )
}

/// Follows next_page_token until it is empty; returns the ids of each page.
async fn list_pages(clients: &mut Clients, prefix: &str, page_size: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token = String::new();
    for _ in 0..100 {
        let page = list(clients, prefix, page_size, &token)
            .await
            .expect("list keys");
        pages.push(page.keys.into_iter().map(|k| k.key_id).collect::<Vec<_>>());
        if page.next_page_token.is_empty() {
            return pages;
        }
        token = page.next_page_token;
    }
    panic!("pagination did not terminate: {pages:?}");
}

async fn schedule_deletion(
    clients: &mut Clients,
    key_id: &str,
    pending_days: u32,
) -> Result<proto::KeyInfo, tonic::Status> {
    into_inner(
        clients
            .admin
            .schedule_key_deletion(proto::ScheduleKeyDeletionRequest {
                key_id: key_id.into(),
                pending_days,
            })
            .await,
    )
}

async fn set_min_version(
    clients: &mut Clients,
    key_id: &str,
    version: u32,
) -> Result<proto::KeyInfo, tonic::Status> {
    into_inner(
        clients
            .admin
            .set_min_decryption_version(proto::SetMinDecryptionVersionRequest {
                key_id: key_id.into(),
                version,
            })
            .await,
    )
}

/// Polls the health service (bounded, ~2 s) until `service` reports `want`.
async fn wait_for_health(clients: &Clients, service: &str, want: ServingStatus) {
    let mut health = HealthClient::new(clients.channel.clone());
    let mut last = None;
    for _ in 0..40 {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner();
        if response.status == want as i32 {
            return;
        }
        last = Some(response.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("health of {service:?} stayed {last:?}, wanted {want:?}");
}

// ---------------------------------------------------------------------------
// Admin-only control plane
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_service_identity_is_denied_every_admin_only_call() {
    let (_server, mut admin, mut billing) = server_with_billing_key().await;
    let grant = || grant_req(KEY, SHIPPING, &ops(&[Operation::Decrypt]));
    let denied = Code::PermissionDenied;
    assert_code(
        into_inner(
            billing
                .admin
                .create_key(proto::CreateKeyRequest {
                    key_id: "billing/new".into(),
                    owner: BILLING.into(),
                    description: String::new(),
                    ..Default::default()
                })
                .await,
        ),
        denied,
    );
    assert_code(
        into_inner(billing.admin.disable_key(key_req(KEY)).await),
        denied,
    );
    assert_code(
        into_inner(billing.admin.enable_key(key_req(KEY)).await),
        denied,
    );
    assert_code(set_min_version(&mut billing, KEY, 1).await, denied);
    assert_code(schedule_deletion(&mut billing, KEY, 7).await, denied);
    assert_code(
        into_inner(billing.admin.cancel_key_deletion(key_req(KEY)).await),
        denied,
    );
    assert_code(
        into_inner(billing.admin.create_grant(grant()).await),
        denied,
    );
    assert_code(
        into_inner(billing.admin.revoke_grant(grant()).await),
        denied,
    );
    assert_code(
        into_inner(billing.admin.seal(proto::SealRequest {}).await),
        denied,
    );
    assert_code(
        into_inner(billing.admin.unseal(proto::UnsealRequest::default()).await),
        denied,
    );
    assert_code(status(&mut billing).await, denied);
    // Not even ALREADY_EXISTS: a taken id looks like any other.
    let taken = billing
        .admin
        .create_key(proto::CreateKeyRequest {
            key_id: KEY.into(),
            owner: BILLING.into(),
            description: String::new(),
            ..Default::default()
        })
        .await;
    assert_code(into_inner(taken), denied);

    // Nothing changed.
    let info = admin.key(KEY).await.expect("get key");
    assert_eq!(info.state(), KeyState::Enabled);
    assert!(info.grants.is_empty());
    assert_eq!(info.deletion_at_unix, 0);
    let status = status(&mut admin).await.expect("status");
    assert!(!status.sealed);
    assert_eq!(status.key_count, 1);
    assert_code(admin.key("billing/new").await, Code::NotFound);
}

#[tokio::test]
async fn the_owner_may_rotate_and_read_its_own_key() {
    let (_server, _admin, mut billing) = server_with_billing_key().await;
    let info = billing.key(KEY).await.expect("owner may read");
    assert_eq!(info.key_id, KEY);
    assert_eq!(info.owner, BILLING);
    assert_eq!(info.description, "test");
    assert_eq!(info.state(), KeyState::Enabled);
    assert_eq!(info.primary_version, 1);
    assert_eq!(info.min_decryption_version, 1);
    assert!((now_unix() - info.created_at_unix).abs() < 60, "{info:?}");
    assert_eq!(info.versions.len(), 1);
    assert_eq!(info.versions[0].version, 1);
    assert_eq!(info.versions[0].created_at_unix, info.created_at_unix);
    let rotated = billing.rotate(KEY).await.expect("owner may rotate");
    assert_eq!(rotated.primary_version, 2);
    assert_eq!(billing.key(KEY).await.expect("read").primary_version, 2);
    let sealed = billing
        .encrypt(KEY, b"under v2", &[])
        .await
        .expect("encrypt");
    assert_eq!(sealed.key_version, 2);
}

#[tokio::test]
async fn create_key_with_a_taken_id_is_already_exists() {
    let (_server, mut admin, _billing) = server_with_billing_key().await;
    let status = assert_code(
        into_inner(
            admin
                .admin
                .create_key(proto::CreateKeyRequest {
                    key_id: KEY.into(),
                    owner: SHIPPING.into(),
                    description: "hijack".into(),
                    ..Default::default()
                })
                .await,
        ),
        Code::AlreadyExists,
    );
    assert!(status.message().contains("exists"), "{status:?}");
    let info = admin.key(KEY).await.expect("get");
    assert_eq!(info.owner, BILLING, "the existing key is untouched");
    assert_eq!(info.description, "test");
}

#[tokio::test]
async fn admin_calls_on_an_unknown_key_are_not_found() {
    let (_server, mut admin, _billing) = server_with_billing_key().await;
    let grant = || grant_req(MISSING, SHIPPING, &ops(&[Operation::Decrypt]));
    let nf = Code::NotFound;
    assert_code(admin.key(MISSING).await, nf);
    assert_code(admin.rotate(MISSING).await, nf);
    assert_code(
        into_inner(admin.admin.disable_key(key_req(MISSING)).await),
        nf,
    );
    assert_code(
        into_inner(admin.admin.enable_key(key_req(MISSING)).await),
        nf,
    );
    assert_code(set_min_version(&mut admin, MISSING, 1).await, nf);
    assert_code(schedule_deletion(&mut admin, MISSING, 7).await, nf);
    assert_code(
        into_inner(admin.admin.cancel_key_deletion(key_req(MISSING)).await),
        nf,
    );
    assert_code(into_inner(admin.admin.create_grant(grant()).await), nf);
    assert_code(into_inner(admin.admin.revoke_grant(grant()).await), nf);
    assert_eq!(status(&mut admin).await.expect("status").key_count, 1);
}

#[tokio::test]
async fn create_key_with_a_bad_key_id_or_owner_is_invalid_argument() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let create = |key_id: String, owner: String| proto::CreateKeyRequest {
        key_id,
        owner,
        description: String::new(),
        ..Default::default()
    };
    let long_id = "k".repeat(129);
    for bad_id in [
        "",
        "/abs",
        "has space",
        long_id.as_str(),
        "semi;colon",
        "ünï",
    ] {
        let result = admin
            .admin
            .create_key(create(bad_id.into(), BILLING.into()))
            .await;
        assert_code(into_inner(result), Code::InvalidArgument);
    }
    let long_owner = "o".repeat(1025);
    for bad_owner in ["", "spiffe://test.tresor/new\nline", long_owner.as_str()] {
        let result = admin
            .admin
            .create_key(create("ok/id".into(), bad_owner.into()))
            .await;
        let status = assert_code(into_inner(result), Code::InvalidArgument);
        assert!(status.message().contains("owner"), "{status:?}");
    }
    let long_description = proto::CreateKeyRequest {
        key_id: "ok/id".into(),
        owner: BILLING.into(),
        description: "d".repeat(1025),
        ..Default::default()
    };
    let result = admin.admin.create_key(long_description).await;
    assert_code(into_inner(result), Code::InvalidArgument);
    for bad_id in ["", "/abs", "has space"] {
        assert_code(admin.key(bad_id).await, Code::InvalidArgument);
        assert_code(admin.rotate(bad_id).await, Code::InvalidArgument);
    }
    // The longest valid id is accepted, and nothing else was created.
    let longest = "k".repeat(128);
    admin.create_key(&longest, BILLING).await;
    assert_eq!(status(&mut admin).await.expect("status").key_count, 1);
}

#[tokio::test]
async fn admins_manage_keys_but_cannot_use_a_service_key() {
    let (_server, mut admin, mut billing) = server_with_billing_key().await;
    let sealed = billing
        .encrypt(KEY, b"billing only", &[])
        .await
        .expect("encrypt");
    let denied = Code::PermissionDenied;
    assert_code(admin.encrypt(KEY, b"x", &[]).await, denied);
    assert_code(admin.decrypt(KEY, &sealed.ciphertext, &[]).await, denied);
    assert_code(
        re_encrypt(&mut admin, KEY, &sealed.ciphertext).await,
        denied,
    );
    assert_code(data_key(&mut admin, KEY).await, denied);
    // ... while managing it is fine.
    assert!(admin.rotate(KEY).await.is_ok());
    assert!(admin.key(KEY).await.is_ok());
}

// ---------------------------------------------------------------------------
// Isolation between services
// ---------------------------------------------------------------------------

#[tokio::test]
async fn another_service_cannot_use_or_read_a_foreign_key_and_learns_nothing_about_existence() {
    let (server, mut admin, mut billing) = server_with_billing_key().await;
    let mut shipping = server.client(SHIPPING).await;
    let sealed = billing
        .encrypt(KEY, b"invoice", &[])
        .await
        .expect("encrypt");
    let ct = sealed.ciphertext.clone();

    // Each call on BILLING's key and on a key that does not exist.
    let mut outcomes: Vec<(&str, tonic::Status, tonic::Status)> = Vec::new();
    macro_rules! both {
        ($name:expr, |$id:ident| $call:expr) => {{
            let existing = {
                let $id = KEY;
                $call
            };
            let missing = {
                let $id = MISSING;
                $call
            };
            outcomes.push((
                $name,
                assert_code(existing, Code::PermissionDenied),
                assert_code(missing, Code::PermissionDenied),
            ));
        }};
    }
    both!("Encrypt", |id| shipping.encrypt(id, b"x", &[]).await);
    both!("Decrypt", |id| shipping.decrypt(id, &ct, &[]).await);
    both!("ReEncrypt", |id| re_encrypt(&mut shipping, id, &ct).await);
    both!("GenerateDataKey", |id| data_key(&mut shipping, id).await);
    both!("GetKey", |id| shipping.key(id).await);
    both!("RotateKey", |id| shipping.rotate(id).await);
    for (name, existing, missing) in &outcomes {
        assert_eq!(existing.code(), missing.code(), "{name}: codes differ");
        assert_eq!(
            existing.message(),
            missing.message(),
            "{name}: messages differ"
        );
        assert!(!existing.message().contains(KEY), "{name}: {existing:?}");
    }

    // A disabled foreign key looks the same too (no state oracle).
    admin
        .admin
        .disable_key(key_req(KEY))
        .await
        .expect("disable");
    let disabled = assert_code(
        shipping.encrypt(KEY, b"x", &[]).await,
        Code::PermissionDenied,
    );
    assert_eq!(disabled.message(), outcomes[0].2.message());

    // The key is untouched and still BILLING's alone.
    let info = admin.key(KEY).await.expect("get");
    assert_eq!(info.primary_version, 1);
    assert!(info.grants.is_empty());
}

#[tokio::test]
async fn list_keys_as_a_service_shows_only_its_own_keys() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key("billing/a", BILLING).await;
    admin.create_key("shared/b", BILLING).await;
    admin.create_key("shipping/a", SHIPPING).await;
    admin.create_key("shared/a", SHIPPING).await;
    admin.create_key("admin/own", ADMIN).await;
    // A grant does not make a key listable.
    admin
        .admin
        .create_grant(grant_req(
            "shipping/a",
            BILLING,
            &ops(&[Operation::Decrypt]),
        ))
        .await
        .expect("grant");
    let mut billing = server.client(BILLING).await;
    let mut shipping = server.client(SHIPPING).await;

    let ids = |page: proto::ListKeysResponse| -> Vec<String> {
        page.keys.into_iter().map(|k| k.key_id).collect()
    };
    let page = list(&mut billing, "", 0, "").await.expect("list");
    assert!(page.next_page_token.is_empty());
    assert!(page.keys.iter().all(|k| k.owner == BILLING));
    assert_eq!(ids(page), ["billing/a", "shared/b"]);
    assert_eq!(
        ids(list(&mut shipping, "", 0, "").await.expect("list")),
        ["shared/a", "shipping/a"]
    );
    assert_eq!(
        ids(list(&mut shipping, "shared/", 0, "").await.expect("list")),
        ["shared/a"]
    );
    // Paging over interleaved foreign keys still yields exactly the own keys.
    assert_eq!(
        list_pages(&mut billing, "", 1).await.concat(),
        ["billing/a", "shared/b"]
    );
    assert_eq!(
        ids(list(&mut admin, "", 0, "").await.expect("list")),
        [
            "admin/own",
            "billing/a",
            "shared/a",
            "shared/b",
            "shipping/a"
        ]
    );
}

#[tokio::test]
async fn admin_list_keys_filters_by_prefix_and_pages_in_id_order() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    // Created out of order, with neighbours just outside the prefix.
    let wanted = ["app/c", "app/a", "app/e", "app/b", "app/d"];
    for id in wanted {
        admin.create_key(id, BILLING).await;
    }
    for id in ["ap", "apo/z", "apq/a", "zzz"] {
        admin.create_key(id, SHIPPING).await;
    }

    let pages = list_pages(&mut admin, "app/", 2).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1], "{pages:?}");
    let all: Vec<String> = pages.concat();
    let mut expected: Vec<String> = wanted.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(all, expected, "every key exactly once, in id order");

    // An exact multiple of the page size: the last full page has no token,
    // so no empty trailing page is served.
    let sizes: Vec<usize> = list_pages(&mut admin, "app/", 5)
        .await
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(sizes, [5]);
    let sizes: Vec<usize> = list_pages(&mut admin, "", 3)
        .await
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(sizes, [3, 3, 3]);

    let everything = list_pages(&mut admin, "", 2).await.concat();
    assert_eq!(
        everything,
        [
            "ap", "apo/z", "app/a", "app/b", "app/c", "app/d", "app/e", "apq/a", "zzz"
        ]
    );
    let one_page = list(&mut admin, "", 0, "")
        .await
        .expect("default page size");
    assert_eq!(one_page.keys.len(), 9);
    assert!(one_page.next_page_token.is_empty());
    assert!(
        list(&mut admin, "nothing/", 2, "")
            .await
            .expect("list")
            .keys
            .is_empty()
    );
}

#[tokio::test]
async fn a_bad_page_token_is_invalid_argument() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key("app/a", BILLING).await;
    let mut billing = server.client(BILLING).await;
    let not_a_key_id = hex::encode("has space");
    let leading_slash = hex::encode("/abs");
    for token in [
        "zz",
        "not a token",
        "abc",
        "ff00",
        not_a_key_id.as_str(),
        leading_slash.as_str(),
    ] {
        let status = assert_code(list(&mut admin, "", 2, token).await, Code::InvalidArgument);
        assert!(status.message().contains("page_token"), "{status:?}");
        assert_code(
            list(&mut billing, "", 2, token).await,
            Code::InvalidArgument,
        );
    }
}

// ---------------------------------------------------------------------------
// Grants
// ---------------------------------------------------------------------------

#[tokio::test]
async fn grants_allow_exactly_the_granted_operations_until_revoked() {
    let (server, mut admin, mut billing) = server_with_billing_key().await;
    let mut shipping = server.client(SHIPPING).await;
    let sealed = billing
        .encrypt(KEY, b"for shipping", &[("order", "7")])
        .await
        .expect("encrypt");

    let info = into_inner(
        admin
            .admin
            .create_grant(grant_req(KEY, SHIPPING, &ops(&[Operation::Decrypt])))
            .await,
    )
    .expect("grant decrypt");
    assert_eq!(
        info.grants,
        [proto::Grant {
            grantee: SHIPPING.into(),
            operations: ops(&[Operation::Decrypt]),
        }]
    );
    assert_eq!(admin.key(KEY).await.expect("get").grants, info.grants);

    let opened = shipping
        .decrypt(KEY, &sealed.ciphertext, &[("order", "7")])
        .await
        .expect("grantee decrypts");
    assert_eq!(opened.plaintext, b"for shipping");
    assert_code(
        shipping.encrypt(KEY, b"x", &[]).await,
        Code::PermissionDenied,
    );
    assert_code(data_key(&mut shipping, KEY).await, Code::PermissionDenied);
    assert_code(shipping.key(KEY).await, Code::PermissionDenied);
    assert_code(shipping.rotate(KEY).await, Code::PermissionDenied);

    // Grants accumulate.
    let info = into_inner(
        admin
            .admin
            .create_grant(grant_req(KEY, SHIPPING, &ops(&[Operation::Encrypt])))
            .await,
    )
    .expect("grant encrypt");
    assert_eq!(info.grants.len(), 1);
    assert_eq!(info.grants[0].grantee, SHIPPING);
    let granted: BTreeSet<i32> = info.grants[0].operations.iter().copied().collect();
    assert_eq!(
        granted,
        BTreeSet::from([Operation::Encrypt as i32, Operation::Decrypt as i32])
    );
    let own = shipping
        .encrypt(KEY, b"from shipping", &[])
        .await
        .expect("grantee encrypts");
    assert_eq!(
        billing
            .decrypt(KEY, &own.ciphertext, &[])
            .await
            .expect("owner decrypts")
            .plaintext,
        b"from shipping"
    );

    // Revoking one operation leaves the other.
    let info = into_inner(
        admin
            .admin
            .revoke_grant(grant_req(KEY, SHIPPING, &ops(&[Operation::Decrypt])))
            .await,
    )
    .expect("revoke decrypt");
    assert_eq!(info.grants[0].operations, ops(&[Operation::Encrypt]));
    assert_code(
        shipping
            .decrypt(KEY, &sealed.ciphertext, &[("order", "7")])
            .await,
        Code::PermissionDenied,
    );
    assert!(shipping.encrypt(KEY, b"x", &[]).await.is_ok());

    // Empty operations remove the whole grant.
    let info = into_inner(
        admin
            .admin
            .revoke_grant(grant_req(KEY, SHIPPING, &[]))
            .await,
    )
    .expect("revoke all");
    assert!(info.grants.is_empty());
    assert!(admin.key(KEY).await.expect("get").grants.is_empty());
    assert_code(
        shipping.encrypt(KEY, b"x", &[]).await,
        Code::PermissionDenied,
    );
    // The owner is unaffected throughout.
    assert!(
        billing
            .decrypt(KEY, &sealed.ciphertext, &[("order", "7")])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn each_single_operation_grant_allows_exactly_that_operation() {
    let (server, mut admin, mut billing) = server_with_billing_key().await;
    let mut shipping = server.client(SHIPPING).await;
    let all = [
        Operation::Encrypt,
        Operation::Decrypt,
        Operation::Reencrypt,
        Operation::GenerateDataKey,
    ];
    for granted in all {
        let key = format!("billing/only-{}", granted as i32);
        admin.create_key(&key, BILLING).await;
        let sealed = billing.encrypt(&key, b"x", &[]).await.expect("encrypt");
        let info = into_inner(
            admin
                .admin
                .create_grant(grant_req(&key, SHIPPING, &ops(&[granted])))
                .await,
        )
        .expect("grant");
        assert_eq!(info.grants[0].operations, ops(&[granted]));
        for tried in all {
            let outcome = match tried {
                Operation::Encrypt => shipping.encrypt(&key, b"y", &[]).await.map(drop),
                Operation::Decrypt => shipping
                    .decrypt(&key, &sealed.ciphertext, &[])
                    .await
                    .map(drop),
                Operation::Reencrypt => re_encrypt(&mut shipping, &key, &sealed.ciphertext)
                    .await
                    .map(drop),
                Operation::GenerateDataKey => data_key(&mut shipping, &key).await.map(drop),
                Operation::Unspecified => unreachable!(),
            };
            if tried == granted {
                assert!(outcome.is_ok(), "{granted:?} grant, {tried:?}: {outcome:?}");
            } else {
                assert_code(outcome, Code::PermissionDenied);
            }
        }
    }
}

#[tokio::test]
async fn grant_requests_with_unknown_or_no_operations_are_invalid_argument() {
    let (_server, mut admin, _billing) = server_with_billing_key().await;
    let unspecified = Operation::Unspecified as i32;
    let encrypt = Operation::Encrypt as i32;
    for bad in [
        vec![unspecified],
        vec![99],
        vec![encrypt, 99],
        vec![-1],
        vec![encrypt, unspecified],
    ] {
        assert_code(
            into_inner(
                admin
                    .admin
                    .create_grant(grant_req(KEY, SHIPPING, &bad))
                    .await,
            ),
            Code::InvalidArgument,
        );
        assert_code(
            into_inner(
                admin
                    .admin
                    .revoke_grant(grant_req(KEY, SHIPPING, &bad))
                    .await,
            ),
            Code::InvalidArgument,
        );
    }
    let status = assert_code(
        into_inner(
            admin
                .admin
                .create_grant(grant_req(KEY, SHIPPING, &[]))
                .await,
        ),
        Code::InvalidArgument,
    );
    assert!(status.message().contains("operation"), "{status:?}");
    assert_code(
        into_inner(
            admin
                .admin
                .create_grant(grant_req(KEY, "", &[encrypt]))
                .await,
        ),
        Code::InvalidArgument,
    );
    assert!(admin.key(KEY).await.expect("get").grants.is_empty());
}

// ---------------------------------------------------------------------------
// Disable / enable
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_disabled_key_refuses_the_data_plane_until_enabled() {
    let (_server, mut admin, mut billing) = server_with_billing_key().await;
    let old = billing.encrypt(KEY, b"before", &[]).await.expect("encrypt");

    let info = into_inner(admin.admin.disable_key(key_req(KEY)).await).expect("disable");
    assert_eq!(info.state(), KeyState::Disabled);
    assert_eq!(
        billing.key(KEY).await.expect("get").state(),
        KeyState::Disabled
    );
    for status in [
        assert_code(
            billing.encrypt(KEY, b"x", &[]).await,
            Code::FailedPrecondition,
        ),
        assert_code(
            billing.decrypt(KEY, &old.ciphertext, &[]).await,
            Code::FailedPrecondition,
        ),
        assert_code(
            re_encrypt(&mut billing, KEY, &old.ciphertext).await,
            Code::FailedPrecondition,
        ),
        assert_code(data_key(&mut billing, KEY).await, Code::FailedPrecondition),
    ] {
        assert!(status.message().contains("disabled"), "{status:?}");
    }
    // Disabling again is idempotent; a disabled key may still rotate.
    assert!(admin.admin.disable_key(key_req(KEY)).await.is_ok());
    assert_eq!(admin.rotate(KEY).await.expect("rotate").primary_version, 2);

    let info = into_inner(admin.admin.enable_key(key_req(KEY)).await).expect("enable");
    assert_eq!(info.state(), KeyState::Enabled);
    let opened = billing
        .decrypt(KEY, &old.ciphertext, &[])
        .await
        .expect("old decrypts");
    assert_eq!(opened.plaintext, b"before");
    let new = billing
        .encrypt(KEY, b"after", &[])
        .await
        .expect("encrypt again");
    assert_eq!(
        billing
            .decrypt(KEY, &new.ciphertext, &[])
            .await
            .expect("decrypt")
            .plaintext,
        b"after"
    );
}

// ---------------------------------------------------------------------------
// Minimum decryption version
// ---------------------------------------------------------------------------

#[tokio::test]
async fn minimum_decryption_version_refuses_older_ciphertexts() {
    let (_server, mut admin, mut billing) = server_with_billing_key().await;
    let mut ciphertexts = Vec::new();
    for version in 1..=3u32 {
        if version > 1 {
            billing.rotate(KEY).await.expect("rotate");
        }
        let out = billing
            .encrypt(KEY, format!("v{version}").as_bytes(), &[])
            .await
            .expect("encrypt");
        assert_eq!(out.key_version, version);
        ciphertexts.push(out.ciphertext);
    }

    let info = set_min_version(&mut admin, KEY, 2)
        .await
        .expect("set min 2");
    assert_eq!(info.min_decryption_version, 2);
    let status = assert_code(
        billing.decrypt(KEY, &ciphertexts[0], &[]).await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains("minimum decryption version"),
        "{status:?}"
    );
    assert_code(
        re_encrypt(&mut billing, KEY, &ciphertexts[0]).await,
        Code::FailedPrecondition,
    );
    for (index, ct) in ciphertexts.iter().enumerate().skip(1) {
        let opened = billing.decrypt(KEY, ct, &[]).await.expect("v2/v3 decrypt");
        assert_eq!(opened.plaintext, format!("v{}", index + 1).as_bytes());
    }

    for bad in [0, 4, u32::MAX] {
        assert_code(
            set_min_version(&mut admin, KEY, bad).await,
            Code::InvalidArgument,
        );
    }
    assert_eq!(admin.key(KEY).await.expect("get").min_decryption_version, 2);

    let info = set_min_version(&mut admin, KEY, 1)
        .await
        .expect("lower to 1");
    assert_eq!(info.min_decryption_version, 1);
    let opened = billing
        .decrypt(KEY, &ciphertexts[0], &[])
        .await
        .expect("v1 decrypts again");
    assert_eq!(opened.plaintext, b"v1");
}

// ---------------------------------------------------------------------------
// Deletion scheduling
// ---------------------------------------------------------------------------

#[tokio::test]
async fn schedule_deletion_window_defaults_to_thirty_days_and_must_be_seven_to_thirty() {
    let (_server, mut admin, _billing) = server_with_billing_key().await;
    admin.create_key("billing/week", BILLING).await;
    for bad in [1, 6, 31, 365] {
        let status = assert_code(
            schedule_deletion(&mut admin, KEY, bad).await,
            Code::InvalidArgument,
        );
        assert!(status.message().contains("pending_days"), "{status:?}");
    }
    assert_eq!(
        admin.key(KEY).await.expect("get").state(),
        KeyState::Enabled
    );

    let before = now_unix();
    let info = schedule_deletion(&mut admin, KEY, 0)
        .await
        .expect("default window");
    let after = now_unix();
    assert_eq!(info.state(), KeyState::PendingDeletion);
    assert!(
        (before + 30 * DAY - 2..=after + 30 * DAY + 2).contains(&info.deletion_at_unix),
        "deletion_at {} not ~30 days from {before}",
        info.deletion_at_unix
    );
    assert_eq!(
        admin.key(KEY).await.expect("get").deletion_at_unix,
        info.deletion_at_unix
    );
    // Already pending: a second schedule is refused.
    assert_code(
        schedule_deletion(&mut admin, KEY, 7).await,
        Code::FailedPrecondition,
    );

    let before = now_unix();
    let info = schedule_deletion(&mut admin, "billing/week", 7)
        .await
        .expect("seven days");
    let after = now_unix();
    assert_eq!(info.state(), KeyState::PendingDeletion);
    assert!((before + 7 * DAY - 2..=after + 7 * DAY + 2).contains(&info.deletion_at_unix));
    // A key pending deletion is still listed and counted.
    assert_eq!(
        list(&mut admin, "billing/", 0, "")
            .await
            .expect("list")
            .keys
            .len(),
        2
    );
    assert_eq!(status(&mut admin).await.expect("status").key_count, 2);
}

#[tokio::test]
async fn a_key_pending_deletion_is_unusable_and_cancel_brings_it_back_disabled() {
    let (_server, mut admin, mut billing) = server_with_billing_key().await;
    let old = billing
        .encrypt(KEY, b"keep me", &[])
        .await
        .expect("encrypt");
    schedule_deletion(&mut admin, KEY, 7)
        .await
        .expect("schedule");
    assert_eq!(
        billing.key(KEY).await.expect("owner reads").state(),
        KeyState::PendingDeletion
    );

    let fp = Code::FailedPrecondition;
    for status in [
        assert_code(billing.encrypt(KEY, b"x", &[]).await, fp),
        assert_code(billing.decrypt(KEY, &old.ciphertext, &[]).await, fp),
        assert_code(re_encrypt(&mut billing, KEY, &old.ciphertext).await, fp),
        assert_code(data_key(&mut billing, KEY).await, fp),
    ] {
        assert!(status.message().contains("pending deletion"), "{status:?}");
    }
    assert_code(billing.rotate(KEY).await, fp);
    assert_code(admin.rotate(KEY).await, fp);
    assert_code(into_inner(admin.admin.enable_key(key_req(KEY)).await), fp);
    assert_code(into_inner(admin.admin.disable_key(key_req(KEY)).await), fp);
    assert_code(set_min_version(&mut admin, KEY, 1).await, fp);
    assert_code(
        into_inner(
            admin
                .admin
                .create_grant(grant_req(KEY, SHIPPING, &ops(&[Operation::Decrypt])))
                .await,
        ),
        fp,
    );
    let info = admin.key(KEY).await.expect("get");
    assert_eq!(info.state(), KeyState::PendingDeletion);
    assert_eq!(info.primary_version, 1);

    let info = into_inner(admin.admin.cancel_key_deletion(key_req(KEY)).await).expect("cancel");
    assert_eq!(info.state(), KeyState::Disabled);
    assert_eq!(info.deletion_at_unix, 0);
    assert_code(
        into_inner(admin.admin.cancel_key_deletion(key_req(KEY)).await),
        fp,
    );
    let status = assert_code(billing.encrypt(KEY, b"x", &[]).await, fp);
    assert!(status.message().contains("disabled"), "{status:?}");

    let info = into_inner(admin.admin.enable_key(key_req(KEY)).await).expect("enable");
    assert_eq!(info.state(), KeyState::Enabled);
    let opened = billing
        .decrypt(KEY, &old.ciphertext, &[])
        .await
        .expect("old decrypts");
    assert_eq!(opened.plaintext, b"keep me");
    assert!(billing.encrypt(KEY, b"new", &[]).await.is_ok());
    assert_eq!(
        billing.rotate(KEY).await.expect("rotate").primary_version,
        2
    );
}

// ---------------------------------------------------------------------------
// Seal / unseal
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_sealed_service_refuses_key_material_and_reports_not_serving() {
    let (_server, mut admin, mut billing) = server_with_billing_key().await;
    let old = billing
        .encrypt(KEY, b"sealed away", &[])
        .await
        .expect("encrypt");
    wait_for_health(&admin, "tresor.v1.Crypto", ServingStatus::Serving).await;
    wait_for_health(&admin, "", ServingStatus::Serving).await;

    let sealed = into_inner(admin.admin.seal(proto::SealRequest {}).await).expect("seal");
    assert!(sealed.sealed);
    assert!(status(&mut admin).await.expect("status").sealed);

    let un = Code::Unavailable;
    for status in [
        assert_code(billing.encrypt(KEY, b"x", &[]).await, un),
        assert_code(billing.decrypt(KEY, &old.ciphertext, &[]).await, un),
        assert_code(data_key(&mut billing, KEY).await, un),
        assert_code(re_encrypt(&mut billing, KEY, &old.ciphertext).await, un),
        assert_code(
            into_inner(
                admin
                    .admin
                    .create_key(proto::CreateKeyRequest {
                        key_id: "billing/while-sealed".into(),
                        owner: BILLING.into(),
                        description: String::new(),
                        ..Default::default()
                    })
                    .await,
            ),
            un,
        ),
        assert_code(admin.rotate(KEY).await, un),
        assert_code(billing.rotate(KEY).await, un),
    ] {
        assert!(status.message().contains("sealed"), "{status:?}");
    }
    // A service identity cannot unseal.
    assert_code(
        into_inner(billing.admin.unseal(proto::UnsealRequest::default()).await),
        Code::PermissionDenied,
    );
    wait_for_health(&admin, "tresor.v1.Crypto", ServingStatus::NotServing).await;
    wait_for_health(&admin, "", ServingStatus::NotServing).await;

    let unsealed =
        into_inner(admin.admin.unseal(proto::UnsealRequest::default()).await).expect("unseal");
    assert!(!unsealed.sealed);
    assert!(!status(&mut admin).await.expect("status").sealed);
    wait_for_health(&admin, "tresor.v1.Crypto", ServingStatus::Serving).await;
    wait_for_health(&admin, "", ServingStatus::Serving).await;

    let opened = billing
        .decrypt(KEY, &old.ciphertext, &[])
        .await
        .expect("decrypts after unseal");
    assert_eq!(opened.plaintext, b"sealed away");
    assert_eq!(admin.rotate(KEY).await.expect("rotate").primary_version, 2);
    assert_code(admin.key("billing/while-sealed").await, Code::NotFound);
}

#[tokio::test]
async fn seal_and_unseal_are_idempotent() {
    let (_server, mut admin, mut billing) = server_with_billing_key().await;
    let old = billing.encrypt(KEY, b"twice", &[]).await.expect("encrypt");
    for _ in 0..2 {
        let sealed = into_inner(admin.admin.seal(proto::SealRequest {}).await).expect("seal");
        assert!(sealed.sealed);
    }
    assert_code(
        billing.decrypt(KEY, &old.ciphertext, &[]).await,
        Code::Unavailable,
    );
    for _ in 0..2 {
        let unsealed =
            into_inner(admin.admin.unseal(proto::UnsealRequest::default()).await).expect("unseal");
        assert!(!unsealed.sealed);
    }
    assert_eq!(
        billing
            .decrypt(KEY, &old.ciphertext, &[])
            .await
            .expect("decrypt")
            .plaintext,
        b"twice"
    );
    wait_for_health(&admin, "tresor.v1.Crypto", ServingStatus::Serving).await;
}

#[tokio::test]
async fn get_status_counts_keys_and_reports_the_server_version() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let status0 = status(&mut admin).await.expect("status");
    assert!(!status0.sealed);
    assert_eq!(status0.key_count, 0);
    assert!(!status0.server_version.is_empty());
    assert_eq!(status0.server_version, env!("CARGO_PKG_VERSION"));
    for i in 0..3 {
        admin.create_key(&format!("k/{i}"), BILLING).await;
    }
    admin.rotate("k/0").await.expect("rotate");
    assert_eq!(
        status(&mut admin).await.expect("status").key_count,
        3,
        "versions are not keys"
    );
    // Sealed, the count is still reported.
    let sealed = into_inner(admin.admin.seal(proto::SealRequest {}).await).expect("seal");
    assert_eq!(sealed.key_count, 3);
    assert_eq!(sealed.server_version, status0.server_version);
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_are_atomic_and_each_version_is_usable() {
    let (_server, mut admin, billing) = server_with_billing_key().await;
    let mut tasks = Vec::new();
    for i in 0..20u32 {
        let mut client = billing.clone();
        tasks.push(tokio::spawn(async move {
            let rotated = client.rotate(KEY).await.expect("rotate");
            let sealed = client
                .encrypt(KEY, format!("task {i}").as_bytes(), &[])
                .await
                .expect("encrypt");
            (i, rotated.primary_version, sealed)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }

    let returned: BTreeSet<u32> = results.iter().map(|(_, v, _)| *v).collect();
    assert_eq!(
        returned,
        (2..=21).collect::<BTreeSet<u32>>(),
        "each rotation made its own version"
    );
    let info = admin.key(KEY).await.expect("get");
    assert_eq!(info.primary_version, 21);
    let versions: Vec<u32> = info.versions.iter().map(|v| v.version).collect();
    assert_eq!(versions, (1..=21).collect::<Vec<u32>>());

    let mut billing = billing;
    for (i, version, sealed) in &results {
        assert!(sealed.key_version >= *version);
        let opened = billing
            .decrypt(KEY, &sealed.ciphertext, &[])
            .await
            .expect("decrypt");
        assert_eq!(opened.plaintext, format!("task {i}").as_bytes());
        assert_eq!(opened.key_version, sealed.key_version);
    }
    let last = billing.encrypt(KEY, b"last", &[]).await.expect("encrypt");
    assert_eq!(last.key_version, 21);
    assert_eq!(
        billing
            .decrypt(KEY, &last.ciphertext, &[])
            .await
            .expect("decrypt")
            .key_version,
        21
    );
    assert_eq!(
        admin
            .rotate(KEY)
            .await
            .expect("rotate after")
            .primary_version,
        22
    );
}
