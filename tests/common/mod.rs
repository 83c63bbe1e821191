//! Test harness: starts the real tresor server on an ephemeral port with
//! certificates generated here, and connects real tonic clients over mTLS.

#![allow(dead_code)]

pub mod cli;
pub mod metrics;
pub mod moto;
pub mod postgres;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity as TlsIdentity};

use tresor::config::{Settings, TlsMaterial, TlsSettings};
use tresor::identity::Identity;
use tresor::master_key::FileMasterKey;
use tresor::pki::{CertificateAuthority, CertifiedKey};
use tresor::service::ServiceOptions;
use tresor_proto::v1::admin_client::AdminClient;
use tresor_proto::v1::crypto_client::CryptoClient;

pub use tresor_proto::v1 as proto;

/// The admin identity every test server trusts.
pub const ADMIN: &str = "spiffe://test.tresor/admin";
/// Two service identities.
pub const BILLING: &str = "spiffe://test.tresor/billing";
pub const SHIPPING: &str = "spiffe://test.tresor/shipping";

/// Files a server needs, kept across restarts.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub ca: CertificateAuthority,
    pub server_cert: CertifiedKey,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::generate("tresor test CA").expect("CA");
        let server_cert = ca
            .issue_server(
                &["localhost".to_owned()],
                &["127.0.0.1".parse().expect("ip")],
            )
            .expect("server cert");
        FileMasterKey::generate(&dir.path().join("master.key")).expect("master key");
        Self {
            dir,
            ca,
            server_cert,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn master_key_file(&self) -> PathBuf {
        self.dir.path().join("master.key")
    }

    pub fn settings(&self, max_plaintext_bytes: usize) -> Settings {
        self.settings_with(
            max_plaintext_bytes,
            tresor::master_key::MasterKeySpec::File(self.master_key_file()),
        )
    }

    pub fn settings_with(
        &self,
        max_plaintext_bytes: usize,
        master_key: tresor::master_key::MasterKeySpec,
    ) -> Settings {
        Settings {
            listen: "127.0.0.1:0".parse().expect("addr"),
            store: tresor::config::StoreSpec::Sled(self.data_dir()),
            master_key,
            tls: TlsSettings::fixed(TlsMaterial::new(
                self.server_cert.cert_pem.clone(),
                self.server_cert.key_pem.clone(),
                self.ca.cert_pem(),
            )),
            transport: tresor::config::TransportLimits::default(),
            service: ServiceOptions {
                max_plaintext_bytes,
                dek_cache_capacity: NonZeroUsize::new(100).expect("nonzero"),
                rewrap_batch_size: 7,
                audit: Some(tresor::service::AuditSettings::in_data_dir(
                    &self.data_dir(),
                )),
                ..ServiceOptions::new(BTreeSet::from([Identity::parse(ADMIN).expect("admin")]))
            },
            backups: None,
            metrics_listen: None,
            alert_webhook: None,
        }
    }

    /// Writes the files the `tresor serve` binary needs; returns its flags.
    pub fn serve_flags(&self) -> Vec<String> {
        let dir = self.dir.path();
        self.server_cert
            .save(&dir.join("server"), true)
            .expect("save server cert");
        std::fs::write(dir.join("client-ca.pem"), self.ca.cert_pem()).expect("write ca");
        let p = |path: &Path| path.display().to_string();
        vec![
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            p(&self.data_dir()),
            "--master-key-file".into(),
            p(&self.master_key_file()),
            "--tls-cert".into(),
            p(&dir.join("server/cert.pem")),
            "--tls-key".into(),
            p(&dir.join("server/key.pem")),
            "--client-ca".into(),
            p(&dir.join("client-ca.pem")),
            "--admin".into(),
            ADMIN.into(),
        ]
    }
}

