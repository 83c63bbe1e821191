//! `tresor bench` end to end: the real binary against a real server, with
//! the echo baseline it starts in its own process; and the echo server's
//! mutual TLS.

use crate::common;

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::metrics::{metric, scrape};
use common::{ADMIN, BILLING, Fixture, ServeProcess, TestServer};
use serde_json::Value;
use tresor::pki::CertificateAuthority;

/// What the binary needs to call a server as one identity, and to serve
/// the echo with that server's files.
#[derive(Clone)]
struct Bench {
    addr: SocketAddr,
    dir: PathBuf,
    client: PathBuf,
}

impl Bench {
    /// Writes the server's files and a client certificate for `identity`.
    fn new(server: &TestServer, identity: &str) -> Self {
        Self::at(server.addr, &server.fixture, identity)
    }

    /// [`Bench::new`] for the server of `fixture` at `addr`.
    fn at(addr: SocketAddr, fixture: &Fixture, identity: &str) -> Self {
        // Writes server/cert.pem, server/key.pem and client-ca.pem.
        fixture.serve_flags();
        let dir = fixture.dir.path().to_owned();
        let client = dir.join(identity.rsplit('/').next().expect("name"));
        fixture
            .ca
            .issue_client(identity)
            .expect("client cert")
            .save(&client, true)
            .expect("save client cert");
        Self { addr, dir, client }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn command(&self, args: &[String]) -> Output {
        common::cli::command(["--addr", &format!("https://localhost:{}", self.addr.port())])
            .env_remove("TRESOR_ADDR")
            .env("TRESOR_LOG", "warn")
            .args(["--ca", &self.path("client-ca.pem")])
            .args([
                "--cert",
                &self.client.join("cert.pem").display().to_string(),
            ])
            .args(["--key", &self.client.join("key.pem").display().to_string()])
            .arg("bench")
            .args(["--echo-tls-cert", &self.path("server/cert.pem")])
            .args(["--echo-tls-key", &self.path("server/key.pem")])
            .args(["--echo-client-ca", &self.path("client-ca.pem")])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tresor bench")
    }

    /// Runs `tresor bench ARGS` off the runtime that serves the server.
    async fn run(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let bench = self.clone();
        tokio::task::spawn_blocking(move || bench.command(&args))
            .await
            .expect("bench thread")
    }

    /// Runs it for 300 ms after a 100 ms warm-up and parses its JSON
    /// report.
    async fn short_json(&self, args: &[&str]) -> Value {
        let timing = ["--duration", "300ms", "--warmup", "100ms", "--json"];
        let args: Vec<&str> = args.iter().copied().chain(timing).collect();
        self.json(&args).await
    }

    /// Runs it and parses its JSON report.
    async fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("one JSON document")
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts `out` exited with `code` and said `needle` on stderr.
#[track_caller]
fn assert_fails(out: &Output, code: i32, needle: &str) {
    let text = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{text}");
    assert!(text.contains(needle), "expected {needle:?} in: {text}");
}

/// The requests of a report, which must be some, none failed.
fn requests_without_errors(report: &Value) -> f64 {
    let requests = number(report, "/requests");
    assert!(requests > 0.0, "{report:#}");
    assert_eq!(number(report, "/errors"), 0.0, "{report:#}");
    requests
}

fn number(value: &Value, path: &str) -> f64 {
    value
        .pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {path} in {value:#}"))
}

/// A server with the key `bench/k` owned by billing, and the bench as
/// billing.
async fn billing_with_a_key() -> (TestServer, Bench) {
    let server = TestServer::start().await;
    server.admin().await.create_key("bench/k", BILLING).await;
    let bench = Bench::new(&server, BILLING);
    (server, bench)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_echo_measures_both_sides_in_alternating_rounds() {
    let (server, bench) = billing_with_a_key().await;
    let report = bench
        .json(&[
            "--key-id",
            "bench/k",
            "--compare-echo",
            "--duration",
            "300ms",
            "--warmup",
            "100ms",
            "--rounds",
            "2",
            "--concurrency",
            "8",
            "--json",
        ])
        .await;
    for side in ["tresor", "echo"] {
        assert!(
            number(&report, &format!("/{side}/requests")) > 0.0,
            "{report:#}"
        );
        assert_eq!(
            number(&report, &format!("/{side}/errors")),
            0.0,
            "{report:#}"
        );
        assert!(number(&report, &format!("/{side}/latency_us/p50")) > 0.0);
        // Two measured windows of 300 ms each.
        assert!(
            number(&report, &format!("/{side}/seconds")) >= 0.6,
            "{report:#}"
        );
    }
    assert_eq!(
        number(&report, "/tresor/operations/encrypt"),
        number(&report, "/tresor/requests")
    );
    for ratio in ["/ratio/requests_per_second", "/ratio/p50_latency"] {
        let value = number(&report, ratio);
        assert!(value.is_finite() && value > 0.0, "{ratio} = {value}");
    }
    let rounds = report["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2);
    assert_eq!(rounds[0]["first"], "tresor");
    assert_eq!(rounds[1]["first"], "echo");
    let echo_target = report["echo_target"].as_str().expect("echo target");
    assert!(
        echo_target.starts_with("https://localhost:"),
        "{echo_target}"
    );
    assert!(!echo_target.ends_with(&format!(":{}", server.addr.port())));
    assert_eq!(
        report["targets"][0],
        format!("https://localhost:{}", server.addr.port())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mix_over_created_keys_sends_every_operation() {
    let server = TestServer::start().await;
    let bench = Bench::new(&server, ADMIN);
    let report = bench
        .json(&[
            "--key-prefix",
            "bench/m",
            "--keys",
            "3",
            "--create-keys",
            "--mix",
            "encrypt=1,decrypt=2,generate-data-key=1",
            "--connections",
            "2",
            "--concurrency",
            "6",
            "--duration",
            "300ms",
            "--warmup",
            "50ms",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(report["errors"], 0, "{report:#}");
    assert_eq!(report["keys"], 3);
    assert_eq!(report["connections"], 2);
    assert_eq!(report["mix"], "encrypt=1,decrypt=2,generate-data-key=1");
    let ops = &report["operations"];
    let total: f64 = ["encrypt", "decrypt", "generate-data-key"]
        .iter()
        .map(|op| {
            let n = number(ops, &format!("/{op}"));
            assert!(n > 0.0, "no {op} in {report:#}");
            n
        })
        .sum();
    assert_eq!(total, number(&report, "/requests"));
    // Decrypt has twice encrypt's weight: roughly twice as many requests.
    assert!(
        number(ops, "/decrypt") > number(ops, "/encrypt"),
        "{report:#}"
    );
    let mut admin = server.admin().await;
    for i in 0..3 {
        let key = admin
            .key(&format!("bench/m-{i}"))
            .await
            .expect("key created");
        assert_eq!(key.owner, ADMIN);
    }
}

/// `--mix mac,mac-batch` with `--create-keys` makes MAC keys and sends
/// both (issue 21); mixing them with encryption is refused up front.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mac_operations_run_on_created_mac_keys() {
    let server = TestServer::start().await;
    let bench = Bench::new(&server, ADMIN);
    let report = bench
        .short_json(&[
            "--key-prefix",
            "bench/mac",
            "--keys",
            "2",
            "--create-keys",
            "--mix",
            "mac=1,mac-batch=1",
            "--batch-size",
            "10",
            "--payload",
            "64",
        ])
        .await;
    requests_without_errors(&report);
    let ops = &report["operations"];
    assert!(
        number(ops, "/mac") > 0.0 && number(ops, "/mac-batch") > 0.0,
        "{report:#}"
    );
    let mut admin = server.admin().await;
    let key = admin.key("bench/mac-0").await.expect("key created");
    assert_eq!(key.purpose, common::proto::KeyPurpose::Mac as i32);
    let mixed = bench
        .run(&["--key-id", "bench/mac-0", "--mix", "encrypt,mac"])
        .await;
    assert_fails(&mixed, 2, "separate runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_count_requests_and_items() {
    let (_server, bench) = billing_with_a_key().await;
    let report = bench
        .short_json(&[
            "--key-id",
            "bench/k",
            "--mix",
            "encrypt-batch=1,decrypt-batch=1",
            "--batch-size",
            "10",
            "--payload",
            "64",
            "--concurrency",
            "4",
        ])
        .await;
    let requests = requests_without_errors(&report);
    assert_eq!(report["batch_size"], 10, "{report:#}");
    assert_eq!(report["mix"], "encrypt-batch=1,decrypt-batch=1");
    // Every request is a batch of 10 items, each of 64 plaintext bytes.
    assert_eq!(number(&report, "/items"), 10.0 * requests, "{report:#}");
    let rps = number(&report, "/requests_per_second");
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
    assert!(
        close(number(&report, "/items_per_second"), 10.0 * rps),
        "{report:#}"
    );
    assert!(
        close(number(&report, "/bytes_per_second"), 640.0 * rps),
        "{report:#}"
    );
    let ops = &report["operations"];
    let (encrypts, decrypts) = (number(ops, "/encrypt-batch"), number(ops, "/decrypt-batch"));
    assert!(encrypts > 0.0 && decrypts > 0.0, "{report:#}");
    assert_eq!(encrypts + decrypts, requests);

    // Single calls: one item per request, and no batch size in the report.
    let single = bench
        .json(&[
            "--key-id",
            "bench/k",
            "--mix",
            "encrypt",
            "--batch-size",
            "10",
            "--duration",
            "100ms",
            "--warmup",
            "10ms",
            "--json",
        ])
        .await;
    assert_eq!(single["errors"], 0, "{single:#}");
    assert_eq!(single["items"], single["requests"], "{single:#}");
    assert!(single["batch_size"].is_null(), "{single:#}");

    // Beside the echo, which gets each batch's bytes as one payload: both
    // sides count the batch's items.
    let compared = bench
        .json(&[
            "--key-id",
            "bench/k",
            "--mix",
            "decrypt-batch",
            "--batch-size",
            "10",
            "--compare-echo",
            "--rounds",
            "1",
            "--duration",
            "200ms",
            "--warmup",
            "50ms",
            "--json",
        ])
        .await;
    for side in ["tresor", "echo"] {
        let requests = number(&compared, &format!("/{side}/requests"));
        assert!(requests > 0.0, "{compared:#}");
        assert_eq!(number(&compared, &format!("/{side}/errors")), 0.0);
        assert_eq!(
            number(&compared, &format!("/{side}/items")),
            10.0 * requests
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_missing_keys_are_explained() {
    let server = TestServer::start().await;
    let billing = Bench::new(&server, BILLING);

    let out = billing
        .run(&["--key-id", "bench/k", "--mix", "encrypt=1,sign=2"])
        .await;
    assert_fails(&out, 2, "unknown operation \"sign\"");

    let out = billing.run(&["--mix", "encrypt"]).await;
    assert_fails(&out, 2, "--key-prefix PREFIX with --keys N");

    let out = billing
        .run(&["--key-id", "bench/k", "--batch-size", "0"])
        .await;
    assert_fails(&out, 2, "not a whole number from 1 to 100000");

    let out = billing
        .run(&["--key-id", "bench/k", "--duration", "soon"])
        .await;
    assert_fails(&out, 2, "--duration \"soon\"");

    // The key does not exist: set-up says so before any load.
    let out = billing
        .run(&["--key-id", "bench/missing", "--duration", "100ms"])
        .await;
    assert_fails(&out, 1, "key bench/missing");
    assert!(stderr(&out).contains("--create-keys"), "{}", stderr(&out));

    // Only an admin may create them.
    let out = billing
        .run(&[
            "--key-prefix",
            "bench/x",
            "--keys",
            "2",
            "--create-keys",
            "--duration",
            "100ms",
        ])
        .await;
    assert_fails(&out, 1, "needs an admin certificate");

    // A batch over the server's --max-batch-items (default 1000) is refused
    // in set-up, with the way out.
    server.admin().await.create_key("bench/k", BILLING).await;
    let out = billing
        .run(&[
            "--key-id",
            "bench/k",
            "--mix",
            "encrypt-batch",
            "--batch-size",
            "1001",
            "--duration",
            "100ms",
        ])
        .await;
    assert_fails(&out, 1, "takes at most 1000 per call");
    assert!(
        stderr(&out).contains("smaller --batch-size"),
        "{}",
        stderr(&out)
    );

    // The echo's certificate files must exist (the running server has its
    // key in memory already).
    let key_file = billing.dir.join("server/key.pem");
    std::fs::remove_file(&key_file).expect("remove the server key");
    let out = billing
        .run(&[
            "--key-id",
            "bench/k",
            "--compare-echo",
            "--duration",
            "100ms",
        ])
        .await;
    let expected = format!("--echo-tls-key: cannot read {}", key_file.display());
    assert_fails(&out, 2, &expected);
}

/// `tresor echo-serve` as a child; reports its address on stdout.
struct EchoServe {
    child: std::process::Child,
    addr: SocketAddr,
}

impl EchoServe {
    fn start(dir: &Path) -> Self {
        let p = |name: &str| dir.join(name).display().to_string();
        let mut child = common::cli::command([
            "echo-serve",
            "--tls-cert",
            &p("server/cert.pem"),
            "--tls-key",
        ])
        .arg(p("server/key.pem"))
        .args(["--client-ca", &p("client-ca.pem")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn echo-serve");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read address");
        let addr = line
            .trim()
            .strip_prefix("echo listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Self { child, addr }
    }
}

async fn echo_client(
    addr: SocketAddr,
    ca_pem: String,
    identity: &tresor::pki::CertifiedKey,
) -> Result<Vec<u8>, tresor_client::ClientError> {
    let client = tresor_bench::EchoClient::connect(
        tresor_client::Client::builder()
            .endpoint(format!("https://localhost:{}", addr.port()))
            .ca(ca_pem)
            .identity(identity.cert_pem.clone(), identity.key_pem.clone()),
    )
    .await?;
    client
        .echo("k", b"hello echo", &std::collections::HashMap::new())
        .await
}

#[tokio::test]
async fn the_echo_serves_over_mutual_tls_with_the_server_files_and_exits_with_its_stdin() {
    let server = TestServer::start().await;
    let bench = Bench::new(&server, BILLING);
    let mut echo = EchoServe::start(&bench.dir);
    let ca = server.fixture.ca.cert_pem();

    let ours = server.fixture.ca.issue_client(BILLING).expect("cert");
    let echoed = echo_client(echo.addr, ca.clone(), &ours)
        .await
        .expect("echo");
    assert_eq!(echoed, b"hello echo");

    // A client certificate from another CA is refused, as tresor refuses it.
    let other = CertificateAuthority::generate("another CA").expect("CA");
    let foreign = other.issue_client(BILLING).expect("cert");
    let refused = echo_client(echo.addr, ca, &foreign).await;
    assert!(
        refused.is_err(),
        "a foreign client certificate was accepted"
    );

    drop(echo.child.stdin.take());
    let status = tokio::task::spawn_blocking(move || echo.child.wait())
        .await
        .expect("wait thread")
        .expect("wait");
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connections_open_one_connection_per_request() {
    let fixture = Fixture::new();
    let mut flags = fixture.serve_flags();
    flags.extend(["--metrics-listen".to_owned(), "127.0.0.1:0".to_owned()]);
    let serve = ServeProcess::start_with(&flags, &[]);
    let metrics_addr = serve.metrics_addr().await;
    fixture
        .client_at(serve.addr, ADMIN)
        .await
        .create_key("bench/k", BILLING)
        .await;
    let before = scrape(metrics_addr).await;
    let handshakes = |samples: &std::collections::HashMap<String, f64>| {
        metric(samples, "tresor_tls_handshakes_total{result=\"ok\"}")
    };
    let report = Bench::at(serve.addr, &fixture, BILLING)
        .short_json(&[
            "--key-id",
            "bench/k",
            "--new-connections",
            "--concurrency",
            "1",
        ])
        .await;
    let requests = requests_without_errors(&report);
    assert_eq!(report["new_connection_per_request"], true, "{report:#}");
    let opened = handshakes(&scrape(metrics_addr).await) - handshakes(&before);
    assert!(
        opened >= requests,
        "{opened} handshakes for {requests} requests"
    );
    let stopped = tokio::task::spawn_blocking(move || serve.terminate())
        .await
        .expect("terminate");
    assert!(stopped.success());
}
