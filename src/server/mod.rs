//! Wiring: opens the keystore and the master key, builds the service, and
//! serves it over mutual TLS with health checking and reflection.
//!
//! [`run`] takes an already bound listener and a shutdown future, so tests
//! bind `127.0.0.1:0` and stop the server themselves; the binary passes
//! SIGTERM/Ctrl-C. Shutdown drains in-flight requests.
//!
//! [`transport`] is the one place the TLS and HTTP/2 settings are chosen,
//! and [`incoming`] the one accept loop (connection cap, idle timeout);
//! [`echo`] serves the bench baseline with both too.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic_health::ServingStatus;

use crate::config::{Settings, StoreSpec, TransportLimits};
use crate::error::{Error, MasterKeyError, StoreError};
use crate::grpc::{AdminApi, CryptoApi};
use crate::service::Service;
use crate::store::{DbTls, KeyStore, PostgresKeyStore, SledKeyStore};
use tresor_crypto::CIPHERTEXT_OVERHEAD;
use tresor_proto::v1 as proto;
use tresor_proto::v1::admin_server::AdminServer;
use tresor_proto::v1::crypto_server::CryptoServer;

mod client_verifier;
pub mod echo;
pub mod hardening;
mod incoming;
pub mod ops_http;
mod tls;
mod tls_reload;
mod tls_spiffe;

pub use incoming::{Connection, HandshakeOutcome, incoming, tls_incoming};
pub use tls::{LiveTls, ServingSet, TlsSetupError};

/// How often the audit log writes a checkpoint the keystore remembers.
const AUDIT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(30);
/// HTTP/2 streams a client may make this server reset (by sending
/// something invalid on them) before the connection is closed: hyper's
/// default, which tonic would otherwise replace with "unlimited".
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
/// Room for protobuf framing and the context beside the payload.
const MESSAGE_SLACK_BYTES: usize = 64 * 1024;
/// Room per batch item in an answer for framing and an item status.
const BATCH_ITEM_SLACK_BYTES: usize = 256;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The keystore could not be opened.
    #[error("keystore: {0}")]
    Store(#[from] StoreError),
    /// The master key could not be used.
    #[error("master key: {0}")]
    MasterKey(#[from] MasterKeyError),
    /// The service could not start (for example, the root key does not
    /// unwrap).
    #[error("{0}")]
    Service(#[from] Error),
    /// The TLS files do not make a configuration.
    #[error("TLS: {0}")]
    Tls(#[from] TlsSetupError),
    /// The SPIFFE Workload API gave no usable SVID.
    #[error("SPIFFE: {0}")]
    Spiffe(String),
    /// Transport failure.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection service could not be built.
    #[error("reflection: {0}")]
    Reflection(String),
    /// The metrics listener could not be started.
    #[error("metrics: {0}")]
    Metrics(String),
}

/// A prepared server: keystore open, root key unwrapped, not yet listening.
#[derive(Debug)]
pub struct Server {
    service: Arc<Service>,
    settings: Settings,
}

impl Server {
    /// Opens the keystore and master key and unwraps the root key. Fails
    /// before any port is bound if anything is wrong.
    pub async fn prepare(settings: Settings) -> Result<Self, ServerError> {
        let master = settings.master_key.open().await?;
        let store: Arc<dyn KeyStore> = match &settings.store {
            StoreSpec::Sled(dir) => Arc::new(SledKeyStore::open(dir)?),
            StoreSpec::Postgres {
                url,
                replica,
                ca_pem,
            } => {
                let tls = match ca_pem {
                    Some(pem) => DbTls::from_ca_pem(pem)?,
                    None => DbTls::Off,
                };
                Arc::new(PostgresKeyStore::connect_with_tls(url, replica, tls).await?)
            }
        };
        let service = Service::open(store, master, settings.service.clone()).await?;
        Ok(Self {
            service: Arc::new(service),
            settings,
        })
    }

    /// The service, for embedding.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Serves on `listener` until `shutdown` completes, then drains.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Self { service, settings } = self;
        let mut transport = transport(&settings.transport);

        // Resume a root-key rotation a crash or a stop interrupted.
        service.spawn_root_rewrap();
        let (health, health_service) = tonic_health::server::health_reporter();
        let health_task = tokio::spawn(report_health(service.clone(), health));
        let purge_task = tokio::spawn(purge_periodically(service.clone()));
        let checkpoint_task = tokio::spawn(checkpoint_periodically(service.clone()));
        let mut side_tasks = vec![
            tokio::spawn(rotate_periodically(service.clone())),
            tokio::spawn(count_usage(service.clone())),
        ];
        if let Some(addr) = settings.metrics_listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| ServerError::Metrics(format!("cannot listen on {addr}: {e}")))?;
            side_tasks.push(tokio::spawn(crate::server::ops_http::serve_metrics(
                listener,
                service.clone(),
            )));
        }
        if let Some(target) = settings.alert_webhook.clone() {
            let server_name = match &settings.store {
                StoreSpec::Postgres { replica, .. } => replica.clone(),
                StoreSpec::Sled(_) => listener
                    .local_addr()
                    .map_or_else(|_| "tresor".to_owned(), |addr| addr.to_string()),
            };
            side_tasks.push(tokio::spawn(crate::server::ops_http::forward_alerts(
                service.clone(),
                target,
                server_name,
            )));
        }
        let backup_task = settings
            .backups
            .clone()
            .map(|schedule| tokio::spawn(crate::backup::schedule::run(service.clone(), schedule)));

        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| ServerError::Reflection(e.to_string()))?;
        let reflection_alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .map_err(|e| ServerError::Reflection(e.to_string()))?;

        let max_message = max_message_bytes(settings.service.max_plaintext_bytes);
        // A batch answer can outgrow its request: each item gains the
        // ciphertext overhead, or a status message.
        let max_answer = max_message
            + settings.service.max_batch_items * (CIPHERTEXT_OVERHEAD + BATCH_ITEM_SLACK_BYTES);
        let crypto = CryptoServer::new(CryptoApi::new(service.clone()))
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_answer);
        let admin = AdminServer::new(AdminApi::new(service.clone()));

        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "tresor listening (mTLS)");
        }
        let served = tls_reload::start(&settings.tls, &settings.transport, service.clone()).await?;
        side_tasks.extend(served.follower);
        let counted = service.clone();
        let outcome: HandshakeOutcome =
            Arc::new(move |result| counted.metrics().tls_handshake(result));
        let connections = tls_incoming(listener, &settings.transport, served.live, outcome);
        let outcome = transport
            .add_service(health_service)
            .add_service(reflection)
            .add_service(reflection_alpha)
            .add_service(crypto)
            .add_service(admin)
            .serve_with_incoming_shutdown(connections, shutdown)
            .await;
        health_task.abort();
        purge_task.abort();
        checkpoint_task.abort();
        for task in &side_tasks {
            task.abort();
        }
        service.stop_background_tasks();
        if let Some(task) = backup_task {
            task.abort();
            let _ = task.await;
        }
        // Wait for the tasks so their handles on the service (and the
        // keystore's file lock) are gone when this returns.
        let _ = health_task.await;
        let _ = purge_task.await;
        let _ = checkpoint_task.await;
        for task in side_tasks {
            let _ = task.await;
        }
        if let Err(e) = service.flush_usage().await {
            tracing::error!(error = %e, "the last encryption counts were not stored");
        }
        if let Err(e) = service.close_audit_log().await {
            tracing::error!(error = %e, "the final audit checkpoint was not written");
        }
        tracing::info!("tresor stopped");
        Ok(outcome?)
    }
}

