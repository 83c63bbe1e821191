//! Live TLS material (issue 20): the server's files reloaded while it
//! serves, revocation lists, the trust-domain allowlist, the SPIFFE
//! Workload API, and SDK clients that follow their own rotating files.
//! Real servers, real TLS; served certificates are read from handshakes.

mod reload;
mod revocation;
mod rotation_load;
mod sdk;
mod spiffe;

use crate::common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{ADMIN, Fixture, TestServer, eventually_within};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tresor::config::{TlsFiles, TlsReload, TlsSource};
use tresor::identity::TrustDomains;
use tresor::pki::CertifiedKey;
use x509_parser::prelude::{FromDer, X509Certificate};

pub const KEY: &str = "billing/reload";
/// Long enough for any reload the tests wait for, on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The TLS files a test server follows.
pub struct Files {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
    /// One revocation list file per [`Watched::crls`] entry.
    pub crls: Vec<PathBuf>,
}

impl Files {
    /// Rewrites the certificate, then the key: two steps, as a careless
    /// deployment would, so the watcher may see the new certificate with
    /// the old key in between.
    pub fn install(&self, server_cert: &CertifiedKey) {
        std::fs::write(&self.cert, &server_cert.cert_pem).expect("write cert");
        std::thread::sleep(Duration::from_millis(250));
        std::fs::write(&self.key, server_cert.key_pem.as_bytes()).expect("write key");
    }
}

/// What a watching test server starts with, beyond the fixture's files.
#[derive(Default)]
pub struct Watched {
    /// Contents of `--client-crl` files.
    pub crls: Vec<Vec<u8>>,
    /// `--trust-domain` names.
    pub trust_domains: Vec<&'static str>,
    /// The client CA bundle (default: the fixture's CA).
    pub client_ca_pem: Option<String>,
}

/// A server that watches its TLS files every 100 ms.
pub async fn server_watching_its_files() -> (TestServer, Files) {
    server_watching(Fixture::new(), Watched::default()).await
}

/// A server of `fixture` that watches its TLS files every 100 ms, started
/// with `watched`.
pub async fn server_watching(fixture: Fixture, watched: Watched) -> (TestServer, Files) {
    let dir = fixture.dir.path().join("tls");
    std::fs::create_dir_all(&dir).expect("tls dir");
    let tls_files = TlsFiles {
        tls_cert: dir.join("cert.pem"),
        tls_key: dir.join("key.pem"),
        client_ca: dir.join("ca.pem"),
        client_crls: (0..watched.crls.len())
            .map(|n| dir.join(format!("crl-{n}")))
            .collect(),
    };
    std::fs::write(&tls_files.tls_cert, &fixture.server_cert.cert_pem).expect("cert");
    std::fs::write(&tls_files.tls_key, fixture.server_cert.key_pem.as_bytes()).expect("key");
    let client_ca = watched
        .client_ca_pem
        .unwrap_or_else(|| fixture.ca.cert_pem());
    std::fs::write(&tls_files.client_ca, client_ca).expect("ca");
    for (path, crl) in tls_files.client_crls.iter().zip(&watched.crls) {
        std::fs::write(path, crl).expect("crl");
    }
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    settings.tls.source = TlsSource::Files {
        material: tls_files.read().expect("read the TLS files"),
        reload: Some(TlsReload {
            files: tls_files.clone(),
            watch_every: Some(Duration::from_millis(100)),
        }),
    };
    settings.tls.trust_domains = TrustDomains::parse(&watched.trust_domains).expect("domains");
    let server = TestServer::start_with_settings(fixture, settings).await;
    let files = Files {
        cert: tls_files.tls_cert,
        key: tls_files.tls_key,
        client_ca: tls_files.client_ca,
        crls: tls_files.client_crls,
    };
    (server, files)
}

