//! Hostile clients against a real `tresor serve` process with small
//! connection limits, while a well-behaved mTLS client keeps encrypting and
//! decrypting: thousands of malformed gRPC bodies and HTTP/2 frames,
//! oversized metadata, garbage after the TLS handshake, a flood of TLS
//! handshakes without a client certificate, and slowloris connections
//! (silent, dribbling a ClientHello, or silent after the handshake) beyond
//! the connection cap.
//!
//! Asserted: every call of the good client succeeds, every hostile
//! connection is answered with an error or closed by the server, the
//! server's memory stays within a generous bound, and it serves afterwards.
//! The figures SECURITY.md quotes are printed (`-- --nocapture`).

use crate::common;
#[path = "../hostile/mod.rs"]
mod hostile;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use common::{BILLING, Clients, Fixture, SHIPPING, ServeProcess, proto};
use hostile::{
    Answer, CONTINUATION, DATA, END_HEADERS, END_STREAM, HEADERS, PATIENCE, RssSampler,
    SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_MAX_HEADER_LIST_SIZE, client_start, frame,
    goaway_code, grpc_frame, grpc_raw, h2_connect, hpack_literal, parse_frames, read_until_closed,
    rss_kib, server_settings, tls_connect, tls_connector, write_or_closed,
};

const KEY: &str = "hostile/good";
const ENCRYPT: &str = "/tresor.v1.Crypto/Encrypt";

/// The server's limits in this test: small, so the cap is reached.
const MAX_CONNECTIONS: usize = 32;
const HANDSHAKE_TIMEOUT: &str = "3s";
const IDLE_TIMEOUT: Duration = Duration::from_secs(8);
const KEEPALIVE_INTERVAL: &str = "1s";
const KEEPALIVE_TIMEOUT: &str = "5s";
const MAX_STREAMS: u32 = 64;
const MAX_HEADER_LIST: u32 = 8192;

/// Malformed gRPC bodies sent, over this many connections.
const MALFORMED_CALLS: usize = 2400;
const MALFORMED_CONNECTIONS: usize = 8;
/// Connections sending invalid HTTP/2 frames, and frames each.
const FRAME_CONNECTIONS: usize = 4;
const FRAMES_PER_CONNECTION: usize = 1500;
/// Requests with a 1 MiB header.
const OVERSIZED_METADATA: usize = 16;
const OVERSIZED_BYTES: usize = 1024 * 1024;
/// TLS handshakes without a client certificate, and how many at once.
const NO_CERT_HANDSHAKES: usize = 400;
const NO_CERT_PARALLEL: usize = 16;
/// Slowloris connections: silent TCP, dribbling a ClientHello, silent
/// after a complete mTLS handshake. Together well beyond the cap.
const SILENT_TCP: usize = 64;
const DRIBBLERS: usize = 8;
const SILENT_AFTER_TLS: usize = 4;
/// Generous bound on the server's memory growth over the whole attack.
const RSS_GROWTH_BOUND_KIB: u64 = 256 * 1024;

/// The well-behaved client: Encrypt then Decrypt in a loop until stopped.
struct GoodClient {
    ok: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<tonic::Status>>,
}

impl GoodClient {
    fn start(mut client: Clients) -> Self {
        let ok = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (ok.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut round = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                round += 1;
                let plaintext = format!("record {round}");
                let context = [("tenant", "acme")];
                match client.round_trip(KEY, plaintext.as_bytes(), &context).await {
                    Ok(()) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(status) => failures.push(status),
                }
            }
            failures
        });
        Self { ok, stop, task }
    }

    fn rounds(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    async fn finish(self) -> (u64, Vec<tonic::Status>) {
        self.stop.store(true, Ordering::Relaxed);
        let failures = self.task.await.expect("good client task");
        (self.ok.load(Ordering::Relaxed), failures)
    }
}

