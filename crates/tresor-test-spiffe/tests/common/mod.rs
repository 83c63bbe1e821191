//! What both test files share: the server they start and how they read a
//! certificate.

use std::path::Path;
use std::time::Duration;

use tresor_test_spiffe::WorkloadApi;
use x509_parser::certificate::X509Certificate;

/// Upper bound on any wait for the server or the client to catch up; only
/// reached when something is broken (a healthy wait takes milliseconds).
pub const BOUND: Duration = Duration::from_secs(20);

/// The trust domain of the server under test.
pub const TRUST_DOMAIN: &str = "example.test";

/// The SPIFFE ID it serves.
pub const SPIFFE_ID: &str = "spiffe://example.test/tresor";

/// A server for [`TRUST_DOMAIN`] serving [`SPIFFE_ID`] with one-hour SVIDs.
pub async fn start(dir: &Path) -> WorkloadApi {
    WorkloadApi::start(dir, TRUST_DOMAIN, SPIFFE_ID, Duration::from_secs(3600)).await
}

/// Parses one DER certificate (nothing may follow it).
pub fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).expect("a DER certificate");
    assert!(rest.is_empty(), "bytes after the certificate");
    cert
}

/// The certificate's serial as x509-parser prints it (tresor's form).
pub fn serial_of(der: &[u8]) -> String {
    parse(der).raw_serial_as_string()
}