/// A running in-process server with its own fixture.
pub struct TestServer {
    pub addr: SocketAddr,
    pub fixture: Fixture,
    server: Replica,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Fixture::new(), tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES).await
    }

    pub async fn start_with(fixture: Fixture, max_plaintext_bytes: usize) -> Self {
        let settings = fixture.settings(max_plaintext_bytes);
        Self::start_with_settings(fixture, settings).await
    }

    pub async fn start_with_settings(fixture: Fixture, settings: Settings) -> Self {
        let server = Replica::start(settings).await;
        Self {
            addr: server.addr,
            fixture,
            server,
        }
    }

    /// A server whose audit log fails every write, as on a full disk,
    /// while the returned switch is on (it starts off).
    pub async fn start_with_failing_audit() -> (Self, std::sync::Arc<std::sync::atomic::AtomicBool>)
    {
        let (server, disk_full, _) = Self::start_with_failing_audit_and_metrics(None).await;
        (server, disk_full)
    }

    /// As [`Self::start_with_failing_audit`], serving metrics on `metrics`
    /// when given.
    pub async fn start_with_failing_audit_and_metrics(
        metrics: Option<SocketAddr>,
    ) -> (
        Self,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
        Option<SocketAddr>,
    ) {
        let fixture = Fixture::new();
        let disk_full = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
        settings.metrics_listen = metrics;
        if let Some(audit) = &mut settings.service.audit {
            audit.options.fail_writes = Some(disk_full.clone());
        }
        (
            Self::start_with_settings(fixture, settings).await,
            disk_full,
            metrics,
        )
    }

    /// A fresh server with `key_id` created for BILLING; returns it with
    /// an admin client and a BILLING client.
    pub async fn with_billing_key(key_id: &str) -> (Self, Clients, Clients) {
        let server = Self::start().await;
        let (admin, billing) = server.billing_key(key_id).await;
        (server, admin, billing)
    }

    /// Creates `key_id` for BILLING as the admin; returns an admin client
    /// and a BILLING client.
    pub async fn billing_key(&self, key_id: &str) -> (Clients, Clients) {
        let mut admin = self.admin().await;
        admin.create_key(key_id, BILLING).await;
        let billing = self.client(BILLING).await;
        (admin, billing)
    }

    /// Stops the server (graceful drain) and returns its files.
    pub async fn stop(self) -> Fixture {
        self.server.stop().await;
        self.fixture
    }

    pub async fn client(&self, identity: &str) -> Clients {
        self.fixture.client_at(self.addr, identity).await
    }

    pub async fn admin(&self) -> Clients {
        self.client(ADMIN).await
    }
}

/// Clients of both services over one channel.
#[derive(Clone)]
pub struct Clients {
    pub channel: Channel,
    pub crypto: CryptoClient<Channel>,
    pub admin: AdminClient<Channel>,
}

/// Connects over mTLS (or TLS without a client certificate when `cert` is
/// `None`).
pub async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
    cert: Option<&CertifiedKey>,
) -> Result<Clients, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some(cert) = cert {
        tls = tls.identity(TlsIdentity::from_pem(
            &cert.cert_pem,
            cert.key_pem.as_bytes(),
        ));
    }
    let channel = Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .expect("uri")
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(Clients {
        crypto: CryptoClient::new(channel.clone()),
        admin: AdminClient::new(channel.clone()),
        channel,
    })
}

