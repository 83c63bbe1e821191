//! The Rust client (SDK): connects to tresor over mTLS and calls every RPC,
//! with typed errors ([`ClientError`]) that say what happened, and retries
//! what may pass ([`RetryPolicy`]). [`Client::seal_stream`] and
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
//! | `error` | [`ClientError`] from a status and its `x-tresor-reason`, [`ConnectHint`] for TLS failures |
//! | `retry` | [`RetryPolicy`]: which calls may be repeated, and backoff |
//! | `envelope` | [`Client::seal_stream`] / [`Client::open_stream`]: the stream envelope over GenerateDataKey and DecryptDataKey |
//! | `data_keys` | wrapping and unwrapping data keys for the envelope |
//! | `data_key_cache` | [`DataKeyCache`]: bounded reuse of data keys |
//!
//! The crate depends on the wire contract (`tresor-proto`) and the crypto
//! crate (`tresor-crypto`) only, plus tonic and tokio: none of the server's
//! storage, KMS or metrics crates.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod data_key_cache;
mod data_keys;
mod envelope;
mod error;
mod retry;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity as TlsIdentity};
use zeroize::Zeroizing;

use error::CallSite;
use tresor_proto::v1::{self as proto, admin_client::AdminClient, crypto_client::CryptoClient};

pub use data_key_cache::{DataKey, DataKeyCache, DataKeyCacheLimits};
pub use envelope::{StreamError, StreamSummary};
pub use error::{ClientError, ConnectHint, code_words, describe_chain};
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
#[derive(Default)]
pub struct ClientBuilder {
    endpoint: Option<String>,
    ca_pem: Option<String>,
    identity: Option<(String, Zeroizing<String>)>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    data_key_cache: Option<DataKeyCacheLimits>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoint", &self.endpoint)
            .field("identity", &self.identity.as_ref().map(|_| "REDACTED"))
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Server address: `https://host:port` or `host:port`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// PEM of the CA that issued the server certificate.
    pub fn ca(mut self, ca_pem: impl Into<String>) -> Self {
        self.ca_pem = Some(ca_pem.into());
        self
    }

    /// The client certificate and its private key (PEM; a `String` or a
    /// `Zeroizing<String>`, kept zeroizing either way).
    pub fn identity(
        mut self,
        cert_pem: impl Into<String>,
        key_pem: impl Into<Zeroizing<String>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
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

    /// Connects (TCP and TLS handshake happen here).
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
            .ok_or_else(|| ClientError::Config("no endpoint given".into()))?;
        let url = if raw.contains("://") {
            raw.clone()
        } else {
            format!("https://{raw}")
        };
        let ca_pem = self
            .ca_pem
            .ok_or_else(|| ClientError::Config("no CA certificate given".into()))?;
        let site = CallSite {
            endpoint: raw.clone(),
            had_client_cert: self.identity.is_some(),
        };
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
        if let Some((cert, key)) = &self.identity {
            tls = tls.identity(TlsIdentity::from_pem(cert, key.as_bytes()));
        }
        let endpoint = Endpoint::from_shared(url)
            .map_err(|e| ClientError::Config(format!("invalid address {raw:?}: {e}")))?
            .timeout(self.timeout.unwrap_or(DEFAULT_TIMEOUT))
            .connect_timeout(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
            .tls_config(tls)
            .map_err(|e| {
                ClientError::Config(format!("TLS configuration: {}", describe_chain(&e)))
            })?;
        let channel = endpoint.connect().await.map_err(|e| site.transport(&e))?;
        Ok((channel, site))
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
        rpc: impl Fn(S, Req) -> Fut,
    ) -> Result<T, ClientError>
    where
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        // Without retries the request is sent as is: no copy of its payload.
        if self.retry.max_attempts <= 1 {
            return self.attempt(rpc(service.clone(), request)).await;
        }
        self.retry
            .run(idempotency, || {
                self.attempt(rpc(service.clone(), request.clone()))
            })
            .await
    }

    /// [`Client::rpc`] on the data plane.
    async fn crypto_rpc<Req: Clone, T, Fut>(
        &self,
        idempotency: Idempotency,
        request: Req,
        rpc: impl Fn(CryptoClient<Channel>, Req) -> Fut,
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
        rpc: impl Fn(AdminClient<Channel>, Req) -> Fut,
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
