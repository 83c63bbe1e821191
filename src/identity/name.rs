//! The rules a name must meet to be an identity of each kind.
//!
//! Every function here checks one kind's rules and returns the name in its
//! canonical form; [`super::Identity`] adds the textual prefix that tells the
//! kinds apart.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::{IdentityError, MAX_IDENTITY_LEN};

/// Prefix of the textual form of a common-name identity (`cn:billing`).
pub(super) const CN_PREFIX: &str = "cn:";

/// Optional prefix of a DNS identity given as text (`dns:billing.example.org`).
/// The canonical text is the bare name.
pub(super) const DNS_PREFIX: &str = "dns:";

/// Longest DNS name, in bytes (RFC 1035).
const MAX_DNS_NAME_LEN: usize = 253;

/// Longest DNS label, in bytes (RFC 1035).
const MAX_DNS_LABEL_LEN: usize = 63;

/// Whether `s` starts like a hierarchical URI: an RFC 3986 scheme, then `://`.
pub(super) fn has_uri_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Checks what every identity's text must meet: 1 to [`MAX_IDENTITY_LEN`]
/// bytes, no control (Cc) and no format (Cf) characters. Format characters
/// include the bidi overrides (U+202E) and zero-width joiners that make two
/// different names look alike.
pub(super) fn check_text(text: &str) -> Result<(), IdentityError> {
    if text.is_empty() {
        return Err(IdentityError::Empty);
    }
    if text.len() > MAX_IDENTITY_LEN {
        return Err(IdentityError::TooLong {
            len: text.len(),
            max: MAX_IDENTITY_LEN,
        });
    }
    for (position, character) in text.char_indices() {
        match character.general_category() {
            GeneralCategory::Control => {
                return Err(IdentityError::ControlCharacter {
                    character,
                    position,
                });
            }
            GeneralCategory::Format => {
                return Err(IdentityError::FormatCharacter {
                    character,
                    position,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a URI identity: `scheme://rest`, where the rest is non-empty
/// printable ASCII without spaces (what a URI SAN, an IA5String, can hold).
pub(super) fn uri(uri: &str) -> Result<(), IdentityError> {
    let invalid = |reason| Err(IdentityError::InvalidUri { reason });
    if !has_uri_scheme(uri) {
        return invalid("it does not start with a scheme and \"://\"");
    }
    let rest = uri.split_once("://").map_or("", |(_, rest)| rest);
    if rest.is_empty() {
        return invalid("nothing follows \"://\"");
    }
    if !uri.chars().all(|c| c.is_ascii_graphic()) {
        return invalid("only printable ASCII without spaces is allowed");
    }
    Ok(())
}

/// Checks a DNS name and returns it in lower case: 1 to 253 bytes of
/// dot-separated labels of 1 to 63 ASCII letters, digits, `-` and `_`, no
/// label starting or ending with `-`. So a DNS identity never contains `:`
/// or `/` and cannot look like a URI or a common name.
pub(super) fn dns(name: &str) -> Result<String, IdentityError> {
    let invalid = |reason: String| Err(IdentityError::InvalidDnsName { reason });
    if name.len() > MAX_DNS_NAME_LEN {
        return invalid(format!(
            "it is {} bytes long; a DNS name has at most {MAX_DNS_NAME_LEN}",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > MAX_DNS_LABEL_LEN {
            return invalid(format!(
                "every label must be 1 to {MAX_DNS_LABEL_LEN} bytes long"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
        {
            return invalid(format!(
                "{c:?} is not allowed (letters, digits, '-', '_' and '.' only)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return invalid("a label must not start or end with '-'".to_owned());
        }
    }
    Ok(name.to_ascii_lowercase())
}

/// Checks a common name: it must not look like a URI, so it holds no `:`,
/// and must not start with `//` (its text `cn://...` would read as one).
pub(super) fn common_name(name: &str) -> Result<(), IdentityError> {
    let invalid = |reason| Err(IdentityError::InvalidCommonName { reason });
    if name.contains(':') {
        return invalid("it contains ':', so it could be taken for a URI");
    }
    if name.starts_with("//") {
        return invalid("it starts with \"//\", so it could be taken for a URI");
    }
    Ok(())
}

/// Checks a name that an older release stored: the rules of that release
/// (1 to [`MAX_IDENTITY_LEN`] bytes, no control characters).
pub(super) fn legacy(text: &str) -> Result<(), IdentityError> {
    check_text(text).or_else(|e| match e {
        IdentityError::FormatCharacter { .. } => Ok(()),
        other => Err(other),
    })
}
