//! Serving with the SPIFFE Workload API (`--spiffe-endpoint`): a real
//! Workload API server (crates/tresor-test-spiffe, the public
//! `SpiffeWorkloadAPI` protocol over a Unix socket) issues short-lived
//! SVIDs and rotates them while clients call; bundle updates (federation,
//! CA roll-over) apply to new handshakes; each trust domain's bundle
//! verifies only its own ids, and the allowlist narrows the domains.

use super::*;

use std::sync::atomic::Ordering;

use common::{BILLING, ServeProcess};
use tresor::config::TlsSettings;
use tresor_test_spiffe::{TrustDomainCa, WorkloadApi};
use zeroize::Zeroizing;

/// tresor's own SPIFFE id in these tests.
const TRESOR_ID: &str = "spiffe://test.tresor/tresor";
/// Client SVIDs outlive the tests.
const CLIENT_LIFETIME: Duration = Duration::from_secs(600);

/// A tresor serving the SVIDs of its own Workload API server.
struct SpiffeServer {
    api: WorkloadApi,
    server: TestServer,
    _api_dir: tempfile::TempDir,
}

impl SpiffeServer {
    /// Its Workload API issues SVIDs living `lifetime`; clients of
    /// `trust_domains` (any when empty) may connect.
    async fn start(lifetime: Duration, trust_domains: &[&str]) -> Self {
        Self::start_with(lifetime, trust_domains, |_| {}).await
    }

    /// [`SpiffeServer::start`], with the settings changed by `configure`.
    async fn start_with(
        lifetime: Duration,
        trust_domains: &[&str],
        configure: impl FnOnce(&mut tresor::config::Settings),
    ) -> Self {
        let api_dir = tempfile::tempdir().expect("tempdir");
        let api = WorkloadApi::start(api_dir.path(), "test.tresor", TRESOR_ID, lifetime).await;
        let fixture = Fixture::new();
        let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
        settings.tls = TlsSettings {
            source: TlsSource::Spiffe {
                endpoint: api.endpoint(),
            },
            trust_domains: TrustDomains::parse(trust_domains).expect("domains"),
        };
        configure(&mut settings);
        let server = TestServer::start_with_settings(fixture, settings).await;
        let started = Self {
            api,
            server,
            _api_dir: api_dir,
        };
        // Serving: updates from now on arrive after the first SVID.
        started.until_served(&started.api.serial_hex()).await;
        started
    }

    /// A client SVID for `spiffe_id` from the trust domain's current CA.
    fn client(&self, spiffe_id: &str) -> CertifiedKey {
        certified(self.api.issue_client(spiffe_id, CLIENT_LIFETIME))
    }

    /// Connects as `spiffe_id`, verifying tresor with the current bundle.
    async fn connect(&self, spiffe_id: &str) -> common::Clients {
        common::connect(
            self.server.addr,
            &self.api.ca_pem(),
            Some(&self.client(spiffe_id)),
        )
        .await
        .expect("connect")
    }

    /// Whether a handshake with `client` is accepted.
    async fn accepts(&self, client: &CertifiedKey) -> bool {
        handshake_accepted(self.server.addr, &self.api.ca_pem(), client).await
    }

    /// Waits until a handshake with `client` is accepted (`true`) or
    /// refused (`false`).
    async fn until_accepts(&self, client: &CertifiedKey, accepted: bool) {
        let what = format!(
            "handshakes {}",
            if accepted { "accepted" } else { "refused" }
        );
        eventually_within(&what, PATIENCE, || async {
            (self.accepts(client).await == accepted).then_some(())
        })
        .await;
    }

    /// Waits until new handshakes get the SVID with `serial`.
    async fn until_served(&self, serial: &str) {
        let client = self.client(ADMIN);
        let what = format!("a handshake served SVID {serial}");
        eventually_within(&what, PATIENCE, || async {
            let served = served_serial_with(self.server.addr, &self.api.ca_pem(), &client).await;
            (served.ok().as_deref() == Some(serial)).then_some(())
        })
        .await;
    }
}

