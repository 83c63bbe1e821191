//! Certificate generation for mutual TLS.
//!
//! Used by `tresor dev`, `tresor certs ...` and the integration tests to make a
//! small private CA and the server and client certificates it issues. All keys
//! are ECDSA P-256 and are written as PEM (certificates) and PKCS#8 PEM (keys).
//!
//! - [`CertificateAuthority`] generates, loads and saves a CA and issues leaf
//!   certificates from it.
//! - [`CertifiedKey`] is an issued certificate with its private key.
//! - Keys and certificates are written with [`crate::fs::write_private_file`] (mode 0600).
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
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
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

mod ca_cert;
mod crl;
mod files;
mod names;
#[cfg(test)]
mod tests;

use ca_cert::{ca_key_usages, distinguished_name, subject_key_identifier};
use files::save_pair;
use names::{ia5, reject_control_chars, set_validity, validate_dns_name, validate_uri};

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
/// Back-dating of `not_before` (at most; see [`Validity::from_now`]), to
/// tolerate clock skew between hosts.
const CLOCK_SKEW: Duration = Duration::from_secs(60 * 60);
/// Lifetime of a CA certificate: ten years.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// Lifetime of a leaf (server or client) certificate: one year.
pub const LEAF_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// The first second it is valid.
    pub not_before: SystemTime,
    /// The last second it is valid.
    pub not_after: SystemTime,
}

impl Validity {
    /// From `not_before` to `not_after` (absolute times, truncated to whole
    /// seconds when issued; both may lie in the past, e.g. to test that
    /// expired certificates are refused).
    pub fn between(not_before: SystemTime, not_after: SystemTime) -> Self {
        Self {
            not_before,
            not_after,
        }
    }

    /// A certificate issued now for `lifetime`: valid until now plus
    /// `lifetime`, and from a little before now, so that a peer whose clock
    /// is slightly behind accepts it at once (by the smaller of one hour
    /// and `lifetime`, so a short-lived certificate stays short-lived).
    pub fn from_now(lifetime: Duration) -> Self {
        let now = SystemTime::now();
        Self {
            not_before: now - CLOCK_SKEW.min(lifetime),
            not_after: now + lifetime,
        }
    }
}

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
    /// [`crate::fs::write_private_file`] or [`CertificateAuthority::save`].
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
        self.issue_server_with_validity(dns_names, ips, Validity::from_now(LEAF_LIFETIME))
    }

    /// [`CertificateAuthority::issue_server`] with a chosen validity window.
    pub fn issue_server_with_validity(
        &self,
        dns_names: &[String],
        ips: &[IpAddr],
        validity: Validity,
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
        self.issue_leaf(
            &common_name,
            sans,
            ExtendedKeyUsagePurpose::ServerAuth,
            validity,
        )
    }

    /// Issues a client certificate for `identity`, valid from one hour ago for
    /// one year. See [`CertificateAuthority::issue_client_with_validity`].
    pub fn issue_client(&self, identity: &str) -> Result<CertifiedKey, PkiError> {
        self.issue_client_with_validity(identity, Validity::from_now(LEAF_LIFETIME))
    }

    /// Issues a client certificate for `identity`, valid for `validity`
    /// (see [`Validity::between`] and [`Validity::from_now`]).
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
        validity: Validity,
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
        self.issue_leaf(name, sans, ExtendedKeyUsagePurpose::ClientAuth, validity)
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
        validity: Validity,
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
        set_validity(&mut params, validity.not_before, validity.not_after)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.pem(),
        })
    }
}
