//! The SDK's data-key cache against a real server over mTLS: its limits
//! (messages, bytes, age, entries) hold, counted in the GenerateDataKey and
//! Decrypt calls the server's audit log shows; without it every message
//! costs a call.

use crate::common;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use common::{ADMIN, BILLING, TestServer, ctx};
use tresor_client::{Client, DataKeyCacheLimits};

const KEY: &str = "billing/records";

/// The server's audit records of `operation`, counted.
fn calls(server: &TestServer, operation: &str) -> usize {
    let file = tresor::service::default_audit_file(&server.fixture.data_dir());
    common::audit_records(&file)
        .iter()
        .filter(|r| r["operation"] == operation && r["status"] == "OK")
        .count()
}

async fn client(server: &TestServer, limits: Option<DataKeyCacheLimits>) -> Client {
    let cert = server
        .fixture
        .ca
        .issue_client(BILLING)
        .expect("client cert");
    let mut builder = Client::builder()
        .endpoint(format!("https://localhost:{}", server.addr.port()))
        .ca(server.fixture.ca.cert_pem())
        .identity(cert.cert_pem, cert.key_pem);
    if let Some(limits) = limits {
        builder = builder.data_key_cache(limits);
    }
    builder.build().await.expect("sdk")
}

async fn server_with_key() -> TestServer {
    let server = TestServer::start().await;
    let admin = server.fixture.sdk_at(server.addr, ADMIN).await;
    admin.create_key(KEY, BILLING, "").await.expect("create");
    server
}

fn limits(messages: u64, bytes: u64, entries: usize, age: Duration) -> DataKeyCacheLimits {
    DataKeyCacheLimits {
        max_age: age,
        max_messages: messages,
        max_bytes: bytes,
        max_entries: NonZeroUsize::new(entries).expect("nonzero"),
    }
}

/// Seals `count` messages of `size` bytes under `context`; returns them.
async fn seal_many(
    client: &Client,
    count: usize,
    size: usize,
    context: &HashMap<String, String>,
) -> Vec<Vec<u8>> {
    let mut sealed = Vec::new();
    for n in 0..count {
        let plaintext = vec![n as u8; size];
        sealed.push(
            client
                .seal_bytes(KEY, &plaintext, context)
                .await
                .expect("seal"),
        );
    }
    sealed
}

#[tokio::test]
async fn without_the_cache_every_message_costs_a_call() {
    let server = server_with_key().await;
    let plain = client(&server, None).await;
    let tenant = ctx(&[("tenant", "1")]);
    let sealed = seal_many(&plain, 5, 64, &tenant).await;
    for message in &sealed {
        plain
            .open_bytes(&[KEY], message, &tenant)
            .await
            .expect("open");
    }
    assert_eq!(calls(&server, "GenerateDataKey"), 5);
    assert_eq!(calls(&server, "DecryptDataKey"), 5);
}

#[tokio::test]
async fn a_cached_key_serves_at_most_max_messages_and_max_bytes() {
    let server = server_with_key().await;
    let tenant = ctx(&[("tenant", "1")]);

    // 3 messages per data key: 10 messages need 4 keys.
    let cached = client(
        &server,
        Some(limits(3, 1 << 20, 10, Duration::from_secs(60))),
    )
    .await;
    let sealed = seal_many(&cached, 10, 64, &tenant).await;
    assert_eq!(calls(&server, "GenerateDataKey"), 4);
    // One data key, the same plaintext twice: each message still has its
    // own salt and stream key, so the envelopes differ beyond the header's
    // wrapped key.
    let twice = seal_many(&cached, 1, 64, &tenant).await;
    let again = seal_many(&cached, 1, 64, &tenant).await;
    // (The fourth key had served one message of its three.)
    assert_eq!(calls(&server, "GenerateDataKey"), 4);
    assert_ne!(twice, again);
    // docs/FORMAT.md section 10: the salt is at offset 13, 32 bytes; the
    // wrapped data key after it is the same in both.
    let salt = 13..45;
    assert_eq!(twice[0].len(), again[0].len());
    assert_ne!(twice[0][salt.clone()], again[0][salt]);
    // Opening: one DecryptDataKey per distinct data key, and every message opens.
    for (n, message) in sealed.iter().enumerate() {
        let opened = cached
            .open_bytes(&[KEY], message, &tenant)
            .await
            .expect("open");
        assert_eq!(opened.expose(), vec![n as u8; 64].as_slice());
    }
    assert_eq!(calls(&server, "DecryptDataKey"), 4);
    // A client without the cache opens them too: the format is the same.
    let plain = client(&server, None).await;
    plain
        .open_bytes(&[KEY], &sealed[9], &tenant)
        .await
        .expect("open");

    // 250 bytes per data key at 100 bytes a message: 2 messages per key.
    let by_bytes = client(
        &server,
        Some(limits(1000, 250, 10, Duration::from_secs(60))),
    )
    .await;
    seal_many(&by_bytes, 6, 100, &tenant).await;
    assert_eq!(calls(&server, "GenerateDataKey"), 4 + 3);
}

#[tokio::test]
async fn age_context_and_entries_bound_reuse() {
    let server = server_with_key().await;
    let (a, b) = (ctx(&[("tenant", "a")]), ctx(&[("tenant", "b")]));

    // Another context never shares a data key.
    let cached = client(
        &server,
        Some(limits(100, 1 << 20, 10, Duration::from_secs(60))),
    )
    .await;
    seal_many(&cached, 3, 16, &a).await;
    seal_many(&cached, 3, 16, &b).await;
    assert_eq!(calls(&server, "GenerateDataKey"), 2);
    // A sealed message bound to context a does not open under b.
    let sealed = cached.seal_bytes(KEY, b"x", &a).await.expect("seal");
    assert!(cached.open_bytes(&[KEY], &sealed, &b).await.is_err());

    // One entry: alternating contexts evicts the other's key every time.
    let one = client(
        &server,
        Some(limits(100, 1 << 20, 1, Duration::from_secs(60))),
    )
    .await;
    for _ in 0..2 {
        seal_many(&one, 1, 16, &a).await;
        seal_many(&one, 1, 16, &b).await;
    }
    assert_eq!(calls(&server, "GenerateDataKey"), 2 + 4);

    // Past max_age a key is not used again.
    let short = client(
        &server,
        Some(limits(100, 1 << 20, 10, Duration::from_millis(200))),
    )
    .await;
    seal_many(&short, 2, 16, &a).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    seal_many(&short, 2, 16, &a).await;
    assert_eq!(calls(&server, "GenerateDataKey"), 2 + 4 + 2);

    // Streams of unknown length never take a cached key.
    let mut out = Vec::new();
    short
        .seal_stream(KEY, &a, &b"streamed"[..], &mut out)
        .await
        .expect("stream");
    assert_eq!(calls(&server, "GenerateDataKey"), 2 + 4 + 2 + 1);
}
