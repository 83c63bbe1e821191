//! EncryptBatch and DecryptBatch over real mTLS (the SDK and raw tonic
//! clients): one bad item fails alone with the single call's status, the
//! whole call fails only for whole-call problems, and every item is
//! accounted for in its call's audit record, which verifies and holds no
//! secret.

use crate::common;

use std::collections::HashMap;

use common::{BILLING, SHIPPING, TestServer, assert_code, ctx, proto};
use tonic::Code;
use tresor_client::ClientError;

const KEY: &str = "billing/records";
const FOREIGN: &str = "shipping/records";
const OFF: &str = "billing/off";
const MARKER: &[u8] = b"PLAINTEXT-MARKER-51c2";
const CONTEXT_SECRET: &str = "tenant-secret-9921";

fn encrypt_item(key_id: &str, plaintext: &[u8], context: &[(&str, &str)]) -> proto::EncryptRequest {
    proto::EncryptRequest {
        key_id: key_id.into(),
        plaintext: plaintext.to_vec(),
        context: ctx(context),
    }
}

fn decrypt_item(
    key_id: &str,
    ciphertext: &[u8],
    context: &[(&str, &str)],
) -> proto::DecryptRequest {
    proto::DecryptRequest {
        key_id: key_id.into(),
        ciphertext: ciphertext.to_vec(),
        context: ctx(context),
    }
}

/// A server with KEY and OFF (billing's; OFF disabled after it encrypted
/// one message) and FOREIGN (shipping's); returns the server, billing's
/// tonic clients and OFF's old ciphertext.
async fn server_with_keys() -> (TestServer, common::Clients, Vec<u8>) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key(KEY, BILLING).await;
    admin.create_key(OFF, BILLING).await;
    admin.create_key(FOREIGN, SHIPPING).await;
    let mut billing = server.client(BILLING).await;
    let old = billing
        .encrypt(OFF, b"before it was disabled", &[])
        .await
        .expect("encrypt")
        .ciphertext;
    admin
        .admin
        .disable_key(proto::KeyRequest { key_id: OFF.into() })
        .await
        .expect("disable");
    (server, billing, old)
}

