//! Which name of a verified client certificate is the caller's identity.
//!
//! - A URI SAN (e.g. an X.509-SVID's SPIFFE id) is a URI identity. A
//!   certificate with more than one URI SAN is refused, as is one whose URI
//!   SAN is not a usable identity (no falling back to another name).
//! - Else a DNS SAN is a DNS identity, lower-cased; more than one is refused.
//! - The subject common name is used only when the certificate has no SAN
//!   extension at all; more than one CN is refused.

use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;

use super::{Identity, IdentityError};

/// Parses one DER certificate, refusing trailing bytes.
pub(super) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, IdentityError> {
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
    Ok(cert)
}

/// The identity `cert` names, by the rules in this module's doc.
pub(super) fn identity_of(cert: &X509Certificate<'_>) -> Result<Identity, IdentityError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|source| IdentityError::MalformedCertificate { source })?;
    let Some(san) = san else {
        return from_subject(cert);
    };
    let names = &san.value.general_names;
    let uri = only_one(names, "URI SAN", |n| match n {
        GeneralName::URI(u) => Some(*u),
        _ => None,
    })?;
    if let Some(uri) = uri {
        return in_field("URI SAN", Identity::from_uri_san(uri));
    }
    let dns = only_one(names, "DNS SAN", |n| match n {
        GeneralName::DNSName(d) => Some(*d),
        _ => None,
    })?;
    match dns {
        Some(dns) => in_field("DNS SAN", Identity::from_dns_san(dns)),
        None => Err(IdentityError::NoIdentityInCertificate),
    }
}

/// The identity from the subject CN of a certificate without SANs.
fn from_subject(cert: &X509Certificate<'_>) -> Result<Identity, IdentityError> {
    const FIELD: &str = "subject common name";
    let common_names: Vec<_> = cert.subject().iter_common_name().collect();
    let cn = match common_names.as_slice() {
        [] => return Err(IdentityError::NoIdentityInCertificate),
        [cn] => cn,
        more => {
            return Err(IdentityError::SeveralNames {
                field: FIELD,
                count: more.len(),
            });
        }
    };
    let name = cn
        .as_str()
        .map_err(|source| IdentityError::InvalidCertificateName {
            field: FIELD,
            source: Box::new(IdentityError::MalformedCertificate { source }),
        })?;
    in_field(FIELD, Identity::from_common_name(name))
}

/// The one name `pick` selects from `names`, if any; several are an error.
fn only_one<'a>(
    names: &[GeneralName<'a>],
    field: &'static str,
    pick: impl Fn(&GeneralName<'a>) -> Option<&'a str>,
) -> Result<Option<&'a str>, IdentityError> {
    let mut picked = names.iter().filter_map(pick);
    let first = picked.next();
    let others = picked.count();
    if others > 0 {
        return Err(IdentityError::SeveralNames {
            field,
            count: others + 1,
        });
    }
    Ok(first)
}

/// Says which certificate field a rejected name came from.
fn in_field(
    field: &'static str,
    identity: Result<Identity, IdentityError>,
) -> Result<Identity, IdentityError> {
    identity.map_err(|e| IdentityError::InvalidCertificateName {
        field,
        source: Box::new(e),
    })
}
