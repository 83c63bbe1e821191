//! TLS of the gRPC listeners, terminated in tresor's own accept loop
//! ([`super::incoming`]) rather than by tonic, so that the material can be
//! replaced while serving: each handshake takes the configuration current
//! when its connection was accepted, and established connections keep the
//! one they started with.
//!
//! The configuration is what tonic built before: rustls with the ring
//! provider and its default protocol versions, a client certificate
//! required and verified against the client CA bundle (webpki), ALPN `h2`.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use crate::config::{TlsMaterial, TransportLimits};

/// Why a TLS configuration could not be built from its files' contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The server certificate file holds no PEM certificate.
    #[error("--tls-cert holds no PEM certificate")]
    NoServerCertificate,
    /// The server key file holds no PEM private key.
    #[error("--tls-key holds no PEM private key (PKCS#8, SEC1 or PKCS#1)")]
    NoServerKey,
    /// The key is not the certificate's.
    #[error("--tls-key does not match the certificate in --tls-cert")]
    KeyMismatch,
    /// The client CA file holds no usable PEM certificate.
    #[error("--client-ca holds no usable PEM certificate")]
    NoClientCa,
    /// rustls refused the set (for example, a key that does not match the
    /// certificate).
    #[error("{0}")]
    Rustls(String),
}

/// The TLS configuration a listener serves with, replaceable while serving.
#[derive(Debug)]
pub struct LiveTls {
    current: RwLock<Arc<rustls::ServerConfig>>,
    handshake_timeout: Duration,
}

impl LiveTls {
    /// The configuration of `material`; handshakes that take longer than
    /// `limits.tls_handshake_timeout` are dropped.
    pub fn new(material: &TlsMaterial, limits: &TransportLimits) -> Result<Self, TlsSetupError> {
        Ok(Self {
            current: RwLock::new(Arc::new(server_config(material)?)),
            handshake_timeout: limits.tls_handshake_timeout,
        })
    }

    /// An acceptor with the current configuration, for one new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        // A poisoned lock still holds a whole configuration: the swap is a
        // single assignment.
        let current = match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        TlsAcceptor::from(current)
    }

    /// Makes `config` the one new handshakes use; connections established
    /// before keep theirs.
    pub fn replace(&self, config: rustls::ServerConfig) {
        let config = Arc::new(config);
        match self.current.write() {
            Ok(mut current) => *current = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
    }

    /// How long a handshake may take.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }
}

/// A rustls server configuration from PEM material: the server chain and
/// key, and the client CA bundle every client certificate must chain to.
pub fn server_config(material: &TlsMaterial) -> Result<rustls::ServerConfig, TlsSetupError> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(material.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|_| TlsSetupError::NoServerCertificate)?;
    if chain.is_empty() {
        return Err(TlsSetupError::NoServerCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(material.key_pem.as_bytes())
        .map_err(|_| TlsSetupError::NoServerKey)?;
    let mut roots = RootCertStore::empty();
    let client_cas = CertificateDer::pem_slice_iter(material.client_ca_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsSetupError::NoClientCa)?;
    let (added, _) = roots.add_parsable_certificates(client_cas);
    if added == 0 {
        return Err(TlsSetupError::NoClientCa);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsSetupError::KeyMismatch,
            other => TlsSetupError::Rustls(other.to_string()),
        })?;
    config.alpn_protocols.push(b"h2".to_vec());
    Ok(config)
}
