//! Property (issue 21): MAC tokens and deterministic ciphertexts are the
//! same bytes for the same input before and after a restart, a root-key
//! rotation, and a backup restored into a new keystore; and what was made
//! before still verifies and opens after. Blind indexes and equality
//! columns depend on it.
//!
//! The inputs are drawn by proptest (messages of any bytes, contexts of up
//! to three pairs of any text); each case costs a round trip, so the
//! server lifecycle runs once over a batch of generated cases.

use crate::common;

use std::collections::HashMap;

use common::cli::{text, tresor};
use common::proto::{self, KeyPurpose};
use common::{ADMIN, BILLING, TestServer};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

const INDEX: &str = "crm/email-index";
const EQUAL: &str = "crm/email-eq";
/// Generated cases per run.
const CASES: usize = 24;

/// One generated input: a message and its context.
type Case = (Vec<u8>, HashMap<String, String>);

fn cases() -> Vec<Case> {
    let strategy = prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::hash_map("[a-z]{0,8}", ".{0,12}", 0..3),
        ),
        CASES,
    );
    strategy
        .new_tree(&mut TestRunner::default())
        .expect("generate")
        .current()
}

/// What the server makes of every case now: tokens (full and truncated)
/// and deterministic ciphertexts.
async fn outputs(
    billing: &mut common::Clients,
    cases: &[Case],
) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::with_capacity(cases.len());
    for (message, context) in cases {
        let mac = |truncate_bytes| proto::MacRequest {
            key_id: INDEX.into(),
            message: message.clone(),
            context: context.clone(),
            truncate_bytes,
        };
        let full = billing
            .crypto
            .mac(mac(0))
            .await
            .expect("mac")
            .into_inner()
            .mac;
        let short = billing
            .crypto
            .mac(mac(8))
            .await
            .expect("mac")
            .into_inner()
            .mac;
        let sealed = billing
            .crypto
            .encrypt(proto::EncryptRequest {
                key_id: EQUAL.into(),
                plaintext: message.clone(),
                context: context.clone(),
            })
            .await
            .expect("encrypt")
            .into_inner()
            .ciphertext;
        out.push((full, short, sealed));
    }
    out
}

/// Everything made before still verifies and opens.
async fn still_valid(
    billing: &mut common::Clients,
    cases: &[Case],
    made: &[(Vec<u8>, Vec<u8>, Vec<u8>)],
) {
    for ((message, context), (full, short, sealed)) in cases.iter().zip(made) {
        for (mac, truncate_bytes) in [(full, 0), (short, 8)] {
            let verdict = billing
                .crypto
                .verify_mac(proto::VerifyMacRequest {
                    key_id: INDEX.into(),
                    message: message.clone(),
                    mac: mac.clone(),
                    context: context.clone(),
                    truncate_bytes,
                })
                .await
                .expect("verify")
                .into_inner();
            assert!(verdict.valid);
        }
        let opened = billing
            .crypto
            .decrypt(proto::DecryptRequest {
                key_id: EQUAL.into(),
                ciphertext: sealed.clone(),
                context: context.clone(),
            })
            .await
            .expect("decrypt")
            .into_inner();
        assert_eq!(&opened.plaintext, message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_deterministic_ciphertexts_survive_restart_root_rotation_and_restore() {
    let cases = cases();
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    crate::key_purposes::create(&mut admin, INDEX, BILLING, KeyPurpose::Mac, &[]).await;
    crate::key_purposes::create(&mut admin, EQUAL, BILLING, KeyPurpose::Deterministic, &[]).await;
    let mut billing = server.client(BILLING).await;
    let before = outputs(&mut billing, &cases).await;

    // Root-key rotation: every DEK re-wrapped, nothing computed changes.
    admin
        .admin
        .rotate_root_key(proto::RotateRootKeyRequest {})
        .await
        .expect("rotate root");
    common::eventually("the root-key rotation to finish", || {
        let mut admin = admin.clone();
        async move {
            let status = admin.admin.get_status(proto::StatusRequest {}).await.ok()?;
            let status = status.into_inner();
            (status.root_key_generation == 2 && !status.root_rotation_in_progress).then_some(())
        }
    })
    .await;
    assert_eq!(
        outputs(&mut billing, &cases).await,
        before,
        "after root-key rotation"
    );
    let backup = server
        .fixture
        .sdk_at(server.addr, ADMIN)
        .await
        .create_backup()
        .await
        .expect("backup");
    drop((admin, billing));

    // Restart on the same keystore.
    let fixture = server.stop().await;
    let server = TestServer::start_with(fixture, tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES).await;
    let mut billing = server.client(BILLING).await;
    assert_eq!(
        outputs(&mut billing, &cases).await,
        before,
        "after a restart"
    );
    still_valid(&mut billing, &cases, &before).await;
    drop(billing);

    // The backup restored into a new keystore.
    let fixture = server.stop().await;
    let file = fixture.dir.path().join("purposes.tbk");
    std::fs::write(&file, &backup).expect("write backup");
    let restored = fixture.dir.path().join("restored");
    let out = tresor(&[
        "backup",
        "restore",
        file.to_str().expect("utf8"),
        "--data-dir",
        restored.to_str().expect("utf8"),
        "--master-key-file",
        fixture.master_key_file().to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    settings.store = tresor::config::StoreSpec::Sled(restored);
    let server = TestServer::start_with_settings(fixture, settings).await;
    let mut billing = server.client(BILLING).await;
    assert_eq!(
        outputs(&mut billing, &cases).await,
        before,
        "after a restore"
    );
    still_valid(&mut billing, &cases, &before).await;
}