/// Prints one phase's figures; returns the server's peak VmRSS during it
/// and resets the peak.
fn report(phase: &str, started: Instant, server: u32, rss: &RssSampler, good: &GoodClient) -> u64 {
    let peak = rss.take_peak(server);
    println!(
        "{phase}: {:.1} s, server peak VmRSS {peak} KiB, good rounds so far {}",
        started.elapsed().as_secs_f64(),
        good.rounds()
    );
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_neither_stop_the_server_nor_starve_a_good_client() {
    let fixture = Fixture::new();
    let mut flags = fixture.serve_flags();
    flags.extend(
        [
            "--max-connections",
            &MAX_CONNECTIONS.to_string(),
            "--tls-handshake-timeout",
            HANDSHAKE_TIMEOUT,
            "--idle-timeout",
            &format!("{}s", IDLE_TIMEOUT.as_secs()),
            "--http2-keepalive-interval",
            KEEPALIVE_INTERVAL,
            "--http2-keepalive-timeout",
            KEEPALIVE_TIMEOUT,
            "--max-concurrent-streams",
            &MAX_STREAMS.to_string(),
            "--max-header-list-bytes",
            &MAX_HEADER_LIST.to_string(),
        ]
        .map(String::from),
    );
    let server = ServeProcess::start_with(&flags, &[]);
    let pid = server.child.id();
    let port = server.addr.port();
    let ca = fixture.ca.cert_pem();
    let attacker = fixture.ca.issue_client(SHIPPING).expect("attacker cert");
    let with_cert = tls_connector(&ca, Some(&attacker));
    let without_cert = tls_connector(&ca, None);

    // The stream and header limits are announced to every client.
    let settings = server_settings(&with_cert, port).await;
    assert!(
        settings.contains(&(SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS))
            && settings.contains(&(SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST)),
        "{settings:?}"
    );

    let mut admin = fixture.client_at(server.addr, common::ADMIN).await;
    admin.create_key(KEY, BILLING).await;
    // An HTTP/2 connection that stays idle throughout: keep-alive pings
    // must keep it open past the idle timeout.
    let idle_h2 = h2_connect(&with_cert, port).await;
    let idle_since = Instant::now();
    let good = GoodClient::start(fixture.client_at(server.addr, BILLING).await);
    wait_for(|| good.rounds() >= 10, "the good client gets going").await;
    let baseline = rss_kib(pid);
    let rss = RssSampler::start(pid);
    let mut peak = baseline;
    println!("baseline: server VmRSS {baseline} KiB");

    // 1. Malformed gRPC bodies on valid HTTP/2 streams.
    let started = Instant::now();
    let answers = malformed_grpc_bodies(&with_cert, port).await;
    println!("malformed gRPC bodies: {MALFORMED_CALLS} calls, answered:");
    for (answer, n) in &answers {
        println!("  {n} x {answer:?}");
    }
    for answer in answers.keys() {
        // INVALID_ARGUMENT with a short message; never OK, never INTERNAL
        // (a server fault), never a hang.
        assert!(
            matches!(answer, Answer::Status(3, message) if message.len() < 160),
            "{answer:?}"
        );
    }
    peak = peak.max(report("malformed gRPC bodies", started, pid, &rss, &good));

    // 2. Invalid HTTP/2 frames and garbage after the TLS handshake.
    let started = Instant::now();
    let (frames_sent, goaways) = invalid_frames(&with_cert, port).await;
    println!(
        "invalid HTTP/2 frames: {frames_sent} frames over {} connections; GOAWAY codes {goaways:?}",
        FRAME_CONNECTIONS + 4
    );
    // Past 1024 streams reset for bad frames, the server hangs up with
    // ENHANCE_YOUR_CALM (0xb); garbage instead of the preface is dropped.
    assert_eq!(goaways, BTreeMap::from([(0xb, FRAME_CONNECTIONS)]));
    peak = peak.max(report("invalid HTTP/2 frames", started, pid, &rss, &good));

    // 3. Oversized metadata: a 1 MiB header, split in CONTINUATION frames.
    let started = Instant::now();
    let endings = oversized_metadata(&with_cert, port).await;
    println!("oversized metadata: {OVERSIZED_METADATA} requests of 1 MiB headers: {endings:?}");
    assert!(
        !endings.contains_key("closed"),
        "an oversized header list must get a reset or GOAWAY: {endings:?}"
    );
    peak = peak.max(report("oversized metadata", started, pid, &rss, &good));

    // 4. A flood of TLS handshakes without a client certificate.
    let started = Instant::now();
    no_certificate_flood(&without_cert, port).await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "handshakes without a client certificate: {NO_CERT_HANDSHAKES} refused in {secs:.1} s ({:.0}/s)",
        NO_CERT_HANDSHAKES as f64 / secs
    );
    peak = peak.max(report("no-certificate flood", started, pid, &rss, &good));

    // 5. Slowloris beyond the cap; a new client still gets in.
    let started = Instant::now();
    slowloris(&with_cert, &fixture, server.addr).await;
    peak = peak.max(report("slowloris", started, pid, &rss, &good));

    // The idle HTTP/2 connection outlived the idle timeout: pings kept it.
    tokio::time::sleep_until((idle_since + IDLE_TIMEOUT * 2).into()).await;
    let answer = grpc_raw(&idle_h2, ENCRYPT, grpc_frame(0, 2, &[0xff, 0xff])).await;
    assert!(matches!(answer, Answer::Status(..)), "{answer:?}");
    println!(
        "an idle HTTP/2 connection answering pings is still open after {:.1} s",
        idle_since.elapsed().as_secs_f64()
    );

    let (rounds, failures) = good.finish().await;
    let peak = peak.max(rss.take_peak(pid));
    drop(rss);
    println!(
        "good client: {rounds} Encrypt+Decrypt rounds, {} failures",
        failures.len()
    );
    assert!(failures.is_empty(), "the good client failed: {failures:?}");

    // Afterwards: a fresh client is served.
    let mut fresh = fixture.client_at(server.addr, BILLING).await;
    fresh
        .round_trip(KEY, b"after", &[])
        .await
        .expect("served afterwards");
    let after = rss_kib(pid);
    println!("server VmRSS: baseline {baseline} KiB, peak {peak} KiB, after {after} KiB");
    assert!(
        peak.saturating_sub(baseline) < RSS_GROWTH_BOUND_KIB,
        "server memory grew from {baseline} KiB to {peak} KiB"
    );
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}

