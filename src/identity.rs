//! The authenticated identity of a caller.
//!
//! Every gRPC request arrives over mutual TLS. Once the TLS layer has verified
//! the client certificate against the configured CA, [`Identity::from_certificate_der`]
//! turns that certificate into an [`Identity`], which is what the service layer
//! authorizes against. Identities that come from configuration or from an
//! administrator go through [`Identity::parse`] instead; both paths enforce the
//! same rules, so an `Identity` is always non-empty, at most
//! [`MAX_IDENTITY_LEN`] bytes long and free of control characters.
//!
//! This module does **not** verify certificates: it only reads one that the
//! TLS stack has already verified.

use std::fmt;
use std::str::FromStr;

use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;

/// The longest identity accepted, in bytes.
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
    /// The certificate has no URI SAN, no DNS SAN and no subject common name.
    #[error(
        "client certificate carries no URI SAN, DNS SAN or subject common name to take an identity from; issue it with one (e.g. a SPIFFE id in a URI SAN)"
    )]
    NoIdentityInCertificate,
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

/// The authenticated identity of a caller, derived from its verified mTLS client certificate.
///
/// Invariant: non-empty, at most [`MAX_IDENTITY_LEN`] bytes, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity(String);

impl Identity {
    /// Parses an identity from a configured or admin-supplied string.
    ///
    /// The string must be non-empty, at most [`MAX_IDENTITY_LEN`] bytes long and
    /// contain no control characters. It is otherwise taken verbatim (no trimming,
    /// no case folding).
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        if s.is_empty() {
            return Err(IdentityError::Empty);
        }
        if s.len() > MAX_IDENTITY_LEN {
            return Err(IdentityError::TooLong {
                len: s.len(),
                max: MAX_IDENTITY_LEN,
            });
        }
        if let Some((position, character)) = s.char_indices().find(|(_, c)| c.is_control()) {
            return Err(IdentityError::ControlCharacter {
                character,
                position,
            });
        }
        Ok(Self(s.to_owned()))
    }

    /// The identity as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identity as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Derives the identity from a DER-encoded (already verified) certificate.
    ///
    /// The identity is the first URI SAN (e.g. a SPIFFE id
    /// `spiffe://example.org/billing`), else the first DNS SAN, else the first
    /// subject common name. The chosen name must satisfy the same rules as
    /// [`Identity::parse`]. Never panics, whatever the input bytes.
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, IdentityError> {
        let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| {
            IdentityError::MalformedCertificate {
                source: match e {
                    x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e,
                    x509_parser::nom::Err::Incomplete(_) => X509Error::InvalidCertificate,
                },
            }
        })?;
        if !rest.is_empty() {
            return Err(IdentityError::TrailingData { len: rest.len() });
        }
        let (field, name) = identity_name(&cert)?.ok_or(IdentityError::NoIdentityInCertificate)?;
        Self::parse(name).map_err(|e| IdentityError::InvalidCertificateName {
            field,
            source: Box::new(e),
        })
    }
}

