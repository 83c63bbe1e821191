use rcgen::{CertificateParams, CustomExtension, DistinguishedName, DnType, KeyPair, SanType};

use super::*;

/// Self-signed certificate with the given SANs and optional CN.
fn cert_der(sans: Vec<SanType>, cn: Option<&str>) -> Vec<u8> {
    cert_der_with(|params| {
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = sans;
    })
}

fn cert_der_with(edit: impl FnOnce(&mut CertificateParams)) -> Vec<u8> {
    let key = KeyPair::generate().expect("key generation");
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    edit(&mut params);
    params
        .self_signed(&key)
        .expect("self-signed cert")
        .der()
        .to_vec()
}

/// A SAN extension holding one URI SAN of raw bytes: rcgen only writes
/// ASCII, but a CA may put anything in an IA5String, and x509-parser reads
/// UTF-8 from it.
fn raw_uri_san_extension(uri: &str) -> CustomExtension {
    let bytes = uri.as_bytes();
    let len = u8::try_from(bytes.len()).expect("short URI");
    let mut names = vec![0x86, len];
    names.extend_from_slice(bytes);
    let mut value = vec![0x30, u8::try_from(names.len()).expect("short SAN")];
    value.extend(names);
    CustomExtension::from_oid_content(&[2, 5, 29, 17], value)
}

fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().expect("ia5"))
}

fn dns(s: &str) -> SanType {
    SanType::DnsName(s.try_into().expect("ia5"))
}

fn of(der: &[u8]) -> Result<Identity, IdentityError> {
    Identity::from_certificate_der(der)
}

#[track_caller]
fn assert_rejected_in(der: &[u8], field: &str, why: impl Fn(&IdentityError) -> bool) {
    match of(der) {
        Err(IdentityError::InvalidCertificateName { field: f, source }) if f == field => {
            assert!(why(&source), "{source:?}");
        }
        other => panic!("expected a rejected {field}, got {other:?}"),
    }
}

#[test]
fn uri_san_wins_over_dns_san_and_cn() {
    let der = cert_der(
        vec![
            dns("billing.example.org"),
            uri("spiffe://example.org/billing"),
        ],
        Some("cn-name"),
    );
    let id = of(&der).expect("identity");
    assert_eq!(id.as_str(), "spiffe://example.org/billing");
    assert_eq!(id.kind(), IdentityKind::Uri);
}

#[test]
fn several_uri_sans_are_refused() {
    let der = cert_der(
        vec![
            uri("spiffe://example.org/billing"),
            uri("spiffe://example.org/admin"),
        ],
        None,
    );
    assert_eq!(
        of(&der),
        Err(IdentityError::SeveralNames {
            field: "URI SAN",
            count: 2
        })
    );
}

#[test]
fn dns_san_when_no_uri_san_lower_cased() {
    let der = cert_der(vec![dns("Billing.EXAMPLE.org")], Some("cn-name"));
    let id = of(&der).expect("identity");
    assert_eq!(id, Identity::parse("billing.example.org").expect("valid"));
    assert_eq!(id.kind(), IdentityKind::Dns);
    assert_eq!(id.as_str(), "billing.example.org");
}

#[test]
fn several_dns_sans_are_refused() {
    let der = cert_der(
        vec![dns("billing.example.org"), dns("second.example.org")],
        None,
    );
    assert!(matches!(
        of(&der),
        Err(IdentityError::SeveralNames {
            field: "DNS SAN",
            count: 2
        })
    ));
}

#[test]
fn common_name_when_no_san_extension() {
    let der = cert_der(vec![], Some("billing"));
    let id = of(&der).expect("identity");
    assert_eq!(id.as_str(), "cn:billing");
    assert_eq!(id.name(), "billing");
    assert_eq!(id.kind(), IdentityKind::CommonName);
    // Not the DNS identity of the same spelling.
    assert_ne!(id, Identity::parse("billing").expect("valid"));
    assert_eq!(id, Identity::parse("cn:billing").expect("valid"));
}

#[test]
fn common_name_is_ignored_when_a_san_extension_exists() {
    let der = cert_der(
        vec![SanType::IpAddress([127, 0, 0, 1].into())],
        Some("billing"),
    );
    assert_eq!(of(&der), Err(IdentityError::NoIdentityInCertificate));
}

#[test]
fn a_common_name_that_looks_like_a_uri_is_no_identity() {
    let der = cert_der(vec![], Some("spiffe://example.org/admin"));
    assert_rejected_in(&der, "subject common name", |e| {
        matches!(e, IdentityError::InvalidCommonName { .. })
    });
    let der = cert_der(vec![], Some("//example.org/admin"));
    assert!(of(&der).is_err());
}

#[test]
fn a_uri_san_that_is_not_a_uri_is_refused_not_skipped() {
    let der = cert_der(vec![uri("billing"), dns("billing.example.org")], None);
    assert_rejected_in(&der, "URI SAN", |e| {
        matches!(e, IdentityError::InvalidUri { .. })
    });
}

#[test]
fn a_dns_san_that_looks_like_a_uri_is_refused() {
    let der = cert_der(vec![dns("spiffe://example.org/admin")], None);
    assert_rejected_in(&der, "DNS SAN", |e| {
        matches!(e, IdentityError::InvalidDnsName { .. })
    });
}

