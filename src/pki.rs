//! Certificate generation for mutual TLS.
//!
//! Used by `tresor dev`, `tresor certs ...` and the integration tests to make a
//! small private CA and the server and client certificates it issues. All keys
//! are ECDSA P-256 and are written as PEM (certificates) and PKCS#8 PEM (keys).
//!
//! - [`CertificateAuthority`] generates, loads and saves a CA and issues leaf
//!   certificates from it.
//! - [`CertifiedKey`] is an issued certificate with its private key.
//! - [`write_private_file`] writes secrets to disk with mode 0600.
//!
//! Private keys in memory: PEM strings are `Zeroizing`, and rcgen's key
//! pairs are wiped when they drop (`WipedKeyPair`, rcgen's PKCS#8 copy);
//! ring's parsed signing key inside a key pair cannot be wiped from here
//! (ring offers no way, and this crate forbids `unsafe`). Neither a CA nor
//! an issued key is held by a running server.
//!
//! Serial numbers are derived by rcgen from a SHA-256 of the (freshly
//! generated, hence unique) subject public key, so no random source is needed
//! beyond key generation.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::string::{Ia5String, PrintableString};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType,
};
use rcgen::{PublicKeyData, SignatureAlgorithm, SigningKey};
use x509_parser::certificate::X509Certificate;

use crate::identity::{Identity, IdentityKind};
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::ParsedExtension;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// File name of the CA certificate written by [`CertificateAuthority::save`].
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key written by [`CertificateAuthority::save`].
pub const CA_KEY_FILE: &str = "ca.key";
/// File name of a leaf certificate written by [`CertifiedKey::save`].
pub const CERT_FILE: &str = "cert.pem";
/// File name of a leaf private key written by [`CertifiedKey::save`].
pub const KEY_FILE: &str = "key.pem";

/// Longest subject common name X.509 allows (RFC 5280 `ub-common-name`).
const MAX_COMMON_NAME_LEN: usize = 64;
/// Back-dating of every `not_before`, to tolerate clock skew between hosts.
const CLOCK_SKEW: Duration = Duration::from_secs(60 * 60);
/// Lifetime of a CA certificate: ten years.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// Lifetime of a leaf (server or client) certificate: one year.
const LEAF_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Errors from generating, loading, issuing or saving certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A name (CA common name, DNS name or client identity) cannot go into a certificate.
    #[error("invalid {kind} {name:?}: {reason}")]
    InvalidName {
        /// What the name was meant to be ("CA common name", "DNS name", "client identity").
        kind: &'static str,
        /// The rejected name.
        name: String,
        /// Why, and what would be accepted.
        reason: String,
    },
    /// A server certificate was requested without any DNS name or IP address.
    #[error(
        "a server certificate needs at least one DNS name or IP address; give e.g. localhost or 127.0.0.1"
    )]
    NoServerNames,
    /// The requested validity period is empty or not representable in X.509.
    #[error("invalid certificate validity: {reason}")]
    InvalidValidity {
        /// What is wrong with it.
        reason: String,
    },
    /// rcgen failed to generate a key or to sign a certificate.
    #[error("certificate generation failed: {source}")]
    Generation {
        /// The underlying rcgen error.
        #[from]
        source: rcgen::Error,
    },
    /// The CA certificate PEM could not be parsed.
    #[error(
        "the CA certificate is not a valid PEM-encoded X.509 certificate ({source}); give the ca.pem written with the CA"
    )]
    MalformedCaCertificate {
        /// What the parser objected to.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The CA certificate parsed, but cannot be used to issue certificates.
    #[error("the CA certificate cannot issue certificates: {reason}")]
    UnusableCaCertificate {
        /// Why (not a CA, no keyCertSign, unsupported subject encoding, ...).
        reason: String,
    },
    /// The CA private key PEM could not be parsed.
    #[error(
        "the CA private key is not a valid PEM-encoded PKCS#8 private key ({source}); give the ca.key written with the CA"
    )]
    MalformedCaKey {
        /// The underlying rcgen error.
        #[source]
        source: rcgen::Error,
    },
    /// The CA private key does not belong to the CA certificate.
    #[error(
        "the CA private key does not match the CA certificate's public key; use the key that was saved with this certificate"
    )]
    CaKeyMismatch,
    /// A file that would be written already exists.
    #[error("{} already exists; remove it or choose another --out", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A directory could not be created.
    #[error("cannot create directory {}: {source}; check the path and its permissions", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// A file could not be read.
    #[error(
        "cannot read {}: {source}; check the path, or create the CA in that directory first",
        path.display()
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}; check the directory exists and is writable", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The contents of a file that was read are not usable.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file (for a CA, the directory's `ca.pem` or `ca.key`).
        path: PathBuf,
        /// What is wrong with its contents.
        #[source]
        source: Box<PkiError>,
    },
}

/// A PEM certificate and its PEM (PKCS#8) private key, as issued by a
/// [`CertificateAuthority`].
///
/// Not to be confused with `rcgen::CertifiedKey`. The key is secret: `Debug`
/// redacts it, and there is deliberately no `PartialEq`.
#[derive(Clone)]
pub struct CertifiedKey {
    /// The certificate, PEM-encoded (`-----BEGIN CERTIFICATE-----`).
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM-encoded (`-----BEGIN PRIVATE KEY-----`).
    /// Secret: wiped when dropped.
    pub key_pem: Zeroizing<String>,
}

impl fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

impl CertifiedKey {
    /// Writes `cert.pem` and `key.pem` (the key with mode 0600 on unix) into
    /// `dir`, creating it (mode 0700 on unix) if missing.
    ///
    /// Refuses, before writing anything, if either file exists, unless
    /// `overwrite` is true, in which case both are replaced atomically
    /// one by one.
    pub fn save(&self, dir: &Path, overwrite: bool) -> Result<(), PkiError> {
        save_pair(
            dir,
            (CERT_FILE, self.cert_pem.as_bytes()),
            (KEY_FILE, self.key_pem.as_bytes()),
            overwrite,
        )
    }
}