fn certified((cert_pem, key_pem): (String, String)) -> CertifiedKey {
    CertifiedKey {
        cert_pem,
        key_pem: Zeroizing::new(key_pem),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tresor_serves_through_svid_rotations_with_zero_failed_calls() {
    // SVIDs live 5 seconds and are rotated every 2 (SPIRE rotates at half
    // life): the ones served at the start expire while the test runs.
    let lifetime = Duration::from_secs(5);
    let spiffe = Arc::new(SpiffeServer::start(lifetime, &[]).await);
    spiffe.connect(ADMIN).await.create_key(KEY, BILLING).await;

    let mut load = Load::new();
    for _ in 0..4 {
        let (spiffe, stop, calls) = (spiffe.clone(), load.stop.clone(), load.calls.clone());
        load.spawn(async move {
            let mut problems = Vec::new();
            let mut established = spiffe.connect(BILLING).await;
            let mut round = 0usize;
            while Load::running(&stop) {
                round += 1;
                let (root, cert) = (spiffe.api.ca_pem(), spiffe.client(BILLING));
                let addr = spiffe.server.addr;
                let called = round_trip_in_round(round, &mut established, addr, &root, &cert).await;
                calls.fetch_add(1, Ordering::Relaxed);
                problems.extend(called.err());
            }
            problems
        });
    }

    let rotations = 6;
    let mut last_serial = String::new();
    for _ in 0..rotations {
        tokio::time::sleep(Duration::from_secs(2)).await;
        last_serial = spiffe.api.rotate();
        spiffe.until_served(&last_serial).await;
    }
    let (calls, failures) = load.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed: {failures:?}",
        failures.len()
    );
    assert!(calls >= 4 * rotations, "only {calls} calls");
    assert!(
        until_audited(&spiffe.server, "tls_reloaded", rotations)
            .await
            .len()
            >= rotations
    );
    let status = spiffe.connect(ADMIN).await.status().await;
    assert_eq!(
        status.server_certificate.expect("certificate").serial,
        last_serial,
        "tresor status shows the SVID served"
    );
}

#[tokio::test]
async fn bundle_updates_apply_and_each_trust_domain_verifies_only_its_own_ids() {
    let spiffe = SpiffeServer::start(CLIENT_LIFETIME, &[]).await;
    let other = TrustDomainCa::new("other.test");
    let foreign = certified(other.issue("spiffe://other.test/billing", CLIENT_LIFETIME));
    assert!(
        !spiffe.accepts(&foreign).await,
        "no bundle for other.test yet"
    );

    // Federation: other.test's bundle arrives and its ids are accepted...
    spiffe.api.federate_with(&other);
    spiffe.until_accepts(&foreign, true).await;
    // ...but its CA cannot vouch for an id of test.tresor.
    let impostor = certified(other.issue(ADMIN, CLIENT_LIFETIME));
    assert!(!spiffe.accepts(&impostor).await);

    // CA roll-over: during the overlap both CAs' clients are accepted; once
    // the old CA leaves the bundle, its clients are refused.
    let old_client = spiffe.client(BILLING);
    spiffe.api.roll_ca();
    let new_client = spiffe.client(BILLING);
    spiffe.until_accepts(&new_client, true).await;
    assert!(spiffe.accepts(&old_client).await, "the overlap");
    let serial = spiffe.api.rotate();
    spiffe.until_served(&serial).await;
    spiffe.api.retire_old_cas();
    spiffe.until_accepts(&old_client, false).await;
    assert!(spiffe.accepts(&new_client).await);

    // Federation ends: other.test is refused again.
    spiffe.api.remove_federated_bundle("other.test");
    spiffe.until_accepts(&foreign, false).await;
}

#[tokio::test]
async fn the_trust_domain_allowlist_refuses_a_federated_domain() {
    let spiffe = SpiffeServer::start(CLIENT_LIFETIME, &["test.tresor"]).await;
    let other = TrustDomainCa::new("other.test");
    let foreign = certified(other.issue("spiffe://other.test/billing", CLIENT_LIFETIME));
    spiffe.api.federate_with(&other);
    until_audited(&spiffe.server, "tls_reloaded", 1).await;
    assert!(!spiffe.accepts(&foreign).await);
    assert!(spiffe.accepts(&spiffe.client(BILLING)).await);
}

#[tokio::test]
async fn tresor_serve_takes_its_svid_from_spiffe_endpoint_socket() {
    let api_dir = tempfile::tempdir().expect("tempdir");
    let api = WorkloadApi::start(api_dir.path(), "test.tresor", TRESOR_ID, CLIENT_LIFETIME).await;
    let fixture = Fixture::new();
    // The fixture's flags without the TLS files.
    let mut flags = fixture.serve_flags();
    for flag in ["--tls-cert", "--tls-key", "--client-ca"] {
        let at = flags.iter().position(|f| f == flag).expect("flag");
        flags.drain(at..at + 2);
    }
    flags.extend(["--trust-domain".to_owned(), "test.tresor".to_owned()]);
    let endpoint = api.endpoint();
    let serve = ServeProcess::start_with(&flags, &[("SPIFFE_ENDPOINT_SOCKET", endpoint.as_str())]);
    let client = certified(api.issue_client(ADMIN, CLIENT_LIFETIME));
    let served = served_serial_with(serve.addr, &api.ca_pem(), &client)
        .await
        .expect("handshake");
    assert_eq!(served, api.serial_hex());
    let mut admin = common::connect(serve.addr, &api.ca_pem(), Some(&client))
        .await
        .expect("connect");
    assert_eq!(
        admin
            .status()
            .await
            .server_certificate
            .expect("cert")
            .serial,
        served
    );
    // The runtime keeps running while the server drains, so the client's
    // connection closes instead of idling until a keep-alive timeout.
    drop(admin);
    let stopped = tokio::task::spawn_blocking(move || serve.terminate())
        .await
        .expect("terminate");
    assert!(stopped.success());
}

#[test]
fn without_tls_files_or_a_workload_api_serve_says_what_to_give() {
    let fixture = Fixture::new();
    let mut flags = fixture.serve_flags();
    for flag in ["--tls-cert", "--tls-key", "--client-ca"] {
        let at = flags.iter().position(|f| f == flag).expect("flag");
        flags.drain(at..at + 2);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let out = common::cli::command(&flags)
        .env_remove("SPIFFE_ENDPOINT_SOCKET")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--spiffe-endpoint"), "{stderr}");
    assert!(stderr.contains("SPIFFE_ENDPOINT_SOCKET"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_client_on_the_workload_api_follows_rotations_through_new_connections() {
    // The Workload API serves one SVID, tresor's: the SDK client presents
    // it too, so it calls as TRESOR_ID.
    let spiffe = SpiffeServer::start_with(
        Duration::from_secs(5),
        &[],
        super::sdk::closing_idle_connections,
    )
    .await;
    spiffe.connect(ADMIN).await.create_key(KEY, TRESOR_ID).await;
    let client = tresor_client::Client::builder()
        .endpoint(format!("https://localhost:{}", spiffe.server.addr.port()))
        .spiffe(spiffe.api.endpoint())
        .server_spiffe_id(TRESOR_ID)
        .build()
        .await
        .expect("client");
    let mut failures = Vec::new();
    for _ in 0..6 {
        // The SVID the client connected with expires within 5 seconds;
        // each call after the pause needs a new connection with the newest.
        spiffe.api.rotate();
        tokio::time::sleep(super::sdk::PAUSE).await;
        for _ in 0..2 {
            failures.extend(super::sdk::sdk_round_trip(&client).await.err());
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_calls_with_the_svid_of_tresor_spiffe_endpoint() {
    let spiffe = SpiffeServer::start(CLIENT_LIFETIME, &[]).await;
    spiffe.connect(ADMIN).await.create_key(KEY, TRESOR_ID).await;
    let cli = |args: &[&str], files: bool| {
        let mut command = common::cli::command(args);
        command
            .env(
                "TRESOR_ADDR",
                format!("https://localhost:{}", spiffe.server.addr.port()),
            )
            .env("TRESOR_SPIFFE_ENDPOINT", spiffe.api.endpoint())
            .env_remove("TRESOR_CERT")
            .env_remove("TRESOR_KEY")
            .env_remove("TRESOR_CA");
        if files {
            command.env("TRESOR_CA", "/nonexistent/ca.pem");
        }
        command
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run tresor")
    };
    let listed = tokio::task::block_in_place(|| cli(&["key", "list"], false));
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && stdout.contains(KEY),
        "{stdout}{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let mixed = tokio::task::block_in_place(|| cli(&["key", "list"], true));
    assert_eq!(mixed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("replaces --ca"));

    // A flag beats the environment: the image of the Kubernetes spire
    // overlay sets TRESOR_CA/CERT/KEY, and its probe passes
    // --spiffe-endpoint (Kubernetes cannot unset an image's variables).
    let probe = tokio::task::block_in_place(|| {
        common::cli::command([
            "health",
            "--spiffe-endpoint",
            &spiffe.api.endpoint(),
            "--server-spiffe-id",
            TRESOR_ID,
        ])
        .env(
            "TRESOR_ADDR",
            format!("https://localhost:{}", spiffe.server.addr.port()),
        )
        .env_remove("TRESOR_SPIFFE_ENDPOINT")
        .env("TRESOR_CA", "/nonexistent/ca.pem")
        .env("TRESOR_CERT", "/nonexistent/cert.pem")
        .env("TRESOR_KEY", "/nonexistent/key.pem")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run tresor health")
    });
    assert!(
        probe.status.success() && String::from_utf8_lossy(&probe.stdout).contains("SERVING"),
        "{}{}",
        String::from_utf8_lossy(&probe.stdout),
        String::from_utf8_lossy(&probe.stderr)
    );
    // And the other way round: --ca on the command line beats
    // TRESOR_SPIFFE_ENDPOINT (the files are then read, and this one is missing).
    let files = tokio::task::block_in_place(|| {
        cli(&["--ca", "/nonexistent/flag-ca.pem", "key", "list"], false)
    });
    assert_eq!(files.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&files.stderr).contains("/nonexistent/flag-ca.pem"),
        "{}",
        String::from_utf8_lossy(&files.stderr)
    );

    // --server-spiffe-id pins the server: its own id passes, another fails.
    let pinned = tokio::task::block_in_place(|| {
        cli(&["--server-spiffe-id", TRESOR_ID, "key", "list"], false)
    });
    assert!(
        pinned.status.success(),
        "{}",
        String::from_utf8_lossy(&pinned.stderr)
    );
    let impostor = tokio::task::block_in_place(|| {
        cli(
            &[
                "--server-spiffe-id",
                "spiffe://test.tresor/other",
                "key",
                "list",
            ],
            false,
        )
    });
    assert_eq!(impostor.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&impostor.stderr);
    assert!(stderr.contains("spiffe://test.tresor/other"), "{stderr}");
}