#[test]
fn a_bidi_override_in_a_san_is_refused() {
    let der = cert_der_with(|params| {
        params
            .custom_extensions
            .push(raw_uri_san_extension("spiffe://example.org/\u{202E}nimda"));
    });
    assert_rejected_in(&der, "URI SAN", |e| {
        matches!(
            e,
            IdentityError::FormatCharacter {
                character: '\u{202E}',
                position: 21
            }
        )
    });
    let der = cert_der(vec![], Some("admin\u{200B}"));
    assert_rejected_in(&der, "subject common name", |e| {
        matches!(e, IdentityError::FormatCharacter { .. })
    });
}

#[test]
fn certificate_without_any_name_is_rejected() {
    let der = cert_der(vec![], None);
    assert_eq!(of(&der), Err(IdentityError::NoIdentityInCertificate));
    let der = cert_der(vec![SanType::IpAddress([127, 0, 0, 1].into())], None);
    assert_eq!(of(&der), Err(IdentityError::NoIdentityInCertificate));
}

#[test]
fn control_characters_in_certificate_name_are_rejected() {
    let der = cert_der(vec![], Some("bad\nname"));
    assert_rejected_in(&der, "subject common name", |e| {
        matches!(e, IdentityError::ControlCharacter { position: 3, .. })
    });
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
        let err = of(input).expect_err("must reject");
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
        assert!(of(&der[..len]).is_err(), "len {len}");
    }
    let mut padded = der.clone();
    padded.push(0);
    assert_eq!(of(&padded), Err(IdentityError::TrailingData { len: 1 }));
}

#[test]
fn parse_types_identities_by_their_text() {
    let cases = [
        (
            "spiffe://example.org/billing",
            IdentityKind::Uri,
            "spiffe://example.org/billing",
        ),
        (
            "SPIFFE://Example.org/Billing",
            IdentityKind::Uri,
            "SPIFFE://Example.org/Billing",
        ),
        ("cn://x", IdentityKind::Uri, "cn://x"),
        (
            "Billing.Example.org",
            IdentityKind::Dns,
            "billing.example.org",
        ),
        (
            "dns:Billing.Example.org",
            IdentityKind::Dns,
            "billing.example.org",
        ),
        ("owner", IdentityKind::Dns, "owner"),
        (
            "cn:Billing Service",
            IdentityKind::CommonName,
            "cn:Billing Service",
        ),
        ("cn:ünïcode ok", IdentityKind::CommonName, "cn:ünïcode ok"),
    ];
    for (input, kind, text) in cases {
        let id = Identity::parse(input).expect(input);
        assert_eq!((id.kind(), id.as_str()), (kind, text), "{input}");
        // The text is canonical: it parses back to the same identity.
        assert_eq!(Identity::parse(id.as_str()), Ok(id.clone()), "{input}");
        assert_eq!(Identity::parse_stored(id.as_str()), Ok(id), "{input}");
    }
}

#[test]
fn parse_rejects_names_that_fit_no_kind() {
    for bad in [
        "billing service",
        "spiffe:/example.org",
        "dns:spiffe://example.org/admin",
        "cn:spiffe://example.org/admin",
        "cn://",
        "cn:",
        "dns:",
        "a..b",
        "-a.b",
        "ünïcode",
        "spiffe://example.org/ü",
        "spiffe://example.org/with space",
        "admin\u{202E}",
        "admin\u{200D}",
    ] {
        assert!(Identity::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(Identity::parse(""), Err(IdentityError::Empty));
    let long = format!("spiffe://x/{}", "a".repeat(MAX_IDENTITY_LEN - 11));
    assert!(Identity::parse(&long).is_ok());
    let too_long = format!("{long}a");
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
        Identity::parse("del\u{7f}"),
        Err(IdentityError::ControlCharacter { .. })
    ));
    assert_eq!(
        "billing".parse::<Identity>().expect("valid"),
        Identity::parse("billing").expect("valid")
    );
}

#[test]
fn names_older_releases_stored_still_parse_but_match_no_certificate() {
    for old in [
        "billing service",
        "ünïcode ok",
        "spiffe://example.org/ü",
        "x\u{202E}",
    ] {
        let id = Identity::parse_stored(old).expect(old);
        assert_eq!((id.kind(), id.as_str()), (IdentityKind::Legacy, old));
    }
    // What older releases refused stays refused.
    assert_eq!(Identity::parse_stored(""), Err(IdentityError::Empty));
    assert!(matches!(
        Identity::parse_stored("a\nb"),
        Err(IdentityError::ControlCharacter { .. })
    ));
    // Today's URI identities are stored byte for byte as before.
    let id = Identity::parse_stored("spiffe://unit/owner").expect("uri");
    assert_eq!(
        (id.kind(), id.as_str()),
        (IdentityKind::Uri, "spiffe://unit/owner")
    );
}

#[test]
fn error_messages_are_human() {
    let msg = Identity::parse("").expect_err("empty").to_string();
    assert!(msg.contains("empty"), "{msg}");
    let msg = of(b"junk").expect_err("junk").to_string();
    assert!(
        msg.contains("not a valid DER-encoded X.509 certificate"),
        "{msg}"
    );
    let msg = Identity::parse("billing service")
        .expect_err("space")
        .to_string();
    assert!(msg.contains("cn:NAME"), "{msg}");
}