#[tokio::test]
async fn one_bad_item_fails_alone_with_the_single_calls_status() {
    let (server, mut billing, old) = server_with_keys().await;
    let sdk = server.fixture.sdk_at(server.addr, BILLING).await;
    let sealed = sdk
        .encrypt_batch(vec![
            encrypt_item(KEY, b"item 0", &[("tenant", "a")]),
            encrypt_item(FOREIGN, b"item 1", &[]),
            encrypt_item(OFF, b"item 2", &[]),
            encrypt_item(KEY, b"item 3", &[("tenant", "b")]),
            encrypt_item("Not A Key!", b"item 4", &[]),
        ])
        .await
        .expect("the call succeeds");
    assert_eq!(sealed.len(), 5);
    let first = sealed[0].as_ref().expect("item 0");
    let third = sealed[3].as_ref().expect("item 3");
    assert_eq!((first.key_version, third.key_version), (1, 1));
    let single_denied = assert_code(
        billing.encrypt(FOREIGN, b"item 1", &[]).await,
        Code::PermissionDenied,
    );
    assert!(
        matches!(&sealed[1], Err(ClientError::PermissionDenied(m)) if m == single_denied.message()),
        "{:?}",
        sealed[1]
    );
    let single_off = assert_code(
        billing.encrypt(OFF, b"item 2", &[]).await,
        Code::FailedPrecondition,
    );
    // The single call's status carries the reason in metadata; the item
    // carries code and message, and the SDK gives both the same type.
    assert_eq!(single_off.message(), "key is disabled");
    assert_eq!(
        single_off
            .metadata()
            .get(tresor_proto::REASON_HEADER)
            .and_then(|v| v.to_str().ok()),
        Some("KEY_DISABLED")
    );
    assert!(
        matches!(&sealed[2], Err(ClientError::KeyDisabled)),
        "{:?}",
        sealed[2]
    );
    assert!(
        matches!(&sealed[4], Err(ClientError::InvalidArgument(_))),
        "{:?}",
        sealed[4]
    );

    // Items opened by the single call, and a mixed DecryptBatch.
    for (ciphertext, context, plaintext) in [
        (&first.ciphertext, [("tenant", "a")], b"item 0"),
        (&third.ciphertext, [("tenant", "b")], b"item 3"),
    ] {
        let opened = billing
            .decrypt(KEY, ciphertext, &context)
            .await
            .expect("single decrypt");
        assert_eq!(opened.plaintext, plaintext);
    }
    let mut tampered = first.ciphertext.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x40;
    let opened = sdk
        .decrypt_batch(vec![
            decrypt_item(KEY, &first.ciphertext, &[("tenant", "a")]),
            decrypt_item(KEY, &tampered, &[("tenant", "a")]),
            decrypt_item(OFF, &old, &[]),
            decrypt_item(FOREIGN, &first.ciphertext, &[("tenant", "a")]),
            decrypt_item(KEY, &third.ciphertext, &[("tenant", "a")]),
            decrypt_item(KEY, &third.ciphertext, &[("tenant", "b")]),
        ])
        .await
        .expect("the call succeeds");
    let codes: Vec<Option<&str>> = opened
        .iter()
        .map(|result| match result {
            Ok(_) => None,
            Err(ClientError::InvalidCiphertext) => Some("invalid"),
            Err(ClientError::KeyDisabled) => Some("precondition"),
            Err(ClientError::PermissionDenied(_)) => Some("denied"),
            Err(other) => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some("invalid"),
            Some("precondition"),
            Some("denied"),
            Some("invalid"),
            None
        ]
    );
    assert_eq!(opened[0].as_ref().expect("0").plaintext, b"item 0");
    assert_eq!(opened[5].as_ref().expect("5").plaintext, b"item 3");
}

#[tokio::test]
async fn a_batch_round_trips_with_a_context_per_item() {
    let (server, mut billing, _) = server_with_keys().await;
    let sdk = server.fixture.sdk_at(server.addr, BILLING).await;
    let contexts: Vec<HashMap<String, String>> = (0..100)
        .map(|n| ctx(&[("tenant", &format!("t{n}")), ("row", &n.to_string())]))
        .collect();
    let plaintexts: Vec<Vec<u8>> = (0..100u8).map(|n| vec![n; 64]).collect();
    let sealed = sdk
        .encrypt_batch(
            plaintexts
                .iter()
                .zip(&contexts)
                .map(|(plaintext, context)| proto::EncryptRequest {
                    key_id: KEY.into(),
                    plaintext: plaintext.clone(),
                    context: context.clone(),
                })
                .collect(),
        )
        .await
        .expect("encrypt batch");
    let ciphertexts: Vec<Vec<u8>> = sealed
        .into_iter()
        .map(|r| r.expect("sealed").ciphertext)
        .collect();
    let decrypt_all = |shift: usize| {
        ciphertexts
            .iter()
            .enumerate()
            .map(|(n, ciphertext)| proto::DecryptRequest {
                key_id: KEY.into(),
                ciphertext: ciphertext.clone(),
                context: contexts[(n + shift) % contexts.len()].clone(),
            })
            .collect::<Vec<_>>()
    };
    let opened = sdk.decrypt_batch(decrypt_all(0)).await.expect("decrypt");
    for (n, result) in opened.iter().enumerate() {
        assert_eq!(result.as_ref().expect("opens").plaintext, plaintexts[n]);
    }
    let swapped = sdk
        .decrypt_batch(decrypt_all(1))
        .await
        .expect("the call succeeds");
    assert!(
        swapped
            .iter()
            .all(|r| matches!(r, Err(ClientError::InvalidCiphertext))),
        "another item's context opens nothing"
    );
    // A single Encrypt's ciphertext opens in a batch too.
    let single = billing
        .encrypt(KEY, b"single", &[("tenant", "t0")])
        .await
        .expect("encrypt");
    let opened = sdk
        .decrypt_batch(vec![decrypt_item(
            KEY,
            &single.ciphertext,
            &[("tenant", "t0")],
        )])
        .await
        .expect("decrypt");
    assert_eq!(opened[0].as_ref().expect("opens").plaintext, b"single");
}

