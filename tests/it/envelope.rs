//! The SDK's stream envelope against the real server over mTLS: round trips
//! of every awkward size, tampering and wrong contexts fail with typed
//! errors, a service without access cannot open, and the server sees one
//! GenerateDataKey per sealed stream and one DecryptDataKey per opened stream,
//! never the payload.

use crate::common;

use std::collections::HashMap;

use common::{ADMIN, BILLING, SHIPPING, TestServer, audit_records, ctx};
use tresor_client::{ChunkSize, Client, ClientError, StreamError};

const KEY: &str = "billing/records";
const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

async fn server_with_billing_key() -> (TestServer, Client) {
    let server = TestServer::start().await;
    let admin = server.fixture.sdk_at(server.addr, ADMIN).await;
    admin
        .create_key(KEY, BILLING, "stream tests")
        .await
        .expect("create key");
    let billing = server.fixture.sdk_at(server.addr, BILLING).await;
    (server, billing)
}

/// A payload that is not all one byte value, so misplaced chunks show.
fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 31 + i / 251) % 256).expect("< 256"))
        .collect()
}

fn tenant() -> HashMap<String, String> {
    ctx(&[("tenant", "42"), ("table", "invoices")])
}

#[tokio::test]
async fn round_trips_of_every_awkward_size() {
    let (_server, billing) = server_with_billing_key().await;
    let context = tenant();
    let chunk = ChunkSize::DEFAULT.bytes();
    for len in [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk, 5 * MIB + 3] {
        let plaintext = payload(len);
        let stream = billing
            .seal_bytes(KEY, &plaintext, &context)
            .await
            .expect("seal");
        let chunks = len.saturating_sub(1) / chunk + 1;
        assert_eq!(stream.len(), 45 + KEY.len() + 120 + 32 + len + 16 * chunks);
        assert!(
            !stream
                .windows(64)
                .any(|w| plaintext.len() >= 64 && w == &plaintext[..64])
        );
        let opened = billing
            .open_bytes(&[KEY], &stream, &context)
            .await
            .expect("open");
        assert_eq!(opened.expose(), &plaintext[..], "len {len}");
    }
}

#[tokio::test]
async fn streams_through_short_reads_and_reports_a_summary() {
    let (_server, billing) = server_with_billing_key().await;
    let context = tenant();
    let small = ChunkSize::MIN;
    let plaintext = payload(4 * small.bytes());

    // The reader hands out at most 100 bytes per read.
    let (mut tx, rx) = tokio::io::duplex(100);
    let source = plaintext.clone();
    let feeder =
        tokio::spawn(async move { tokio::io::AsyncWriteExt::write_all(&mut tx, &source).await });
    let mut stream = Vec::new();
    let sealed = billing
        .seal_stream_chunked(KEY, &context, small, rx, &mut stream)
        .await
        .expect("seal");
    feeder.await.expect("task").expect("feed");
    assert_eq!(sealed.bytes_in, plaintext.len() as u64);
    assert_eq!(sealed.bytes_out, stream.len() as u64);
    assert_eq!(sealed.chunks, 4, "whole chunks end with a full last chunk");
    assert_eq!(sealed.key_version, 1);

    let (mut tx, rx) = tokio::io::duplex(100);
    let source = stream.clone();
    let feeder =
        tokio::spawn(async move { tokio::io::AsyncWriteExt::write_all(&mut tx, &source).await });
    let mut out = Vec::new();
    let opened = billing
        .open_stream(&[KEY], &context, rx, &mut out)
        .await
        .expect("open");
    feeder.await.expect("task").expect("feed");
    assert_eq!(out, plaintext);
    assert_eq!(opened.bytes_in, stream.len() as u64);
    assert_eq!(opened.bytes_out, plaintext.len() as u64);
    assert_eq!(opened.chunks, 4);
    assert_eq!(opened.key_version, 1);
}