/// A new server certificate for localhost and 127.0.0.1 from `ca`.
pub fn new_server_cert(ca: &tresor::pki::CertificateAuthority) -> CertifiedKey {
    ca.issue_server(
        &["localhost".to_owned()],
        &["127.0.0.1".parse().expect("ip")],
    )
    .expect("server cert")
}

/// Installs a new server certificate and waits until new handshakes get it.
pub async fn rotate_certificate(server: &TestServer, files: &Files) {
    let next = new_server_cert(&server.fixture.ca);
    files.install(&next);
    until_served(server, &serial_of_pem(&next.cert_pem)).await;
}

pub fn serial_of(cert_der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(cert_der).expect("x509");
    cert.raw_serial_as_string()
}

/// The serial number's bytes, as a revocation list names it.
pub fn serial_bytes_of_pem(cert_pem: &str) -> Vec<u8> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("pem");
    let (_, cert) = X509Certificate::from_der(&der).expect("x509");
    cert.raw_serial().to_vec()
}

pub fn not_after_of_pem(cert_pem: &str) -> i64 {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("pem");
    let (_, cert) = X509Certificate::from_der(&der).expect("x509");
    cert.validity().not_after.timestamp()
}

pub fn serial_of_pem(cert_pem: &str) -> String {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("pem");
    serial_of(&der)
}

/// A TLS client (ALPN h2) verifying servers with `root_pem` and presenting
/// `client`.
pub fn connector(root_pem: &str, client: &CertifiedKey) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for root in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(root.expect("root pem")).expect("root");
    }
    let chain = vec![CertificateDer::from_pem_slice(client.cert_pem.as_bytes()).expect("cert")];
    let key = PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).expect("key");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .expect("client auth");
    config.alpn_protocols = vec![b"h2".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// The serial of the certificate the server at `addr` presents to a new
/// handshake, verified with `root_pem`, from a client presenting `client`.
pub async fn served_serial_with(
    addr: SocketAddr,
    root_pem: &str,
    client: &CertifiedKey,
) -> std::io::Result<String> {
    let connector = connector(root_pem, client);
    let tcp = TcpStream::connect(addr).await?;
    let tls = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await?;
    let served = tls.get_ref().1.peer_certificates().expect("server chain");
    Ok(serial_of(&served[0]))
}

/// The serial of the certificate the server at `addr` presents to a new
/// handshake (a client certificate of `identity` from `fixture`'s CA).
pub async fn served_serial_at(addr: SocketAddr, fixture: &Fixture, identity: &str) -> String {
    let client = fixture.ca.issue_client(identity).expect("client cert");
    served_serial_with(addr, &fixture.ca.cert_pem(), &client)
        .await
        .expect("handshake")
}

/// [`served_serial_at`] of an in-process server.
pub async fn served_serial(server: &TestServer, identity: &str) -> String {
    served_serial_at(server.addr, &server.fixture, identity).await
}

/// Waits until a new handshake at `addr` is served the certificate with
/// `serial`.
pub async fn until_served_at(addr: SocketAddr, fixture: &Fixture, serial: &str) {
    let what = format!("a handshake served serial {serial}");
    eventually_within(&what, PATIENCE, || async {
        (served_serial_at(addr, fixture, ADMIN).await == serial).then_some(())
    })
    .await;
}

/// [`until_served_at`] of an in-process server.
pub async fn until_served(server: &TestServer, serial: &str) {
    until_served_at(server.addr, &server.fixture, serial).await;
}

/// The audit events named `event` written so far (a line being written
/// is skipped).
pub fn audit_events(server: &TestServer, event: &str) -> Vec<serde_json::Value> {
    let file = tresor::service::default_audit_file(&server.fixture.data_dir());
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|record| record["operation"] == event)
        .collect()
}

/// Waits until `count` events `event` are in the audit log.
pub async fn until_audited(
    server: &TestServer,
    event: &str,
    count: usize,
) -> Vec<serde_json::Value> {
    let what = format!("{count} {event} audit events");
    eventually_within(&what, PATIENCE, || async {
        let events = audit_events(server, event);
        (events.len() >= count).then_some(events)
    })
    .await
}