/// Picks the certificate field an identity comes from, by precedence:
/// first URI SAN, first DNS SAN, first subject CN.
fn identity_name<'a>(
    cert: &'a X509Certificate<'_>,
) -> Result<Option<(&'static str, &'a str)>, IdentityError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|source| IdentityError::MalformedCertificate { source })?;
    if let Some(san) = san {
        let names = &san.value.general_names;
        let uri = names.iter().find_map(|n| match n {
            GeneralName::URI(u) => Some(*u),
            _ => None,
        });
        if let Some(uri) = uri {
            return Ok(Some(("URI SAN", uri)));
        }
        let dns = names.iter().find_map(|n| match n {
            GeneralName::DNSName(d) => Some(*d),
            _ => None,
        });
        if let Some(dns) = dns {
            return Ok(Some(("DNS SAN", dns)));
        }
    }
    match cert.subject().iter_common_name().next() {
        Some(cn) => {
            let cn = cn
                .as_str()
                .map_err(|e| IdentityError::InvalidCertificateName {
                    field: "subject common name",
                    source: Box::new(IdentityError::MalformedCertificate { source: e }),
                })?;
            Ok(Some(("subject common name", cn)))
        }
        None => Ok(None),
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    /// Self-signed certificate with the given SANs and optional CN.
    fn cert_der(sans: Vec<SanType>, cn: Option<&str>) -> Vec<u8> {
        let key = KeyPair::generate().expect("key generation");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = sans;
        params
            .self_signed(&key)
            .expect("self-signed cert")
            .der()
            .to_vec()
    }

    fn uri(s: &str) -> SanType {
        SanType::URI(s.try_into().expect("ia5"))
    }

    fn dns(s: &str) -> SanType {
        SanType::DnsName(s.try_into().expect("ia5"))
    }

    #[test]
    fn uri_san_wins_over_dns_san_and_cn() {
        let der = cert_der(
            vec![
                dns("billing.example.org"),
                uri("spiffe://example.org/billing"),
                uri("spiffe://example.org/other"),
            ],
            Some("cn-name"),
        );
        let id = Identity::from_certificate_der(&der).expect("identity");
        assert_eq!(id.as_str(), "spiffe://example.org/billing");
    }

    #[test]
    fn dns_san_when_no_uri_san() {
        let der = cert_der(
            vec![dns("billing.example.org"), dns("second.example.org")],
            Some("cn-name"),
        );
        let id = Identity::from_certificate_der(&der).expect("identity");
        assert_eq!(id.as_str(), "billing.example.org");
    }

    #[test]
    fn common_name_when_no_san() {
        let der = cert_der(vec![], Some("billing"));
        let id = Identity::from_certificate_der(&der).expect("identity");
        assert_eq!(id.as_str(), "billing");
        assert_eq!(id.to_string(), "billing");
    }

    #[test]
    fn ip_san_only_falls_back_to_cn() {
        let der = cert_der(
            vec![SanType::IpAddress([127, 0, 0, 1].into())],
            Some("billing"),
        );
        let id = Identity::from_certificate_der(&der).expect("identity");
        assert_eq!(id.as_str(), "billing");
    }

    #[test]
    fn certificate_without_any_name_is_rejected() {
        let der = cert_der(vec![], None);
        assert_eq!(
            Identity::from_certificate_der(&der),
            Err(IdentityError::NoIdentityInCertificate)
        );
        let der = cert_der(vec![SanType::IpAddress([127, 0, 0, 1].into())], None);
        assert_eq!(
            Identity::from_certificate_der(&der),
            Err(IdentityError::NoIdentityInCertificate)
        );
    }

    #[test]
    fn control_characters_in_certificate_name_are_rejected() {
        let der = cert_der(vec![], Some("bad\nname"));
        let err = Identity::from_certificate_der(&der).expect_err("must reject");
        assert!(
            matches!(
                &err,
                IdentityError::InvalidCertificateName { field: "subject common name", source }
                    if matches!(**source, IdentityError::ControlCharacter { position: 3, .. })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn garbage_is_rejected_without_panic() {
        let inputs: [&[u8]; 5] = [
            b"",
            b"not a certificate",
            &[0x30],
            &[0x30, 0x82, 0xff, 0xff, 0x00],
            &[0xff; 64],
        ];
        for input in inputs {
            let err = Identity::from_certificate_der(input).expect_err("must reject");
            assert!(
                matches!(err, IdentityError::MalformedCertificate { .. }),
                "{input:?}: {err:?}"
            );
        }
    }

    #[test]
    fn truncated_and_padded_certificates_are_rejected() {
        let der = cert_der(vec![dns("billing.example.org")], None);
        for len in 0..der.len() {
            assert!(
                Identity::from_certificate_der(&der[..len]).is_err(),
                "len {len}"
            );
        }
        let mut padded = der.clone();
        padded.push(0);
        assert_eq!(
            Identity::from_certificate_der(&padded),
            Err(IdentityError::TrailingData { len: 1 })
        );
    }

    #[test]
    fn parse_accepts_and_rejects() {
        assert_eq!(
            Identity::parse("spiffe://example.org/billing")
                .expect("valid")
                .as_str(),
            "spiffe://example.org/billing"
        );
        assert_eq!(
            Identity::parse("ünïcode ok").expect("valid").as_str(),
            "ünïcode ok"
        );
        assert_eq!(Identity::parse(""), Err(IdentityError::Empty));
        let long = "a".repeat(MAX_IDENTITY_LEN);
        assert!(Identity::parse(&long).is_ok());
        let too_long = "a".repeat(MAX_IDENTITY_LEN + 1);
        assert_eq!(
            Identity::parse(&too_long),
            Err(IdentityError::TooLong {
                len: MAX_IDENTITY_LEN + 1,
                max: MAX_IDENTITY_LEN
            })
        );
        assert_eq!(
            Identity::parse("a\0b"),
            Err(IdentityError::ControlCharacter {
                character: '\0',
                position: 1
            })
        );
        assert!(matches!(
            Identity::parse("tab\there"),
            Err(IdentityError::ControlCharacter { .. })
        ));
        assert!(matches!(
            Identity::parse("del\u{7f}"),
            Err(IdentityError::ControlCharacter { .. })
        ));
        assert_eq!(
            "billing".parse::<Identity>().expect("valid"),
            Identity::parse("billing").expect("valid")
        );
    }

    #[test]
    fn error_messages_are_human() {
        let msg = Identity::parse("").expect_err("empty").to_string();
        assert!(msg.contains("empty"), "{msg}");
        let msg = Identity::from_certificate_der(b"junk")
            .expect_err("junk")
            .to_string();
        assert!(
            msg.contains("not a valid DER-encoded X.509 certificate"),
            "{msg}"
        );
    }
}
