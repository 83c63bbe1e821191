//! Blind indexes (issue 21): Mac, VerifyMac, MacAllVersions and MacBatch
//! on MAC keys, their grants (MAC, VERIFY_MAC), truncation, rotation and
//! what the audit log keeps.

use crate::common;

use common::proto::{self, KeyPurpose, Operation};
use common::{BILLING, SHIPPING, TestServer, assert_code, ctx};
use tonic::Code;

const INDEX: &str = "crm/email-index";

fn request(message: &[u8], truncate_bytes: u32) -> proto::MacRequest {
    proto::MacRequest {
        key_id: INDEX.into(),
        message: message.to_vec(),
        context: ctx(&[("table", "users")]),
        truncate_bytes,
    }
}

fn verify(message: &[u8], mac: &[u8], truncate_bytes: u32) -> proto::VerifyMacRequest {
    proto::VerifyMacRequest {
        key_id: INDEX.into(),
        message: message.to_vec(),
        mac: mac.to_vec(),
        context: ctx(&[("table", "users")]),
        truncate_bytes,
    }
}

async fn mac(client: &mut common::Clients, message: &[u8]) -> proto::MacResponse {
    client
        .crypto
        .mac(request(message, 0))
        .await
        .expect("mac")
        .into_inner()
}

async fn is_valid(client: &mut common::Clients, req: proto::VerifyMacRequest) -> bool {
    client
        .crypto
        .verify_mac(req)
        .await
        .expect("verify")
        .into_inner()
        .valid
}

/// A server with INDEX, a MAC key owned by BILLING.
async fn index_server() -> (TestServer, common::Clients, common::Clients) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    crate::key_purposes::create(&mut admin, INDEX, BILLING, KeyPurpose::Mac, &[]).await;
    let billing = server.client(BILLING).await;
    (server, admin, billing)
}

#[tokio::test]
async fn a_mac_is_stable_bound_and_verifies() {
    let (_server, mut admin, mut billing) = index_server().await;
    let one = mac(&mut billing, b"a@example.com").await;
    let two = mac(&mut billing, b"a@example.com").await;
    assert_eq!(
        one, two,
        "a blind index needs equal tokens for equal values"
    );
    assert_eq!(one.key_version, 1);
    assert_eq!(one.mac.len(), 8 + 32);
    assert_eq!(one.mac[..4], *b"TRS!");
    assert_ne!(mac(&mut billing, b"b@example.com").await.mac, one.mac);
    let mut other_context = request(b"a@example.com", 0);
    other_context.context = ctx(&[("table", "admins")]);
    let other = billing
        .crypto
        .mac(other_context)
        .await
        .expect("mac")
        .into_inner();
    assert_ne!(other.mac, one.mac);

    assert!(is_valid(&mut billing, verify(b"a@example.com", &one.mac, 0)).await);
    assert!(!is_valid(&mut billing, verify(b"b@example.com", &one.mac, 0)).await);
    let mut bent = one.mac.clone();
    bent[20] ^= 1;
    assert!(!is_valid(&mut billing, verify(b"a@example.com", &bent, 0)).await);
    // Not a token at all: an invalid ciphertext, not "false".
    let status = assert_code(
        billing
            .crypto
            .verify_mac(verify(b"a@example.com", b"junk", 0))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        tresor_proto::Reason::of(&status),
        Some(tresor_proto::Reason::InvalidCiphertext)
    );
    // Another MAC key's token is not valid here, nor this one there.
    crate::key_purposes::create(&mut admin, "crm/other-index", BILLING, KeyPurpose::Mac, &[]).await;
    let mut elsewhere = verify(b"a@example.com", &one.mac, 0);
    elsewhere.key_id = "crm/other-index".into();
    assert!(!is_valid(&mut billing, elsewhere).await);
}