/// A certificate authority that can issue server and client certificates.
///
/// `Debug` shows the certificate only, never the key.
pub struct CertificateAuthority {
    /// The CA certificate as PEM.
    cert_pem: String,
    /// The issuer (subject name, key identifier, key usages and signing key).
    issuer: Issuer<'static, WipedKeyPair>,
}

/// An rcgen key pair whose PKCS#8 DER copy is wiped when it drops (rcgen
/// keeps one beside ring's parsed key, and does not wipe it by itself).
/// ring's parsed key is not wiped: ring offers no way to.
pub(crate) struct WipedKeyPair(KeyPair);

impl Drop for WipedKeyPair {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for WipedKeyPair {}

impl PublicKeyData for WipedKeyPair {
    fn der_bytes(&self) -> &[u8] {
        self.0.der_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.0.algorithm()
    }
}

impl SigningKey for WipedKeyPair {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0.sign(msg)
    }
}

impl WipedKeyPair {
    /// A fresh ECDSA P-256 key pair.
    fn generate() -> Result<Self, rcgen::Error> {
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map(Self)
    }

    /// The private key, PKCS#8 PEM.
    fn pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.serialize_pem())
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_pem", &self.cert_pem)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl CertificateAuthority {
    /// Generates a new self-signed CA: ECDSA P-256, subject `CN=common_name`,
    /// `basicConstraints` critical `CA:true, pathlen:0` (it can issue leaf
    /// certificates only), key usages `keyCertSign`, `cRLSign`,
    /// `digitalSignature`, valid from one hour ago for ten years.
    ///
    /// `common_name` must be 1 to 64 bytes with no control characters.
    pub fn generate(common_name: &str) -> Result<Self, PkiError> {
        if common_name.is_empty() || common_name.len() > MAX_COMMON_NAME_LEN {
            return Err(PkiError::InvalidName {
                kind: "CA common name",
                name: common_name.to_owned(),
                reason: format!("must be 1 to {MAX_COMMON_NAME_LEN} bytes long"),
            });
        }
        reject_control_chars("CA common name", common_name)?;

        let key = WipedKeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = SystemTime::now();
        set_validity(&mut params, now - CLOCK_SKEW, now + CA_LIFETIME)?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its PEM certificate and PEM (PKCS#8) private key, as
    /// written by [`CertificateAuthority::save`].
    ///
    /// Checks that the certificate is a CA (`basicConstraints CA:true`), that
    /// its key usage (if present) allows `keyCertSign`, and that the key
    /// matches the certificate. `cert_pem` must hold exactly one certificate.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let (rest, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).map_err(|e| {
            PkiError::MalformedCaCertificate {
                source: Box::new(e),
            }
        })?;
        if pem.label != "CERTIFICATE" {
            return Err(PkiError::MalformedCaCertificate {
                source: format!("expected a CERTIFICATE PEM block, found {:?}", pem.label).into(),
            });
        }
        if !rest.iter().all(u8::is_ascii_whitespace) {
            return Err(PkiError::MalformedCaCertificate {
                source: "more than one PEM block; give only the CA certificate".into(),
            });
        }
        let x509 = pem
            .parse_x509()
            .map_err(|e| PkiError::MalformedCaCertificate {
                source: Box::new(e),
            })?;

        let key = KeyPair::from_pem(key_pem)
            .map(WipedKeyPair)
            .map_err(|source| PkiError::MalformedCaKey { source })?;
        if key.0.public_key_raw() != x509.public_key().subject_public_key.data.as_ref() {
            return Err(PkiError::CaKeyMismatch);
        }

        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&x509)?;
        params.key_usages = ca_key_usages(&x509)?;
        params.key_identifier_method = subject_key_identifier(&x509);
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM-encoded. This is what servers and clients trust.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The CA private key, PKCS#8 PEM-encoded. Secret: store it with
    /// [`write_private_file`] or [`CertificateAuthority::save`].
    pub fn key_pem(&self) -> Zeroizing<String> {
        self.issuer.key().pem()
    }

    /// Issues a server certificate for the given DNS names and IP addresses
    /// (as SANs; the subject CN is the first DNS name, else the first IP).
    ///
    /// EKU `serverAuth`, key usage `digitalSignature`, `CA:false`, valid from
    /// one hour ago for one year. At least one name or address is required.
    pub fn issue_server(
        &self,
        dns_names: &[String],
        ips: &[IpAddr],
    ) -> Result<CertifiedKey, PkiError> {
        let mut sans = Vec::with_capacity(dns_names.len() + ips.len());
        for name in dns_names {
            validate_dns_name("DNS name", name)?;
            sans.push(SanType::DnsName(ia5("DNS name", name)?));
        }
        sans.extend(ips.iter().copied().map(SanType::IpAddress));
        let common_name = match (dns_names.first(), ips.first()) {
            (Some(name), _) => name.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => return Err(PkiError::NoServerNames),
        };
        let now = SystemTime::now();
        self.issue_leaf(
            &common_name,
            sans,
            ExtendedKeyUsagePurpose::ServerAuth,
            now - CLOCK_SKEW,
            now + LEAF_LIFETIME,
        )
    }

    /// Issues a client certificate for `identity`, valid from one hour ago for
    /// one year. See [`CertificateAuthority::issue_client_with_validity`].
    pub fn issue_client(&self, identity: &str) -> Result<CertifiedKey, PkiError> {
        let now = SystemTime::now();
        self.issue_client_with_validity(identity, now - CLOCK_SKEW, now + LEAF_LIFETIME)
    }

    /// Issues a client certificate for `identity`, valid from `not_before` to
    /// `not_after` (absolute times, truncated to whole seconds; both may lie in
    /// the past, e.g. to test that expired certificates are refused).
    ///
    /// `identity` is read as [`Identity::parse`] reads it, and goes where the
    /// server will look for it: a URI (e.g. `spiffe://example.org/billing`)
    /// in a URI SAN, a DNS name (`billing.example.org`, lower-cased) in a DNS
    /// SAN, `cn:NAME` in the subject CN with no SAN extension (at most 64
    /// bytes). A URI or DNS identity is the subject CN too when it fits (at
    /// most 64 bytes; the server ignores a CN beside a SAN); longer ones get
    /// an empty subject and a critical SAN extension, as RFC 5280 requires.
    /// EKU `clientAuth`, key usage `digitalSignature`, `CA:false`.
    pub fn issue_client_with_validity(
        &self,
        identity: &str,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<CertifiedKey, PkiError> {
        const KIND: &str = "client identity";
        let invalid = |reason: String| PkiError::InvalidName {
            kind: KIND,
            name: identity.to_owned(),
            reason,
        };
        let parsed = Identity::parse(identity).map_err(|e| invalid(e.to_string()))?;
        let name = parsed.name();
        let sans = match parsed.kind() {
            IdentityKind::Uri => {
                validate_uri(KIND, name)?;
                vec![SanType::URI(ia5(KIND, name)?)]
            }
            IdentityKind::Dns => {
                validate_dns_name(KIND, name)?;
                vec![SanType::DnsName(ia5(KIND, name)?)]
            }
            IdentityKind::CommonName if name.len() <= MAX_COMMON_NAME_LEN => Vec::new(),
            IdentityKind::CommonName => {
                return Err(invalid(format!(
                    "a common name has at most {MAX_COMMON_NAME_LEN} bytes; use a URI or DNS identity"
                )));
            }
            _ => return Err(invalid("fits no certificate field".to_owned())),
        };
        self.issue_leaf(
            name,
            sans,
            ExtendedKeyUsagePurpose::ClientAuth,
            not_before,
            not_after,
        )
    }

    /// Writes `ca.pem` and `ca.key` (the key with mode 0600 on unix) into
    /// `dir`, creating it (mode 0700 on unix) if missing.
    ///
    /// Refuses, before writing anything, if either file already exists: a CA
    /// is never clobbered.
    pub fn save(&self, dir: &Path) -> Result<(), PkiError> {
        let key_pem = self.key_pem();
        save_pair(
            dir,
            (CA_CERT_FILE, self.cert_pem.as_bytes()),
            (CA_KEY_FILE, key_pem.as_bytes()),
            false,
        )
    }

    /// Reads `ca.pem` and `ca.key` from `dir` and loads them with
    /// [`CertificateAuthority::from_pem`].
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let read = |path: &Path| {
            fs::read_to_string(path).map_err(|source| PkiError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let cert_pem = read(&cert_path)?;
        let key_pem = Zeroizing::new(read(&key_path)?);
        Self::from_pem(&cert_pem, &key_pem).map_err(|e| {
            let path = match e {
                PkiError::MalformedCaKey { .. } | PkiError::CaKeyMismatch => key_path,
                _ => cert_path,
            };
            PkiError::InFile {
                path,
                source: Box::new(e),
            }
        })
    }

    /// Generates a fresh key and signs a leaf certificate for it.
    fn issue_leaf(
        &self,
        common_name: &str,
        sans: Vec<SanType>,
        eku: ExtendedKeyUsagePurpose,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<CertifiedKey, PkiError> {
        let key = WipedKeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if common_name.len() <= MAX_COMMON_NAME_LEN {
            params
                .distinguished_name
                .push(DnType::CommonName, common_name);
        }
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![eku];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, not_before, not_after)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.pem(),
        })
    }
}

