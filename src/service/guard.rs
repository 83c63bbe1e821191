//! Rate limits and anomaly alerts in the service: admitting calls, feeding
//! the detector, and acting on alerts (log, audit, metric, subscribers,
//! seal on a severe alert).

use std::collections::BTreeSet;
use std::time::Instant;

use super::Service;
use crate::anomaly::{Alert, AlertKind, DetectorOptions, Observation, RateLimits};
use crate::audit::{Entry, RecordKind};
use crate::error::Error;
use crate::identity::Identity;

/// Data-plane operations: the ones rate limits apply to.
const DATA_PLANE: [&str; 4] = ["Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey"];

/// Rate limits, anomaly thresholds and what to do on an alert.
#[derive(Debug, Clone, Default)]
pub struct GuardOptions {
    /// Per-identity request rates on the data plane.
    pub rate_limits: RateLimits,
    /// Anomaly thresholds.
    pub anomaly: DetectorOptions,
    /// Alert kinds that seal the service at once.
    pub seal_on: BTreeSet<AlertKind>,
}

impl Service {
    /// Lets a call through, or refuses it because its caller exceeded its
    /// data-plane rate limit. The control plane is never limited, so an
    /// admin can always seal.
    pub fn admit(&self, identity: &Identity, operation: &'static str) -> Result<(), Error> {
        if !DATA_PLANE.contains(&operation) {
            return Ok(());
        }
        self.limiter
            .check(identity, Instant::now())
            .map_err(|rate| {
                Error::RateLimited(format!(
                    "more than {}/s data-plane calls from this identity; retry with backoff",
                    rate.0
                ))
            })
    }

    /// Follows anomaly alerts (the webhook forwarder subscribes here).
    pub fn subscribe_alerts(&self) -> tokio::sync::broadcast::Receiver<Alert> {
        self.alerts.subscribe()
    }

    /// Feeds the detector with a handled call and acts on what it raises.
    pub(super) async fn watch_call(
        &self,
        identity: &Identity,
        operation: &str,
        key_id: Option<&str>,
        status: &str,
    ) {
        let seen = Observation {
            identity,
            decrypt: operation == "Decrypt" || operation == "ReEncrypt",
            key_id,
            denied: status == "PERMISSION_DENIED",
        };
        for alert in self.detector.observe(seen, Instant::now()) {
            self.raise(alert).await;
        }
    }

    /// An alert: a WARN line with `event=anomaly`, an audit record, a metric,
    /// every subscriber, and a seal if its kind is configured to seal.
    async fn raise(&self, alert: Alert) {
        let kind = alert.kind.name();
        tracing::warn!(event = "anomaly", kind, identity = %alert.identity, detail = %alert.detail, "anomaly alert");
        self.metrics.anomaly(kind);
        if let Some(log) = self.audit.get() {
            let entry = Entry {
                kind: RecordKind::Event,
                identity: Some(alert.identity.to_string()),
                ..Entry::event("anomaly", format!("{kind}: {}", alert.detail))
            };
            if let Err(e) = log.append(entry).await {
                tracing::error!(error = %e, "anomaly alert not recorded in the audit log");
            }
        }
        let _ = self.alerts.send(alert.clone());
        if self.options.guard.seal_on.contains(&alert.kind) {
            self.seal_for(&format!("anomaly {kind} from {}", alert.identity))
                .await;
        }
    }
}
