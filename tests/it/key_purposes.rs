//! Key purposes (issue 21): a key is ENCRYPT_DECRYPT, MAC or
//! DETERMINISTIC for life; every call checks the purpose after
//! authorization (WRONG_KEY_PURPOSE), deterministic keys give equal
//! ciphertexts for equal inputs, and labels are metadata that ListKeys
//! filters on.

use crate::common;

use common::proto::{self, KeyPurpose};
use common::{BILLING, SHIPPING, TestServer, assert_code, ctx};
use tonic::Code;
use tresor_proto::Reason;

const ENC: &str = "crm/records";
const MAC: &str = "crm/email-index";
const DET: &str = "crm/email-eq";

/// Creates `key_id` for `owner` with `purpose` and `labels`, as the admin.
pub async fn create(
    admin: &mut common::Clients,
    key_id: &str,
    owner: &str,
    purpose: KeyPurpose,
    labels: &[(&str, &str)],
) -> proto::KeyInfo {
    admin
        .admin
        .create_key(proto::CreateKeyRequest {
            key_id: key_id.into(),
            owner: owner.into(),
            purpose: purpose as i32,
            labels: ctx(labels),
            ..Default::default()
        })
        .await
        .expect("create key")
        .into_inner()
}

/// A server with one key of each purpose, all owned by BILLING.
async fn three_keys() -> (TestServer, common::Clients, common::Clients) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    create(&mut admin, ENC, BILLING, KeyPurpose::Unspecified, &[]).await;
    create(&mut admin, MAC, BILLING, KeyPurpose::Mac, &[]).await;
    create(&mut admin, DET, BILLING, KeyPurpose::Deterministic, &[]).await;
    let billing = server.client(BILLING).await;
    (server, admin, billing)
}

fn mac_request(key_id: &str, message: &[u8]) -> proto::MacRequest {
    proto::MacRequest {
        key_id: key_id.into(),
        message: message.to_vec(),
        context: ctx(&[("table", "users")]),
        truncate_bytes: 0,
    }
}

#[track_caller]
fn assert_wrong_purpose<T: std::fmt::Debug>(result: Result<T, tonic::Status>) {
    let status = assert_code(result, Code::FailedPrecondition);
    assert_eq!(
        Reason::of(&status),
        Some(Reason::WrongKeyPurpose),
        "{status:?}"
    );
    assert!(
        status.message().starts_with("the key's purpose is "),
        "{status:?}"
    );
}

#[tokio::test]
async fn keys_show_their_purpose_and_old_style_requests_make_encryption_keys() {
    let (_server, mut admin, _billing) = three_keys().await;
    for (id, purpose) in [
        (ENC, KeyPurpose::EncryptDecrypt),
        (MAC, KeyPurpose::Mac),
        (DET, KeyPurpose::Deterministic),
    ] {
        assert_eq!(
            admin.key(id).await.expect("get").purpose,
            purpose as i32,
            "{id}"
        );
    }
    let refused = admin
        .admin
        .create_key(proto::CreateKeyRequest {
            key_id: "bad/purpose".into(),
            owner: BILLING.into(),
            purpose: 9,
            ..Default::default()
        })
        .await;
    assert_code(refused, Code::InvalidArgument);
}

