//! [`WorkloadApi`]: the Workload API server a test starts, and the handle
//! through which it rotates SVIDs, rolls the CA and federates.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;

use crate::ca::{Svid, TrustDomainCa, trust_domain_name};
use crate::proto::spiffe_workload_api_server::SpiffeWorkloadApiServer;
use crate::proto::{X509BundlesResponse, X509svid, X509svidResponse};
use crate::service::{Material, Published, WorkloadService, require_security_header};

/// The socket's file name inside the directory given to
/// [`WorkloadApi::start`] (SPIRE's agent also names it `api.sock`).
pub const SOCKET_NAME: &str = "api.sock";

/// A SPIFFE Workload API server on a Unix socket, behaving towards its
/// clients like a SPIRE agent that has one registration entry for the
/// calling workload.
///
/// It owns the CA of its trust domain ([`TrustDomainCa`]) and the one SVID it
/// hands out. `FetchX509SVID` streams that SVID (certificate, PKCS#8 key)
/// with its trust domain's bundle and the federated bundles;
/// `FetchX509Bundles` streams all bundles keyed by trust domain SPIFFE ID
/// (`spiffe://example.test`, as SPIRE keys them). Every change made through
/// this handle ([`WorkloadApi::rotate`], [`WorkloadApi::roll_ca`],
/// [`WorkloadApi::retire_old_cas`], [`WorkloadApi::add_federated_bundle`],
/// [`WorkloadApi::remove_federated_bundle`]) is pushed at once on every open
/// stream. Calls without the `workload.spiffe.io: true` header are refused
/// with `INVALID_ARGUMENT`; the JWT methods answer `UNIMPLEMENTED`.
///
/// Dropping the handle, or [`WorkloadApi::shutdown`], ends every open stream,
/// stops the server and removes the socket file.
#[derive(Debug)]
pub struct WorkloadApi {
    state: Mutex<State>,
    published: watch::Sender<Published>,
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

/// What the server hands out; [`State::material`] renders it.
#[derive(Debug)]
struct State {
    spiffe_id: String,
    lifetime: Duration,
    /// The trust domain's CAs, oldest first; the last one issues.
    cas: Vec<TrustDomainCa>,
    svid: Svid,
    /// Foreign trust domains' bundles (concatenated DER) by SPIFFE ID.
    federated: BTreeMap<String, Vec<u8>>,
}

impl State {
    fn current_ca(&self) -> &TrustDomainCa {
        self.cas.last().expect("a trust domain always has a CA")
    }

    /// The trust domain's bundle: every CA certificate, concatenated DER.
    fn bundle_der(&self) -> Vec<u8> {
        self.cas
            .iter()
            .flat_map(|ca| ca.cert_der().to_vec())
            .collect()
    }

