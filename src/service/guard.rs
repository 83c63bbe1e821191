//! Rate limits and anomaly alerts in the service: admitting calls, feeding
//! the detector, and acting on alerts (log, audit, metric, subscribers,
//! seal on a severe alert).

use std::collections::BTreeSet;
use std::time::Instant;

use super::Service;
use crate::anomaly::{Alert, AlertKind, DetectorOptions, Observation, Rate, RateLimits};
use crate::audit::{Entry, RecordKind};
use crate::error::Error;
use crate::identity::Identity;
use crate::model::Rpc;

/// Default `--seal-on-denial-identities`: a denial spike seals only when
/// two identities raise one within a bucket, so no single tenant (any
/// certificate holder can make its own calls fail) can seal alone.
pub const DEFAULT_SEAL_DENIAL_IDENTITIES: usize = 2;

/// Default of `--control-plane-rate-limit`: control-plane calls per second
/// of one non-admin identity.
pub const DEFAULT_CONTROL_PLANE_RATE: Rate = Rate(20);

/// Rate limits, anomaly thresholds and what to do on an alert.
#[derive(Debug, Clone)]
pub struct GuardOptions {
    /// Per-identity request rates on the data plane.
    pub rate_limits: RateLimits,
    /// Control-plane calls per second of each non-admin identity (`None`:
    /// unlimited). Admins are never limited, so one can always seal.
    pub control_plane_rate: Option<Rate>,
    /// Anomaly thresholds.
    pub anomaly: DetectorOptions,
    /// Alert kinds that seal the service at once.
    pub seal_on: BTreeSet<AlertKind>,
    /// With `denial_spike` in `seal_on`: distinct identities whose denial
    /// spikes, within one anomaly bucket, seal (at least 1).
    pub seal_denial_identities: usize,
}

impl Default for GuardOptions {
    fn default() -> Self {
        Self {
            rate_limits: RateLimits::default(),
            control_plane_rate: None,
            anomaly: DetectorOptions::default(),
            seal_on: BTreeSet::new(),
            seal_denial_identities: DEFAULT_SEAL_DENIAL_IDENTITIES,
        }
    }
}

/// Identities whose denial spikes were raised within the last bucket, for
/// `--seal-on-denial-identities`. Holds fewer entries than that setting:
/// reaching it seals and clears.
#[derive(Debug, Default)]
pub(super) struct DenialSpikes(std::sync::Mutex<Vec<(Instant, Identity)>>);

impl DenialSpikes {
    /// Counts `identity`'s spike at `now`; whether `needed` distinct
    /// identities have spiked within `bucket` (then it starts afresh).
    fn reaches(
        &self,
        identity: &Identity,
        now: Instant,
        bucket: std::time::Duration,
        needed: usize,
    ) -> bool {
        // Only a list behind the lock; a poisoned lock is safe to use.
        let mut recent = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        recent.retain(|(at, _)| now.saturating_duration_since(*at) < bucket);
        if !recent.iter().any(|(_, seen)| seen == identity) {
            recent.push((now, identity.clone()));
        }
        if recent.len() >= needed {
            recent.clear();
            return true;
        }
        false
    }
}

impl Service {
    /// Lets a call of `items` items through (1 for a single call), or
    /// refuses it: a batch above `--max-batch-items` (INVALID_ARGUMENT, so
    /// it costs no rate), or a caller beyond its data-plane rate limit, a
    /// batch counting as its items (at least one), or a non-admin beyond
    /// its control-plane rate limit (every control-plane call counts, also
    /// one it will be refused). Control-plane calls of role holders are
    /// never limited, so a security officer can always seal.
    pub async fn admit(&self, identity: &Identity, rpc: Rpc, items: usize) -> Result<(), Error> {
        if !rpc.is_data_plane() {
            return self.admit_control(identity).await;
        }
        self.check_batch_size(items)?;
        // Within --max-batch-items, which config keeps far below u32::MAX.
        let cost = u32::try_from(items.max(1)).unwrap_or(u32::MAX);
        self.limiter
            .check_n(identity, Instant::now(), cost)
            .map_err(|rate| {
                if cost > rate.0 {
                    Error::RateLimited(format!(
                        "a batch of {cost} items is more than this identity's limit of {}/s; send smaller batches",
                        rate.0
                    ))
                } else {
                    Error::RateLimited(format!(
                        "more than {}/s data-plane calls from this identity; retry with backoff",
                        rate.0
                    ))
                }
            })
    }

    /// Counts a control-plane call of `identity` against the non-admin
    /// control-plane limit.
    async fn admit_control(&self, identity: &Identity) -> Result<(), Error> {
        // Anyone holding a role (a break-glass identity, or a binding) is
        // not limited; a keystore that cannot be read limits everyone else.
        if self
            .caller(identity)
            .await
            .is_ok_and(|caller| caller.roles.any())
        {
            return Ok(());
        }
        self.control_limiter
            .check(identity, Instant::now())
            .map_err(|Rate(rate)| {
                Error::RateLimited(format!(
                    "more than {rate}/s control-plane calls from this identity; retry with backoff"
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
        rpc: Rpc,
        key_id: Option<&str>,
        status: &str,
    ) {
        let seen = Observation {
            identity,
            decrypt: rpc.decrypts(),
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
        if self.options.guard.seal_on.contains(&alert.kind) && self.alert_seals(&alert) {
            self.seal_for(&format!("anomaly {kind} from {}", alert.identity))
                .await;
        }
    }

    /// Whether an alert of a kind configured to seal does seal: a denial
    /// spike only once enough distinct identities have raised one.
    fn alert_seals(&self, alert: &Alert) -> bool {
        let guard = &self.options.guard;
        if alert.kind != AlertKind::DenialSpike || guard.seal_denial_identities <= 1 {
            return true;
        }
        let sealing = self.denial_spikes.reaches(
            &alert.identity,
            Instant::now(),
            guard.anomaly.bucket,
            guard.seal_denial_identities,
        );
        if !sealing {
            tracing::warn!(
                identity = %alert.identity,
                needed = guard.seal_denial_identities,
                "denial spike from one identity: not sealing until enough identities spike within a bucket"
            );
        }
        sealing
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn denial_spikes_seal_only_from_enough_identities_within_a_bucket() {
        let spikes = DenialSpikes::default();
        let (a, b) = (
            Identity::parse("spiffe://x/a").expect("id"),
            Identity::parse("spiffe://x/b").expect("id"),
        );
        let bucket = Duration::from_secs(60);
        let start = Instant::now();
        assert!(!spikes.reaches(&a, start, bucket, 2));
        // The same identity again, next bucket: still one identity.
        assert!(!spikes.reaches(&a, start + Duration::from_secs(61), bucket, 2));
        // Another identity more than a bucket after the last spike...
        assert!(!spikes.reaches(&b, start + Duration::from_secs(125), bucket, 2));
        // ...and within a bucket of it.
        assert!(spikes.reaches(&a, start + Duration::from_secs(130), bucket, 2));
        // Reaching it starts afresh.
        assert!(!spikes.reaches(&b, start + Duration::from_secs(131), bucket, 2));
    }
}
