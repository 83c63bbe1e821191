//! The authenticated identity of a caller.
//!
//! Every gRPC request arrives over mutual TLS. Once the TLS layer has verified
//! the client certificate against the configured CA, [`Identity::from_certificate_der`]
//! turns that certificate into an [`Identity`], which is what the service layer
//! authorizes against. Identities that come from configuration or from an
//! administrator go through [`Identity::parse`] instead.
//!
//! An identity is typed by the certificate field it comes from
//! ([`IdentityKind`]), and its text says which, so names from different
//! fields never meet in one string space:
//!
//! | kind | comes from | text |
//! |---|---|---|
//! | [`IdentityKind::Uri`] | the one URI SAN | the URI as is: `spiffe://example.org/billing` |
//! | [`IdentityKind::Dns`] | the one DNS SAN, when there is no URI SAN | the name in lower case: `billing.example.org` (`dns:billing.example.org` is accepted as input) |
//! | [`IdentityKind::CommonName`] | the subject CN, when there is no SAN extension | `cn:` and the name: `cn:billing` |
//!
//! A URI identity is always `scheme://...`; DNS names and common names can
//! hold no `:`, so neither can look like a URI. Every identity's text is 1 to
//! [`MAX_IDENTITY_LEN`] bytes with no control (Cc) or format (Cf) characters.
//!
//! This module does **not** verify certificates: it only reads one that the
//! TLS stack has already verified.

use std::fmt;
use std::str::FromStr;

use x509_parser::error::X509Error;

mod certificate;
mod name;
#[cfg(test)]
mod tests;
mod trust_domain;

pub use trust_domain::TrustDomains;

/// The longest identity accepted, in bytes (of its text, prefix included).
pub const MAX_IDENTITY_LEN: usize = 1024;

/// Why a string or a certificate did not yield an [`Identity`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The identity string is empty.
    #[error("identity is empty; give a name such as spiffe://example.org/billing")]
    Empty,
    /// The identity string is longer than [`MAX_IDENTITY_LEN`] bytes.
    #[error("identity is {len} bytes long; at most {max} bytes are allowed")]
    TooLong {
        /// Length of the rejected string, in bytes.
        len: usize,
        /// The maximum, [`MAX_IDENTITY_LEN`].
        max: usize,
    },
    /// The identity string contains a control character (e.g. a newline or NUL).
    #[error("identity contains a control character ({character:?}) at byte {position}; remove it")]
    ControlCharacter {
        /// The offending character.
        character: char,
        /// Its byte offset in the string.
        position: usize,
    },
    /// The identity string contains a Unicode format character (e.g. the
    /// bidi override U+202E or a zero-width joiner), which can make two
    /// different names look the same.
    #[error(
        "identity contains an invisible format character ({character:?}) at byte {position}; remove it"
    )]
    FormatCharacter {
        /// The offending character.
        character: char,
        /// Its byte offset in the string.
        position: usize,
    },
    /// A URI identity is malformed.
    #[error(
        "identity is not a usable URI: {reason}; expected a URI such as spiffe://example.org/billing"
    )]
    InvalidUri {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A DNS identity (a name without a `scheme://` or `cn:` prefix) is not a DNS name.
    #[error(
        "identity is not a DNS name: {reason}. Write a URI such as spiffe://example.org/billing, a DNS name such as billing.example.org, or cn:NAME for a certificate's common name"
    )]
    InvalidDnsName {
        /// What is wrong with it.
        reason: String,
    },
    /// A common-name identity could be taken for another kind.
    #[error("common name is not a usable identity: {reason}")]
    InvalidCommonName {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The bytes are not a DER-encoded X.509 certificate.
    #[error("client certificate is not a valid DER-encoded X.509 certificate: {source}")]
    MalformedCertificate {
        /// What the X.509 parser objected to.
        #[source]
        source: X509Error,
    },
    /// A valid certificate was followed by extra bytes.
    #[error(
        "client certificate has {len} unexpected trailing bytes after the DER certificate; pass exactly one certificate"
    )]
    TrailingData {
        /// Number of extra bytes.
        len: usize,
    },
    /// The certificate has no URI or DNS SAN, and no subject common name
    /// either (or a SAN extension, which rules the common name out).
    #[error(
        "client certificate carries no URI SAN or DNS SAN (nor, without a SAN extension, a subject common name) to take an identity from; issue it with one (e.g. a SPIFFE id in a URI SAN)"
    )]
    NoIdentityInCertificate,
    /// The certificate names more than one identity of the deciding kind.
    #[error(
        "client certificate has {count} {field}s; it must name exactly one identity (an X.509-SVID has one URI SAN)"
    )]
    SeveralNames {
        /// Which field is repeated ("URI SAN", "DNS SAN" or "subject common name").
        field: &'static str,
        /// How many there are.
        count: usize,
    },
    /// The name found in the certificate is not a valid identity.
    #[error("the {field} of the client certificate is not a usable identity: {source}")]
    InvalidCertificateName {
        /// Which certificate field the name came from ("URI SAN", "DNS SAN" or "subject common name").
        field: &'static str,
        /// Why it was rejected.
        #[source]
        source: Box<IdentityError>,
    },
}

