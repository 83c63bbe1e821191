//! Seal really drops key material: the live-secret counters
//! (`tresor_crypto::live_secrets`) of a real server, through the real
//! Admin Seal and Unseal RPCs over mTLS.
//!
//! The counters are process-wide, so this file holds a single test (its
//! own test binary, its own process): nothing else makes or drops secrets
//! while it counts. The test clients are raw gRPC clients, which hold no
//! secret types of their own. Every number asserted below is exact and
//! follows from causality, not timing: a handler drops its DEK handles
//! before its response is sent, and the client reads the counters only
//! after that response arrived.

mod common;

use common::{BILLING, Clients, Fixture, TestServer, proto};
use tonic::Code;
use tresor_crypto::{SecretKind, live_secrets};

/// The live counts, as (keys, secret byte strings, MAC keys).
fn live() -> (usize, usize, usize) {
    (
        live_secrets(SecretKind::Key),
        live_secrets(SecretKind::Bytes),
        live_secrets(SecretKind::MacKey),
    )
}

/// What the keyring's metadata authenticator holds while unsealed: one
/// MAC key (which keeps its derived key as a `SecretKey`).
const META: (usize, usize) = (1, 1);

const KEYS: [&str; 3] = ["billing/a", "billing/b", "billing/c"];

/// Creates the keys and uses each for Encrypt, Decrypt and GenerateDataKey,
/// so each DEK is unwrapped and cached; rotates the first key and uses the
/// new version too. Returns a ciphertext of the first key's version 1.
async fn use_keys(admin: &mut Clients, billing: &mut Clients) -> Vec<u8> {
    for key in KEYS {
        admin.create_key(key, BILLING).await;
    }
    let mut first = Vec::new();
    for key in KEYS {
        let sealed = billing
            .encrypt(key, b"card 4111", &[("tenant", "7")])
            .await
            .expect("encrypt")
            .ciphertext;
        let opened = billing
            .decrypt(key, &sealed, &[("tenant", "7")])
            .await
            .expect("decrypt");
        assert_eq!(opened.plaintext, b"card 4111");
        billing
            .crypto
            .generate_data_key(proto::GenerateDataKeyRequest {
                key_id: key.into(),
                ..Default::default()
            })
            .await
            .expect("data key");
        if first.is_empty() {
            first = sealed;
        }
    }
    admin.rotate(KEYS[0]).await.expect("rotate");
    billing
        .encrypt(KEYS[0], b"v2", &[])
        .await
        .expect("encrypt v2");
    first
}

/// Seals or unseals through the Admin RPC, and checks the status says so.
async fn set_sealed(admin: &mut Clients, sealed: bool) {
    let result = if sealed {
        admin.admin.seal(proto::SealRequest {}).await
    } else {
        admin.admin.unseal(proto::UnsealRequest::default()).await
    };
    result.expect("seal or unseal RPC");
    assert_eq!(admin.status().await.sealed, sealed);
}

/// Cached DEKs after [`use_keys`]: one per key, plus version 2 of the
/// first.
const DEKS: usize = KEYS.len() + 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seal_drops_the_root_key_and_every_dek() {
    assert_eq!(live(), (0, 0, 0), "no secret alive before any server");

    // Without auditing, a sealed server holds no secret at all.
    let fixture = Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    settings.service.audit = None;
    let server = TestServer::start_with_settings(fixture, settings).await;
    let mut admin = server.admin().await;
    let mut billing = server.client(BILLING).await;
    // Answered only once the service is open (it opens after the listener
    // is handed over).
    assert!(!admin.status().await.sealed);
    assert_eq!(
        live(),
        (1 + META.0, 0, META.1),
        "unsealed: the root key and the metadata MAC key only"
    );

    let v1_ciphertext = use_keys(&mut admin, &mut billing).await;
    assert_eq!(
        live(),
        (1 + META.0 + DEKS, 0, META.1),
        "the root key, the metadata MAC key and the cached DEKs"
    );

    set_sealed(&mut admin, true).await;
    assert_eq!(live(), (0, 0, 0), "sealed: root key and DEKs dropped");
    let refused = billing.encrypt(KEYS[1], b"x", &[]).await;
    assert_eq!(refused.expect_err("sealed").code(), Code::Unavailable);
    assert_eq!(live(), (0, 0, 0), "a refused request unwraps nothing");

    // Unsealed again it serves, unwrapping what it needs anew.
    set_sealed(&mut admin, false).await;
    assert_eq!(
        live(),
        (1 + META.0, 0, META.1),
        "unsealed: the root key, the metadata MAC key, an empty cache"
    );
    let opened = billing
        .decrypt(KEYS[0], &v1_ciphertext, &[("tenant", "7")])
        .await
        .expect("decrypt after unseal");
    assert_eq!(opened.plaintext, b"card 4111");
    assert_eq!(live(), (2 + META.0, 0, META.1), "the root key and one DEK");
    set_sealed(&mut admin, true).await;
    assert_eq!(live(), (0, 0, 0), "sealed again: nothing");
    server.stop().await;
    assert_eq!(live(), (0, 0, 0), "stopped: nothing");

    // With auditing on, the audit log keeps its two MAC keys (records and
    // context digests, each one MacKey holding one key) while sealed: a
    // sealed server still records the seal and every refused request. It
    // holds no audit key itself (only the keys derived from it), and no
    // root key or DEK.
    let server = TestServer::start_with(Fixture::new(), 1 << 20).await;
    let mut admin = server.admin().await;
    let mut billing = server.client(BILLING).await;
    assert!(!admin.status().await.sealed);
    assert_eq!(
        live(),
        (1 + META.0 + 2, 0, META.1 + 2),
        "the root key, the metadata and audit MAC keys"
    );
    use_keys(&mut admin, &mut billing).await;
    assert_eq!(live(), (1 + META.0 + 2 + DEKS, 0, META.1 + 2));
    set_sealed(&mut admin, true).await;
    assert_eq!(live(), (2, 0, 2), "sealed: only the audit MAC keys");
    let refused = billing.decrypt(KEYS[0], b"x", &[]).await;
    assert_eq!(refused.expect_err("sealed").code(), Code::Unavailable);
    set_sealed(&mut admin, false).await;
    billing
        .encrypt(KEYS[2], b"again", &[])
        .await
        .expect("serves after unseal");
    assert_eq!(live(), (1 + META.0 + 2 + 1, 0, META.1 + 2));
    server.stop().await;
    assert_eq!(live(), (0, 0, 0), "stopped: nothing");
}