/// Writes `contents` to `path` with mode 0600 (on unix; elsewhere the
/// platform default) and fsyncs the file and, on unix, its directory.
///
/// Without `overwrite` the file is created with `create_new`, so an existing
/// file is an [`io::ErrorKind::AlreadyExists`] error, and a partly written file
/// is removed on failure. With `overwrite` the contents go to a temporary file
/// in the same directory which is then renamed over `path`, so readers see the
/// old or the new contents, never a mix, and the result is 0600 even if the
/// old file was not.
pub fn write_private_file(path: &Path, contents: &[u8], overwrite: bool) -> io::Result<()> {
    write_file(path, contents, overwrite, 0o600)
}

/// [`write_private_file`] with a chosen unix mode (before umask).
fn write_file(path: &Path, contents: &[u8], overwrite: bool, mode: u32) -> io::Result<()> {
    if !overwrite {
        return write_new_file(path, contents, mode);
    }
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    // Unique per process (pid), per call (counter) and per run (nanos).
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}-{count}-{nanos}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    write_new_file(&tmp, contents, mode)?;
    if let Err(e) = fs::rename(&tmp, path) {
        // Best effort: the rename error is the one worth reporting.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_parent_dir(path)
}

/// `create_new` with `mode`, write, fsync; removes the file again if writing fails.
fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        // Best effort: the write error is the one worth reporting.
        let _ = fs::remove_file(path);
        return Err(e);
    }
    sync_parent_dir(path)
}

/// Fsyncs the directory containing `path` (on unix), so that a new directory
/// entry survives a crash.
fn sync_parent_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs::File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Creates `dir` if needed, refuses existing files unless `overwrite`, then
/// writes the key (0600) and the certificate (0644).
fn save_pair(
    dir: &Path,
    (cert_name, cert): (&str, &[u8]),
    (key_name, key): (&str, &[u8]),
    overwrite: bool,
) -> Result<(), PkiError> {
    create_private_dir(dir).map_err(|source| PkiError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let cert_path = dir.join(cert_name);
    let key_path = dir.join(key_name);
    if !overwrite {
        // Check both first so that a refusal leaves nothing half-written.
        for path in [&key_path, &cert_path] {
            if fs::symlink_metadata(path).is_ok() {
                return Err(PkiError::AlreadyExists { path: path.clone() });
            }
        }
    }
    let write_error = |path: &Path, source: io::Error| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            PkiError::AlreadyExists {
                path: path.to_owned(),
            }
        } else {
            PkiError::Write {
                path: path.to_owned(),
                source,
            }
        }
    };
    write_private_file(&key_path, key, overwrite).map_err(|e| write_error(&key_path, e))?;
    write_file(&cert_path, cert, overwrite, 0o644).map_err(|e| {
        if !overwrite {
            // Do not leave a key without its certificate behind, which would
            // make the next attempt refuse; best effort.
            let _ = fs::remove_file(&key_path);
        }
        write_error(&cert_path, e)
    })
}

