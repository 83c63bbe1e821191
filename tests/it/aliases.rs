//! Aliases (issue 21): created, repointed, deleted and listed by admins;
//! accepted wherever a data-plane call takes a key id; authorization,
//! state and purpose are always the target key's; ciphertexts stay bound
//! to the real key; tampered alias records are refused; aliases of a
//! destroyed key go with it.

use crate::common;

use common::proto::{self, KeyPurpose};
use common::{ADMIN, BILLING, SHIPPING, TestServer, assert_code, ctx};
use tonic::Code;
use tresor_proto::Reason;

const OLD: &str = "billing/payments-2026";
const NEW: &str = "billing/payments-2027";
const ALIAS: &str = "alias/payments";

fn alias_request(alias: &str, key_id: &str) -> proto::AliasRequest {
    proto::AliasRequest {
        alias: alias.into(),
        key_id: key_id.into(),
    }
}

async fn create_alias(
    clients: &mut common::Clients,
    alias: &str,
    key_id: &str,
) -> Result<proto::AliasInfo, tonic::Status> {
    clients
        .admin
        .create_alias(alias_request(alias, key_id))
        .await
        .map(tonic::Response::into_inner)
}

async fn update_alias(
    clients: &mut common::Clients,
    alias: &str,
    key_id: &str,
) -> Result<proto::AliasInfo, tonic::Status> {
    clients
        .admin
        .update_alias(alias_request(alias, key_id))
        .await
        .map(tonic::Response::into_inner)
}

/// A server with OLD and NEW owned by BILLING and ALIAS pointing at OLD.
async fn aliased() -> (TestServer, common::Clients, common::Clients) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key(OLD, BILLING).await;
    admin.create_key(NEW, BILLING).await;
    let info = create_alias(&mut admin, ALIAS, OLD).await.expect("alias");
    assert_eq!((info.alias.as_str(), info.key_id.as_str()), (ALIAS, OLD));
    let billing = server.client(BILLING).await;
    (server, admin, billing)
}

