//! Data plane over real mTLS: round trips, rotation, ReEncrypt, data keys,
//! tampering, context and key binding, oversized input.

use crate::common;

use common::{ADMIN, BILLING, TestServer, assert_code, proto};
use tonic::Code;

const KEY: &str = "billing/records";

#[tokio::test]
async fn encrypt_decrypt_round_trip_with_context() {
    let (_server, _admin, mut billing) = TestServer::with_billing_key(KEY).await;
    let context = [("tenant", "42"), ("table", "customers")];
    let first = billing
        .encrypt(KEY, b"card 4111", &context)
        .await
        .expect("encrypt");
    let second = billing
        .encrypt(KEY, b"card 4111", &context)
        .await
        .expect("encrypt");
    assert_eq!(first.key_version, 1);
    assert_ne!(
        first.ciphertext, second.ciphertext,
        "encryption is randomized"
    );
    assert!(!first.ciphertext.windows(9).any(|w| w == b"card 4111"));
    let reversed = [("table", "customers"), ("tenant", "42")];
    let opened = billing
        .decrypt(KEY, &first.ciphertext, &reversed)
        .await
        .expect("decrypt");
    assert_eq!(opened.plaintext, b"card 4111");
    assert_eq!(opened.key_version, 1);
    let empty = billing.encrypt(KEY, b"", &[]).await.expect("encrypt empty");
    let opened = billing
        .decrypt(KEY, &empty.ciphertext, &[])
        .await
        .expect("decrypt empty");
    assert!(opened.plaintext.is_empty());
}

#[tokio::test]
async fn rotation_keeps_old_versions_decrypting() {
    let (_server, _admin, mut billing) = TestServer::with_billing_key(KEY).await;
    let mut ciphertexts = Vec::new();
    for round in 1..=4u32 {
        let out = billing
            .encrypt(KEY, format!("message {round}").as_bytes(), &[])
            .await
            .expect("encrypt");
        assert_eq!(out.key_version, round);
        ciphertexts.push(out.ciphertext);
        let info = billing.rotate(KEY).await.expect("owner may rotate");
        assert_eq!(info.primary_version, round + 1);
        assert_eq!(info.versions.len() as u32, round + 1);
    }
    for (index, ciphertext) in ciphertexts.iter().enumerate() {
        let opened = billing
            .decrypt(KEY, ciphertext, &[])
            .await
            .expect("decrypt old");
        assert_eq!(
            opened.plaintext,
            format!("message {}", index + 1).as_bytes()
        );
        assert_eq!(opened.key_version, index as u32 + 1);
    }
}

#[tokio::test]
async fn reencrypt_moves_to_the_primary_version_without_revealing_plaintext() {
    let (_server, _admin, mut billing) = TestServer::with_billing_key(KEY).await;
    let old = billing
        .encrypt(KEY, b"secret", &[("a", "b")])
        .await
        .expect("encrypt");
    billing.rotate(KEY).await.expect("rotate");
    billing.rotate(KEY).await.expect("rotate");
    let fresh = billing
        .crypto
        .re_encrypt(proto::ReEncryptRequest {
            key_id: KEY.into(),
            ciphertext: old.ciphertext.clone(),
            context: common::ctx(&[("a", "b")]),
            ..Default::default()
        })
        .await
        .expect("reencrypt")
        .into_inner();
    assert_eq!(fresh.key_version, 3);
    assert_ne!(fresh.ciphertext, old.ciphertext);
    let opened = billing
        .decrypt(KEY, &fresh.ciphertext, &[("a", "b")])
        .await
        .expect("decrypt");
    assert_eq!(opened.plaintext, b"secret");
    assert_eq!(opened.key_version, 3);
    let wrong_context = billing
        .crypto
        .re_encrypt(proto::ReEncryptRequest {
            key_id: KEY.into(),
            ciphertext: old.ciphertext,
            context: common::ctx(&[("a", "c")]),
            ..Default::default()
        })
        .await;
    assert_code(wrong_context, Code::InvalidArgument);
}