#[tokio::test]
async fn truncated_macs_keep_their_length_and_never_pass_shortened() {
    let (_server, _admin, mut billing) = index_server().await;
    let short = billing
        .crypto
        .mac(request(b"a@example.com", 8))
        .await
        .expect("mac")
        .into_inner();
    assert_eq!(short.mac.len(), 8 + 8);
    assert!(is_valid(&mut billing, verify(b"a@example.com", &short.mac, 8)).await);
    // Checked at the length the caller expects: 32 by default.
    assert!(!is_valid(&mut billing, verify(b"a@example.com", &short.mac, 0)).await);
    let full = mac(&mut billing, b"a@example.com").await;
    assert!(!is_valid(&mut billing, verify(b"a@example.com", &full.mac[..16], 8)).await);
    for bad in [1, 3, 33, 1000] {
        assert_code(
            billing.crypto.mac(request(b"m", bad)).await,
            Code::InvalidArgument,
        );
        assert_code(
            billing
                .crypto
                .verify_mac(verify(b"m", &full.mac, bad))
                .await,
            Code::InvalidArgument,
        );
    }
}

#[tokio::test]
async fn rotation_does_not_break_lookups() {
    let (_server, mut admin, mut billing) = index_server().await;
    let v1 = mac(&mut billing, b"a@example.com").await;
    admin.rotate(INDEX).await.expect("rotate");
    admin.rotate(INDEX).await.expect("rotate");
    let v3 = mac(&mut billing, b"a@example.com").await;
    assert_eq!(v3.key_version, 3);
    assert_ne!(v3.mac, v1.mac);
    let all = billing
        .crypto
        .mac_all_versions(request(b"a@example.com", 0))
        .await
        .expect("all versions")
        .into_inner()
        .macs;
    assert_eq!(
        all.iter().map(|m| m.key_version).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert_eq!(all[0], v3);
    assert_eq!(all[2], v1, "the row written under version 1 is still found");
    // Old tokens verify until the minimum decryption version passes them.
    assert!(is_valid(&mut billing, verify(b"a@example.com", &v1.mac, 0)).await);
    admin.set_min_version(INDEX, 2).await;
    let live = billing
        .crypto
        .mac_all_versions(request(b"a@example.com", 0))
        .await
        .expect("all versions")
        .into_inner()
        .macs;
    assert_eq!(
        live.iter().map(|m| m.key_version).collect::<Vec<_>>(),
        [3, 2]
    );
    assert_code(
        billing
            .crypto
            .verify_mac(verify(b"a@example.com", &v1.mac, 0))
            .await,
        Code::FailedPrecondition,
    );
    admin.destroy_version(INDEX, 1).await.expect("destroy");
    assert_code(
        billing
            .crypto
            .verify_mac(verify(b"a@example.com", &v1.mac, 0))
            .await,
        Code::FailedPrecondition,
    );
}

#[tokio::test]
async fn mac_and_verify_mac_are_granted_apart() {
    let (server, mut admin, mut billing) = index_server().await;
    let token = mac(&mut billing, b"a@example.com").await;
    let mut shipping = server.client(SHIPPING).await;
    let grant = |operation: Operation| proto::GrantRequest {
        key_id: INDEX.into(),
        grantee: SHIPPING.into(),
        operations: vec![operation as i32],
        ..Default::default()
    };
    // ENCRYPT and DECRYPT do not allow MAC calls.
    admin
        .admin
        .create_grant(grant(Operation::Encrypt))
        .await
        .expect("grant");
    admin
        .admin
        .create_grant(grant(Operation::Decrypt))
        .await
        .expect("grant");
    assert_code(
        shipping.crypto.mac(request(b"x", 0)).await,
        Code::PermissionDenied,
    );
    assert_code(
        shipping
            .crypto
            .verify_mac(verify(b"a@example.com", &token.mac, 0))
            .await,
        Code::PermissionDenied,
    );
    admin
        .admin
        .create_grant(grant(Operation::VerifyMac))
        .await
        .expect("grant");
    assert!(is_valid(&mut shipping, verify(b"a@example.com", &token.mac, 0)).await);
    assert_code(
        shipping.crypto.mac(request(b"x", 0)).await,
        Code::PermissionDenied,
    );
    assert_code(
        shipping.crypto.mac_all_versions(request(b"x", 0)).await,
        Code::PermissionDenied,
    );
    admin
        .admin
        .create_grant(grant(Operation::Mac))
        .await
        .expect("grant");
    assert_eq!(mac(&mut shipping, b"a@example.com").await, token);
    let info = admin.key(INDEX).await.expect("get");
    let ops = &info.grants[0].operations;
    assert!(ops.contains(&(Operation::Mac as i32)) && ops.contains(&(Operation::VerifyMac as i32)));
}

#[tokio::test]
async fn mac_batch_answers_each_item() {
    let (server, mut admin, mut billing) = index_server().await;
    admin.create_key("crm/records", BILLING).await;
    let single = mac(&mut billing, b"a@example.com").await;
    let items = vec![
        request(b"a@example.com", 0),
        proto::MacRequest {
            key_id: "not a key id".into(),
            ..request(b"x", 0)
        },
        proto::MacRequest {
            key_id: "crm/records".into(),
            ..request(b"x", 0)
        },
        request(b"x", 2),
        request(b"b@example.com", 16),
    ];
    let results = billing
        .crypto
        .mac_batch(proto::MacBatchRequest { items })
        .await
        .expect("batch")
        .into_inner()
        .results;
    let codes: Vec<i32> = results
        .iter()
        .map(|r| match &r.result {
            Some(proto::mac_item_result::Result::Mac(_)) => 0,
            Some(proto::mac_item_result::Result::Error(e)) => e.code,
            None => -1,
        })
        .collect();
    assert_eq!(
        codes,
        [
            0,
            Code::InvalidArgument as i32,
            Code::FailedPrecondition as i32,
            Code::InvalidArgument as i32,
            0
        ]
    );
    match &results[0].result {
        Some(proto::mac_item_result::Result::Mac(token)) => assert_eq!(*token, single),
        other => panic!("{other:?}"),
    }
    // Too many items fails the whole call.
    let many = vec![request(b"x", 0); 1001];
    assert_code(
        billing
            .crypto
            .mac_batch(proto::MacBatchRequest { items: many })
            .await,
        Code::InvalidArgument,
    );
    drop(server);
}

#[tokio::test]
async fn the_audit_log_keeps_no_message_and_says_whether_a_mac_verified() {
    let (server, _admin, mut billing) = index_server().await;
    let token = mac(&mut billing, b"secret-email@example.com").await;
    assert!(
        is_valid(
            &mut billing,
            verify(b"secret-email@example.com", &token.mac, 0)
        )
        .await
    );
    assert!(!is_valid(&mut billing, verify(b"other@example.com", &token.mac, 0)).await);
    let fixture = server.stop().await;
    assert!(
        !common::found_in_files(&fixture.data_dir(), b"secret-email"),
        "the message reached the keystore or audit files"
    );
    let records = common::audit_records(&tresor::service::default_audit_file(&fixture.data_dir()));
    let verdicts: Vec<&str> = records
        .iter()
        .filter(|r| r["operation"] == "VerifyMac")
        .filter_map(|r| r["detail"].as_str())
        .collect();
    assert_eq!(verdicts, ["valid", "invalid"]);
    assert!(
        records
            .iter()
            .any(|r| r["operation"] == "Mac" && r["key_id"] == INDEX)
    );
}

#[tokio::test]
async fn oversized_messages_and_contexts_are_refused_without_echoing_them() {
    let fixture = common::Fixture::new();
    let server = TestServer::start_with(fixture, 1024).await;
    let mut admin = server.admin().await;
    crate::key_purposes::create(&mut admin, INDEX, BILLING, KeyPurpose::Mac, &[]).await;
    let mut billing = server.client(BILLING).await;
    let secret = b"SECRET-EMAIL-MARKER".repeat(60);
    let status = assert_code(
        billing.crypto.mac(request(&secret, 0)).await,
        Code::InvalidArgument,
    );
    assert!(
        status
            .message()
            .starts_with("message is larger than the limit"),
        "{status:?}"
    );
    assert!(!status.message().contains("SECRET"));
    let mut huge_context = request(b"m", 0);
    huge_context.context = (0..100)
        .map(|i| (format!("k{i}"), "v".repeat(300)))
        .collect();
    let status = assert_code(
        billing.crypto.mac(huge_context).await,
        Code::InvalidArgument,
    );
    assert!(
        status.message().contains("context is too large"),
        "{status:?}"
    );
    let status = assert_code(
        billing
            .crypto
            .verify_mac(verify(&secret, b"TRS!\0\0\0\x01abcd", 4))
            .await,
        Code::InvalidArgument,
    );
    assert!(!status.message().contains("SECRET"));
}
