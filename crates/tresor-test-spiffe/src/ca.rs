//! A trust domain's certificate authority ([`TrustDomainCa`]) and the
//! X509-SVIDs it issues ([`Svid`]).
//!
//! Every key is ECDSA P-256 (what SPIRE issues by default). Every
//! certificate gets a fresh random serial, is valid from one minute in the
//! past (clock skew between the test and whatever verifies it) and, for
//! SVIDs, until `now + lifetime`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use ring::rand::{SecureRandom as _, SystemRandom};

/// How far in the past every certificate's `notBefore` lies.
const BACKDATE: Duration = Duration::from_secs(60);

/// Validity of a CA certificate: long enough never to end inside a test run,
/// so no SVID ever outlives its issuer.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// Bytes in a serial number: 128 random bits (the first byte kept between
/// 0x01 and 0x7f, see [`random_serial`]).
const SERIAL_LEN: usize = 16;

/// The certificate authority of one SPIFFE trust domain: a self-signed
/// ECDSA P-256 CA certificate (basic constraints `CA:TRUE`, key usages
/// `keyCertSign`, `cRLSign` and `digitalSignature`, URI SAN
/// `spiffe://<trust domain>`) and its key, from which it issues SVIDs.
///
/// [`crate::WorkloadApi`] uses one for its own trust domain (more than one
/// after [`crate::WorkloadApi::roll_ca`]); a test builds one directly for a
/// foreign trust domain, or for an impostor CA of the same trust domain.
/// Every CA's subject is unique (`CN=<trust domain> CA <random hex>`), so
/// two CAs of one trust domain never share an issuer name.
#[derive(Debug)]
pub struct TrustDomainCa {
    trust_domain: String,
    cert_der: Vec<u8>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TrustDomainCa {
    /// A new CA for `trust_domain`, a trust domain name (`example.test`) or
    /// its SPIFFE ID (`spiffe://example.test`).
    ///
    /// # Panics
    ///
    /// If `trust_domain` is not a valid trust domain name (lowercase
    /// letters, digits, `.`, `-` and `_`), or certificate generation fails.
    pub fn new(trust_domain: &str) -> Self {
        let trust_domain = trust_domain_name(trust_domain);
        let key = new_key();
        let mut params = CertificateParams::default();
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "tresor-test-spiffe");
        let tag: String = random_serial()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        name.push(DnType::CommonName, format!("{trust_domain} CA {tag}"));
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.subject_alt_names = vec![uri_san(&format!("spiffe://{trust_domain}"))];
        set_validity(&mut params, CA_LIFETIME);
        let cert = params
            .self_signed(&key)
            .expect("self-signing the CA certificate");
        Self {
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            trust_domain,
        }
    }

    /// The trust domain's name, e.g. `example.test`.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The trust domain's SPIFFE ID, e.g. `spiffe://example.test`: the key
    /// SPIRE uses for it in the Workload API's bundle maps.
    pub fn trust_domain_id(&self) -> String {
        format!("spiffe://{}", self.trust_domain)
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// Issues an X509-SVID for `spiffe_id`, valid from one minute ago until
    /// `now + lifetime`, with a new P-256 key (see [`Svid`] for its
    /// contents). The ID is not required to be in this CA's trust domain,
    /// so a test can also mint a certificate that claims a foreign one.
    ///
    /// # Panics
    ///
    /// If `spiffe_id` does not start with `spiffe://`, or signing fails.
    pub fn issue_svid(&self, spiffe_id: &str, lifetime: Duration) -> Svid {
        assert!(
            spiffe_id.starts_with("spiffe://"),
            "not a SPIFFE ID: {spiffe_id:?}"
        );
        let key = new_key();
        let serial = random_serial();
        let mut params = CertificateParams::default();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "tresor-test-spiffe");
        params.distinguished_name = name;
        // The spiffe crate rejects a leaf without an explicit CA:FALSE.
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.subject_alt_names = vec![
            uri_san(spiffe_id),
            SanType::DnsName("localhost".try_into().expect("ASCII")),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, lifetime);
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("signing the SVID");
        Svid {
            spiffe_id: spiffe_id.to_owned(),
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
            serial_hex: colon_hex(&serial),
        }
    }

    /// Issues an SVID like [`TrustDomainCa::issue_svid`] and returns its
    /// certificate and its PKCS#8 private key, both PEM: what a test hands
    /// to a TLS client as its identity.
    ///
    /// # Panics
    ///
    /// As [`TrustDomainCa::issue_svid`].
    pub fn issue(&self, spiffe_id: &str, lifetime: Duration) -> (String, String) {
        let svid = self.issue_svid(spiffe_id, lifetime);
        (svid.cert_pem, svid.key_pem)
    }
}

/// One X509-SVID: a leaf certificate signed directly by a
/// [`TrustDomainCa`] (no intermediates) and its private key.
///
/// The certificate has exactly one URI SAN, the SPIFFE ID, plus the DNS SAN
/// `localhost` and the IP SAN `127.0.0.1` so it also serves as a TLS server
/// certificate for clients that dial `localhost` or `127.0.0.1`; basic
/// constraints `CA:FALSE`; key usage `digitalSignature`; extended key
/// usages `serverAuth` and `clientAuth`.
#[derive(Clone, Debug)]
pub struct Svid {
    spiffe_id: String,
    cert_der: Vec<u8>,
    cert_pem: String,
    key_der: Vec<u8>,
    key_pem: String,
    serial_hex: String,
}

impl Svid {
    /// The SPIFFE ID in the certificate's URI SAN.
    pub fn spiffe_id(&self) -> &str {
        &self.spiffe_id
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PKCS#8 DER (unencrypted, as the Workload API sends
    /// it).
    pub fn key_der(&self) -> &[u8] {
        &self.key_der
    }

    /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate's serial number as lowercase hex bytes separated by
    /// colons (`3a:0f:…`), exactly what x509-parser's
    /// `X509Certificate::raw_serial_as_string()` returns for it.
    pub fn serial_hex(&self) -> &str {
        &self.serial_hex
    }
}

/// The trust domain name in `name` (`example.test` or
/// `spiffe://example.test`), checked against the SPIFFE ID rules.
pub(crate) fn trust_domain_name(name: &str) -> String {
    let name = name.strip_prefix("spiffe://").unwrap_or(name);
    assert!(
        !name.is_empty()
            && name
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_')),
        "not a trust domain name: {name:?}"
    );
    name.to_owned()
}

/// A fresh ECDSA P-256 key.
fn new_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("generating a P-256 key")
}

/// 16 random bytes whose first lies in 0x01..=0x7f: a positive INTEGER that
/// DER encodes as exactly these bytes (no leading zero added or stripped),
/// so the serial's hex form is the same wherever it is read.
fn random_serial() -> [u8; SERIAL_LEN] {
    let mut serial = [0u8; SERIAL_LEN];
    SystemRandom::new()
        .fill(&mut serial)
        .expect("system randomness");
    serial[0] = (serial[0] & 0x7f).max(1);
    serial
}

/// Lowercase hex bytes joined by `:`.
fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn uri_san(uri: &str) -> SanType {
    SanType::URI(uri.try_into().expect("a SPIFFE ID is ASCII"))
}

/// `notBefore = now - BACKDATE`, `notAfter = now + lifetime`. The `time`
/// crate is reached only through rcgen (`date_time_ymd` and inference).
fn set_validity(params: &mut CertificateParams, lifetime: Duration) {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + since_epoch.saturating_sub(BACKDATE);
    params.not_after = epoch + since_epoch + lifetime;
}
