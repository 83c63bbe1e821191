//! The Rust SDK on rotating material, against the real server: a `Client`
//! built once follows its certificate files, or the SPIFFE Workload API,
//! through any number of rotations while the server closes idle
//! connections, so every call after a pause goes through a new handshake.

use super::*;

use common::BILLING;
use tresor::config::Settings;
use tresor::pki::Validity;

/// The server closes a connection that sent nothing for a second (and
/// sends no keep-alive pings that would keep it busy).
pub fn closing_idle_connections(settings: &mut Settings) {
    settings.transport.idle_timeout = Duration::from_secs(1);
    settings.transport.keepalive_interval = Duration::from_secs(3600);
}

/// Longer than the idle timeout: the next call needs a new connection.
pub const PAUSE: Duration = Duration::from_millis(1300);

/// A round trip through the SDK.
pub async fn sdk_round_trip(client: &tresor_client::Client) -> Result<(), String> {
    let context = std::collections::HashMap::new();
    let sealed = client
        .encrypt(KEY, b"rotating", &context)
        .await
        .map_err(|e| e.to_string())?;
    let opened = client
        .decrypt(KEY, &sealed.ciphertext, &context)
        .await
        .map_err(|e| e.to_string())?;
    (opened.plaintext == b"rotating")
        .then_some(())
        .ok_or_else(|| "another plaintext".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_follows_its_certificate_files_rotated_every_two_seconds_for_30_seconds() {
    let fixture = Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    closing_idle_connections(&mut settings);
    let server = TestServer::start_with_settings(fixture, settings).await;
    server.admin().await.create_key(KEY, BILLING).await;

    // Each client certificate lives 3 seconds and is replaced after 2: a
    // connection made with an old one after that fails its handshake.
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, ca) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    let issue = || {
        server
            .fixture
            .ca
            .issue_client_with_validity(BILLING, Validity::from_now(Duration::from_secs(3)))
            .expect("client cert")
    };
    let write = |pair: &CertifiedKey| {
        std::fs::write(&cert, &pair.cert_pem).expect("cert");
        std::fs::write(&key, pair.key_pem.as_bytes()).expect("key");
    };
    write(&issue());
    std::fs::write(&ca, server.fixture.ca.cert_pem()).expect("ca");
    let client = tresor_client::Client::builder()
        .endpoint(format!("https://localhost:{}", server.addr.port()))
        .ca_file(&ca)
        .identity_files(&cert, &key)
        .build()
        .await
        .expect("client");

    let started = tokio::time::Instant::now();
    let mut rotated = started;
    let (mut calls, mut rotations, mut failures) = (0usize, 0usize, Vec::new());
    while started.elapsed() < Duration::from_secs(30) {
        if rotated.elapsed() >= Duration::from_secs(2) {
            write(&issue());
            rotated = tokio::time::Instant::now();
            rotations += 1;
        }
        // Two calls back to back, then a pause past the idle timeout.
        for _ in 0..2 {
            calls += 1;
            if let Err(e) = sdk_round_trip(&client).await {
                failures.push(e);
            }
        }
        tokio::time::sleep(PAUSE).await;
    }
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed: {failures:#?}",
        failures.len()
    );
    assert!(rotations >= 10, "only {rotations} rotations");
}