/// `create_dir_all`, with mode 0700 on unix for the directories it creates.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Sets `params`' validity period from two `SystemTime`s.
///
/// The `time` crate is not a direct dependency of tresor, so its
/// `OffsetDateTime` is reached only through rcgen's `date_time_ymd` and type
/// inference; checked arithmetic keeps out-of-range times from panicking.
fn set_validity(
    params: &mut CertificateParams,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<(), PkiError> {
    if not_before >= not_after {
        return Err(PkiError::InvalidValidity {
            reason: "not_before must be earlier than not_after".to_owned(),
        });
    }
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let convert = |t: SystemTime| {
        let converted = match t.duration_since(UNIX_EPOCH) {
            Ok(after) => after.try_into().ok().and_then(|d| epoch.checked_add(d)),
            Err(before) => before
                .duration()
                .try_into()
                .ok()
                .and_then(|d| epoch.checked_sub(d)),
        };
        // X.509 times (UTCTime/GeneralizedTime) can express years 0 to 9999.
        converted
            .filter(|dt| (0..=9999).contains(&dt.year()))
            .ok_or_else(|| PkiError::InvalidValidity {
                reason: "times must lie between the years 0 and 9999".to_owned(),
            })
    };
    params.not_before = convert(not_before)?;
    params.not_after = convert(not_after)?;
    Ok(())
}

/// Converts to the ASCII string type SANs need.
fn ia5(kind: &'static str, name: &str) -> Result<Ia5String, PkiError> {
    Ia5String::try_from(name).map_err(|e| PkiError::InvalidName {
        kind,
        name: name.to_owned(),
        reason: format!("{e}; only ASCII is allowed"),
    })
}

fn reject_control_chars(kind: &'static str, name: &str) -> Result<(), PkiError> {
    match name.char_indices().find(|(_, c)| c.is_control()) {
        Some((i, c)) => Err(PkiError::InvalidName {
            kind,
            name: name.to_owned(),
            reason: format!("contains the control character {c:?} at byte {i}"),
        }),
        None => Ok(()),
    }
}

/// Checks a DNS name: at most 253 bytes, dot-separated labels of 1 to 63
/// letters, digits, `-` or `_`, not starting or ending with `-`; the first
/// label may be `*` (wildcard).
fn validate_dns_name(kind: &'static str, name: &str) -> Result<(), PkiError> {
    let invalid = |reason: String| PkiError::InvalidName {
        kind,
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > 253 {
        return Err(invalid("a DNS name must be 1 to 253 bytes long".to_owned()));
    }
    for (i, label) in name.split('.').enumerate() {
        if i == 0 && label == "*" {
            continue;
        }
        if label.is_empty() || label.len() > 63 {
            return Err(invalid(format!(
                "DNS label {label:?} must be 1 to 63 bytes long"
            )));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(invalid(format!(
                "{c:?} is not allowed in a DNS name (letters, digits, '-', '_' and '.' only)"
            )));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid(format!(
                "DNS label {label:?} must not start or end with '-'"
            )));
        }
    }
    Ok(())
}

/// Checks a URI identity: `scheme://rest` with an RFC 3986 scheme and a
/// non-empty rest made of printable ASCII without spaces.
fn validate_uri(kind: &'static str, uri: &str) -> Result<(), PkiError> {
    let invalid = |reason: &str| PkiError::InvalidName {
        kind,
        name: uri.to_owned(),
        reason: format!("{reason}; expected a URI such as spiffe://example.org/billing"),
    };
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(invalid("missing \"://\""));
    };
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(invalid("the scheme before \"://\" is missing or malformed"));
    }
    if rest.is_empty() {
        return Err(invalid("nothing follows \"://\""));
    }
    if !rest.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(
            "only printable ASCII without spaces is allowed (percent-encode the rest)",
        ));
    }
    Ok(())
}

/// Rebuilds the CA's subject for use as the issuer name of new certificates.
///
/// Each attribute keeps its ASN.1 string type, so the issuer name of issued
/// certificates is byte-for-byte the CA's subject, as path building requires.
fn distinguished_name(x509: &X509Certificate<'_>) -> Result<DistinguishedName, PkiError> {
    let unusable = |reason: &str| PkiError::UnusableCaCertificate {
        reason: reason.to_owned(),
    };
    let mut dn = DistinguishedName::new();
    for rdn in x509.subject().iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(unusable(
                "its subject has a multi-valued or empty RDN, which is not supported",
            ));
        };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| unusable("its subject has an attribute type that is not a valid OID"))?
            .collect();
        let value = attr.attr_value();
        let text = std::str::from_utf8(value.data)
            .map_err(|_| unusable("its subject has a string attribute that is not valid text"));
        let dn_value = match value.header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text?.to_owned()),
            Tag::PrintableString => DnValue::PrintableString(
                PrintableString::try_from(text?)
                    .map_err(|_| unusable("its subject has an invalid PrintableString"))?,
            ),
            Tag::Ia5String => DnValue::Ia5String(
                Ia5String::try_from(text?)
                    .map_err(|_| unusable("its subject has an invalid IA5String"))?,
            ),
            _ => {
                return Err(unusable(
                    "its subject uses a string type other than UTF8String, PrintableString or IA5String",
                ));
            }
        };
        dn.push(DnType::from_oid(&oid), dn_value);
    }
    Ok(dn)
}

