//! The TLS material of new connections: where it comes from, and the
//! rustls `ClientConfig` built from it.
//!
//! - [`Material::Fixed`]: PEM given to the builder, parsed once.
//! - [`Material::Files`]: some of it in files, read again before every new
//!   connection. A changed set (by digest) that does not load, such as a
//!   certificate written before its key, is refused with a warning and the
//!   last good configuration stays in use.
//! - [`Material::Spiffe`]: the SVID and bundles of a SPIFFE Workload API
//!   (`crate::spiffe_tls`).
//!
//! Nothing here keeps a copy of a private key's bytes: a key is parsed into
//! rustls' signing key at once, and files are compared by digest.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, InconsistentKeys, RootCertStore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::spiffe_tls::SpiffeMaterial;

/// The rustls crypto provider of every configuration: ring.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// How the server certificate is verified.
pub(crate) enum Verifier {
    /// Chains to these roots and names the server.
    Roots(Arc<RootCertStore>),
    /// Another verifier (SPIFFE).
    Custom(Arc<dyn ServerCertVerifier>),
}

/// A client configuration: `verifier` for the server, `identity` as the
/// client certificate, ALPN `h2`.
pub(crate) fn client_config(
    verifier: Verifier,
    identity: Option<Arc<CertifiedKey>>,
) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let builder = match verifier {
        Verifier::Roots(roots) => builder.with_webpki_verifier(
            WebPkiServerVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| format!("TLS configuration: {e}"))?,
        ),
        Verifier::Custom(verifier) => builder
            .dangerous()
            .with_custom_certificate_verifier(verifier),
    };
    let mut config = match identity {
        Some(key) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The certificates of a PEM text; `origin` names it in errors.
fn certificates(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{origin}: not a PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{origin}: no PEM certificate in it"));
    }
    Ok(certs)
}

/// The trust anchors of a CA bundle (PEM).
fn parse_roots(pem: &[u8], origin: &str) -> Result<Arc<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    for cert in certificates(pem, origin)? {
        store
            .add(cert)
            .map_err(|e| format!("{origin}: not a usable CA certificate: {e}"))?;
    }
    Ok(Arc::new(store))
}

/// A client certificate chain (PEM) and its private key (PEM: PKCS#8,
/// PKCS#1 or SEC1), checked to belong together.
fn parse_identity(
    cert_pem: &[u8],
    cert_origin: &str,
    key_pem: &[u8],
    key_origin: &str,
) -> Result<Arc<CertifiedKey>, String> {
    let chain = certificates(cert_pem, cert_origin)?;
    // The parser's error is not repeated: it may quote the text.
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|_| format!("{key_origin}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in it"))?;
    certified_key(chain, key, cert_origin, key_origin)
}

/// `chain` and `key` as rustls' signing identity, checked to belong
/// together; the origins name them in errors.
pub(crate) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_origin: &str,
    key_origin: &str,
) -> Result<Arc<CertifiedKey>, String> {
    CertifiedKey::from_der(chain, key, &provider())
        .map(Arc::new)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
                format!("the private key in {key_origin} does not match the certificate in {cert_origin}")
            }
            other => format!("{key_origin}: not a usable private key for {cert_origin}: {other}"),
        })
}

/// Where the CA bundle comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CaPem<'a> {
    /// Given to `ClientBuilder::ca`.
    Text(&'a str),
    /// Given to `ClientBuilder::ca_file`: read again before every new
    /// connection.
    File(&'a Path),
}

/// Where the client certificate and its key come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IdentityPem<'a> {
    /// Given to `ClientBuilder::identity`.
    Text { cert: &'a str, key: &'a str },
    /// Given to `ClientBuilder::identity_files`: read again before every
    /// new connection.
    Files { cert: &'a Path, key: &'a Path },
}

/// Where the TLS material of each new connection comes from.
pub(crate) enum Material {
    /// Parsed once.
    Fixed(Arc<ClientConfig>),
    /// Followed in files.
    Files(FollowedFiles),
    /// Followed on the SPIFFE Workload API.
    Spiffe(SpiffeMaterial),
}