#[tokio::test]
async fn generated_data_keys_unwrap_with_decrypt_data_key_not_decrypt() {
    let (_server, _admin, mut billing) = TestServer::with_billing_key(KEY).await;
    let context = common::ctx(&[("file", "invoice.pdf")]);
    let data_key = billing
        .crypto
        .generate_data_key(proto::GenerateDataKeyRequest {
            key_id: KEY.into(),
            context: context.clone(),
            ..Default::default()
        })
        .await
        .expect("generate data key")
        .into_inner();
    assert_eq!(data_key.plaintext_key.len(), 32);
    assert_eq!(data_key.key_version, 1);
    let opened = billing
        .crypto
        .decrypt_data_key(proto::DecryptDataKeyRequest {
            key_id: KEY.into(),
            wrapped_key: data_key.wrapped_key.clone(),
            context: context.clone(),
        })
        .await
        .expect("unwrap")
        .into_inner();
    assert_eq!(opened.plaintext_key, data_key.plaintext_key);
    let refused = assert_code(
        billing
            .decrypt(KEY, &data_key.wrapped_key, &[("file", "invoice.pdf")])
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        refused
            .metadata()
            .get("x-tresor-reason")
            .map(|v| v.as_bytes()),
        Some(b"WRAPPED_DATA_KEY".as_slice())
    );
    assert!(refused.message().contains("DecryptDataKey"), "{refused:?}");
    let another = billing
        .crypto
        .generate_data_key(proto::GenerateDataKeyRequest {
            key_id: KEY.into(),
            context,
            ..Default::default()
        })
        .await
        .expect("generate data key")
        .into_inner();
    assert_ne!(another.plaintext_key, data_key.plaintext_key);
}

#[tokio::test]
async fn every_single_byte_change_is_refused() {
    let (_server, _admin, mut billing) = TestServer::with_billing_key(KEY).await;
    let sealed = billing
        .encrypt(KEY, b"do not touch", &[("k", "v")])
        .await
        .expect("encrypt");
    for index in 0..sealed.ciphertext.len() {
        let mut tampered = sealed.ciphertext.clone();
        tampered[index] ^= 0x01;
        let status = billing.decrypt(KEY, &tampered, &[("k", "v")]).await;
        // Flipping the version field can name a version that does not exist
        // (INVALID_ARGUMENT); never may it decrypt.
        let status = assert_code(status, Code::InvalidArgument);
        assert!(!status.message().contains("do not touch"));
    }
    assert_code(
        billing
            .decrypt(KEY, &sealed.ciphertext[..40], &[("k", "v")])
            .await,
        Code::InvalidArgument,
    );
    assert_code(
        billing.decrypt(KEY, b"", &[("k", "v")]).await,
        Code::InvalidArgument,
    );
    assert_code(
        billing.decrypt(KEY, &[0xff; 200], &[("k", "v")]).await,
        Code::InvalidArgument,
    );
}

#[tokio::test]
async fn wrong_context_and_wrong_key_are_refused() {
    let (_server, mut admin, mut billing) = TestServer::with_billing_key(KEY).await;
    admin.create_key("billing/other", BILLING).await;
    let sealed = billing
        .encrypt(KEY, b"bound", &[("tenant", "1")])
        .await
        .expect("encrypt");
    for context in [
        &[("tenant", "2")][..],
        &[],
        &[("tenant", "1"), ("extra", "x")],
    ] {
        assert_code(
            billing.decrypt(KEY, &sealed.ciphertext, context).await,
            Code::InvalidArgument,
        );
    }
    // Key binding: the same version number under another key does not open it.
    assert_code(
        billing
            .decrypt("billing/other", &sealed.ciphertext, &[("tenant", "1")])
            .await,
        Code::InvalidArgument,
    );
    assert!(
        billing
            .decrypt(KEY, &sealed.ciphertext, &[("tenant", "1")])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn oversized_and_malformed_requests_get_invalid_argument_and_the_server_keeps_serving() {
    let server = TestServer::start_with(common::Fixture::new(), 1024).await;
    let (mut admin, mut billing) = server.billing_key(KEY).await;
    assert!(billing.encrypt(KEY, &[7; 1024], &[]).await.is_ok());
    let status = assert_code(
        billing.encrypt(KEY, &[7; 1025], &[]).await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("1024"), "{status:?}");
    let big_context: Vec<(String, String)> = (0..100)
        .map(|i| (format!("k{i}"), "v".repeat(200)))
        .collect();
    let big_context: Vec<(&str, &str)> = big_context
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_code(
        billing.encrypt(KEY, b"x", &big_context).await,
        Code::InvalidArgument,
    );
    for bad_id in ["", "/abs", "has space", &"k".repeat(129), "semi;colon"] {
        assert_code(
            billing.encrypt(bad_id, b"x", &[]).await,
            Code::InvalidArgument,
        );
    }
    // Far beyond the transport's message limit: refused before any handler
    // runs, still with INVALID_ARGUMENT, and the connection stays usable.
    let huge = billing.encrypt(KEY, &vec![0; 256 * 1024], &[]).await;
    assert_code(huge, Code::InvalidArgument);
    let huge = billing.decrypt(KEY, &vec![0; 256 * 1024], &[]).await;
    assert_code(huge, Code::InvalidArgument);
    assert!(billing.encrypt(KEY, b"still serving", &[]).await.is_ok());
    assert_eq!(admin.key(KEY).await.expect("get").key_id, KEY);
    let _ = ADMIN;
}
