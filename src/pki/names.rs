//! Checking what goes into a certificate: names (DNS, URI, CN) and the
//! validity period.

use super::*;

/// Sets `params`' validity period from two `SystemTime`s.
///
/// The `time` crate is not a direct dependency of tresor, so its
/// `OffsetDateTime` is reached only through rcgen's `date_time_ymd` and type
/// inference; checked arithmetic keeps out-of-range times from panicking.
pub(super) fn set_validity(
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
pub(super) fn ia5(kind: &'static str, name: &str) -> Result<Ia5String, PkiError> {
    Ia5String::try_from(name).map_err(|e| PkiError::InvalidName {
        kind,
        name: name.to_owned(),
        reason: format!("{e}; only ASCII is allowed"),
    })
}

pub(super) fn reject_control_chars(kind: &'static str, name: &str) -> Result<(), PkiError> {
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
pub(super) fn validate_dns_name(kind: &'static str, name: &str) -> Result<(), PkiError> {
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
pub(super) fn validate_uri(kind: &'static str, uri: &str) -> Result<(), PkiError> {
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