impl Material {
    /// The material of `ca` and `identity`: parsed now if given as text,
    /// else loaded from the files for the first time (an error names the
    /// file).
    pub(crate) async fn from_pem(
        ca: CaPem<'_>,
        identity: Option<IdentityPem<'_>>,
    ) -> Result<Self, String> {
        let ca = match ca {
            CaPem::Text(text) => Ca::Parsed(parse_roots(
                text.as_bytes(),
                "the PEM given to ClientBuilder::ca",
            )?),
            CaPem::File(path) => Ca::File(path.to_path_buf()),
        };
        let client = match identity {
            None => ClientCert::None,
            Some(IdentityPem::Text { cert, key }) => ClientCert::Parsed(parse_identity(
                cert.as_bytes(),
                "the certificate given to ClientBuilder::identity",
                key.as_bytes(),
                "the key given to ClientBuilder::identity",
            )?),
            Some(IdentityPem::Files { cert, key }) => ClientCert::Files {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            },
        };
        let sources = PemSources { ca, client };
        if let (Ca::Parsed(roots), ClientCert::None | ClientCert::Parsed(_)) =
            (&sources.ca, &sources.client)
        {
            let config = client_config(Verifier::Roots(roots.clone()), sources.client.parsed())?;
            return Ok(Self::Fixed(Arc::new(config)));
        }
        let (version, config) = sources.load().await?;
        Ok(Self::Files(FollowedFiles {
            sources,
            last: LastGood::new(version, config),
        }))
    }

    /// The configuration for a new connection.
    pub(crate) async fn config(&self) -> Result<Arc<ClientConfig>, String> {
        match self {
            Self::Fixed(config) => Ok(config.clone()),
            Self::Files(files) => Ok(files.config().await),
            Self::Spiffe(spiffe) => spiffe.config(),
        }
    }
}

/// The CA bundle: parsed once, or a file.
enum Ca {
    Parsed(Arc<RootCertStore>),
    File(PathBuf),
}

/// The client certificate: none, parsed once, or two files.
enum ClientCert {
    None,
    Parsed(Arc<CertifiedKey>),
    Files { cert: PathBuf, key: PathBuf },
}

impl ClientCert {
    fn parsed(&self) -> Option<Arc<CertifiedKey>> {
        match self {
            Self::Parsed(key) => Some(key.clone()),
            Self::None | Self::Files { .. } => None,
        }
    }
}

/// The bytes of the files of [`PemSources`] as read for one connection:
/// the CA file, the certificate file and the key file, each wiped when
/// dropped. They live for one load only, so no type of this crate holds a
/// key's bytes.
type Contents = (
    Option<Zeroizing<Vec<u8>>>,
    Option<(Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>)>,
);

/// The CA and the client certificate, each parsed once or in files.
struct PemSources {
    ca: Ca,
    client: ClientCert,
}

