//! `tresor health` end to end: the real binary against a real server over
//! mTLS. SERVING when unsealed; NOT_SERVING (exit 1) for the whole server
//! while sealed, while `tresor.v1.Admin` stays SERVING; a clear error and
//! exit 3 when nothing listens, when no client certificate is given, or
//! when the peer never answers within --timeout.

use crate::common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::cli::{Tresor, text};
use common::{ADMIN, TestServer};

/// The identity the container's HEALTHCHECK uses: no grants, no admin.
const HEALTHCHECK: &str = "spiffe://test.tresor/healthcheck";

/// A health checker: `tresor health` with the connection settings of an
/// identity that holds no grants.
struct Checker(Tresor);

impl Checker {
    fn new(server: &TestServer, dir: &Path) -> Self {
        Self(Tresor::new(server, HEALTHCHECK, dir))
    }

    fn with(&self, key: &str, value: &str) -> Self {
        Self(self.0.clone().with(key, value))
    }

    fn without(&self, key: &str) -> Self {
        Self(self.0.clone().without(key))
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["health"];
        all.extend_from_slice(args);
        self.0.run(&all)
    }

    /// Runs until the exit code is `code` (health follows a seal within
    /// moments, not at once), for at most ten seconds.
    #[track_caller]
    fn until(&self, args: &[&str], code: i32) -> Output {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.run(args);
            if out.status.code() == Some(code) || Instant::now() > deadline {
                assert_eq!(out.status.code(), Some(code), "{}", describe(&out));
                return out;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}, stdout {:?}, stderr {:?}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_when_unsealed_not_serving_while_sealed_admin_stays_serving() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let checker = Checker::new(&server, dir.path());

    let out = checker.run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "SERVING\n");
    for service in ["tresor.v1.Crypto", "tresor.v1.Admin"] {
        let out = checker.run(&["--service", service]);
        assert_eq!(out.status.code(), Some(0), "{service}: {}", describe(&out));
        assert_eq!(text(&out.stdout), "SERVING\n");
    }
    let out = checker.run(&["--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["status"], "SERVING");
    assert_eq!(doc["service"], "");

    // A service the server does not know: refused, and says which exist.
    let out = checker.run(&["--service", "tresor.v1.Nope"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("knows no service \"tresor.v1.Nope\""),
        "{}",
        describe(&out)
    );

    // Sealed: the whole server and the data plane are NOT_SERVING (exit 1),
    // the control plane stays SERVING so an admin can unseal.
    let mut admin = server.client(ADMIN).await;
    admin.seal().await;
    let out = checker.until(&[], 1);
    assert_eq!(text(&out.stdout), "NOT_SERVING\n");
    assert!(
        text(&out.stderr).contains("is NOT_SERVING: it is sealed"),
        "{}",
        describe(&out)
    );
    let out = checker.run(&["--service", "tresor.v1.Crypto"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let out = checker
        .with("TRESOR_HEALTH_SERVICE", "tresor.v1.Admin")
        .run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "SERVING\n");

    admin.unseal().await;
    let out = checker.until(&[], 0);
    assert_eq!(text(&out.stdout), "SERVING\n");

    // Through 127.0.0.1 with the name the certificate is checked against
    // given apart (a container checking itself); a wrong name fails.
    let by_ip = checker.with(
        "TRESOR_ADDR",
        &format!("https://127.0.0.1:{}", server.addr.port()),
    );
    let out = by_ip.run(&["--server-name", "localhost"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = by_ip.run(&["--server-name", "elsewhere.example.org"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(text(&out.stderr).contains("hint:"), "{}", describe(&out));

    // Without a client certificate the server refuses the connection.
    let out = checker
        .without("TRESOR_CERT")
        .without("TRESOR_KEY")
        .run(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("requires a client certificate"),
        "{}",
        describe(&out)
    );
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_silent_peer_and_bad_flags_fail_clearly() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let checker = Checker::new(&server, dir.path());
    server.stop().await;

    // Nothing listens: exit 3 with the usual hint, nothing on stdout.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let out = checker
        .with("TRESOR_ADDR", &format!("https://localhost:{closed}"))
        .run(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(stderr.contains("hint: is the server running"), "{stderr}");

    // A peer that accepts TCP but never speaks TLS: given up after
    // --timeout, exit 3.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let started = Instant::now();
    let out = checker
        .with("TRESOR_ADDR", &format!("https://localhost:{port}"))
        .run(&["--timeout", "500ms"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(text(&out.stderr).contains("hint:"), "{}", describe(&out));
    drop(silent);

    // Bad flags are usage errors, never a panic.
    for timeout in ["0s", "banana", "1h"] {
        let out = checker.run(&["--timeout", timeout]);
        assert_eq!(out.status.code(), Some(2), "{timeout}: {}", describe(&out));
        assert!(
            text(&out.stderr).contains("--timeout"),
            "{}",
            describe(&out)
        );
    }
    let out = checker.without("TRESOR_ADDR").run(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("TRESOR_ADDR"),
        "{}",
        describe(&out)
    );
}