/// The largest gRPC message accepted or sent when plaintexts may be
/// `max_plaintext_bytes` long.
fn max_message_bytes(max_plaintext_bytes: usize) -> usize {
    max_plaintext_bytes + CIPHERTEXT_OVERHEAD + MESSAGE_SLACK_BYTES
}

/// A response mapper, as a plain function pointer so the layered server
/// type can be named.
type ResponseMap = fn(http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body>;

/// The tonic server builder [`transport`] returns.
pub type Transport = tonic::transport::Server<
    tower::layer::util::Stack<
        tower::util::MapResponseLayer<ResponseMap>,
        tower::layer::util::Identity,
    >,
>;

/// The transport every gRPC listener of this crate uses: the request
/// timeout, HTTP/2 keep-alive and the stream, header and reset limits of
/// `limits`, and bad requests tonic refuses reported as INVALID_ARGUMENT.
/// tresor and the bench echo service ([`echo`]) both start from it, so they
/// differ only in the services they add. Serve it with [`tls_incoming`]
/// (mutual TLS with a [`LiveTls`], connection cap, idle timeout,
/// TCP_NODELAY).
pub fn transport(limits: &TransportLimits) -> Transport {
    let map: ResponseMap = bad_request_is_invalid_argument;
    tonic::transport::Server::builder()
        .layer(tower::util::MapResponseLayer::new(map))
        .timeout(limits.request_timeout)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_max_header_list_size(limits.max_header_list_bytes)
        .http2_max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESET_STREAMS))
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
}