/// Checks that the certificate may act as a CA and returns its key usages.
fn ca_key_usages(x509: &X509Certificate<'_>) -> Result<Vec<KeyUsagePurpose>, PkiError> {
    let unusable = |reason: String| PkiError::UnusableCaCertificate { reason };
    let parse_error =
        |e: x509_parser::error::X509Error| unusable(format!("its extensions are malformed: {e}"));
    let is_ca = x509
        .basic_constraints()
        .map_err(parse_error)?
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(unusable(
            "it is not a CA certificate (basicConstraints CA:true is missing); give the CA's certificate, not a leaf".to_owned(),
        ));
    }
    let Some(ku) = x509.key_usage().map_err(parse_error)? else {
        return Ok(Vec::new());
    };
    let ku = ku.value;
    if !ku.key_cert_sign() {
        return Err(unusable(
            "its key usage does not include keyCertSign".to_owned(),
        ));
    }
    let table = [
        (ku.digital_signature(), KeyUsagePurpose::DigitalSignature),
        (ku.non_repudiation(), KeyUsagePurpose::ContentCommitment),
        (ku.key_encipherment(), KeyUsagePurpose::KeyEncipherment),
        (ku.data_encipherment(), KeyUsagePurpose::DataEncipherment),
        (ku.key_agreement(), KeyUsagePurpose::KeyAgreement),
        (ku.key_cert_sign(), KeyUsagePurpose::KeyCertSign),
        (ku.crl_sign(), KeyUsagePurpose::CrlSign),
        (ku.encipher_only(), KeyUsagePurpose::EncipherOnly),
        (ku.decipher_only(), KeyUsagePurpose::DecipherOnly),
    ];
    Ok(table
        .into_iter()
        .filter_map(|(set, purpose)| set.then_some(purpose))
        .collect())
}