    fn material(&self) -> Material {
        let bundle = self.bundle_der();
        let federated: HashMap<String, Vec<u8>> = self.federated.clone().into_iter().collect();
        let mut bundles = federated.clone();
        bundles.insert(self.current_ca().trust_domain_id(), bundle.clone());
        Material {
            svid: X509svidResponse {
                svids: vec![X509svid {
                    spiffe_id: self.svid.spiffe_id().to_owned(),
                    x509_svid: self.svid.cert_der().to_vec(),
                    x509_svid_key: self.svid.key_der().to_vec(),
                    bundle,
                    hint: String::new(),
                }],
                crl: Vec::new(),
                federated_bundles: federated,
            },
            bundles: X509BundlesResponse {
                crl: Vec::new(),
                bundles,
            },
        }
    }
}

impl WorkloadApi {
    /// Creates a CA for `trust_domain` (a name like `example.test`, or
    /// `spiffe://example.test`), issues the first SVID for `spiffe_id`
    /// valid for `lifetime` (each later one gets the same lifetime), and
    /// serves the Workload API on `dir/api.sock` in a background task of the
    /// current tokio runtime. A stale socket file there is replaced.
    ///
    /// # Panics
    ///
    /// If `trust_domain` is not a trust domain name, `spiffe_id` is not a
    /// SPIFFE ID with a path in that trust domain, or the socket cannot be
    /// bound (the path must fit in a Unix socket address, about 100 bytes).
    /// Outside a tokio runtime.
    pub async fn start(
        dir: &Path,
        trust_domain: &str,
        spiffe_id: &str,
        lifetime: Duration,
    ) -> Self {
        let trust_domain = trust_domain_name(trust_domain);
        let path = spiffe_id
            .strip_prefix(&format!("spiffe://{trust_domain}/"))
            .unwrap_or_default();
        assert!(
            !path.is_empty(),
            "{spiffe_id:?} is not a SPIFFE ID with a path in the trust domain {trust_domain}"
        );
        let ca = TrustDomainCa::new(&trust_domain);
        let state = State {
            spiffe_id: spiffe_id.to_owned(),
            lifetime,
            svid: ca.issue_svid(spiffe_id, lifetime),
            cas: vec![ca],
            federated: BTreeMap::new(),
        };
        let (published, receiver) = watch::channel(Some(Arc::new(state.material())));

        let socket = std::path::absolute(dir)
            .expect("an absolute socket directory")
            .join(SOCKET_NAME);
        match std::fs::remove_file(&socket) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                panic!("removing the stale socket {}: {e}", socket.display())
            }
            _ => {}
        }
        let listener = UnixListener::bind(&socket)
            .unwrap_or_else(|e| panic!("binding {}: {e}", socket.display()));
        let service = SpiffeWorkloadApiServer::with_interceptor(
            WorkloadService::new(receiver),
            require_security_header,
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(
            Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                    // Sent, or the handle is gone: stop either way.
                    let _ = stopped.await;
                }),
        );
        Self {
            state: Mutex::new(state),
            published,
            socket,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The endpoint in the form `SPIFFE_ENDPOINT_SOCKET` takes:
    /// `unix:///absolute/path/api.sock`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The socket's absolute path.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The trust domain's name, e.g. `example.test`.
    pub fn trust_domain(&self) -> String {
        self.lock().current_ca().trust_domain().to_owned()
    }

    /// The SPIFFE ID of the SVID served.
    pub fn spiffe_id(&self) -> String {
        self.lock().spiffe_id.clone()
    }

    /// The SVID served now.
    pub fn svid(&self) -> Svid {
        self.lock().svid.clone()
    }

    /// The serial number of the SVID served now, in x509-parser's
    /// `raw_serial_as_string()` form (lowercase hex bytes joined by `:`).
    pub fn serial_hex(&self) -> String {
        self.lock().svid.serial_hex().to_owned()
    }

    /// Issues a new SVID (new key, new serial, validity restarting now) for
    /// the same SPIFFE ID from the current CA, and pushes it on every open
    /// `FetchX509SVID` stream. Returns its serial in the form of
    /// [`WorkloadApi::serial_hex`].
    pub fn rotate(&self) -> String {
        let mut state = self.lock();
        state.svid = state
            .current_ca()
            .issue_svid(&state.spiffe_id, state.lifetime);
        self.publish(&state);
        state.svid.serial_hex().to_owned()
    }

    /// Starts a CA rollover: adds a new CA for the trust domain, from which
    /// every later SVID is issued ([`WorkloadApi::rotate`],
    /// [`WorkloadApi::issue_client`]). The bundle pushed on both streams then
    /// holds the old CA(s) and the new one, so certificates from either
    /// verify; the SVID served is unchanged until the next rotate.
    /// [`WorkloadApi::retire_old_cas`] ends the overlap. Returns the new CA
    /// certificate, PEM.
    pub fn roll_ca(&self) -> String {
        let mut state = self.lock();
        let trust_domain = state.current_ca().trust_domain().to_owned();
        state.cas.push(TrustDomainCa::new(&trust_domain));
        self.publish(&state);
        state.current_ca().cert_pem()
    }

    /// Ends a CA rollover: drops every CA but the current one from the
    /// bundle and pushes the change. Certificates issued by the dropped CAs
    /// (the SVID served, if not rotated since [`WorkloadApi::roll_ca`]) no
    /// longer verify against the bundle.
    pub fn retire_old_cas(&self) {
        let mut state = self.lock();
        let keep = state.cas.len() - 1;
        state.cas.drain(..keep);
        self.publish(&state);
    }

    /// Federates with `trust_domain` (a name or its SPIFFE ID): from now on
    /// both streams carry `bundle_der` (one or more CA certificates,
    /// concatenated DER) for it, replacing any earlier bundle of that trust
    /// domain.
    ///
    /// # Panics
    ///
    /// If `trust_domain` is not a trust domain name, or is this server's own.
    pub fn add_federated_bundle(&self, trust_domain: &str, bundle_der: Vec<u8>) {
        let id = format!("spiffe://{}", trust_domain_name(trust_domain));
        let mut state = self.lock();
        assert_ne!(
            id,
            state.current_ca().trust_domain_id(),
            "a trust domain does not federate with itself"
        );
        state.federated.insert(id, bundle_der);
        self.publish(&state);
    }

    /// Federates with the trust domain of `ca`, trusting its certificate:
    /// [`WorkloadApi::add_federated_bundle`] with `ca`'s DER.
    pub fn federate_with(&self, ca: &TrustDomainCa) {
        self.add_federated_bundle(ca.trust_domain(), ca.cert_der().to_vec());
    }

    /// Stops federating with `trust_domain` (a name or its SPIFFE ID) and
    /// pushes the bundles without it. Nothing happens if there was no
    /// federation.
    pub fn remove_federated_bundle(&self, trust_domain: &str) {
        let id = format!("spiffe://{}", trust_domain_name(trust_domain));
        let mut state = self.lock();
        if state.federated.remove(&id).is_some() {
            self.publish(&state);
        }
    }

    /// The trust domain's CA certificates as served in its bundle (during a
    /// rollover, old and new), PEM, concatenated: a TLS trust store that
    /// accepts this trust domain's SVIDs.
    pub fn ca_pem(&self) -> String {
        self.lock()
            .cas
            .iter()
            .map(TrustDomainCa::cert_pem)
            .collect()
    }

    /// Issues an SVID for `spiffe_id` from the trust domain's current CA and
    /// returns its certificate and PKCS#8 key, PEM: a client identity for a
    /// test. The Workload API does not serve it.
    ///
    /// # Panics
    ///
    /// As [`TrustDomainCa::issue_svid`].
    pub fn issue_client(&self, spiffe_id: &str, lifetime: Duration) -> (String, String) {
        self.lock().current_ca().issue(spiffe_id, lifetime)
    }

    /// Stops serving, ends every open stream and removes the socket file,
    /// then waits until the server task has finished (open connections are
    /// closed gracefully: an HTTP/2 GOAWAY after their streams end).
    pub async fn shutdown(mut self) {
        self.stop_serving();
        if let Some(task) = self.task.take() {
            // The server's own result matters no more than its panic would.
            let _ = task.await;
        }
    }

    fn stop_serving(&mut self) {
        self.published.send_replace(None);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    fn publish(&self, state: &State) {
        self.published
            .send_replace(Some(Arc::new(state.material())));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock left a consistent
        // state: every change is made in full before publishing.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for WorkloadApi {
    /// Stops the server as [`WorkloadApi::shutdown`] does, without waiting
    /// for its task.
    fn drop(&mut self) {
        self.stop_serving();
    }
}