#[tokio::test]
async fn only_whole_call_problems_fail_the_whole_call() {
    let fixture = common::Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    settings.service.max_batch_items = 5;
    settings
        .service
        .guard
        .rate_limits
        .add(&format!("{SHIPPING}=4/s"))
        .expect("limit");
    let server = TestServer::start_with_settings(fixture, settings).await;
    let mut admin = server.admin().await;
    admin.create_key(KEY, BILLING).await;
    admin.create_key(FOREIGN, SHIPPING).await;
    let billing = server.fixture.sdk_at(server.addr, BILLING).await;
    let items = |key: &str, n: usize| (0..n).map(|_| encrypt_item(key, b"x", &[])).collect();

    let too_many = billing.encrypt_batch(items(KEY, 6)).await;
    assert!(
        matches!(&too_many, Err(ClientError::InvalidArgument(m)) if m.contains("at most 5")),
        "{too_many:?}"
    );
    assert_eq!(
        billing.encrypt_batch(items(KEY, 5)).await.expect("5").len(),
        5
    );
    assert!(
        billing
            .encrypt_batch(Vec::new())
            .await
            .expect("empty")
            .is_empty()
    );
    assert!(
        billing
            .decrypt_batch(Vec::new())
            .await
            .expect("empty")
            .is_empty()
    );

    // A batch costs its items against the rate limit.
    let shipping = server.fixture.sdk_at(server.addr, SHIPPING).await;
    let over_limit = shipping.encrypt_batch(items(FOREIGN, 5)).await;
    assert!(
        matches!(&over_limit, Err(ClientError::RateLimited(m)) if m.contains("smaller batches")),
        "{over_limit:?}"
    );
    let within = shipping.encrypt_batch(items(FOREIGN, 4)).await.expect("4");
    assert!(within.iter().all(Result::is_ok));
    let mut raw_shipping = server.client(SHIPPING).await;
    assert_code(
        raw_shipping.encrypt(FOREIGN, b"x", &[]).await,
        Code::ResourceExhausted,
    );

    // Sealed: the whole call is UNAVAILABLE, empty or not.
    admin.seal().await;
    for sealed in [
        billing.encrypt_batch(items(KEY, 2)).await.map(|_| ()),
        billing.encrypt_batch(Vec::new()).await.map(|_| ()),
        billing
            .decrypt_batch(vec![decrypt_item(KEY, b"x", &[])])
            .await
            .map(|_| ()),
    ] {
        assert!(matches!(sealed, Err(ClientError::Sealed)), "{sealed:?}");
    }
    admin.unseal().await;
    assert!(billing.encrypt_batch(items(KEY, 1)).await.expect("1")[0].is_ok());
}