/// Waits until `done` holds, polling; panics after [`PATIENCE`].
async fn wait_for(done: impl Fn() -> bool, what: &str) {
    tokio::time::timeout(PATIENCE, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// Sends [`MALFORMED_CALLS`] Encrypt calls with broken bodies; returns how
/// often each answer came.
async fn malformed_grpc_bodies(
    connector: &tokio_rustls::TlsConnector,
    port: u16,
) -> BTreeMap<Answer, usize> {
    let valid = proto::EncryptRequest {
        key_id: KEY.into(),
        plaintext: b"x".to_vec(),
        context: Default::default(),
    }
    .encode_to_vec();
    let len = u32::try_from(valid.len()).expect("len");
    let bodies: Vec<Bytes> = vec![
        // declares 100 bytes, sends 10, ends the stream
        grpc_frame(0, 100, &[0u8; 10]),
        // compressed flag without a grpc-encoding
        grpc_frame(1, len, &valid),
        // a flag that is neither 0 nor 1
        grpc_frame(7, len, &valid),
        // declares 4 GiB
        grpc_frame(0, u32::MAX, &[0u8; 16]),
        // not even a whole length prefix
        Bytes::from_static(&[0, 0, 0]),
        // a whole frame of bytes that are not protobuf
        grpc_frame(0, 8, &[0xff; 8]),
    ];
    let mut tasks = Vec::new();
    for connection in 0..MALFORMED_CONNECTIONS {
        let send = h2_connect(connector, port).await;
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let mut answers = BTreeMap::new();
            for call in 0..MALFORMED_CALLS / MALFORMED_CONNECTIONS {
                let body = bodies[(call + connection) % bodies.len()].clone();
                *answers
                    .entry(grpc_raw(&send, ENCRYPT, body).await)
                    .or_insert(0) += 1;
            }
            answers
        }));
    }
    let mut all = BTreeMap::new();
    for task in tasks {
        for (answer, n) in task.await.expect("malformed task") {
            *all.entry(answer).or_insert(0) += n;
        }
    }
    all
}