/// Encrypts and decrypts one message with [`KEY`].
pub async fn round_trip_works(clients: &mut common::Clients) {
    let sealed = clients
        .encrypt(KEY, b"still here", &[])
        .await
        .expect("encrypt");
    let opened = clients
        .decrypt(KEY, &sealed.ciphertext, &[])
        .await
        .expect("decrypt");
    assert_eq!(opened.plaintext, b"still here");
}

/// Whether a client with `cert` (verifying the server with `root_pem`)
/// connects to `addr` and encrypts with [`KEY`].
pub async fn encrypts_with(addr: SocketAddr, root_pem: &str, cert: &CertifiedKey) -> bool {
    match common::connect(addr, root_pem, Some(cert)).await {
        Ok(mut clients) => clients.encrypt(KEY, b"x", &[]).await.is_ok(),
        Err(_) => false,
    }
}

/// Whether the server at `addr` completes a handshake with a client
/// presenting `client` (verifying the server with `root_pem`): the server
/// then speaks first (its HTTP/2 settings), while a refused client
/// certificate gets an alert instead. Refusals are decided at the
/// handshake, before any call.
pub async fn handshake_accepted(addr: SocketAddr, root_pem: &str, client: &CertifiedKey) -> bool {
    handshake_accepted_with(addr, &connector(root_pem, client)).await
}

/// [`handshake_accepted`] with a given client configuration (which keeps
/// its TLS sessions for resumption between calls).
pub async fn handshake_accepted_with(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
) -> bool {
    use tokio::io::AsyncReadExt;

    let tcp = TcpStream::connect(addr).await.expect("connect");
    let Ok(mut tls) = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
    else {
        return false;
    };
    let mut first = [0u8; 9];
    match tokio::time::timeout(PATIENCE, tls.read(&mut first)).await {
        Ok(Ok(read)) => read > 0,
        Ok(Err(_)) => false,
        Err(_) => panic!("the server neither spoke nor refused within {PATIENCE:?}"),
    }
}

/// Client tasks calling while material rotates: each returns what went
/// wrong; [`Load::stop`] ends them and gathers it.
pub struct Load {
    /// Set when the callers must stop.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    /// Calls made so far, by all callers.
    pub calls: Arc<std::sync::atomic::AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Load {
    pub fn new() -> Self {
        Self {
            stop: Arc::default(),
            calls: Arc::default(),
            tasks: Vec::new(),
        }
    }

    /// Whether callers should go on.
    pub fn running(stop: &std::sync::atomic::AtomicBool) -> bool {
        !stop.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn spawn(&mut self, caller: impl Future<Output = Vec<String>> + Send + 'static) {
        self.tasks.push(tokio::spawn(caller));
    }

    /// Stops the callers; returns the calls made and every problem.
    pub async fn stop(self) -> (usize, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut problems = Vec::new();
        for task in self.tasks {
            problems.extend(task.await.expect("caller"));
        }
        (
            self.calls.load(std::sync::atomic::Ordering::Relaxed),
            problems,
        )
    }
}

/// Round `round` of a caller: a round trip with [`KEY`], every third one
/// through a new connection to `addr` (verifying the server with
/// `root_pem`, presenting `cert`), the others through `established`.
pub async fn round_trip_in_round(
    round: usize,
    established: &mut common::Clients,
    addr: SocketAddr,
    root_pem: &str,
    cert: &CertifiedKey,
) -> Result<(), String> {
    let result = if round.is_multiple_of(3) {
        match common::connect(addr, root_pem, Some(cert)).await {
            Ok(mut fresh) => fresh.round_trip(KEY, b"rotating", &[]).await,
            Err(e) => Err(tonic::Status::unavailable(e.to_string())),
        }
    } else {
        established.round_trip(KEY, b"rotating", &[]).await
    };
    result.map_err(|status| format!("call failed: {status}"))
}