/// The CA's subject key identifier, reused as the authority key identifier
/// of issued certificates; falls back to rcgen's SHA-256 method if absent.
fn subject_key_identifier(x509: &X509Certificate<'_>) -> KeyIdMethod {
    x509.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(KeyIdMethod::PreSpecified(id.0.to_vec()))
            }
            _ => None,
        })
        .unwrap_or(KeyIdMethod::Sha256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use x509_parser::extensions::GeneralName;
    use x509_parser::pem::parse_x509_pem;

    const HOUR: u64 = 60 * 60;
    const DAY: u64 = 24 * HOUR;

    fn der_of(pem: &str) -> Vec<u8> {
        let (rest, pem) = parse_x509_pem(pem.as_bytes()).expect("PEM");
        assert!(rest.iter().all(u8::is_ascii_whitespace));
        assert_eq!(pem.label, "CERTIFICATE");
        pem.contents
    }

    fn parse(der: &[u8]) -> X509Certificate<'_> {
        let (rest, cert) = x509_parser::parse_x509_certificate(der).expect("DER");
        assert!(rest.is_empty());
        cert
    }

    fn unix_now() -> i64 {
        i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock after 1970")
                .as_secs(),
        )
        .expect("fits")
    }

    /// Asserts `not_before ≈ now - 1h` and `not_after ≈ now + lifetime`.
    fn assert_validity(cert: &X509Certificate<'_>, lifetime: u64) {
        let now = unix_now();
        let nb = cert.validity().not_before.timestamp();
        let na = cert.validity().not_after.timestamp();
        let within = |actual: i64, expected: i64| (actual - expected).abs() <= 120;
        assert!(within(nb, now - HOUR as i64), "not_before {nb}, now {now}");
        assert!(
            within(na, now + lifetime as i64),
            "not_after {na}, now {now}"
        );
    }

    /// Verifies `leaf`'s signature with `ca`'s public key and checks that the
    /// names and key identifiers chain. Returns false if the signature is bad.
    fn signed_by(leaf: &X509Certificate<'_>, ca: &X509Certificate<'_>) -> bool {
        assert_eq!(
            leaf.signature_algorithm.algorithm,
            x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256
        );
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            ca.public_key().subject_public_key.data.as_ref(),
        );
        key.verify(leaf.tbs_certificate.as_ref(), &leaf.signature_value.data)
            .is_ok()
    }

    /// Full chain check of an issued leaf against its CA.
    fn assert_issued_by(leaf: &X509Certificate<'_>, ca: &X509Certificate<'_>) {
        assert!(signed_by(leaf, ca), "signature does not verify");
        // Path building compares names byte for byte.
        assert_eq!(leaf.issuer().as_raw(), ca.subject().as_raw());
        let ski = ca
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            })
            .expect("CA has a subject key identifier");
        let aki = leaf
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|id| id.0.to_vec())
                }
                _ => None,
            })
            .expect("leaf has an authority key identifier");
        assert_eq!(aki, ski);
        let bc = leaf
            .basic_constraints()
            .expect("extensions")
            .expect("basicConstraints present");
        assert!(!bc.value.ca);
        let ku = leaf.key_usage().expect("extensions").expect("key usage");
        assert!(ku.value.digital_signature());
        assert!(!ku.value.key_cert_sign());
    }

    fn sans<'a>(cert: &'a X509Certificate<'_>) -> Vec<GeneralName<'a>> {
        cert.subject_alternative_name()
            .expect("extensions")
            .map(|san| san.value.general_names.clone())
            .unwrap_or_default()
    }

    fn common_names(cert: &X509Certificate<'_>) -> Vec<String> {
        cert.subject()
            .iter_common_name()
            .map(|cn| cn.as_str().expect("string").to_owned())
            .collect()
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn generated_ca_is_a_self_signed_p256_ca() {
        let ca = CertificateAuthority::generate("tresor dev CA").expect("CA");
        let der = der_of(&ca.cert_pem());
        let cert = parse(&der);
        assert_eq!(common_names(&cert), ["tresor dev CA"]);
        assert_eq!(cert.subject().as_raw(), cert.issuer().as_raw());
        assert!(signed_by(&cert, &cert));
        let bc = cert.basic_constraints().expect("ext").expect("bc");
        assert!(bc.critical);
        assert!(bc.value.ca);
        assert_eq!(bc.value.path_len_constraint, Some(0));
        let ku = cert.key_usage().expect("ext").expect("ku").value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        assert_validity(&cert, 10 * 365 * DAY);
        assert!(ca.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn ca_common_name_is_validated() {
        for bad in ["", "a\nb", &"x".repeat(65)] {
            let err = CertificateAuthority::generate(bad).expect_err("must reject");
            assert!(
                matches!(err, PkiError::InvalidName { .. }),
                "{bad:?}: {err}"
            );
        }
        assert!(CertificateAuthority::generate(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn server_certificate_has_sans_eku_and_chains_to_ca() {
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let ca_der = der_of(&ca.cert_pem());
        let ca_cert = parse(&ca_der);
        let ips = [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        let issued = ca
            .issue_server(
                &["localhost".to_owned(), "kms.example.org".to_owned()],
                &ips,
            )
            .expect("server cert");
        let der = der_of(&issued.cert_pem);
        let cert = parse(&der);
        assert_issued_by(&cert, &ca_cert);
        assert_eq!(common_names(&cert), ["localhost"]);
        assert_eq!(
            sans(&cert),
            [
                GeneralName::DNSName("localhost"),
                GeneralName::DNSName("kms.example.org"),
                GeneralName::IPAddress(&[127, 0, 0, 1]),
                GeneralName::IPAddress(&Ipv6Addr::LOCALHOST.octets()),
            ]
        );
        let eku = cert.extended_key_usage().expect("ext").expect("eku").value;
        assert!(eku.server_auth && !eku.client_auth);
        assert_validity(&cert, 365 * DAY);
        // The key is a usable PKCS#8 key matching the certificate.
        let key = KeyPair::from_pem(&issued.key_pem).expect("key");
        assert_eq!(
            key.public_key_raw(),
            cert.public_key().subject_public_key.data.as_ref()
        );

        // A certificate does not verify against a CA that did not sign it.
        let other = CertificateAuthority::generate("other CA").expect("CA");
        let other_der = der_of(&other.cert_pem());
        assert!(!signed_by(&cert, &parse(&other_der)));
    }

    #[test]
    fn server_certificate_for_ip_only_and_bad_names() {
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let issued = ca
            .issue_server(&[], &[IpAddr::V4(Ipv4Addr::LOCALHOST)])
            .expect("server cert");
        let der = der_of(&issued.cert_pem);
        assert_eq!(common_names(&parse(&der)), ["127.0.0.1"]);

        assert!(matches!(
            ca.issue_server(&[], &[]),
            Err(PkiError::NoServerNames)
        ));
        for bad in ["", "has space", "a..b", "-a.b", "ünï.example", "*.*.x"] {
            let err = ca
                .issue_server(&[bad.to_owned()], &[])
                .expect_err("must reject");
            assert!(
                matches!(err, PkiError::InvalidName { .. }),
                "{bad:?}: {err}"
            );
        }
        assert!(ca.issue_server(&["*.example.org".to_owned()], &[]).is_ok());
    }

    #[test]
    fn client_certificate_with_spiffe_id_round_trips_to_identity() {
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let ca_der = der_of(&ca.cert_pem());
        let id = "spiffe://example.org/billing";
        let issued = ca.issue_client(id).expect("client cert");
        let der = der_of(&issued.cert_pem);
        let cert = parse(&der);
        assert_issued_by(&cert, &parse(&ca_der));
        assert_eq!(sans(&cert), [GeneralName::URI(id)]);
        assert_eq!(common_names(&cert), [id]);
        let eku = cert.extended_key_usage().expect("ext").expect("eku").value;
        assert!(eku.client_auth && !eku.server_auth);
        assert_validity(&cert, 365 * DAY);
        assert_eq!(
            Identity::from_certificate_der(&der)
                .expect("identity")
                .as_str(),
            id
        );
    }

    #[test]
    fn client_certificate_with_dns_identity() {
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let issued = ca.issue_client("billing.internal").expect("client cert");
        let der = der_of(&issued.cert_pem);
        let cert = parse(&der);
        assert_eq!(sans(&cert), [GeneralName::DNSName("billing.internal")]);
        assert_eq!(common_names(&cert), ["billing.internal"]);
        assert_eq!(
            Identity::from_certificate_der(&der)
                .expect("identity")
                .as_str(),
            "billing.internal"
        );
    }

    #[test]
    fn client_certificate_with_upper_case_dns_identity_is_lower_cased() {
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let issued = ca
            .issue_client("dns:Billing.Internal")
            .expect("client cert");
        let der = der_of(&issued.cert_pem);
        assert_eq!(
            sans(&parse(&der)),
            [GeneralName::DNSName("billing.internal")]
        );
        assert_eq!(
            Identity::from_certificate_der(&der).expect("identity"),
            Identity::parse("billing.internal").expect("identity")
        );
    }

    #[test]
    fn client_certificate_with_common_name_identity_has_no_san() {
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let issued = ca.issue_client("cn:Billing Service").expect("client cert");
        let der = der_of(&issued.cert_pem);
        let cert = parse(&der);
        assert!(cert.subject_alternative_name().expect("ext").is_none());
        assert_eq!(common_names(&cert), ["Billing Service"]);
        let id = Identity::from_certificate_der(&der).expect("identity");
        assert_eq!(id.as_str(), "cn:Billing Service");
        let too_long = format!("cn:{}", "x".repeat(65));
        assert!(matches!(
            ca.issue_client(&too_long),
            Err(PkiError::InvalidName { .. })
        ));
    }

    #[test]
    fn long_identity_gets_empty_subject_and_critical_san() {
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let id = format!("spiffe://example.org/{}", "x".repeat(100));
        let issued = ca.issue_client(&id).expect("client cert");
        let der = der_of(&issued.cert_pem);
        let cert = parse(&der);
        assert!(common_names(&cert).is_empty());
        let san = cert.subject_alternative_name().expect("ext").expect("san");
        assert!(san.critical);
        assert_eq!(
            Identity::from_certificate_der(&der)
                .expect("identity")
                .as_str(),
            id
        );
    }

    #[test]
    fn invalid_client_identities_are_rejected() {
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let too_long = "a".repeat(crate::identity::MAX_IDENTITY_LEN + 1);
        for bad in [
            "",
            "billing service",
            "spiffe://",
            "://example.org",
            "1x://example.org",
            "spiffe://example.org/with space",
            "spiffe://exämple.org",
            "line\nbreak",
            &too_long,
        ] {
            let err = ca.issue_client(bad).expect_err("must reject");
            assert!(
                matches!(err, PkiError::InvalidName { .. }),
                "{bad:?}: {err}"
            );
        }
        let msg = ca
            .issue_client("billing service")
            .expect_err("reject")
            .to_string();
        assert!(msg.contains("spiffe://example.org/billing"), "{msg}");
    }

    #[test]
    fn client_certificate_with_explicit_validity() {
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let now = SystemTime::now();
        let not_before = now - Duration::from_secs(2 * DAY);
        let not_after = now - Duration::from_secs(DAY);
        let issued = ca
            .issue_client_with_validity("expired.example", not_before, not_after)
            .expect("expired cert");
        let der = der_of(&issued.cert_pem);
        let cert = parse(&der);
        let secs = |t: SystemTime| -> i64 {
            match t.duration_since(UNIX_EPOCH) {
                Ok(d) => i64::try_from(d.as_secs()).expect("fits"),
                Err(e) => -i64::try_from(e.duration().as_secs()).expect("fits"),
            }
        };
        assert_eq!(cert.validity().not_before.timestamp(), secs(not_before));
        assert_eq!(cert.validity().not_after.timestamp(), secs(not_after));
        assert!(!cert.validity().is_valid());

        // Before 1950 and after 2049 need GeneralizedTime; both work.
        let old = UNIX_EPOCH - Duration::from_secs(30 * 365 * DAY);
        let far = UNIX_EPOCH + Duration::from_secs(100 * 365 * DAY);
        let issued = ca
            .issue_client_with_validity("far.example", old, far)
            .expect("wide validity");
        let der = der_of(&issued.cert_pem);
        assert_eq!(parse(&der).validity().not_before.timestamp(), secs(old));

        for (nb, na) in [(not_after, not_before), (now, now)] {
            let err = ca
                .issue_client_with_validity("x.example", nb, na)
                .expect_err("empty validity");
            assert!(matches!(err, PkiError::InvalidValidity { .. }), "{err}");
        }
        let year_10000 = UNIX_EPOCH + Duration::from_secs(8100 * 366 * DAY);
        let err = ca
            .issue_client_with_validity("x.example", now, year_10000)
            .expect_err("unencodable");
        assert!(matches!(err, PkiError::InvalidValidity { .. }), "{err}");
    }

    #[test]
    fn save_load_round_trip_and_loaded_ca_issues_valid_certs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("nested/ca");
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        ca.save(&dir).expect("save");
        assert_eq!(
            fs::read_to_string(dir.join(CA_CERT_FILE)).expect("read"),
            ca.cert_pem()
        );
        assert_eq!(
            fs::read_to_string(dir.join(CA_KEY_FILE)).expect("read"),
            *ca.key_pem()
        );
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir.join(CA_KEY_FILE)), 0o600);
            assert_eq!(mode(&dir), 0o700);
        }

        let loaded = CertificateAuthority::load(&dir).expect("load");
        assert_eq!(loaded.cert_pem(), ca.cert_pem());
        assert_eq!(loaded.key_pem(), ca.key_pem());

        let ca_der = der_of(&ca.cert_pem());
        let ca_cert = parse(&ca_der);
        let issued = loaded
            .issue_client("spiffe://example.org/svc")
            .expect("issue");
        let der = der_of(&issued.cert_pem);
        assert_issued_by(&parse(&der), &ca_cert);
        let issued = loaded
            .issue_server(&["localhost".to_owned()], &[])
            .expect("issue");
        let der = der_of(&issued.cert_pem);
        assert_issued_by(&parse(&der), &ca_cert);
    }

    #[test]
    fn ca_save_refuses_to_clobber() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let first = CertificateAuthority::generate("first").expect("CA");
        first.save(tmp.path()).expect("save");
        let second = CertificateAuthority::generate("second").expect("CA");
        let err = second.save(tmp.path()).expect_err("must refuse");
        let key_path = tmp.path().join(CA_KEY_FILE);
        assert!(
            matches!(&err, PkiError::AlreadyExists { path } if *path == key_path),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{} already exists; remove it or choose another --out",
                key_path.display()
            )
        );
        assert_eq!(
            CertificateAuthority::load(tmp.path())
                .expect("load")
                .cert_pem(),
            first.cert_pem()
        );

        // A lone ca.pem is protected too, and nothing is written.
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::write(tmp.path().join(CA_CERT_FILE), "keep me").expect("write");
        let err = second.save(tmp.path()).expect_err("must refuse");
        assert!(matches!(err, PkiError::AlreadyExists { .. }), "{err:?}");
        assert!(!tmp.path().join(CA_KEY_FILE).exists());
        assert_eq!(
            fs::read_to_string(tmp.path().join(CA_CERT_FILE)).expect("read"),
            "keep me"
        );
    }

    #[test]
    fn certified_key_save_modes_and_overwrite() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("client");
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let first = ca.issue_client("a.example").expect("issue");
        first.save(&dir, false).expect("save");
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        assert_eq!(
            fs::read_to_string(&cert_path).expect("read"),
            first.cert_pem
        );
        assert_eq!(fs::read_to_string(&key_path).expect("read"), *first.key_pem);
        #[cfg(unix)]
        assert_eq!(mode(&key_path), 0o600);

        let second = ca.issue_client("b.example").expect("issue");
        let err = second.save(&dir, false).expect_err("must refuse");
        assert!(
            matches!(&err, PkiError::AlreadyExists { path } if *path == key_path),
            "{err:?}"
        );
        assert!(err.to_string().contains("already exists"));
        assert_eq!(fs::read_to_string(&key_path).expect("read"), *first.key_pem);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&key_path, fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        second.save(&dir, true).expect("overwrite");
        assert_eq!(
            fs::read_to_string(&cert_path).expect("read"),
            second.cert_pem
        );
        assert_eq!(
            fs::read_to_string(&key_path).expect("read"),
            *second.key_pem
        );
        #[cfg(unix)]
        assert_eq!(mode(&key_path), 0o600);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        assert_eq!(names, [CERT_FILE, KEY_FILE], "no temporary files left");
    }

    #[test]
    fn write_private_file_semantics() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("master.key");
        write_private_file(&path, b"one", false).expect("write");
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        let err = write_private_file(&path, b"two", false).expect_err("must refuse");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).expect("read"), b"one");
        write_private_file(&path, b"three", true).expect("overwrite");
        assert_eq!(fs::read(&path).expect("read"), b"three");
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        // Overwriting a file that does not exist yet creates it.
        let fresh = tmp.path().join("fresh.key");
        write_private_file(&fresh, b"x", true).expect("write");
        assert_eq!(fs::read(&fresh).expect("read"), b"x");
        assert_eq!(fs::read_dir(tmp.path()).expect("read_dir").count(), 2);
    }

    #[test]
    fn from_pem_rejects_bad_input() {
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let other = CertificateAuthority::generate("other CA").expect("CA");
        assert!(matches!(
            CertificateAuthority::from_pem(&ca.cert_pem(), &other.key_pem()),
            Err(PkiError::CaKeyMismatch)
        ));
        assert!(matches!(
            CertificateAuthority::from_pem("garbage", &ca.key_pem()),
            Err(PkiError::MalformedCaCertificate { .. })
        ));
        assert!(matches!(
            CertificateAuthority::from_pem(&ca.cert_pem(), "garbage"),
            Err(PkiError::MalformedCaKey { .. })
        ));
        let two = format!("{}{}", ca.cert_pem(), other.cert_pem());
        assert!(matches!(
            CertificateAuthority::from_pem(&two, &ca.key_pem()),
            Err(PkiError::MalformedCaCertificate { .. })
        ));
        assert!(matches!(
            CertificateAuthority::from_pem(&ca.key_pem(), &ca.key_pem()),
            Err(PkiError::MalformedCaCertificate { .. })
        ));
        // A leaf certificate is not a CA, even with its own key.
        let leaf = ca.issue_client("leaf.example").expect("issue");
        let err = CertificateAuthority::from_pem(&leaf.cert_pem, &leaf.key_pem)
            .expect_err("leaf is not a CA");
        assert!(
            matches!(err, PkiError::UnusableCaCertificate { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn load_errors_name_the_path() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = CertificateAuthority::load(tmp.path()).expect_err("empty dir");
        let cert_path = tmp.path().join(CA_CERT_FILE);
        assert!(
            matches!(&err, PkiError::Read { path, .. } if *path == cert_path),
            "{err:?}"
        );
        assert!(err.to_string().contains(&cert_path.display().to_string()));

        let ca = CertificateAuthority::generate("test CA").expect("CA");
        ca.save(tmp.path()).expect("save");
        let key_path = tmp.path().join(CA_KEY_FILE);
        write_private_file(&key_path, b"not a key", true).expect("corrupt");
        let err = CertificateAuthority::load(tmp.path()).expect_err("bad key");
        assert!(
            matches!(&err, PkiError::InFile { path, source }
                if *path == key_path && matches!(**source, PkiError::MalformedCaKey { .. })),
            "{err:?}"
        );
        assert!(err.to_string().starts_with(&key_path.display().to_string()));
    }

    #[test]
    fn externally_made_ca_with_printable_string_subject_chains() {
        // A CA whose subject uses PrintableString and several RDNs, as
        // OpenSSL-made CAs do: the issuer name must be reproduced exactly.
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CountryName,
            DnValue::PrintableString(PrintableString::try_from("DE").expect("printable")),
        );
        params.distinguished_name.push(
            DnType::OrganizationName,
            DnValue::PrintableString(PrintableString::try_from("Example Org").expect("printable")),
        );
        params
            .distinguished_name
            .push(DnType::CommonName, "Example Root ✓");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca_pem = params.self_signed(&key).expect("self-signed").pem();

        let ca = CertificateAuthority::from_pem(&ca_pem, &key.serialize_pem()).expect("load");
        let issued = ca.issue_client("svc.example").expect("issue");
        let ca_der = der_of(&ca_pem);
        let der = der_of(&issued.cert_pem);
        assert_issued_by(&parse(&der), &parse(&ca_der));
    }

    #[test]
    fn debug_never_prints_private_keys() {
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let issued = ca.issue_client("a.example").expect("issue");
        for (debug, key_pem) in [
            (format!("{ca:?}"), ca.key_pem()),
            (format!("{issued:?}"), issued.key_pem.clone()),
        ] {
            assert!(debug.contains("[redacted]"), "{debug}");
            assert!(!debug.contains("PRIVATE KEY"), "{debug}");
            let body: String = key_pem.lines().nth(1).expect("base64 line").to_owned();
            assert!(!debug.contains(&body), "{debug}");
        }
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let err = PkiError::Read {
            path: PathBuf::from("/etc/tresor/ca.pem"),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        let msg = err.to_string();
        assert!(msg.starts_with("cannot read /etc/tresor/ca.pem: "), "{msg}");
        assert!(msg.contains("create the CA"), "{msg}");
    }
}