/// Over mTLS: connections that send invalid HEADERS frames (a request
/// without its required pseudo-headers) on new streams, then a DATA frame
/// on stream 0; and connections that send garbage instead of the preface.
/// Each must be closed by the server. Returns (frames sent, GOAWAY codes).
async fn invalid_frames(
    connector: &tokio_rustls::TlsConnector,
    port: u16,
) -> (usize, BTreeMap<u32, usize>) {
    let mut tasks = Vec::new();
    for _ in 0..FRAME_CONNECTIONS {
        let connector = connector.clone();
        tasks.push(tokio::spawn(async move {
            let mut tls = tls_connect(&connector, port).await.expect("mTLS");
            let mut sent = 0;
            let mut burst = client_start();
            for n in 0..FRAMES_PER_CONNECTION {
                // HPACK 0x82 is ":method: GET" alone.
                let stream = 2 * u32::try_from(n).expect("n") + 1;
                burst.extend(frame(HEADERS, END_HEADERS | END_STREAM, stream, &[0x82]));
                sent += 1;
            }
            burst.extend(frame(DATA, 0, 0, &[0]));
            sent += 1;
            // The server may hang up before it has read everything.
            let _ = write_or_closed(&mut tls, &burst).await;
            let received = read_until_closed(&mut tls).await;
            (sent, goaway_code(&parse_frames(&received)))
        }));
    }
    for garbage in 0..4u8 {
        let connector = connector.clone();
        tasks.push(tokio::spawn(async move {
            let mut tls = tls_connect(&connector, port).await.expect("mTLS");
            let junk: Vec<u8> = (0..4096u32)
                .map(|i| (i as u8).wrapping_mul(31) ^ garbage)
                .collect();
            let _ = write_or_closed(&mut tls, &junk).await;
            let received = read_until_closed(&mut tls).await;
            (1, goaway_code(&parse_frames(&received)))
        }));
    }
    let mut sent = 0;
    let mut codes = BTreeMap::new();
    for task in tasks {
        let (frames, code) = task.await.expect("frames task");
        sent += frames;
        if let Some(code) = code {
            *codes.entry(code).or_insert(0) += 1;
        }
    }
    (sent, codes)
}

/// Requests whose header block (a 1 MiB value) exceeds the header list
/// limit: each connection must end with a reset or GOAWAY, and close.
async fn oversized_metadata(
    connector: &tokio_rustls::TlsConnector,
    port: u16,
) -> BTreeMap<String, usize> {
    let mut block = vec![0x83, 0x87]; // :method POST, :scheme https
    block.extend(hpack_literal("x-padding", OVERSIZED_BYTES));
    let mut request = client_start();
    let mut chunks = block.chunks(16 * 1024).peekable();
    let first = chunks.next().expect("a chunk");
    request.extend(frame(HEADERS, END_STREAM, 1, first));
    while let Some(chunk) = chunks.next() {
        let flags = if chunks.peek().is_none() {
            END_HEADERS
        } else {
            0
        };
        request.extend(frame(CONTINUATION, flags, 1, chunk));
    }
    let request = Arc::new(request);
    let mut endings = BTreeMap::new();
    for _ in 0..OVERSIZED_METADATA {
        let mut tls = tls_connect(connector, port).await.expect("mTLS");
        let _ = write_or_closed(&mut tls, &request).await;
        let frames = parse_frames(&read_until_closed(&mut tls).await);
        let ending = match goaway_code(&frames) {
            Some(code) => format!("GOAWAY {code}"),
            None if frames
                .iter()
                .any(|(kind, _, _)| *kind == hostile::RST_STREAM) =>
            {
                "RST_STREAM".to_owned()
            }
            None => "closed".to_owned(),
        };
        *endings.entry(ending).or_insert(0) += 1;
    }
    endings
}

/// TLS handshakes without a client certificate: every one is refused (the
/// server's alert arrives on the first read after the client's side of a
/// TLS 1.3 handshake), and no HTTP/2 byte ever comes back.
async fn no_certificate_flood(connector: &tokio_rustls::TlsConnector, port: u16) {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..NO_CERT_PARALLEL {
        let (connector, next) = (connector.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < NO_CERT_HANDSHAKES as u64 {
                let Ok(mut tls) = tls_connect(&connector, port).await else {
                    continue; // refused during the handshake itself
                };
                let _ = write_or_closed(&mut tls, &client_start()).await;
                let received = read_until_closed(&mut tls).await;
                assert!(
                    received.is_empty(),
                    "a client without a certificate got {} bytes of HTTP/2",
                    received.len()
                );
            }
        }));
    }
    for task in tasks {
        task.await.expect("no-certificate task");
    }
}