#[tokio::test]
async fn every_call_checks_the_purpose() {
    let (_server, _admin, mut billing) = three_keys().await;
    let sealed = billing.encrypt(ENC, b"x", &[]).await.expect("encrypt");
    // Encryption calls on a MAC key.
    assert_wrong_purpose(billing.encrypt(MAC, b"x", &[]).await);
    assert_wrong_purpose(billing.decrypt(MAC, &sealed.ciphertext, &[]).await);
    assert_wrong_purpose(
        billing
            .crypto
            .re_encrypt(proto::ReEncryptRequest {
                key_id: MAC.into(),
                ciphertext: sealed.ciphertext.clone(),
                ..Default::default()
            })
            .await,
    );
    // Data keys only on encryption keys.
    for key in [MAC, DET] {
        let request = proto::GenerateDataKeyRequest {
            key_id: key.into(),
            ..Default::default()
        };
        assert_wrong_purpose(billing.crypto.generate_data_key(request.clone()).await);
        assert_wrong_purpose(
            billing
                .crypto
                .generate_data_key_without_plaintext(request)
                .await,
        );
        assert_wrong_purpose(
            billing
                .crypto
                .decrypt_data_key(proto::DecryptDataKeyRequest {
                    key_id: key.into(),
                    wrapped_key: sealed.ciphertext.clone(),
                    context: Default::default(),
                })
                .await,
        );
    }
    // MAC calls only on MAC keys.
    for key in [ENC, DET] {
        assert_wrong_purpose(billing.crypto.mac(mac_request(key, b"m")).await);
        assert_wrong_purpose(
            billing
                .crypto
                .mac_all_versions(mac_request(key, b"m"))
                .await,
        );
        assert_wrong_purpose(
            billing
                .crypto
                .verify_mac(proto::VerifyMacRequest {
                    key_id: key.into(),
                    message: b"m".to_vec(),
                    mac: vec![0; 40],
                    ..Default::default()
                })
                .await,
        );
    }
    // A batch item answers with the same refusal.
    let batch = billing
        .crypto
        .encrypt_batch(proto::EncryptBatchRequest {
            items: vec![proto::EncryptRequest {
                key_id: MAC.into(),
                plaintext: b"x".to_vec(),
                context: Default::default(),
            }],
        })
        .await
        .expect("batch")
        .into_inner();
    match &batch.results[0].result {
        Some(proto::encrypt_item_result::Result::Error(status)) => {
            assert_eq!(status.code, Code::FailedPrecondition as i32);
            assert!(
                status.message.starts_with("the key's purpose is MAC"),
                "{status:?}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_caller_without_access_learns_nothing_about_the_purpose() {
    let (server, _admin, _billing) = three_keys().await;
    let mut stranger = server.client(SHIPPING).await;
    // Wrong purpose and no access: the denial comes first, like for a key
    // that does not exist.
    assert_code(
        stranger.crypto.mac(mac_request(ENC, b"m")).await,
        Code::PermissionDenied,
    );
    assert_code(
        stranger.encrypt(MAC, b"x", &[]).await,
        Code::PermissionDenied,
    );
    assert_code(
        stranger.crypto.mac(mac_request("crm/none", b"m")).await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn deterministic_keys_give_equal_ciphertexts_for_equal_inputs() {
    let (_server, mut admin, mut billing) = three_keys().await;
    let tenant = [("tenant", "42")];
    let one = billing
        .encrypt(DET, b"a@example.com", &tenant)
        .await
        .expect("encrypt");
    let two = billing
        .encrypt(DET, b"a@example.com", &tenant)
        .await
        .expect("encrypt");
    assert_eq!(
        one.ciphertext, two.ciphertext,
        "equality search needs equal bytes"
    );
    assert_eq!(one.ciphertext[..4], *b"TRS\x11");
    let other_value = billing
        .encrypt(DET, b"b@example.com", &tenant)
        .await
        .expect("encrypt");
    let other_tenant = billing
        .encrypt(DET, b"a@example.com", &[("tenant", "43")])
        .await
        .expect("encrypt");
    assert_ne!(one.ciphertext, other_value.ciphertext);
    assert_ne!(one.ciphertext, other_tenant.ciphertext);
    let opened = billing
        .decrypt(DET, &one.ciphertext, &tenant)
        .await
        .expect("decrypt");
    assert_eq!(opened.plaintext, b"a@example.com");
    assert_eq!(opened.key_version, 1);
    assert_code(
        billing.decrypt(DET, &one.ciphertext, &[]).await,
        Code::InvalidArgument,
    );
    // Not an encryption key's ciphertext, nor the other way round.
    let enc = billing
        .encrypt(ENC, b"a@example.com", &tenant)
        .await
        .expect("encrypt");
    let status = assert_code(
        billing.decrypt(DET, &enc.ciphertext, &tenant).await,
        Code::InvalidArgument,
    );
    assert_eq!(Reason::of(&status), Some(Reason::InvalidCiphertext));
    assert_code(
        billing.decrypt(ENC, &one.ciphertext, &tenant).await,
        Code::InvalidArgument,
    );

    // After a rotation new ciphertexts use version 2, old ones still open,
    // and ReEncrypt moves them to version 2 deterministically.
    admin.rotate(DET).await.expect("rotate");
    let v2 = billing
        .encrypt(DET, b"a@example.com", &tenant)
        .await
        .expect("encrypt");
    assert_eq!(v2.key_version, 2);
    assert_ne!(v2.ciphertext, one.ciphertext);
    billing
        .assert_decrypts(DET, &one.ciphertext, &tenant, b"a@example.com")
        .await;
    let moved = billing
        .crypto
        .re_encrypt(proto::ReEncryptRequest {
            key_id: DET.into(),
            ciphertext: one.ciphertext.clone(),
            context: ctx(&tenant),
            ..Default::default()
        })
        .await
        .expect("reencrypt")
        .into_inner();
    assert_eq!(moved.ciphertext, v2.ciphertext);

    // Batches work on deterministic keys too.
    let batch = billing
        .crypto
        .decrypt_batch(proto::DecryptBatchRequest {
            items: vec![proto::DecryptRequest {
                key_id: DET.into(),
                ciphertext: one.ciphertext.clone(),
                context: ctx(&tenant),
            }],
        })
        .await
        .expect("batch")
        .into_inner();
    match &batch.results[0].result {
        Some(proto::decrypt_item_result::Result::Decrypted(done)) => {
            assert_eq!(done.plaintext, b"a@example.com");
        }
        other => panic!("expected a plaintext, got {other:?}"),
    }
}

#[tokio::test]
async fn ciphertexts_move_between_encryption_and_deterministic_keys() {
    let (_server, _admin, mut billing) = three_keys().await;
    let sealed = billing.encrypt(ENC, b"row 7", &[]).await.expect("encrypt");
    let moved = billing
        .crypto
        .re_encrypt(proto::ReEncryptRequest {
            key_id: ENC.into(),
            ciphertext: sealed.ciphertext,
            destination_key_id: DET.into(),
            ..Default::default()
        })
        .await
        .expect("move to the deterministic key")
        .into_inner();
    let direct = billing.encrypt(DET, b"row 7", &[]).await.expect("encrypt");
    assert_eq!(moved.ciphertext, direct.ciphertext);
    let to_mac = billing
        .crypto
        .re_encrypt(proto::ReEncryptRequest {
            key_id: DET.into(),
            ciphertext: direct.ciphertext,
            destination_key_id: MAC.into(),
            ..Default::default()
        })
        .await;
    assert_wrong_purpose(to_mac);
}

#[tokio::test]
async fn labels_are_set_shown_and_filtered_on() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    create(
        &mut admin,
        "a/1",
        BILLING,
        KeyPurpose::Unspecified,
        &[("team", "billing"), ("env", "prod")],
    )
    .await;
    create(
        &mut admin,
        "a/2",
        BILLING,
        KeyPurpose::Mac,
        &[("team", "billing"), ("env", "dev")],
    )
    .await;
    create(&mut admin, "a/3", SHIPPING, KeyPurpose::Unspecified, &[]).await;
    let list = admin.clone();
    let listed = |selector: &[(&str, &str)]| {
        let mut admin = list.clone();
        let request = proto::ListKeysRequest {
            label_selector: ctx(selector),
            ..Default::default()
        };
        async move {
            admin.admin.list_keys(request).await.map(|r| {
                r.into_inner()
                    .keys
                    .into_iter()
                    .map(|k| k.key_id)
                    .collect::<Vec<_>>()
            })
        }
    };
    assert_eq!(listed(&[]).await.expect("list").len(), 3);
    assert_eq!(
        listed(&[("team", "billing")]).await.expect("list"),
        ["a/1", "a/2"]
    );
    assert_eq!(
        listed(&[("team", "billing"), ("env", "dev")])
            .await
            .expect("list"),
        ["a/2"]
    );
    assert!(
        listed(&[("team", "shipping")])
            .await
            .expect("list")
            .is_empty()
    );
    assert_code(listed(&[("Bad Key", "x")]).await, Code::InvalidArgument);

    let key = admin
        .admin
        .set_key_labels(proto::SetKeyLabelsRequest {
            key_id: "a/3".into(),
            labels: ctx(&[("team", "shipping")]),
        })
        .await
        .expect("set labels")
        .into_inner();
    assert_eq!(key.labels, ctx(&[("team", "shipping")]));
    assert_eq!(
        admin.key("a/3").await.expect("get").labels,
        ctx(&[("team", "shipping")])
    );
    assert_eq!(
        listed(&[("team", "shipping")]).await.expect("list"),
        ["a/3"]
    );

    // Validation, and admins only: an owner cannot relabel its key.
    let too_many: Vec<(String, String)> =
        (0..51).map(|i| (format!("k{i}"), String::new())).collect();
    for labels in [
        ctx(&[("", "x")]),
        ctx(&[("9lives", "x")]),
        ctx(&[("k", "line\nbreak")]),
        too_many.into_iter().collect(),
    ] {
        let refused = admin
            .admin
            .set_key_labels(proto::SetKeyLabelsRequest {
                key_id: "a/1".into(),
                labels,
            })
            .await;
        assert_code(refused, Code::InvalidArgument);
    }
    let mut owner = server.client(BILLING).await;
    let refused = owner
        .admin
        .set_key_labels(proto::SetKeyLabelsRequest {
            key_id: "a/1".into(),
            labels: ctx(&[("team", "mine")]),
        })
        .await;
    assert_code(refused, Code::PermissionDenied);
    // Labels never authorize: a label naming an identity grants nothing.
    create(
        &mut admin,
        "a/4",
        BILLING,
        KeyPurpose::Unspecified,
        &[("grantee", "shipping")],
    )
    .await;
    let mut shipping = server.client(SHIPPING).await;
    assert_code(
        shipping.encrypt("a/4", b"x", &[]).await,
        Code::PermissionDenied,
    );
}
