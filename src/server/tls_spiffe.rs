//! Serving with the SPIFFE Workload API (`--spiffe-endpoint`): the
//! server's X.509-SVID and the trust bundles come from the Workload API
//! stream (through the `spiffe` crate's `X509Source`), and every update it
//! pushes is validated and applied as a file reload is
//! ([`super::tls_reload::apply`]: same checks, log lines, metric and audit
//! records).
//!
//! Each trust domain's bundle verifies only that domain's SPIFFE ids; the
//! `--trust-domain` allowlist narrows which domains may call at all.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use spiffe::X509Source;

use super::ServerError;
use super::tls::{ClientRoots, LiveTls, ServingSet};
use super::tls_reload::{Expiry, ServedTls, apply, described, publish, report, unix_now};
use crate::config::TransportLimits;
use crate::identity::TrustDomains;
use crate::service::Service;

/// How long the server waits for the Workload API's first SVID at start.
pub const INITIAL_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects to the Workload API at `endpoint`, serves its current SVID and
/// bundles, and follows its updates.
pub async fn start(
    endpoint: &str,
    trust_domains: TrustDomains,
    limits: &TransportLimits,
    service: Arc<Service>,
) -> Result<ServedTls, ServerError> {
    let source = X509Source::builder()
        .endpoint(endpoint)
        .initial_sync_timeout(INITIAL_SYNC_TIMEOUT)
        .build()
        .await
        .map_err(|e| {
            ServerError::Spiffe(format!(
                "no X.509-SVID from the Workload API at {endpoint}: {e}"
            ))
        })?;
    let set = serving_set(&source).map_err(ServerError::Spiffe)?;
    let (certificate, expiry) = described(&set).map_err(ServerError::Spiffe)?;
    tracing::info!(
        serial = %certificate.serial,
        %endpoint,
        "serving the X.509-SVID of the SPIFFE Workload API"
    );
    let live = Arc::new(LiveTls::new(set, trust_domains, limits)?);
    publish(&service, certificate, &expiry);
    let follower = tokio::spawn(follow(source, live.clone(), expiry, service));
    Ok(ServedTls {
        live,
        follower: Some(follower),
    })
}

/// How often the served SVID's remaining lifetime is checked.
const SVID_CHECK: Duration = Duration::from_secs(10);

/// Applies every SVID or bundle update of `source` until it closes; warns
/// once per SVID when one is in the last tenth of its life (the Workload
/// API replaces them at about half), since it then stops serving soon.
async fn follow(
    source: X509Source,
    live: Arc<LiveTls>,
    mut in_force: Expiry,
    service: Arc<Service>,
) {
    let mut updates = source.updated();
    let mut check = tokio::time::interval(SVID_CHECK);
    let mut warned_until = None;
    loop {
        tokio::select! {
            changed = updates.changed() => {
                if changed.is_err() {
                    break;
                }
                let outcome = serving_set(&source).and_then(|set| apply(&live, set));
                if let Some(applied) = report(&service, outcome).await {
                    in_force = applied;
                }
            }
            _ = check.tick() => {
                let now = unix_now();
                if in_force.in_last_tenth(now) && warned_until != Some(in_force.server_until) {
                    warned_until = Some(in_force.server_until);
                    tracing::warn!(
                        seconds_left = in_force.server_until - now,
                        "the SPIFFE Workload API has not rotated the served X.509-SVID: is the agent running?"
                    );
                }
            }
        }
    }
    tracing::error!("the SPIFFE Workload API source closed: the last SVID serves until it expires");
}

/// The server's SVID and every trust domain's bundle, as one set.
fn serving_set(source: &X509Source) -> Result<ServingSet, String> {
    let svid = source
        .svid()
        .map_err(|e| format!("Workload API: no usable X.509-SVID: {e}"))?;
    let bundles = source
        .bundle_set()
        .map_err(|e| format!("Workload API: no trust bundles: {e}"))?;
    let der = |cert: &spiffe::Certificate| CertificateDer::from(cert.as_bytes().to_vec());
    Ok(ServingSet {
        chain: svid.cert_chain().iter().map(der).collect(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            svid.private_key().as_bytes().to_vec(),
        )),
        client_roots: ClientRoots::PerTrustDomain(
            bundles
                .iter()
                .map(|(domain, bundle)| {
                    (
                        domain.as_str().to_owned(),
                        bundle.authorities().iter().map(der).collect(),
                    )
                })
                .collect(),
        ),
        crls: Vec::new(),
    })
}