/// Which certificate field an [`Identity`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum IdentityKind {
    /// A URI SAN, such as a SPIFFE id.
    Uri,
    /// A DNS SAN (lower-cased).
    Dns,
    /// The subject common name of a certificate without a SAN extension.
    CommonName,
    /// A name an older release stored that fits none of the kinds above
    /// (e.g. with a space). No certificate presents it: it only keeps old
    /// keystores readable and such grants revocable.
    Legacy,
}

/// The authenticated identity of a caller, derived from its verified mTLS client certificate.
///
/// Invariant: `text` is the canonical text of an identity of `kind` (see
/// the module doc), so equal identities have equal text and vice versa.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    // First, so that the derived order is the order of the text.
    text: String,
    kind: IdentityKind,
}

impl Identity {
    /// Parses an identity from a configured or admin-supplied string.
    ///
    /// `scheme://...` is a URI identity, taken verbatim; `cn:NAME` a
    /// common-name identity; `dns:NAME` or a bare `NAME` a DNS identity,
    /// lower-cased. See the module doc for each kind's rules.
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        name::check_text(s)?;
        if name::has_uri_scheme(s) {
            Self::from_uri_san(s)
        } else if let Some(cn) = s.strip_prefix(name::CN_PREFIX) {
            Self::from_common_name(cn)
        } else {
            Self::from_dns_san(s.strip_prefix(name::DNS_PREFIX).unwrap_or(s))
        }
    }

    /// Parses an identity read back from storage (a key's owner or grantee),
    /// or one naming such a stored identity (the grantee of a revocation).
    ///
    /// Like [`Identity::parse`], except that a name an older release accepted
    /// but that fits no kind today becomes an [`IdentityKind::Legacy`]
    /// identity instead of an error, so old keystores and backups still open.
    pub fn parse_stored(s: &str) -> Result<Self, IdentityError> {
        Self::parse(s).or_else(|strict| {
            name::legacy(s).map_err(|_| strict)?;
            Ok(Self {
                text: s.to_owned(),
                kind: IdentityKind::Legacy,
            })
        })
    }

    /// The identity of a URI SAN: the URI itself.
    pub fn from_uri_san(uri: &str) -> Result<Self, IdentityError> {
        name::check_text(uri)?;
        name::uri(uri)?;
        Ok(Self {
            text: uri.to_owned(),
            kind: IdentityKind::Uri,
        })
    }

    /// The identity of a DNS SAN: the name in lower case.
    pub fn from_dns_san(dns: &str) -> Result<Self, IdentityError> {
        name::check_text(dns)?;
        Ok(Self {
            text: name::dns(dns)?,
            kind: IdentityKind::Dns,
        })
    }

    /// The identity of a subject common name: `cn:` and the name.
    pub fn from_common_name(cn: &str) -> Result<Self, IdentityError> {
        name::check_text(cn)?;
        name::common_name(cn)?;
        let text = format!("{}{cn}", name::CN_PREFIX);
        name::check_text(&text)?;
        Ok(Self {
            text,
            kind: IdentityKind::CommonName,
        })
    }

    /// The identity as a string slice: its canonical text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The identity as an owned string: its canonical text.
    pub fn into_string(self) -> String {
        self.text
    }

    /// Which certificate field the identity comes from.
    pub fn kind(&self) -> IdentityKind {
        self.kind
    }

    /// The name as the certificate field holds it: the text without the
    /// `cn:` prefix of a common name.
    pub fn name(&self) -> &str {
        match self.kind {
            IdentityKind::CommonName => self
                .text
                .strip_prefix(name::CN_PREFIX)
                .unwrap_or(&self.text),
            IdentityKind::Uri | IdentityKind::Dns | IdentityKind::Legacy => &self.text,
        }
    }

    /// Derives the identity from a DER-encoded (already verified) certificate.
    ///
    /// The identity is the certificate's one URI SAN (e.g. a SPIFFE id
    /// `spiffe://example.org/billing`), else its one DNS SAN, else, only if
    /// it has no SAN extension, its one subject common name. More than one
    /// name of the deciding kind is refused, and so is a name that breaks
    /// its kind's rules: there is no falling back to another name. Never
    /// panics, whatever the input bytes.
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, IdentityError> {
        certificate::identity_of(&certificate::parse(der)?)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Identity {
    type Err = IdentityError;

    /// Same as [`Identity::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Identity {
    fn as_ref(&self) -> &str {
        &self.text
    }
}