#[tokio::test]
async fn every_item_is_in_its_calls_audit_record_and_the_log_verifies() {
    let (server, mut billing, _) = server_with_keys().await;
    let mut request = tonic::Request::new(proto::EncryptBatchRequest {
        items: vec![
            encrypt_item(KEY, MARKER, &[("tenant", CONTEXT_SECRET)]),
            encrypt_item(FOREIGN, MARKER, &[("tenant", CONTEXT_SECRET)]),
            encrypt_item("Not A Key!", MARKER, &[]),
        ],
    });
    request
        .metadata_mut()
        .insert("x-request-id", "batch-req-1".parse().expect("value"));
    let response = billing
        .crypto
        .encrypt_batch(request)
        .await
        .expect("batch")
        .into_inner();
    let Some(proto::encrypt_item_result::Result::Encrypted(sealed)) = &response.results[0].result
    else {
        panic!("item 0: {:?}", response.results[0]);
    };
    let Some(proto::encrypt_item_result::Result::Error(denied)) = &response.results[1].result
    else {
        panic!("item 1: {:?}", response.results[1]);
    };
    assert_eq!(denied.code, Code::PermissionDenied as i32);
    let opened = billing
        .crypto
        .decrypt_batch(proto::DecryptBatchRequest {
            items: vec![decrypt_item(
                KEY,
                &sealed.ciphertext,
                &[("tenant", CONTEXT_SECRET)],
            )],
        })
        .await
        .expect("decrypt batch")
        .into_inner();
    assert!(matches!(
        &opened.results[0].result,
        Some(proto::decrypt_item_result::Result::Decrypted(d)) if d.plaintext == MARKER
    ));
    let mut over_cap = tonic::Request::new(proto::EncryptBatchRequest {
        items: (0..=tresor::service::DEFAULT_MAX_BATCH_ITEMS)
            .map(|_| encrypt_item(KEY, MARKER, &[]))
            .collect(),
    });
    over_cap
        .metadata_mut()
        .insert("x-request-id", "batch-over-cap".parse().expect("value"));
    assert_code(
        billing.crypto.encrypt_batch(over_cap).await,
        Code::InvalidArgument,
    );
    let mut admin = server.admin().await;
    let report = admin
        .admin
        .verify_audit_log(proto::VerifyAuditLogRequest {})
        .await
        .expect("online check")
        .into_inner();
    assert!(report.intact, "{report:?}");
    let file = tresor::service::default_audit_file(&server.fixture.data_dir());
    let fixture = server.stop().await;

    let all = common::audit_records(&file);
    let call = all
        .iter()
        .find(|r| r["request_id"] == "batch-req-1")
        .expect("the call's record");
    assert_eq!(call["kind"], "request");
    assert_eq!(call["operation"], "EncryptBatch");
    assert_eq!(call["identity"], BILLING);
    assert_eq!(call["items"], 3);
    assert_eq!(call["status"], "OK");
    let results = call["results"].as_array().expect("per-item results");
    assert_eq!(results.len(), 3);
    for (result, (key_id, status)) in results.iter().zip([
        (KEY, "OK"),
        (FOREIGN, "PERMISSION_DENIED"),
        ("Not A Key!", "INVALID_ARGUMENT"),
    ]) {
        assert_eq!(result["key_id"], key_id, "{result}");
        assert_eq!(result["status"], status, "{result}");
    }
    assert_eq!(results[0]["key_version"], 1);
    assert!(results[1].get("key_version").is_none());
    for n in [0, 1] {
        assert!(
            results[n]["context"]["tenant"]
                .as_str()
                .is_some_and(|digest| digest.starts_with("hmac-sha256:")),
            "{}",
            results[n]
        );
    }
    let decrypted = all
        .iter()
        .find(|r| r["operation"] == "DecryptBatch")
        .expect("the DecryptBatch record");
    assert_eq!(decrypted["results"][0]["status"], "OK");
    assert_eq!(decrypted["results"][0]["key_version"], 1);
    let over_cap = all
        .iter()
        .find(|r| r["request_id"] == "batch-over-cap")
        .expect("the refused call's record");
    assert_eq!(over_cap["status"], "INVALID_ARGUMENT");
    assert_eq!(
        over_cap["items"],
        tresor::service::DEFAULT_MAX_BATCH_ITEMS + 1
    );
    assert!(
        over_cap.get("results").is_none(),
        "a refused call processed no item"
    );

    let raw = std::fs::read(&file).expect("read");
    for secret in [MARKER, CONTEXT_SECRET.as_bytes()] {
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret),
            "a secret reached the audit log"
        );
    }
    let (code, out) = common::audit_verify(&fixture, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit log intact"), "{out}");
}
