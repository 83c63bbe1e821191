//! `ClientBuilder::spiffe`: the client certificate is the X.509-SVID of a
//! SPIFFE Workload API, and the server is verified against its trust
//! bundles, SPIFFE's way.
//!
//! The server certificate must carry a SPIFFE id (its one URI SAN) and
//! chain to the bundle of that id's own trust domain: a federated domain's
//! CA can never vouch for another domain's ids. Its DNS names are not
//! checked (SPIFFE server SVIDs often have none); with
//! `ClientBuilder::server_spiffe_id` the id must be exactly the one given.
//!
//! The configuration is rebuilt only when the source's revision changes
//! (a new SVID or new bundles): between rotations every connection reuses
//! it, so a reconnect costs no key parsing and no verifier building.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};
use spiffe::{SpiffeId, X509BundleSet, X509Source, X509Svid};

use crate::tls::{LastGood, Verifier, certified_key, client_config, provider};

/// The SVID and bundles of a Workload API, followed.
pub(crate) struct SpiffeMaterial {
    /// Kept as long as the client: dropping the last handle stops it.
    source: X509Source,
    endpoint: String,
    server_id: Option<SpiffeId>,
    last: LastGood<u64>,
}

impl SpiffeMaterial {
    /// Connects to the Workload API at `endpoint` and waits up to `timeout`
    /// for its first SVID and bundles.
    pub(crate) async fn connect(
        endpoint: &str,
        timeout: Duration,
        server_id: Option<SpiffeId>,
    ) -> Result<Self, String> {
        let source = X509Source::builder()
            .endpoint(endpoint)
            .initial_sync_timeout(timeout)
            .build()
            .await
            .map_err(|e| {
                format!("no X.509-SVID from the SPIFFE Workload API at {endpoint}: {e}")
            })?;
        let state = source.state();
        let (svid, bundles) = current(&state, endpoint)?;
        let config = build(&svid, &bundles, server_id.as_ref())?;
        Ok(Self {
            last: LastGood::new(state.revision(), config),
            source,
            endpoint: endpoint.to_owned(),
            server_id,
        })
    }

    /// The configuration of the current SVID and bundles. An SVID that
    /// expired or was withdrawn fails the connection; new material that
    /// does not load is refused, and the last good configuration stays.
    pub(crate) fn config(&self) -> Result<Arc<ClientConfig>, String> {
        // One snapshot: SVID, bundles and revision agree.
        let state = self.source.state();
        let (svid, bundles) = current(&state, &self.endpoint)?;
        Ok(self.last.get(state.revision(), || {
            build(&svid, &bundles, self.server_id.as_ref())
        }))
    }
}

/// The usable SVID and the bundles of a snapshot of the source.
fn current(
    state: &spiffe::x509_source::X509SourceState,
    endpoint: &str,
) -> Result<(Arc<X509Svid>, Arc<X509BundleSet>), String> {
    let fail = |e: &dyn std::fmt::Display| format!("SPIFFE Workload API at {endpoint}: {e}");
    if state.is_closed() {
        return Err(fail(&"the source is closed"));
    }
    let svid = state.svid().map_err(|e| fail(&e))?;
    let context = state.context().map_err(|e| fail(&e))?;
    Ok((svid, context.bundle_set().clone()))
}

/// The configuration presenting `svid` and verifying the server with
/// `bundles`.
fn build(
    svid: &X509Svid,
    bundles: &X509BundleSet,
    server_id: Option<&SpiffeId>,
) -> Result<ClientConfig, String> {
    let der = |cert: &spiffe::Certificate| CertificateDer::from(cert.as_bytes().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        svid.private_key().as_bytes().to_vec(),
    ));
    let origin = format!("the X.509-SVID of {}", svid.spiffe_id());
    let identity = certified_key(
        svid.cert_chain().iter().map(der).collect(),
        key,
        &origin,
        &origin,
    )?;
    let mut by_domain = HashMap::new();
    for (domain, bundle) in bundles.iter() {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(bundle.authorities().iter().map(der));
        if roots.is_empty() {
            continue;
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| format!("the trust bundle of {domain}: {e}"))?;
        by_domain.insert(domain.as_str().to_owned(), verifier);
    }
    let Some(any) = by_domain.values().next().cloned() else {
        return Err("the SPIFFE Workload API sent no usable trust bundle".to_owned());
    };
    let verifier = SpiffeServerVerifier {
        by_domain,
        server_id: server_id.cloned(),
        signatures: any,
    };
    client_config(Verifier::Custom(Arc::new(verifier)), Some(identity))
}

/// Verifies a server's SVID: its SPIFFE id, then its chain with the
/// bundle of the id's trust domain (webpki), not its DNS names.
#[derive(Debug)]
struct SpiffeServerVerifier {
    /// Each trust domain's verifier, by trust domain name.
    by_domain: HashMap<String, Arc<WebPkiServerVerifier>>,
    /// The only id accepted, if given.
    server_id: Option<SpiffeId>,
    /// Checks handshake signatures (the same for every domain).
    signatures: Arc<WebPkiServerVerifier>,
}

/// A refusal with a sentence of its own.
fn refused(why: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
        std::io::Error::other(why),
    ))))
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let id = spiffe::cert::spiffe_id_from_der(end_entity.as_ref())
            .map_err(|e| refused(format!("the server certificate is not an X.509-SVID: {e}")))?;
        if let Some(expected) = &self.server_id
            && &id != expected
        {
            return Err(refused(format!(
                "the server's SPIFFE id is {id}, not {expected}"
            )));
        }
        let verifier = self.by_domain.get(id.trust_domain_name()).ok_or_else(|| {
            refused(format!(
                "no trust bundle for the server's trust domain {}",
                id.trust_domain()
            ))
        })?;
        // rustls' webpki verifier checks the chain (to these roots, valid
        // now, for server auth) before the name, and fails the name check
        // only with NotValidForName(Context): either means the chain
        // verified. See rustls' `WebPkiServerVerifier::verify_server_cert`
        // (0.23): `verify_server_cert_signed_by_trust_anchor_impl`, then
        // `verify_server_name`; webpki raises `CertNotValidForName` only in
        // its subject-name checks.
        match verifier.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
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
