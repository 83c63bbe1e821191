//! The Rust client (SDK): connects to tresor over mTLS and calls every RPC,
//! with typed errors ([`ClientError`]) that say what happened, and retries
//! what may pass ([`RetryPolicy`]). Its certificates may rotate while it
//! runs: every new connection uses the newest ones, from files
//! ([`ClientBuilder::ca_file`], [`ClientBuilder::identity_files`]) or a
//! SPIFFE Workload API ([`ClientBuilder::spiffe`]). [`Client::seal_stream`] and
//! [`Client::seal_bytes`] encrypt locally under a data key from
//! GenerateDataKey (the stream envelope of `docs/FORMAT.md` section 10),
//! optionally reusing data keys within a [`DataKeyCache`]'s limits.
//!
//! ```no_run
//! # async fn example() -> Result<(), tresor_client::ClientError> {
//! use std::collections::HashMap;
//! let client = tresor_client::Client::builder()
//!     .endpoint("https://localhost:7443")
//!     .ca(std::fs::read_to_string(".tresor-dev/ca/ca.pem").unwrap())
//!     .identity(
//!         std::fs::read_to_string(".tresor-dev/billing/cert.pem").unwrap(),
//!         std::fs::read_to_string(".tresor-dev/billing/key.pem").unwrap(),
//!     )
//!     .build()
//!     .await?;
//! let context = HashMap::from([("tenant".to_owned(), "42".to_owned())]);
//! let sealed = client.encrypt("billing/customer-records", b"hello", &context).await?;
//! let opened = client.decrypt("billing/customer-records", &sealed.ciphertext, &context).await?;
//! assert_eq!(opened.plaintext, b"hello");
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! | module | responsibility |
//! |--------|----------------|
//! | this file | [`ClientBuilder`], [`Client`] and the data-plane RPCs |
//! | `admin` | the control-plane RPCs of [`Client`] |
//! | `mac` | the blind-index RPCs of [`Client`]: Mac, VerifyMac, MacAllVersions, MacBatch |
//! | `roles` | the role-binding RPCs of [`Client`]: AddRoleBinding, RemoveRoleBinding, ListRoleBindings |
//! | `connector` | the connector of every connection: TCP, then TLS with the current material |
//! | `tls` | the TLS material: PEM parsed once, or files followed (the last good set kept) |
//! | `spiffe_tls` | the TLS material of a SPIFFE Workload API, and the server check by SPIFFE id |
//! | `error` | [`ClientError`] from a status and its `x-tresor-reason`, [`ConnectHint`] for TLS failures |
//! | `retry` | [`RetryPolicy`]: which calls may be repeated, and backoff |
//! | `trace` | the caller's OpenTelemetry context sent as W3C `traceparent` |
//! | `envelope` | [`Client::seal_stream`] / [`Client::open_stream`]: the stream envelope over GenerateDataKey and DecryptDataKey |
//! | `data_keys` | wrapping and unwrapping data keys for the envelope |
//! | `data_key_cache` | [`DataKeyCache`]: bounded reuse of data keys |
//!
//! The crate depends on the wire contract (`tresor-proto`) and the crypto
//! crate (`tresor-crypto`) only, plus tonic, tokio, rustls and the `spiffe`
//! crate: none of the server's storage, KMS or metrics crates.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod connector;
mod data_key_cache;
mod data_keys;
mod envelope;
mod error;
mod mac;
mod retry;
mod roles;
mod spiffe_tls;
mod tls;
mod trace;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Channel;
use zeroize::Zeroizing;

use error::CallSite;
use tresor_proto::v1::{self as proto, admin_client::AdminClient, crypto_client::CryptoClient};

pub use data_key_cache::{DataKey, DataKeyCache, DataKeyCacheLimits};
pub use envelope::{StreamError, StreamSummary};
pub use error::{ClientError, ConnectHint, code_words, describe_chain};
pub use mac::mac_request;
use retry::Idempotency;
pub use retry::RetryPolicy;
pub use tresor_crypto::ChunkSize;