/// gRPC status code OUT_OF_RANGE, as it appears in the `grpc-status` header.
const GRPC_OUT_OF_RANGE: &str = "11";
/// gRPC status code INTERNAL.
const GRPC_INTERNAL: &str = "13";
/// gRPC status code INVALID_ARGUMENT.
const GRPC_INVALID_ARGUMENT: &str = "3";
/// How tonic's messages (percent-encoded in `grpc-message`) begin when it
/// answers INTERNAL because the request body is not a well-formed gRPC
/// message: a truncated frame, a compression flag without compression or
/// an unknown one, bytes that are not protobuf.
const MALFORMED_REQUEST_MESSAGES: [&[u8]; 3] = [
    b"Unexpected%20EOF%20decoding%20stream",
    b"protocol%20error:%20received%20message%20with",
    b"failed%20to%20decode%20Protobuf%20message",
];

/// tonic refuses some bad requests before any handler runs: a message
/// larger than the decoding limit with OUT_OF_RANGE, a malformed body with
/// INTERNAL. tresor's contract says bad input is INVALID_ARGUMENT, and
/// INTERNAL means a fault of the server. tresor's handlers never answer
/// OUT_OF_RANGE, and answer INTERNAL only with their own fixed message, so
/// the statuses rewritten here are tonic's. Only trailers-only answers
/// (the status in the headers) are concerned: that is how tonic refuses a
/// request.
fn bad_request_is_invalid_argument(
    mut response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let headers = response.headers_mut();
    let Some(status) = headers.get("grpc-status") else {
        return response;
    };
    let bad_request = status == GRPC_OUT_OF_RANGE
        || (status == GRPC_INTERNAL
            && headers.get("grpc-message").is_some_and(|message| {
                MALFORMED_REQUEST_MESSAGES
                    .iter()
                    .any(|prefix| message.as_bytes().starts_with(prefix))
            }));
    if bad_request {
        headers.insert(
            "grpc-status",
            http::HeaderValue::from_static(GRPC_INVALID_ARGUMENT),
        );
    }
    response
}

/// Prepares and serves: the whole server in one call.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Server::prepare(settings)
        .await?
        .serve(listener, shutdown)
        .await
}

/// How often health probes the keystore.
const STORE_PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// Health mirrors reality: the data plane is NOT_SERVING while sealed or
/// while the keystore does not answer (probed every two seconds); the
/// control plane while the keystore does not answer.
async fn report_health(service: Arc<Service>, health: tonic_health::server::HealthReporter) {
    let mut sealed = service.watch_sealed();
    let mut probe = tokio::time::interval(STORE_PROBE_INTERVAL);
    let mut reported = None;
    loop {
        let store_up = service.store_answers().await;
        let is_sealed = *sealed.borrow_and_update();
        if reported != Some((is_sealed, store_up)) {
            if reported.is_some_and(|(_, was_up)| was_up != store_up) {
                if store_up {
                    tracing::info!("keystore answers again: serving");
                } else {
                    tracing::error!("keystore does not answer: health is NOT_SERVING");
                }
            }
            let serving = |ok: bool| {
                if ok {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                }
            };
            let data_plane = serving(!is_sealed && store_up);
            health
                .set_service_status("tresor.v1.Crypto", data_plane)
                .await;
            health.set_service_status("", data_plane).await;
            health
                .set_service_status("tresor.v1.Admin", serving(store_up))
                .await;
            reported = Some((is_sealed, store_up));
        }
        tokio::select! {
            changed = sealed.changed() => if changed.is_err() { return },
            _ = probe.tick() => {}
        }
    }
}

async fn checkpoint_periodically(service: Arc<Service>) {
    let mut tick = tokio::time::interval(AUDIT_CHECKPOINT_INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = service.audit_checkpoint().await {
            tracing::error!(error = %e, "audit checkpoint failed");
        }
    }
}

/// Rotates keys whose rotation period has passed, every
/// `--lifecycle-check-interval`. Skipped while sealed; the first pass after
/// unseal catches up.
async fn rotate_periodically(service: Arc<Service>) {
    let mut tick = tokio::time::interval(service.lifecycle().lifecycle_check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match service.rotate_due_keys().await {
            Ok(_) | Err(crate::error::Error::Sealed) => {}
            Err(e) => tracing::error!(error = %e, "looking for keys due for rotation failed"),
        }
    }
}

/// Stores encryption counts and rotates keys at the encryption limit.
async fn count_usage(service: Arc<Service>) {
    loop {
        service.usage_flush_due().await;
        if let Err(e) = service.flush_usage().await {
            tracing::error!(error = %e, "storing encryption counts failed; kept for the next try");
        }
    }
}

async fn purge_periodically(service: Arc<Service>) {
    let mut tick = tokio::time::interval(service.lifecycle().lifecycle_check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = service.purge_due_deletions().await {
            tracing::error!(error = %e, "destroying keys whose deletion window ended failed");
        }
        match service.sweep_expired_grants().await {
            Ok(_) | Err(crate::error::Error::Sealed) => {}
            Err(e) => tracing::error!(error = %e, "removing expired grants failed"),
        }
    }
}
