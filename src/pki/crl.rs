//! Certificate revocation lists signed by a [`CertificateAuthority`], for
//! `tresor serve --client-crl` (a CA that revokes a client certificate
//! publishes the list; the server refuses the listed serials).

use rcgen::{CertificateRevocationListParams, RevokedCertParams, SerialNumber};

use super::*;

impl CertificateAuthority {
    /// A revocation list signed by this CA, PEM (`-----BEGIN X509
    /// CRL-----`), listing the certificates whose serial numbers are
    /// `serials` (big-endian bytes, as the certificates carry them). It is
    /// list number `number` (give each new list a higher one), issued now
    /// and due to be replaced within `next_update`.
    pub fn revocation_list(
        &self,
        serials: &[Vec<u8>],
        number: u64,
        next_update: Duration,
    ) -> Result<String, PkiError> {
        // The `time` crate's dates are reached through rcgen's certificate
        // parameters (see `set_validity`).
        let mut window = CertificateParams::default();
        let now = SystemTime::now();
        set_validity(&mut window, now, now + next_update)?;
        let crl = CertificateRevocationListParams {
            this_update: window.not_before,
            next_update: window.not_after,
            crl_number: SerialNumber::from(number.to_be_bytes().to_vec()),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: SerialNumber::from(serial.clone()),
                    revocation_time: window.not_before,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(crl.signed_by(&self.issuer)?.pem()?)
    }
}