/// A channel opened by [`ClientBuilder::build_raw`]: tresor's transport
/// settings without tresor's services. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RawChannel {
    channel: Channel,
    site: CallSite,
}

impl RawChannel {
    /// The connected channel, for any generated gRPC client.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A failed call's status as a [`ClientError`], exactly as [`Client`]
    /// reports its own.
    pub fn error(&self, status: tonic::Status) -> ClientError {
        self.site.status(status)
    }
}

/// Default per-call timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default connection timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds a [`Client`].
///
/// The server is verified with a CA ([`ClientBuilder::ca`] or
/// [`ClientBuilder::ca_file`]) and the client presents a certificate
/// ([`ClientBuilder::identity`] or [`ClientBuilder::identity_files`]);
/// or both come from a SPIFFE Workload API ([`ClientBuilder::spiffe`]).
/// Material in files or from the Workload API is followed: every new
/// connection (tonic reconnects after the server closed one) uses the
/// newest.
///
/// ```no_run
/// # async fn example() -> Result<(), tresor_client::ClientError> {
/// // Certificates renewed in place (by cert-manager, a cron job...).
/// let client = tresor_client::Client::builder()
///     .endpoint("https://tresor.internal:7443")
///     .ca_file("/etc/tresor/ca.pem")
///     .identity_files("/etc/tresor/tls.crt", "/etc/tresor/tls.key")
///     .build()
///     .await?;
/// // Or the X.509-SVID of a SPIRE agent.
/// let client = tresor_client::Client::builder()
///     .endpoint("https://tresor.internal:7443")
///     .spiffe("unix:///run/spire/agent.sock")
///     .server_spiffe_id("spiffe://example.org/tresor")
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct ClientBuilder {
    endpoint: Option<String>,
    ca_pem: Option<String>,
    ca_file: Option<PathBuf>,
    identity: Option<(String, Zeroizing<String>)>,
    identity_files: Option<(PathBuf, PathBuf)>,
    spiffe: Option<String>,
    server_name: Option<String>,
    server_spiffe_id: Option<String>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    data_key_cache: Option<DataKeyCacheLimits>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoint", &self.endpoint)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "PEM"))
            .field("ca_file", &self.ca_file)
            .field("identity", &self.identity.as_ref().map(|_| "REDACTED"))
            .field("identity_files", &self.identity_files)
            .field("spiffe", &self.spiffe)
            .field("server_name", &self.server_name)
            .field("server_spiffe_id", &self.server_spiffe_id)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Server address: `https://host:port` or `host:port`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// PEM of the CA(s) that issued the server certificate, parsed once
    /// (replaces a [`ClientBuilder::ca_file`]).
    pub fn ca(mut self, ca_pem: impl Into<String>) -> Self {
        self.ca_pem = Some(ca_pem.into());
        self.ca_file = None;
        self
    }

    /// A PEM file of the CA(s) that issued the server certificate, read
    /// again before every new connection (replaces a [`ClientBuilder::ca`]).
    /// [`ClientBuilder::build`] fails if it cannot be read or parsed; later,
    /// a changed file that does not load is refused with a warning and the
    /// CAs last loaded stay in use.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self.ca_pem = None;
        self
    }

    /// The client certificate and its private key (PEM; a `String` or a
    /// `Zeroizing<String>`, kept zeroizing either way), parsed once
    /// (replaces [`ClientBuilder::identity_files`]).
    pub fn identity(
        mut self,
        cert_pem: impl Into<String>,
        key_pem: impl Into<Zeroizing<String>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self.identity_files = None;
        self
    }

    /// PEM files of the client certificate (chain) and its private key,
    /// read again before every new connection, so a certificate renewed in
    /// place is presented from the next connection on (replaces
    /// [`ClientBuilder::identity`]). [`ClientBuilder::build`] fails if they
    /// cannot be read, parsed or do not belong together; later, a changed
    /// pair that does not load (say the certificate is written and the key
    /// not yet) is refused with a warning and the pair last loaded stays in
    /// use until a good pair is in place.
    pub fn identity_files(
        mut self,
        cert_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
    ) -> Self {
        self.identity_files = Some((cert_path.into(), key_path.into()));
        self.identity = None;
        self
    }

    /// Takes the client certificate and the CAs from the SPIFFE Workload
    /// API at `endpoint` (e.g. `unix:///run/spire/agent.sock`): the client
    /// presents its X.509-SVID, and accepts a server whose certificate
    /// carries a SPIFFE id and chains to the trust bundle of that id's
    /// trust domain (its DNS names are not checked: pin the server with
    /// [`ClientBuilder::server_spiffe_id`]). Rotated SVIDs and bundles are
    /// used from the next connection on. [`ClientBuilder::build`] waits up
    /// to the connect timeout for the first SVID. Not with
    /// [`ClientBuilder::ca`], [`ClientBuilder::ca_file`],
    /// [`ClientBuilder::identity`] or [`ClientBuilder::identity_files`].
    pub fn spiffe(mut self, endpoint: impl Into<String>) -> Self {
        self.spiffe = Some(endpoint.into());
        self
    }

    /// With [`ClientBuilder::spiffe`], the one SPIFFE id the server's
    /// certificate must carry (e.g. `spiffe://example.org/tresor`).
    pub fn server_spiffe_id(mut self, id: impl Into<String>) -> Self {
        self.server_spiffe_id = Some(id.into());
        self
    }

    /// The name the server certificate must carry, also sent as SNI
    /// (default: the endpoint's host), for reaching a server by another
    /// name or address than its certificate's.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Per-call timeout (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Connection timeout (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How calls the server could not serve for a moment are retried
    /// (default [`RetryPolicy::default`]: four attempts with jittered
    /// backoff; [`RetryPolicy::none`] turns retries off). See
    /// [`RetryPolicy`] for which calls are retried when.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Caches data keys for local envelope encryption within `limits`
    /// (off by default; read [`DataKeyCache`] for the trade-off).
    pub fn data_key_cache(mut self, limits: DataKeyCacheLimits) -> Self {
        self.data_key_cache = Some(limits);
        self
    }

    /// Loads the TLS material and connects (TCP and TLS handshake happen
    /// here). [`ClientError::Config`] if the settings are incomplete or
    /// contradict each other, a file cannot be read or does not load (the
    /// message names it), or the Workload API gave no SVID within the
    /// connect timeout; [`ClientError::Connect`] if the server cannot be
    /// reached or the handshake fails.
    pub async fn build(self) -> Result<Client, ClientError> {
        let retry = self.retry.unwrap_or_default();
        let cache = self
            .data_key_cache
            .map(|limits| Arc::new(DataKeyCache::new(limits)));
        let (channel, site) = self.connect().await?;
        let mut client = Client::from_channel(channel, site, retry);
        client.data_keys = cache;
        Ok(client)
    }

    /// Connects without building a tresor client: the channel, with exactly
    /// these settings, for calling another gRPC service over the same
    /// transport (`tresor bench --compare-echo` calls its echo baseline so).
    pub async fn build_raw(self) -> Result<RawChannel, ClientError> {
        let (channel, site) = self.connect().await?;
        Ok(RawChannel { channel, site })
    }

    /// Opens the channel every client type is built on.
    async fn connect(self) -> Result<(Channel, CallSite), ClientError> {
        let raw = self
            .endpoint
            .clone()
            .ok_or_else(|| ClientError::Config("no endpoint given".into()))?;
        let address = connector::Address::parse(&raw, self.server_name.as_deref())?;
        let connect_timeout = self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let site = CallSite {
            endpoint: raw,
            had_client_cert: self.identity.is_some()
                || self.identity_files.is_some()
                || self.spiffe.is_some(),
        };
        let material = self.material(connect_timeout).await?;
        let channel = address
            .endpoint(self.timeout.unwrap_or(DEFAULT_TIMEOUT), connect_timeout)
            .connect_with_connector(address.connector(material))
            .await
            .map_err(|e| site.transport(&e))?;
        Ok((channel, site))
    }

    /// The TLS material these settings name, loaded for the first time.
    async fn material(&self, connect_timeout: Duration) -> Result<tls::Material, ClientError> {
        let config = ClientError::Config;
        if let Some(endpoint) = &self.spiffe {
            if self.ca_pem.is_some()
                || self.ca_file.is_some()
                || self.identity.is_some()
                || self.identity_files.is_some()
            {
                return Err(config(
                    "ClientBuilder::spiffe takes the CAs and the client certificate from the \
                     Workload API: it cannot be combined with ca, ca_file, identity or identity_files"
                        .into(),
                ));
            }
            let server_id = match &self.server_spiffe_id {
                Some(id) => Some(
                    spiffe::SpiffeId::new(id)
                        .map_err(|e| config(format!("server SPIFFE id {id:?}: {e}")))?,
                ),
                None => None,
            };
            return spiffe_tls::SpiffeMaterial::connect(endpoint, connect_timeout, server_id)
                .await
                .map(tls::Material::Spiffe)
                .map_err(config);
        }
        if self.server_spiffe_id.is_some() {
            return Err(config(
                "ClientBuilder::server_spiffe_id needs ClientBuilder::spiffe".into(),
            ));
        }
        let ca = match (&self.ca_pem, &self.ca_file) {
            (_, Some(path)) => tls::CaPem::File(path),
            (Some(pem), None) => tls::CaPem::Text(pem),
            (None, None) => return Err(config("no CA certificate given".into())),
        };
        let identity = match (&self.identity, &self.identity_files) {
            (_, Some((cert, key))) => Some(tls::IdentityPem::Files { cert, key }),
            (Some((cert, key)), None) => Some(tls::IdentityPem::Text { cert, key }),
            (None, None) => None,
        };
        tls::Material::from_pem(ca, identity).await.map_err(config)
    }
}