impl PemSources {
    /// Reads the files: their contents, and a digest of them to compare
    /// with the set last loaded.
    async fn read(&self) -> Result<(Contents, [u8; 32]), String> {
        let ca = match &self.ca {
            Ca::File(path) => Some(read_file(path).await?),
            Ca::Parsed(_) => None,
        };
        let client = match &self.client {
            ClientCert::Files { cert, key } => {
                Some((read_file(cert).await?, read_file(key).await?))
            }
            ClientCert::None | ClientCert::Parsed(_) => None,
        };
        let mut hash = Sha256::new();
        let parts = ca
            .iter()
            .chain(client.iter().flat_map(|(cert, key)| [cert, key]));
        for part in parts {
            // Length-prefixed, so bytes moved between files change it.
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_slice());
        }
        Ok(((ca, client), hash.finalize().into()))
    }

    /// The configuration of `contents`, as read by [`PemSources::read`].
    fn build(&self, (ca, client): &Contents) -> Result<ClientConfig, String> {
        let not_read = |path: &Path| format!("{}: not read", path.display());
        let roots = match (&self.ca, ca) {
            (Ca::Parsed(roots), _) => roots.clone(),
            (Ca::File(path), Some(bytes)) => parse_roots(bytes, &path.display().to_string())?,
            (Ca::File(path), None) => return Err(not_read(path)),
        };
        let identity = match (&self.client, client) {
            (ClientCert::Files { cert, key }, Some((cert_pem, key_pem))) => Some(parse_identity(
                cert_pem,
                &cert.display().to_string(),
                key_pem,
                &key.display().to_string(),
            )?),
            (ClientCert::Files { cert, .. }, None) => return Err(not_read(cert)),
            (ClientCert::None | ClientCert::Parsed(_), _) => self.client.parsed(),
        };
        client_config(Verifier::Roots(roots), identity)
    }

    /// The first load: reads and builds, or says why not.
    async fn load(&self) -> Result<([u8; 32], ClientConfig), String> {
        let (contents, digest) = self.read().await?;
        Ok((digest, self.build(&contents)?))
    }
}

async fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    tokio::fs::read(path)
        .await
        .map(Zeroizing::new)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// [`PemSources`] followed: read before every new connection.
pub(crate) struct FollowedFiles {
    sources: PemSources,
    last: LastGood<[u8; 32]>,
}

impl FollowedFiles {
    /// The configuration of the files as they are now, or the last good one
    /// if they cannot be read or do not load.
    async fn config(&self) -> Arc<ClientConfig> {
        match self.sources.read().await {
            Ok((contents, digest)) => self.last.get(digest, || self.sources.build(&contents)),
            Err(why) => self.last.refused(None, &why),
        }
    }
}

/// The last configuration that loaded, and the version of the material
/// (a digest, a revision) it was built from.
pub(crate) struct LastGood<K> {
    state: Mutex<LastState<K>>,
}

struct LastState<K> {
    version: K,
    config: Arc<ClientConfig>,
    /// The last version refused: not built again.
    refused: Option<K>,
    /// The reason last warned about: not repeated.
    warned: Option<String>,
}

impl<K: PartialEq + Copy> LastGood<K> {
    pub(crate) fn new(version: K, config: ClientConfig) -> Self {
        Self {
            state: Mutex::new(LastState {
                version,
                config: Arc::new(config),
                refused: None,
                warned: None,
            }),
        }
    }

    /// The configuration of material `version`: the current one if that is
    /// unchanged, else `build`'s; if that fails, the last good one (see
    /// [`LastGood::refused`]).
    pub(crate) fn get(
        &self,
        version: K,
        build: impl FnOnce() -> Result<ClientConfig, String>,
    ) -> Arc<ClientConfig> {
        let mut state = self.lock();
        if state.version == version || state.refused == Some(version) {
            return state.config.clone();
        }
        match build() {
            Ok(config) => {
                tracing::info!("new TLS material loaded: new connections use it");
                *state = LastState {
                    version,
                    config: Arc::new(config),
                    refused: None,
                    warned: None,
                };
                state.config.clone()
            }
            Err(why) => {
                drop(state);
                self.refused(Some(version), &why)
            }
        }
    }

    /// The last good configuration, after material `version` (`None`:
    /// material that could not even be read) was refused for `why`. The
    /// refusal is logged as a warning, once while the reason stays the
    /// same; the reason names files and what is wrong, never their
    /// contents.
    pub(crate) fn refused(&self, version: Option<K>, why: &str) -> Arc<ClientConfig> {
        let mut state = self.lock();
        if version.is_some() {
            state.refused = version;
        }
        if state.warned.as_deref() != Some(why) {
            tracing::warn!(
                reason = %why,
                "new TLS material refused; new connections keep the last good certificates"
            );
            state.warned = Some(why.to_owned());
        }
        state.config.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LastState<K>> {
        // Every write is one assignment: a panic elsewhere while the lock
        // was held left the state whole.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
