//! The verifier of client certificates: webpki against the client CAs,
//! with the revocation lists, and the SPIFFE trust-domain rules on top.
//!
//! - With one CA bundle (files) and no `--trust-domain`, it is rustls'
//!   webpki verifier as it is: any certificate the bundle verifies.
//! - With `--trust-domain`, the certificate must also carry a SPIFFE id of
//!   an allowed trust domain, even if the bundle would verify another.
//! - With a bundle per trust domain (the SPIFFE Workload API), the
//!   certificate must carry a SPIFFE id, and chain to the bundle of that
//!   id's own trust domain: a federated domain's CA can never vouch for an
//!   id of another domain.
//!
//! Revocation lists apply to every certificate of the client's chain that
//! they cover (the issuer's CRL lists the serial). A certificate whose
//! issuer has no list given is not checked, so a list for one CA of a
//! bundle does not lock out the clients of the others; lists past their
//! next update still apply.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

use super::tls::{ClientRoots, TlsSetupError};
use crate::identity::{Identity, TrustDomains};

/// The verifier of `roots` and `crls` under the `allowed` trust domains.
pub fn client_verifier(
    roots: &ClientRoots,
    crls: &[CertificateRevocationListDer<'static>],
    allowed: &TrustDomains,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsSetupError> {
    let webpki = |certs: &[CertificateDer<'static>]| webpki(certs, crls, provider);
    let by_domain = match roots {
        ClientRoots::Shared(certs) if allowed.is_any() => return webpki(certs),
        ClientRoots::Shared(certs) => ByDomain::Shared(webpki(certs)?),
        ClientRoots::PerTrustDomain(bundles) => ByDomain::Own(
            bundles
                .iter()
                .filter(|(domain, _)| allowed.permits(domain))
                .map(|(domain, certs)| Ok((domain.clone(), webpki(certs)?)))
                .collect::<Result<_, TlsSetupError>>()?,
        ),
    };
    let mut hints = RootCertStore::empty();
    match roots {
        ClientRoots::Shared(certs) => hints.add_parsable_certificates(certs.iter().cloned()),
        ClientRoots::PerTrustDomain(bundles) => hints.add_parsable_certificates(
            bundles
                .iter()
                .filter(|(domain, _)| allowed.permits(domain))
                .flat_map(|(_, certs)| certs.iter().cloned()),
        ),
    };
    let signatures = match &by_domain {
        ByDomain::Shared(verifier) => verifier.clone(),
        ByDomain::Own(verifiers) => verifiers
            .values()
            .next()
            .cloned()
            .ok_or(TlsSetupError::NoTrustBundle)?,
    };
    Ok(Arc::new(SpiffeVerifier {
        by_domain,
        allowed: allowed.clone(),
        hints: hints.subjects(),
        signatures,
    }))
}

/// rustls' webpki verifier of `roots` with `crls`.
fn webpki(
    roots: &[CertificateDer<'static>],
    crls: &[CertificateRevocationListDer<'static>],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsSetupError> {
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(roots.iter().cloned());
    if added == 0 {
        return Err(TlsSetupError::NoClientCa);
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider.clone())
        .with_crls(crls.iter().cloned())
        .allow_unknown_revocation_status()
        .build()
        .map_err(|e| match e {
            rustls::server::VerifierBuilderError::InvalidCrl(e) => {
                TlsSetupError::InvalidCrl(format!("{e:?}"))
            }
            other => TlsSetupError::Rustls(other.to_string()),
        })
}

/// Which verifier checks a client of a given trust domain.
#[derive(Debug)]
enum ByDomain {
    /// One for every allowed domain.
    Shared(Arc<dyn ClientCertVerifier>),
    /// Each allowed domain's own.
    Own(BTreeMap<String, Arc<dyn ClientCertVerifier>>),
}

/// Checks the client's SPIFFE trust domain, then verifies its chain with
/// the webpki verifier for that domain.
#[derive(Debug)]
struct SpiffeVerifier {
    by_domain: ByDomain,
    allowed: TrustDomains,
    hints: Vec<DistinguishedName>,
    /// Checks handshake signatures (the same for every domain).
    signatures: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for SpiffeVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let refused = || rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        let domain = Identity::from_certificate_der(end_entity.as_ref())
            .ok()
            .and_then(|identity| identity.spiffe_trust_domain())
            .filter(|domain| self.allowed.permits(domain))
            .ok_or_else(refused)?;
        let verifier = match &self.by_domain {
            ByDomain::Shared(verifier) => verifier,
            ByDomain::Own(verifiers) => verifiers.get(&domain).ok_or_else(refused)?,
        };
        verifier.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.supported_verify_schemes()
    }
}
