//! TLS of the gRPC listeners, terminated in tresor's own accept loop
//! ([`super::incoming`]) rather than by tonic, so that the material can be
//! replaced while serving: each handshake takes the configuration current
//! when its connection was accepted, and established connections keep the
//! one they started with.
//!
//! The configuration is what tonic built before: rustls with the ring
//! provider and its default protocol versions, a client certificate
//! required and verified against the client CAs (webpki, with the
//! revocation lists and trust-domain rules of [`super::client_verifier`]),
//! ALPN `h2`; and, unlike tonic's, no session resumption, so that every
//! connection's client certificate is verified when it connects.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::client_verifier::client_verifier;
use crate::config::{TlsMaterial, TransportLimits};
use crate::identity::TrustDomains;

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
    /// The Workload API gave no bundle of an allowed trust domain.
    #[error("no trust bundle of an allowed trust domain (--trust-domain) from the Workload API")]
    NoTrustBundle,
    /// A revocation list does not parse.
    #[error("--client-crl: not a certificate revocation list (PEM or DER): {0}")]
    InvalidCrl(String),
    /// rustls refused the set.
    #[error("{0}")]
    Rustls(String),
}

/// The certificates that verify clients.
#[derive(Debug, Clone)]
pub enum ClientRoots {
    /// One bundle, for clients of any trust domain (the `--client-ca` file).
    Shared(Vec<CertificateDer<'static>>),
    /// A bundle per SPIFFE trust domain (the Workload API's): a client must
    /// chain to its own trust domain's.
    PerTrustDomain(BTreeMap<String, Vec<CertificateDer<'static>>>),
}

impl ClientRoots {
    /// Every certificate, of every trust domain.
    pub fn all(&self) -> Box<dyn Iterator<Item = &CertificateDer<'static>> + '_> {
        match self {
            Self::Shared(certs) => Box::new(certs.iter()),
            Self::PerTrustDomain(bundles) => Box::new(bundles.values().flatten()),
        }
    }
}

/// Everything one TLS configuration is built from, parsed.
#[derive(Debug)]
pub struct ServingSet {
    /// The server certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server's private key (rustls redacts its `Debug`).
    pub key: PrivateKeyDer<'static>,
    /// What verifies clients.
    pub client_roots: ClientRoots,
    /// Revocation lists of client CAs.
    pub crls: Vec<CertificateRevocationListDer<'static>>,
}

impl ServingSet {
    /// Parses PEM material (the revocation lists may be PEM or DER).
    pub fn from_material(material: &TlsMaterial) -> Result<Self, TlsSetupError> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(material.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|_| TlsSetupError::NoServerCertificate)?;
        if chain.is_empty() {
            return Err(TlsSetupError::NoServerCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(material.key_pem.as_bytes())
            .map_err(|_| TlsSetupError::NoServerKey)?;
        let client_cas = CertificateDer::pem_slice_iter(material.client_ca_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TlsSetupError::NoClientCa)?;
        let mut crls = Vec::new();
        for crl in &material.client_crls {
            crls.extend(revocation_lists(crl)?);
        }
        Ok(Self {
            chain,
            key,
            client_roots: ClientRoots::Shared(client_cas),
            crls,
        })
    }
}

/// The lists in one `--client-crl` file: PEM blocks, or one DER list.
fn revocation_lists(
    bytes: &[u8],
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsSetupError> {
    if bytes.trim_ascii_start().starts_with(b"-----") {
        let lists = CertificateRevocationListDer::pem_slice_iter(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsSetupError::InvalidCrl(e.to_string()))?;
        if lists.is_empty() {
            return Err(TlsSetupError::InvalidCrl("no X509 CRL block".to_owned()));
        }
        return Ok(lists);
    }
    Ok(vec![CertificateRevocationListDer::from(bytes.to_vec())])
}

/// The TLS configuration a listener serves with, replaceable while serving.
#[derive(Debug)]
pub struct LiveTls {
    current: RwLock<Arc<rustls::ServerConfig>>,
    trust_domains: TrustDomains,
    handshake_timeout: Duration,
}

impl LiveTls {
    /// The configuration of `set`, accepting clients of `trust_domains`;
    /// handshakes that take longer than `limits.tls_handshake_timeout` are
    /// dropped.
    pub fn new(
        set: ServingSet,
        trust_domains: TrustDomains,
        limits: &TransportLimits,
    ) -> Result<Self, TlsSetupError> {
        Ok(Self {
            current: RwLock::new(Arc::new(server_config(set, &trust_domains)?)),
            trust_domains,
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

    /// Makes the configuration of `set` the one new handshakes use;
    /// connections established before keep theirs. When it cannot be
    /// built, the current one stays.
    pub fn install(&self, set: ServingSet) -> Result<(), TlsSetupError> {
        let config = Arc::new(server_config(set, &self.trust_domains)?);
        match self.current.write() {
            Ok(mut current) => *current = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(())
    }

    /// How long a handshake may take.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }
}

/// A rustls server configuration serving `set`'s chain and key, and
/// requiring a client certificate that `set`'s roots verify, of one of
/// `trust_domains`.
fn server_config(
    set: ServingSet,
    trust_domains: &TrustDomains,
) -> Result<rustls::ServerConfig, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = client_verifier(&set.client_roots, &set.crls, trust_domains, &provider)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(set.chain, set.key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsSetupError::KeyMismatch,
            other => TlsSetupError::Rustls(other.to_string()),
        })?;
    config.alpn_protocols.push(b"h2".to_vec());
    // No session resumption: a resumed session skips the client
    // certificate, so a certificate that expired, was revoked or left the
    // allowlist since would keep opening connections. Every connection
    // verifies the certificate it presents now.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}