pub fn ctx(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl Clients {
    pub async fn create_key(&mut self, key_id: &str, owner: &str) -> proto::KeyInfo {
        self.admin
            .create_key(proto::CreateKeyRequest {
                key_id: key_id.into(),
                owner: owner.into(),
                description: "test".into(),
                ..Default::default()
            })
            .await
            .expect("create key")
            .into_inner()
    }

    pub async fn rotate(&mut self, key_id: &str) -> Result<proto::KeyInfo, tonic::Status> {
        self.admin
            .rotate_key(proto::KeyRequest {
                key_id: key_id.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn encrypt(
        &mut self,
        key_id: &str,
        plaintext: &[u8],
        context: &[(&str, &str)],
    ) -> Result<proto::EncryptResponse, tonic::Status> {
        self.crypto
            .encrypt(proto::EncryptRequest {
                key_id: key_id.into(),
                plaintext: plaintext.to_vec(),
                context: ctx(context),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn decrypt(
        &mut self,
        key_id: &str,
        ciphertext: &[u8],
        context: &[(&str, &str)],
    ) -> Result<proto::DecryptResponse, tonic::Status> {
        self.crypto
            .decrypt(proto::DecryptRequest {
                key_id: key_id.into(),
                ciphertext: ciphertext.to_vec(),
                context: ctx(context),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Encrypts `plaintext` under `key_id`, decrypts the result and checks
    /// it is `plaintext` again; the first failing call's status otherwise.
    pub async fn round_trip(
        &mut self,
        key_id: &str,
        plaintext: &[u8],
        context: &[(&str, &str)],
    ) -> Result<(), tonic::Status> {
        let sealed = self.encrypt(key_id, plaintext, context).await?;
        let opened = self.decrypt(key_id, &sealed.ciphertext, context).await?;
        if opened.plaintext != plaintext {
            return Err(tonic::Status::data_loss(
                "decrypt returned another plaintext",
            ));
        }
        Ok(())
    }

    /// GetStatus as this client; panics if the call fails.
    pub async fn status(&mut self) -> proto::SealStatus {
        self.admin
            .get_status(proto::StatusRequest {})
            .await
            .expect("status")
            .into_inner()
    }

    /// Seal as this client; panics if the call fails.
    pub async fn seal(&mut self) -> proto::SealStatus {
        self.admin
            .seal(proto::SealRequest {})
            .await
            .expect("seal")
            .into_inner()
    }

    /// Unseal (no approval token) as this client; panics if the call fails.
    pub async fn unseal(&mut self) -> proto::SealStatus {
        self.admin
            .unseal(proto::UnsealRequest::default())
            .await
            .expect("unseal")
            .into_inner()
    }

    /// SetMinDecryptionVersion as this client; panics if the call fails.
    pub async fn set_min_version(&mut self, key_id: &str, version: u32) -> proto::KeyInfo {
        self.admin
            .set_min_decryption_version(proto::SetMinDecryptionVersionRequest {
                key_id: key_id.into(),
                version,
            })
            .await
            .expect("set the minimum decryption version")
            .into_inner()
    }

    /// DestroyKeyVersion as this client.
    pub async fn destroy_version(
        &mut self,
        key_id: &str,
        version: u32,
    ) -> Result<proto::KeyInfo, tonic::Status> {
        self.admin
            .destroy_key_version(proto::DestroyKeyVersionRequest {
                key_id: key_id.into(),
                version,
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Decrypts `ciphertext` as this client and asserts it opens to
    /// `plaintext`; panics if the call fails.
    pub async fn assert_decrypts(
        &mut self,
        key_id: &str,
        ciphertext: &[u8],
        context: &[(&str, &str)],
        plaintext: &[u8],
    ) {
        let opened = self
            .decrypt(key_id, ciphertext, context)
            .await
            .unwrap_or_else(|status| panic!("decrypt under {key_id}: {status:?}"));
        assert_eq!(opened.plaintext, plaintext, "decrypted under {key_id}");
    }

    pub async fn key(&mut self, key_id: &str) -> Result<proto::KeyInfo, tonic::Status> {
        self.admin
            .get_key(proto::KeyRequest {
                key_id: key_id.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }
}

/// Polls the gRPC health service over `clients`' channel every `every`
/// until `service` ("" for the whole server) reports `want`; fails once
/// `within` has passed.
pub async fn wait_for_health(
    clients: &Clients,
    service: &str,
    want: tonic_health::ServingStatus,
    every: std::time::Duration,
    within: std::time::Duration,
) {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let mut health = HealthClient::new(clients.channel.clone());
    let started = std::time::Instant::now();
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status;
        if status == want as i32 {
            return;
        }
        assert!(
            started.elapsed() < within,
            "health of {service:?} stayed {status}, wanted {want:?}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Encrypts `plaintext` under `key_id` with `encrypter`, decrypts it with
/// `decrypter` (another replica, or another client), and asserts it comes
/// back; panics if either call fails.
pub async fn assert_round_trip(
    encrypter: &mut Clients,
    decrypter: &mut Clients,
    key_id: &str,
    plaintext: &[u8],
) {
    let sealed = encrypter
        .encrypt(key_id, plaintext, &[])
        .await
        .expect("encrypt");
    decrypter
        .assert_decrypts(key_id, &sealed.ciphertext, &[], plaintext)
        .await;
}

/// Asserts a call failed with `code`, and returns the status.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
) -> tonic::Status {
    match result {
        Ok(value) => panic!("expected {code:?}, got Ok({value:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            status
        }
    }
}

/// The records of an audit file, as JSON.
pub fn audit_records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("read audit file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect()
}

/// Runs `tresor audit verify` (the real binary) on the fixture's keystore
/// and `files` (none: the whole log); returns (exit code, output).
pub fn audit_verify(fixture: &Fixture, files: &[PathBuf]) -> (i32, String) {
    let out = cli::run(
        cli::command(["audit", "verify", "--data-dir"])
            .arg(fixture.data_dir())
            .arg("--master-key-file")
            .arg(fixture.master_key_file())
            .args(files),
    );
    cli::code_and_text(&out)
}

/// The `tresor serve` binary as a child process.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    /// Every line it wrote to stderr so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// A server a test forgot to stop (or a panicking test) does not outlive it.
impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The listening address in a log line, pretty (`addr=IP:PORT`) or JSON
/// (`"addr":"IP:PORT"`).
pub fn logged_addr(line: &str, field: &str) -> Option<SocketAddr> {
    let pretty = format!(" {field}=");
    let json = format!("\"{field}\":\"");
    line.split(pretty.as_str())
        .nth(1)
        .or_else(|| line.split(json.as_str()).nth(1))
        .and_then(|rest| rest.split(|c: char| c.is_whitespace() || c == '"').next())
        .and_then(|addr| addr.parse::<SocketAddr>().ok())
}

impl ServeProcess {
    /// `tresor serve` with the fixture's flags and a local master key.
    pub fn start(fixture: &Fixture) -> Self {
        Self::start_with(&fixture.serve_flags(), &[])
    }

    /// `tresor serve` with these flags and extra environment; waits until it
    /// reports its listening address.
    pub fn start_with(flags: &[String], envs: &[(&str, &str)]) -> Self {
        Self::start_with_stdout(flags, envs, std::process::Stdio::null())
    }

    /// [`ServeProcess::start_with`], its stdout going to `stdout`.
    pub fn start_with_stdout(
        flags: &[String],
        envs: &[(&str, &str)],
        stdout: std::process::Stdio,
    ) -> Self {
        use std::io::BufRead;
        let mut child = cli::command(flags)
            .env("TRESOR_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(stdout)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn tresor serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                kept.lock().expect("log").push(line.clone());
                let addr = logged_addr(&line, "addr");
                let _ = tx.send(addr.ok_or(line));
            }
        });
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(std::time::Duration::from_secs(60)) {
                Ok(Ok(addr)) => return Self { child, addr, log },
                Ok(Err(line)) => seen.push(line),
                Err(_) => panic!(
                    "tresor serve did not report its address:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }

    /// The log lines so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// The address of the metrics listener (`--metrics-listen`), once the
    /// server has logged it.
    pub async fn metrics_addr(&self) -> SocketAddr {
        eventually("the metrics address", || async {
            self.log_lines()
                .iter()
                .find_map(|line| logged_addr(line, "metrics_addr"))
        })
        .await
    }

    /// SIGTERM, then waits for a graceful exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        self.child.wait().expect("wait")
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

/// A server running in this process on `settings` (also a second replica
/// on a shared keystore).
pub struct Replica {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), tresor::server::ServerError>>>,
}

impl Replica {
    pub async fn start(settings: Settings) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(tresor::server::run(listener, settings, async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task").expect("server result");
        }
    }
}

impl Fixture {
    /// Settings for a replica on a shared PostgreSQL keystore.
    pub fn postgres_settings(&self, url: &str, replica: &str) -> Settings {
        let mut settings = self.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
        settings.store = tresor::config::StoreSpec::Postgres {
            url: url.to_owned(),
            replica: replica.to_owned(),
            ca_pem: None,
        };
        // Each replica writes its own audit log.
        settings.service.audit = Some(tresor::service::AuditSettings {
            options: tresor::audit::AuditOptions::at(
                self.dir
                    .path()
                    .join(format!("audit-{replica}"))
                    .join("audit.jsonl"),
            ),
            log_name: replica.to_owned(),
        });
        settings
    }

    /// Replicas "a" and "b" on the shared PostgreSQL keystore at `url`,
    /// started in that order.
    pub async fn two_replicas(&self, url: &str) -> (Replica, Replica) {
        let a = Replica::start(self.postgres_settings(url, "a")).await;
        let b = Replica::start(self.postgres_settings(url, "b")).await;
        (a, b)
    }

    /// The SDK client for `identity` against the server at `addr`.
    pub async fn sdk_at(&self, addr: SocketAddr, identity: &str) -> tresor_client::Client {
        let cert = self.ca.issue_client(identity).expect("client cert");
        tresor_client::Client::builder()
            .endpoint(format!("https://localhost:{}", addr.port()))
            .ca(self.ca.cert_pem())
            .identity(cert.cert_pem, cert.key_pem)
            .build()
            .await
            .expect("sdk client")
    }

    /// Clients for `identity` against the server at `addr`.
    pub async fn client_at(&self, addr: SocketAddr, identity: &str) -> Clients {
        let cert = self.ca.issue_client(identity).expect("client cert");
        connect(addr, &self.ca.cert_pem(), Some(&cert))
            .await
            .expect("connect")
    }
}

/// A clock the test moves by hand, for the server's lifecycle decisions
/// (rotation periods, deletion windows).
#[derive(Debug)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, seconds: i64) {
        self.0
            .fetch_add(seconds, std::sync::atomic::Ordering::SeqCst);
    }
}

impl tresor::service::Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Puts `settings` on a manual clock starting at the real time, looking
/// for due lifecycle work every 100 ms; returns the clock.
pub fn manual_lifecycle(settings: &mut Settings) -> std::sync::Arc<ManualClock> {
    let now = tresor::service::Clock::now(&tresor::service::SystemClock);
    let clock = std::sync::Arc::new(ManualClock(std::sync::atomic::AtomicI64::new(now)));
    settings.service.lifecycle = tresor::service::LifecycleOptions {
        lifecycle_check_interval: std::time::Duration::from_millis(100),
        clock: tresor::service::SharedClock(clock.clone()),
        ..Default::default()
    };
    clock
}

/// Polls `check` until it returns `Some`, for up to 30 s (a generous bound
/// for background work that should take well under a second).
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_within(what, std::time::Duration::from_secs(30), check).await
}

/// Polls `check` every 20 ms until it returns `Some`; fails after `within`.
pub async fn eventually_within<T, F, Fut>(
    what: &str,
    within: std::time::Duration,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Whether any file under `dir` holds `needle` (the proof that erased key
/// material left a store's files).
pub fn found_in_files(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).expect("read dir").any(|entry| {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found_in_files(&path, needle)
        } else {
            std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|window| window == needle))
        }
    })
}

/// Copies the folder `from` into `to` (made if missing), recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