#[tokio::test]
async fn calls_through_an_alias_use_its_key_and_ciphertexts_stay_bound_to_the_key() {
    let (_server, mut admin, mut billing) = aliased().await;
    let sealed = billing
        .encrypt(ALIAS, b"card", &[("t", "1")])
        .await
        .expect("encrypt");
    assert_eq!(sealed.key_id, OLD, "the response names the key to store");
    let opened = billing
        .decrypt(OLD, &sealed.ciphertext, &[("t", "1")])
        .await
        .expect("decrypt");
    assert_eq!(
        (opened.plaintext.as_slice(), opened.key_id.as_str()),
        (&b"card"[..], OLD)
    );
    let opened = billing
        .decrypt(ALIAS, &sealed.ciphertext, &[("t", "1")])
        .await
        .expect("decrypt");
    assert_eq!(opened.key_id, OLD);

    let moved = update_alias(&mut admin, ALIAS, NEW).await.expect("repoint");
    assert_eq!(moved.key_id, NEW);
    assert!(moved.updated_at_unix >= moved.created_at_unix);
    let resealed = billing.encrypt(ALIAS, b"card", &[]).await.expect("encrypt");
    assert_eq!(resealed.key_id, NEW);
    // The old ciphertext is bound to OLD: through the moved alias it is an
    // invalid ciphertext, with the real key id it opens.
    let status = assert_code(
        billing
            .decrypt(ALIAS, &sealed.ciphertext, &[("t", "1")])
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(Reason::of(&status), Some(Reason::InvalidCiphertext));
    billing
        .assert_decrypts(OLD, &sealed.ciphertext, &[("t", "1")], b"card")
        .await;

    // Data keys, ReEncrypt destinations and batch items take aliases too.
    let data_key = billing
        .crypto
        .generate_data_key(proto::GenerateDataKeyRequest {
            key_id: ALIAS.into(),
            ..Default::default()
        })
        .await
        .expect("data key")
        .into_inner();
    assert_eq!(data_key.key_id, NEW);
    let re = billing
        .crypto
        .re_encrypt(proto::ReEncryptRequest {
            key_id: OLD.into(),
            ciphertext: sealed.ciphertext.clone(),
            context: ctx(&[("t", "1")]),
            destination_key_id: ALIAS.into(),
            destination_context: ctx(&[]),
        })
        .await
        .expect("move through the alias")
        .into_inner();
    assert_eq!(re.key_id, NEW);
    billing
        .assert_decrypts(NEW, &re.ciphertext, &[], b"card")
        .await;
    let batch = billing
        .crypto
        .encrypt_batch(proto::EncryptBatchRequest {
            items: vec![proto::EncryptRequest {
                key_id: ALIAS.into(),
                plaintext: b"x".to_vec(),
                context: ctx(&[]),
            }],
        })
        .await
        .expect("batch")
        .into_inner();
    match &batch.results[0].result {
        Some(proto::encrypt_item_result::Result::Encrypted(done)) => assert_eq!(done.key_id, NEW),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn authorization_and_state_are_the_target_keys() {
    let (server, mut admin, mut billing) = aliased().await;
    let mut shipping = server.client(SHIPPING).await;
    let forbidden = assert_code(
        shipping.encrypt(ALIAS, b"x", &[]).await,
        Code::PermissionDenied,
    );
    // No existence oracle: a missing alias reads exactly like a forbidden one.
    let missing = assert_code(
        shipping.encrypt("alias/none", b"x", &[]).await,
        Code::PermissionDenied,
    );
    assert_eq!(forbidden.message(), missing.message());
    assert_code(admin.encrypt("alias/none", b"x", &[]).await, Code::NotFound);
    // Admins get no data-plane use through an alias either.
    assert_code(
        admin.encrypt(ALIAS, b"x", &[]).await,
        Code::PermissionDenied,
    );
    // A grant on the key is what counts.
    admin
        .admin
        .create_grant(proto::GrantRequest {
            key_id: OLD.into(),
            grantee: SHIPPING.into(),
            operations: vec![proto::Operation::Encrypt as i32],
            ..Default::default()
        })
        .await
        .expect("grant");
    assert_eq!(
        shipping
            .encrypt(ALIAS, b"x", &[])
            .await
            .expect("granted")
            .key_id,
        OLD
    );
    // A disabled key is disabled through its alias.
    admin
        .admin
        .disable_key(proto::KeyRequest { key_id: OLD.into() })
        .await
        .expect("disable");
    let status = assert_code(
        billing.encrypt(ALIAS, b"x", &[]).await,
        Code::FailedPrecondition,
    );
    assert_eq!(Reason::of(&status), Some(Reason::KeyDisabled));
}

#[tokio::test]
async fn only_admins_manage_aliases_and_every_field_is_checked() {
    let (server, mut admin, mut billing) = aliased().await;
    // The owner of the key cannot alias it.
    assert_code(
        create_alias(&mut billing, "alias/mine", OLD).await,
        Code::PermissionDenied,
    );
    assert_code(
        update_alias(&mut billing, ALIAS, NEW).await,
        Code::PermissionDenied,
    );
    assert_code(
        billing
            .admin
            .delete_alias(proto::DeleteAliasRequest {
                alias: ALIAS.into(),
            })
            .await,
        Code::PermissionDenied,
    );
    for bad in ["payments", "alias/", "alias//x", "alias/a b", "Alias/x"] {
        assert_code(
            create_alias(&mut admin, bad, OLD).await,
            Code::InvalidArgument,
        );
    }
    assert_code(
        create_alias(&mut admin, ALIAS, NEW).await,
        Code::AlreadyExists,
    );
    assert_code(
        create_alias(&mut admin, "alias/x", "billing/none").await,
        Code::NotFound,
    );
    assert_code(
        create_alias(&mut admin, "alias/x", ALIAS).await,
        Code::InvalidArgument,
    );
    assert_code(
        update_alias(&mut admin, "alias/none", NEW).await,
        Code::NotFound,
    );
    // A key id can no longer start like an alias.
    let refused = admin
        .admin
        .create_key(proto::CreateKeyRequest {
            key_id: "alias/sneaky".into(),
            owner: BILLING.into(),
            ..Default::default()
        })
        .await;
    assert_code(refused, Code::InvalidArgument);
    // Repointing keeps the purpose.
    crate::key_purposes::create(&mut admin, "billing/index", BILLING, KeyPurpose::Mac, &[]).await;
    let status = assert_code(
        update_alias(&mut admin, ALIAS, "billing/index").await,
        Code::FailedPrecondition,
    );
    assert_eq!(Reason::of(&status), Some(Reason::WrongKeyPurpose));
    // Delete: gone for every caller.
    admin
        .admin
        .delete_alias(proto::DeleteAliasRequest {
            alias: ALIAS.into(),
        })
        .await
        .expect("delete");
    assert_code(
        billing.encrypt(ALIAS, b"x", &[]).await,
        Code::PermissionDenied,
    );
    assert_code(
        admin
            .admin
            .delete_alias(proto::DeleteAliasRequest {
                alias: ALIAS.into(),
            })
            .await,
        Code::NotFound,
    );
    drop(server);
}

#[tokio::test]
async fn aliases_are_listed_by_page_and_owners_see_their_keys_aliases() {
    let (server, mut admin, _billing) = aliased().await;
    admin.create_key("shipping/labels", SHIPPING).await;
    for n in 0..5 {
        create_alias(&mut admin, &format!("alias/payments/{n}"), NEW)
            .await
            .expect("alias");
    }
    create_alias(&mut admin, "alias/labels", "shipping/labels")
        .await
        .expect("alias");
    let list = |clients: &common::Clients, prefix: &str, page_size: u32, token: &str| {
        let mut clients = clients.clone();
        let request = proto::ListAliasesRequest {
            prefix: prefix.into(),
            page_size,
            page_token: token.into(),
        };
        async move {
            clients
                .admin
                .list_aliases(request)
                .await
                .expect("list")
                .into_inner()
        }
    };
    let all = list(&admin, "", 0, "").await;
    assert_eq!(all.aliases.len(), 7);
    let first = list(&admin, "alias/payments/", 3, "").await;
    assert_eq!(first.aliases.len(), 3);
    assert!(!first.next_page_token.is_empty());
    let second = list(&admin, "alias/payments/", 3, &first.next_page_token).await;
    assert_eq!(
        second
            .aliases
            .iter()
            .map(|a| a.alias.as_str())
            .collect::<Vec<_>>(),
        ["alias/payments/3", "alias/payments/4"]
    );
    assert!(second.next_page_token.is_empty());
    let shipping = server.client(SHIPPING).await;
    let own = list(&shipping, "", 0, "").await;
    assert_eq!(
        own.aliases
            .iter()
            .map(|a| a.alias.as_str())
            .collect::<Vec<_>>(),
        ["alias/labels"]
    );
    let mut admin2 = admin.clone();
    let bad_token = admin2
        .admin
        .list_aliases(proto::ListAliasesRequest {
            page_token: "zz".into(),
            ..Default::default()
        })
        .await;
    assert_code(bad_token, Code::InvalidArgument);
}

#[tokio::test]
async fn audit_records_name_the_alias_and_the_key() {
    let (server, _admin, mut billing) = aliased().await;
    billing.encrypt(ALIAS, b"x", &[]).await.expect("encrypt");
    billing.encrypt(OLD, b"x", &[]).await.expect("encrypt");
    billing
        .crypto
        .encrypt_batch(proto::EncryptBatchRequest {
            items: vec![proto::EncryptRequest {
                key_id: ALIAS.into(),
                plaintext: b"x".to_vec(),
                context: ctx(&[]),
            }],
        })
        .await
        .expect("batch");
    let fixture = server.stop().await;
    let records = common::audit_records(&tresor::service::default_audit_file(&fixture.data_dir()));
    let encrypts: Vec<_> = records
        .iter()
        .filter(|r| r["operation"] == "Encrypt")
        .collect();
    assert_eq!(encrypts[0]["key_id"], ALIAS);
    assert_eq!(encrypts[0]["resolved_key_id"], OLD);
    assert_eq!(encrypts[1]["key_id"], OLD);
    assert!(encrypts[1].get("resolved_key_id").is_none());
    let batch = records
        .iter()
        .find(|r| r["operation"] == "EncryptBatch")
        .expect("batch record");
    assert_eq!(batch["results"][0]["key_id"], ALIAS);
    assert_eq!(batch["results"][0]["resolved_key_id"], OLD);
    let created = records
        .iter()
        .find(|r| r["operation"] == "CreateAlias" && r["status"] == "OK")
        .expect("create record");
    assert_eq!(created["key_id"], ALIAS);
    assert_eq!(created["detail"], format!("to {OLD}"));
}

#[tokio::test]
async fn a_tampered_alias_record_is_refused() {
    use tresor::model::{AliasName, KeyId};
    use tresor::store::{AliasStore, SledKeyStore};

    let (server, mut admin, _billing) = aliased().await;
    admin.create_key("shipping/other", SHIPPING).await;
    drop(admin);
    let fixture = server.stop().await;
    {
        // A database writer points the alias at SHIPPING's key, keeping
        // the old tag: BILLING's encryptions would go to a key SHIPPING
        // controls.
        let store = SledKeyStore::open(&fixture.data_dir()).expect("open keystore");
        let name = AliasName::parse(ALIAS).expect("alias");
        let mut alias = store.alias(&name).await.expect("read").expect("alias");
        alias.key_id = KeyId::parse("shipping/other").expect("id");
        store.replace_alias(&alias).await.expect("write");
    }
    let server = TestServer::start_with(fixture, tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES).await;
    let mut shipping = server.client(SHIPPING).await;
    let status = assert_code(shipping.encrypt(ALIAS, b"x", &[]).await, Code::DataLoss);
    assert_eq!(Reason::of(&status), Some(Reason::KeyRecordTampered));
    let listed = server
        .admin()
        .await
        .admin
        .list_aliases(proto::ListAliasesRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(listed.aliases.is_empty(), "a tampered alias is not listed");
}

#[tokio::test]
async fn aliases_of_a_destroyed_key_go_with_it() {
    let fixture = common::Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    let clock = common::manual_lifecycle(&mut settings);
    let server = TestServer::start_with_settings(fixture, settings).await;
    let mut admin = server.admin().await;
    admin.create_key(OLD, BILLING).await;
    create_alias(&mut admin, ALIAS, OLD).await.expect("alias");
    admin
        .admin
        .schedule_key_deletion(proto::ScheduleKeyDeletionRequest {
            key_id: OLD.into(),
            pending_days: 7,
        })
        .await
        .expect("schedule");
    clock.advance(7 * 86_400 + 1);
    common::eventually("the key and its alias destroyed", || {
        let mut admin = admin.clone();
        async move {
            let status = admin.admin.get_status(proto::StatusRequest {}).await.ok()?;
            (status.into_inner().key_count == 0).then_some(())
        }
    })
    .await;
    // A new key of the same id does not inherit the alias.
    admin.create_key(OLD, BILLING).await;
    let listed = admin
        .admin
        .list_aliases(proto::ListAliasesRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(listed.aliases.is_empty());
    let fixture = server.stop().await;
    let records = common::audit_records(&tresor::service::default_audit_file(&fixture.data_dir()));
    let deleted = records
        .iter()
        .find(|r| r["operation"] == "alias_deleted")
        .expect("alias_deleted record");
    assert_eq!(deleted["key_id"], OLD);
    assert!(
        deleted["detail"]
            .as_str()
            .is_some_and(|d| d.contains(ALIAS))
    );
    let _ = ADMIN;
}