/// A connection to tresor. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    crypto: CryptoClient<Channel>,
    admin: AdminClient<Channel>,
    site: CallSite,
    retry: RetryPolicy,
    /// Shared by clones.
    data_keys: Option<Arc<DataKeyCache>>,
    /// Whether [`Client::open_stream`] opens version 1 streams (see
    /// [`Client::accepting_legacy_streams`]).
    legacy_streams: bool,
}

impl Client {
    /// Starts building a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The same connection with another retry policy.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The same connection, whose [`Client::open_stream`] also opens
    /// version 1 streams (sealed by SDKs before stream version 2).
    ///
    /// **Only for data you know was sealed by a trusted writer.** A
    /// version 1 stream's wrapped key is an ordinary ciphertext, so anyone
    /// allowed to Encrypt under the key can forge a stream that opens here
    /// with a data key of their choosing. Re-seal old streams (open with
    /// this, seal with a default client) and then stop using it.
    pub fn accepting_legacy_streams(mut self) -> Self {
        self.legacy_streams = true;
        self
    }

    fn from_channel(channel: Channel, site: CallSite, retry: RetryPolicy) -> Self {
        Self {
            crypto: CryptoClient::new(channel.clone()),
            admin: AdminClient::new(channel),
            site,
            retry,
            data_keys: None,
            legacy_streams: false,
        }
    }