/// Silent TCP connections, ClientHellos sent a byte at a time and silent
/// mTLS connections, more than the cap; each must be closed by the server
/// (after the handshake timeout, or the idle timeout once past TLS), and a
/// new client must get in while they hold the slots.
async fn slowloris(
    connector: &tokio_rustls::TlsConnector,
    fixture: &Fixture,
    addr: std::net::SocketAddr,
) {
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..SILENT_TCP {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        silent.push(tokio::spawn(async move {
            let at = Instant::now();
            read_until_closed(&mut tcp).await;
            at.elapsed()
        }));
    }
    let mut dribblers = Vec::new();
    for _ in 0..DRIBBLERS {
        let hello = client_hello();
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        dribblers.push(tokio::spawn(async move {
            let at = Instant::now();
            let (mut reader, mut writer) = tcp.split();
            let dribble = async {
                for byte in &hello {
                    if writer.write_all(std::slice::from_ref(byte)).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                std::future::pending::<()>().await;
            };
            tokio::select! {
                _ = read_until_closed(&mut reader) => {},
                () = dribble => {},
            }
            at.elapsed()
        }));
    }
    let mut after_tls = Vec::new();
    for _ in 0..SILENT_AFTER_TLS {
        let connector = connector.clone();
        after_tls.push(tokio::spawn(async move {
            let mut tls = tls_connect(&connector, addr.port()).await.expect("mTLS");
            let at = Instant::now();
            read_until_closed(&mut tls).await;
            at.elapsed()
        }));
    }
    // The slots are taken: a new, well-behaved client waits in the accept
    // queue, then is served.
    let waited = Instant::now();
    let mut newcomer = fixture.client_at(addr, BILLING).await;
    newcomer
        .encrypt(KEY, b"newcomer", &[])
        .await
        .expect("a new client is served while slowloris connections hold the slots");
    let newcomer_wait = waited.elapsed();

    let times = |tasks: Vec<tokio::task::JoinHandle<Duration>>| async move {
        let mut all = Vec::new();
        for task in tasks {
            all.push(task.await.expect("slowloris task").as_secs_f64());
        }
        all.sort_by(f64::total_cmp);
        all
    };
    let silent = times(silent).await;
    let dribblers = times(dribblers).await;
    let after_tls = times(after_tls).await;
    let range = |v: &[f64]| format!("{:.1} to {:.1} s", v[0], v[v.len() - 1]);
    println!(
        "slowloris: {} connections against a cap of {MAX_CONNECTIONS}, all closed by the server in {:.1} s",
        SILENT_TCP + DRIBBLERS + SILENT_AFTER_TLS,
        started.elapsed().as_secs_f64()
    );
    println!(
        "  silent TCP: closed after {} (queueing included)",
        range(&silent)
    );
    println!(
        "  ClientHello a byte per 100 ms: closed after {}",
        range(&dribblers)
    );
    println!("  silent after mTLS: closed after {}", range(&after_tls));
    println!(
        "  a new client waited {:.1} s for a slot, then was served",
        newcomer_wait.as_secs_f64()
    );
}

/// The first flight of a TLS client: its ClientHello.
fn client_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut client = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut hello = Vec::new();
    client.write_tls(&mut hello).expect("ClientHello");
    hello
}

/// A measurement, not a check: the server memory a silent TCP connection
/// (waiting for its handshake) and an idle mTLS HTTP/2 connection cost,
/// with the default limits. SECURITY.md quotes it. Run with
/// `cargo test --test it hostile_client:: -- --ignored --nocapture`.
#[ignore = "a measurement: run with -- --ignored --nocapture"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_the_server_memory_of_open_connections() {
    const N: usize = 1000;
    let fixture = Fixture::new();
    let server = ServeProcess::start(&fixture);
    let pid = server.child.id();
    let settle = || tokio::time::sleep(Duration::from_secs(2));
    let baseline = rss_kib(pid);

    let mut silent = Vec::new();
    for _ in 0..N {
        silent.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    settle().await;
    let with_silent = rss_kib(pid);
    drop(silent);
    settle().await;
    let between = rss_kib(pid);

    let connector = tls_connector(
        &fixture.ca.cert_pem(),
        Some(&fixture.ca.issue_client(SHIPPING).expect("cert")),
    );
    let mut idle = Vec::new();
    for _ in 0..N {
        idle.push(h2_connect(&connector, server.addr.port()).await);
    }
    settle().await;
    let with_idle = rss_kib(pid);
    println!("server VmRSS: baseline {baseline} KiB");
    println!(
        "  {N} silent TCP connections: {with_silent} KiB, {:.1} KiB each",
        (with_silent.saturating_sub(baseline)) as f64 / N as f64
    );
    println!(
        "  {N} idle mTLS HTTP/2 connections: {with_idle} KiB, {:.1} KiB each",
        (with_idle.saturating_sub(between)) as f64 / N as f64
    );
    drop(idle);
    assert!(server.terminate().success());
}