#[tokio::test]
async fn tampered_streams_fail_with_typed_errors() {
    let (_server, billing) = server_with_billing_key().await;
    let context = tenant();
    let small = ChunkSize::MIN;
    let plaintext = payload(3 * small.bytes() + 10);
    let mut stream = Vec::new();
    billing
        .seal_stream_chunked(KEY, &context, small, &plaintext[..], &mut stream)
        .await
        .expect("seal");
    let header = 45 + KEY.len() + 120 + 32;
    let sealed = small.sealed_bytes();
    let open = |bytes: Vec<u8>| {
        let billing = billing.clone();
        let context = context.clone();
        async move { billing.open_bytes(&[KEY], &bytes, &context).await }
    };
    assert!(open(stream.clone()).await.is_ok());

    let flip = |at: usize| {
        let mut bad = stream.clone();
        bad[at] ^= 0x40;
        bad
    };
    for (what, at) in [
        ("salt", 20),
        ("wrapped key", 45 + KEY.len() + 60),
        ("commitment", header - 1),
        ("first chunk body", header + 5),
        ("middle chunk tag", header + 2 * sealed - 1),
        ("last chunk", stream.len() - 20),
    ] {
        let result = open(flip(at)).await;
        assert!(
            matches!(result, Err(StreamError::Unauthentic)),
            "{what}: {result:?}"
        );
    }
    for (what, at) in [("magic", 0), ("version", 4), ("chunk size", 7)] {
        let result = open(flip(at)).await;
        assert!(
            matches!(result, Err(StreamError::Malformed)),
            "{what}: {result:?}"
        );
    }

    let chunk = |i: usize| stream[header + i * sealed..header + (i + 1) * sealed].to_vec();
    let mut reordered = stream[..header].to_vec();
    reordered.extend(chunk(1));
    reordered.extend(chunk(0));
    reordered.extend_from_slice(&stream[header + 2 * sealed..]);
    for (what, bad) in [
        (
            "truncated at a chunk boundary",
            stream[..header + sealed].to_vec(),
        ),
        (
            "truncated mid-chunk",
            stream[..header + sealed + 100].to_vec(),
        ),
        ("last chunk dropped", stream[..header + 3 * sealed].to_vec()),
        ("header only", stream[..header].to_vec()),
        ("reordered", reordered),
        ("appended", [stream.clone(), vec![0]].concat()),
    ] {
        let result = open(bad).await;
        assert!(
            matches!(result, Err(StreamError::Unauthentic)),
            "{what}: {result:?}"
        );
    }
    let result = open(stream[..30].to_vec()).await;
    assert!(matches!(result, Err(StreamError::Malformed)), "{result:?}");
    let result = open(b"not a stream at all, just some bytes.......!".to_vec()).await;
    assert!(matches!(result, Err(StreamError::Malformed)), "{result:?}");

    // Splicing: the first chunk of another stream under another data key.
    let mut other = Vec::new();
    billing
        .seal_stream_chunked(KEY, &context, small, &plaintext[..], &mut other)
        .await
        .expect("seal");
    let mut spliced = stream.clone();
    spliced[header..header + sealed].copy_from_slice(&other[header..header + sealed]);
    assert!(matches!(open(spliced).await, Err(StreamError::Unauthentic)));
}

#[tokio::test]
async fn wrong_context_fails_and_writes_nothing() {
    let (_server, billing) = server_with_billing_key().await;
    let stream = billing
        .seal_bytes(KEY, b"payroll for march", &tenant())
        .await
        .expect("seal");
    for wrong in [
        ctx(&[("tenant", "43"), ("table", "invoices")]),
        ctx(&[("tenant", "42")]),
        HashMap::new(),
    ] {
        let mut out = Vec::new();
        let result = billing
            .open_stream(&[KEY], &wrong, &stream[..], &mut out)
            .await;
        assert!(
            matches!(result, Err(StreamError::Unauthentic)),
            "{wrong:?}: {result:?}"
        );
        assert!(out.is_empty(), "nothing is written before the key unwraps");
    }
}

#[tokio::test]
async fn a_service_without_access_can_neither_seal_nor_open() {
    let (server, billing) = server_with_billing_key().await;
    let shipping = server.fixture.sdk_at(server.addr, SHIPPING).await;
    let stream = billing
        .seal_bytes(KEY, b"for billing only", &tenant())
        .await
        .expect("seal");
    let result = shipping.open_bytes(&[KEY], &stream, &tenant()).await;
    assert!(
        matches!(
            result,
            Err(StreamError::Service(ClientError::PermissionDenied(_)))
        ),
        "{result:?}"
    );
    let result = shipping.seal_bytes(KEY, b"x", &tenant()).await;
    assert!(
        matches!(
            result,
            Err(StreamError::Service(ClientError::PermissionDenied(_)))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_server_sees_one_data_key_call_per_stream_never_the_payload() {
    let (server, billing) = server_with_billing_key().await;
    let context = tenant();
    // Larger than the server accepts in one Encrypt call (4 MiB).
    let big = payload(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES + MIB);
    let small = b"a short secret".to_vec();
    for plaintext in [&big, &small] {
        let stream = billing
            .seal_bytes(KEY, plaintext, &context)
            .await
            .expect("seal");
        let opened = billing
            .open_bytes(&[KEY], &stream, &context)
            .await
            .expect("open");
        assert_eq!(opened.expose(), &plaintext[..]);
    }
    let file = tresor::service::default_audit_file(&server.fixture.data_dir());
    let _fixture = server.stop().await; // keeps the files until the end
    let records = audit_records(&file);
    let count = |operation: &str| {
        records
            .iter()
            .filter(|r| r["operation"] == operation && r["identity"] == BILLING)
            .count()
    };
    assert_eq!(count("GenerateDataKey"), 2, "{records:#?}");
    assert_eq!(count("DecryptDataKey"), 2, "{records:#?}");
    assert_eq!(count("Decrypt"), 0, "{records:#?}");
    assert_eq!(count("Encrypt"), 0);
    let text = std::fs::read_to_string(&file).expect("audit file");
    assert!(!text.contains("a short secret"));
}
