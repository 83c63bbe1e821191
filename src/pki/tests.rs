//! Unit tests of issuing, loading and saving.

use super::*;
use crate::fs::write_private_file;
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
        .issue_client_with_validity("expired.example", Validity::between(not_before, not_after))
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
        .issue_client_with_validity("far.example", Validity::between(old, far))
        .expect("wide validity");
    let der = der_of(&issued.cert_pem);
    assert_eq!(parse(&der).validity().not_before.timestamp(), secs(old));

    for (nb, na) in [(not_after, not_before), (now, now)] {
        let err = ca
            .issue_client_with_validity("x.example", Validity::between(nb, na))
            .expect_err("empty validity");
        assert!(matches!(err, PkiError::InvalidValidity { .. }), "{err}");
    }
    let year_10000 = UNIX_EPOCH + Duration::from_secs(8100 * 366 * DAY);
    let err = ca
        .issue_client_with_validity("x.example", Validity::between(now, year_10000))
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