    fn fail(&self, status: tonic::Status) -> ClientError {
        self.site.status(status)
    }

    /// Runs one RPC on `service` (the data- or control-plane handle) under
    /// the retry policy and turns its outcome into the message or a typed
    /// error. `rpc` gets a fresh handle on the connection and a copy of the
    /// request for each attempt.
    async fn rpc<S: Clone, Req: Clone, T, Fut>(
        &self,
        idempotency: Idempotency,
        service: &S,
        request: Req,
        rpc: impl Fn(S, tonic::Request<Req>) -> Fut,
    ) -> Result<T, ClientError>
    where
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        // Without retries the request is sent as is: no copy of its payload.
        if self.retry.max_attempts <= 1 {
            return self
                .attempt(rpc(service.clone(), trace::traced(request)))
                .await;
        }
        self.retry
            .run(idempotency, || {
                self.attempt(rpc(service.clone(), trace::traced(request.clone())))
            })
            .await
    }

    /// [`Client::rpc`] on the data plane.
    async fn crypto_rpc<Req: Clone, T, Fut>(
        &self,
        idempotency: Idempotency,
        request: Req,
        rpc: impl Fn(CryptoClient<Channel>, tonic::Request<Req>) -> Fut,
    ) -> Result<T, ClientError>
    where
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.rpc(idempotency, &self.crypto, request, rpc).await
    }

    /// [`Client::rpc`] on the control plane.
    async fn admin_rpc<Req: Clone, T, Fut>(
        &self,
        idempotency: Idempotency,
        request: Req,
        rpc: impl Fn(AdminClient<Channel>, tonic::Request<Req>) -> Fut,
    ) -> Result<T, ClientError>
    where
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.rpc(idempotency, &self.admin, request, rpc).await
    }

    /// One attempt's outcome: the message or a typed error.
    async fn attempt<T>(
        &self,
        rpc: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, ClientError> {
        rpc.await
            .map(tonic::Response::into_inner)
            .map_err(|s| self.fail(s))
    }

    /// Encrypts under the key's primary version.
    pub async fn encrypt(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &HashMap<String, String>,
    ) -> Result<proto::EncryptResponse, ClientError> {
        let request = proto::EncryptRequest {
            key_id: key_id.to_owned(),
            plaintext: plaintext.to_vec(),
            context: context.clone(),
        };
        self.crypto_rpc(Idempotency::Safe, request, |mut c, r| async move {
            c.encrypt(r).await
        })
        .await
    }

    /// Decrypts a ciphertext (or a wrapped data key).
    pub async fn decrypt(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        context: &HashMap<String, String>,
    ) -> Result<proto::DecryptResponse, ClientError> {
        let request = proto::DecryptRequest {
            key_id: key_id.to_owned(),
            ciphertext: ciphertext.to_vec(),
            context: context.clone(),
        };
        self.crypto_rpc(Idempotency::Safe, request, |mut c, r| async move {
            c.decrypt(r).await
        })
        .await
    }

    /// Encrypts many items in one call (at most the server's
    /// `--max-batch-items`, default 1000). The outer error is the whole
    /// call's (sealed, rate limited, too many items...); each item has its
    /// own result, in order, with the error the single call would give.
    pub async fn encrypt_batch(
        &self,
        items: Vec<proto::EncryptRequest>,
    ) -> Result<Vec<Result<proto::EncryptResponse, ClientError>>, ClientError> {
        let count = items.len();
        let request = proto::EncryptBatchRequest { items };
        let response = self
            .crypto_rpc(Idempotency::Safe, request, |mut c, r| async move {
                c.encrypt_batch(r).await
            })
            .await?;
        self.item_results(count, response.results, |result| match result.result {
            Some(proto::encrypt_item_result::Result::Encrypted(done)) => Some(Ok(done)),
            Some(proto::encrypt_item_result::Result::Error(status)) => Some(Err(status)),
            None => None,
        })
    }

    /// Decrypts many items in one call; as [`Client::encrypt_batch`].
    pub async fn decrypt_batch(
        &self,
        items: Vec<proto::DecryptRequest>,
    ) -> Result<Vec<Result<proto::DecryptResponse, ClientError>>, ClientError> {
        let count = items.len();
        let request = proto::DecryptBatchRequest { items };
        let response = self
            .crypto_rpc(Idempotency::Safe, request, |mut c, r| async move {
                c.decrypt_batch(r).await
            })
            .await?;
        self.item_results(count, response.results, |result| match result.result {
            Some(proto::decrypt_item_result::Result::Decrypted(done)) => Some(Ok(done)),
            Some(proto::decrypt_item_result::Result::Error(status)) => Some(Err(status)),
            None => None,
        })
    }

    /// Re-encrypts or moves many ciphertexts in one call (each item as
    /// [`Client::re_encrypt`], or [`Client::re_encrypt_to`] when it names a
    /// destination key); as [`Client::encrypt_batch`] otherwise.
    pub async fn re_encrypt_batch(
        &self,
        items: Vec<proto::ReEncryptRequest>,
    ) -> Result<Vec<Result<proto::EncryptResponse, ClientError>>, ClientError> {
        let count = items.len();
        let request = proto::ReEncryptBatchRequest { items };
        let response = self
            .crypto_rpc(Idempotency::Safe, request, |mut c, r| async move {
                c.re_encrypt_batch(r).await
            })
            .await?;
        self.item_results(count, response.results, |result| match result.result {
            Some(proto::encrypt_item_result::Result::Encrypted(done)) => Some(Ok(done)),
            Some(proto::encrypt_item_result::Result::Error(status)) => Some(Err(status)),
            None => None,
        })
    }

    /// Per-item results as typed errors; a server that answers another
    /// number of results, or a result with neither payload nor status,
    /// breaks the contract.
    fn item_results<R, T>(
        &self,
        count: usize,
        results: Vec<R>,
        split: impl Fn(R) -> Option<Result<T, proto::ItemStatus>>,
    ) -> Result<Vec<Result<T, ClientError>>, ClientError> {
        let broken = protocol_error;
        if results.len() != count {
            return Err(broken(format!(
                "the server answered {} results for {count} items",
                results.len()
            )));
        }
        results
            .into_iter()
            .enumerate()
            .map(|(index, result)| match split(result) {
                Some(Ok(done)) => Ok(Ok(done)),
                Some(Err(status)) => Ok(Err(self.fail(tonic::Status::new(
                    tonic::Code::from_i32(status.code),
                    status.message,
                )))),
                None => Err(broken(format!(
                    "the server answered nothing for item {index}"
                ))),
            })
            .collect()
    }

    /// Re-encrypts under the primary version without revealing plaintext.
    pub async fn re_encrypt(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        context: &HashMap<String, String>,
    ) -> Result<proto::EncryptResponse, ClientError> {
        let request = proto::ReEncryptRequest {
            key_id: key_id.to_owned(),
            ciphertext: ciphertext.to_vec(),
            context: context.clone(),
            ..Default::default()
        };
        self.crypto_rpc(Idempotency::Safe, request, |mut c, r| async move {
            c.re_encrypt(r).await
        })
        .await
    }

    /// Moves a ciphertext of `key_id` (made with `context`) to the primary
    /// version of `destination`, bound to `destination_context`, without
    /// the plaintext leaving tresor. Needs the Decrypt grant on `key_id`
    /// and Encrypt on `destination` (GenerateDataKey when the ciphertext is
    /// a wrapped data key). Store the destination key id beside the new
    /// ciphertext: it opens only under that key.
    pub async fn re_encrypt_to(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        context: &HashMap<String, String>,
        destination: &str,
        destination_context: &HashMap<String, String>,
    ) -> Result<proto::EncryptResponse, ClientError> {
        let request = proto::ReEncryptRequest {
            key_id: key_id.to_owned(),
            ciphertext: ciphertext.to_vec(),
            context: context.clone(),
            destination_key_id: destination.to_owned(),
            destination_context: destination_context.clone(),
        };
        self.crypto_rpc(Idempotency::Safe, request, |mut c, r| async move {
            c.re_encrypt(r).await
        })
        .await
    }
}

/// The server broke the protocol's contract.
fn protocol_error(why: impl Into<String>) -> ClientError {
    ClientError::Other {
        code: "protocol error".into(),
        message: why.into(),
    }
}
