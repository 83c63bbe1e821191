//! Prometheus metrics (prometheus-client): requests by operation and
//! status, latency histograms, key count, seal state, audit queue depth,
//! anomaly alerts, DEK cache hits. One [`Metrics`] per server (no global
//! registry), rendered in the text exposition format by [`Metrics::render`].

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IdentityLabels {
    identity: String,
}

/// Caller identities that get a label value of their own in
/// `tresor_identity_requests_total`; calls of any further identity are
/// counted under `identity="other"`, so the series stay bounded whatever
/// certificates callers present.
pub const MAX_IDENTITY_SERIES: usize = 200;

/// The label of calls from identities past [`MAX_IDENTITY_SERIES`].
const OTHER_IDENTITIES: &str = "other";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertLabels {
    cert: &'static str,
}

/// Brings a counter kept elsewhere (as a total since start) up to `total`.
fn catch_up(counter: &Counter, total: u64) {
    let have = counter.get();
    if total > have {
        counter.inc_by(total - have);
    }
}

fn latency_histogram() -> Histogram {
    // 50 µs to about 1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// Point-in-time values read when scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// Keys in the keystore, if the store answered.
    pub keys: Option<u64>,
    /// Sealed.
    pub sealed: bool,
    /// The store answered its health probe.
    pub store_up: bool,
    /// Audit records queued, not yet written.
    pub audit_queue_depth: u64,
    /// Audit records left out of the `--audit-stdout` copy since start.
    pub audit_stdout_dropped: u64,
    /// Audit records whose write failed since start.
    pub audit_records_failed: u64,
    /// Keys whose automatic rotation is overdue, if the store answered.
    pub keys_rotation_overdue: Option<u64>,
}

/// The metrics of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    batch_items: Family<RequestLabels, Counter>,
    latency: Family<OperationLabels, Histogram, fn() -> Histogram>,
    anomalies: Family<KindLabels, Counter>,
    tls_reloads: Family<ResultLabels, Counter>,
    tls_handshakes: Family<ResultLabels, Counter>,
    tls_expiry: Family<CertLabels, Gauge>,
    cache_hits: Counter,
    cache_misses: Counter,
    cache_hit_ratio: Gauge<f64, AtomicU64>,
    keys: Gauge,
    sealed: Gauge,
    store_up: Gauge,
    audit_queue_depth: Gauge,
    audit_stdout_dropped: Gauge,
    keys_rotation_overdue: Gauge,
    trace_spans_dropped: Counter,
    audit_write_failures: Counter,
    identity_requests: Family<IdentityLabels, Counter>,
    /// The counters of the identities with a series of their own, so a
    /// call costs a read lock and a lookup, not an allocation.
    identity_counters: std::sync::RwLock<std::collections::HashMap<String, Counter>>,
    /// The `identity="other"` series, past the cap.
    other_identities: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tresor");
        let requests = Family::<RequestLabels, Counter>::default();
        let batch_items = Family::<RequestLabels, Counter>::default();
        let latency = Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let anomalies = Family::<KindLabels, Counter>::default();
        let tls_reloads = Family::<ResultLabels, Counter>::default();
        let tls_handshakes = Family::<ResultLabels, Counter>::default();
        let tls_expiry = Family::<CertLabels, Gauge>::default();
        // Present from the start, so a rate() over it works at zero.
        let identity_requests = Family::<IdentityLabels, Counter>::default();
        let other_identities = identity_requests
            .get_or_create(&IdentityLabels {
                identity: OTHER_IDENTITIES.to_owned(),
            })
            .clone();
        let metrics = Self {
            requests: requests.clone(),
            batch_items: batch_items.clone(),
            latency: latency.clone(),
            anomalies: anomalies.clone(),
            tls_reloads: tls_reloads.clone(),
            tls_handshakes: tls_handshakes.clone(),
            tls_expiry: tls_expiry.clone(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            cache_hit_ratio: Gauge::default(),
            keys: Gauge::default(),
            sealed: Gauge::default(),
            store_up: Gauge::default(),
            audit_queue_depth: Gauge::default(),
            audit_stdout_dropped: Gauge::default(),
            trace_spans_dropped: Counter::default(),
            audit_write_failures: Counter::default(),
            identity_requests: identity_requests.clone(),
            identity_counters: std::sync::RwLock::default(),
            other_identities,
            keys_rotation_overdue: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "gRPC calls by operation and status code",
            requests,
        );
        registry.register(
            "batch_items",
            "Items of batch calls (EncryptBatch, DecryptBatch) by operation and item status code",
            batch_items,
        );
        registry.register(
            "request_duration_seconds",
            "Time to handle a gRPC call, audit record included",
            latency,
        );
        registry.register(
            "anomaly_alerts",
            "Anomaly alerts raised, by kind",
            anomalies,
        );
        registry.register(
            "tls_reload",
            "Reloads of the listener's TLS files: ok (applied) or refused (the old set keeps serving)",
            tls_reloads,
        );
        registry.register(
            "tls_handshakes",
            "TLS handshakes of the gRPC listener: ok, refused (e.g. a client certificate that does not verify, is revoked or of another trust domain) or timed_out",
            tls_handshakes,
        );
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the served certificate (cert=\"server\") and the earliest client CA (cert=\"client_ca\") expire, Unix time",
            tls_expiry,
        );
        registry.register(
            "dek_cache_hits",
            "Data keys found unwrapped in memory",
            metrics.cache_hits.clone(),
        );
        registry.register(
            "dek_cache_misses",
            "Data keys that had to be read and unwrapped",
            metrics.cache_misses.clone(),
        );
        registry.register(
            "dek_cache_hit_ratio",
            "Share of data-key lookups served from memory since start",
            metrics.cache_hit_ratio.clone(),
        );
        registry.register("keys", "Keys in the keystore", metrics.keys.clone());
        registry.register(
            "sealed",
            "1 while sealed (key material dropped), else 0",
            metrics.sealed.clone(),
        );
        registry.register(
            "store_up",
            "1 while the keystore answers, else 0",
            metrics.store_up.clone(),
        );
        registry.register(
            "audit_queue_depth",
            "Audit records waiting for the writer",
            metrics.audit_queue_depth.clone(),
        );
        registry.register(
            "keys_rotation_overdue",
            "Keys whose automatic rotation is more than an hour overdue (counted up to 10000): automatic rotation is failing",
            metrics.keys_rotation_overdue.clone(),
        );
        registry.register(
            "audit_stdout_dropped_records",
            "Audit records left out of the --audit-stdout copy since start (stdout did not keep up); the file has them",
            metrics.audit_stdout_dropped.clone(),
        );
        registry.register(
            "identity_requests",
            "Calls by caller identity (SPIFFE ID); past the first 200 identities seen, calls count under identity=\"other\"",
            metrics.identity_requests.clone(),
        );
        registry.register(
            "audit_write_failures",
            "Audit records that could not be written (disk full, read-only volume): each refused its call with AUDIT_UNAVAILABLE",
            metrics.audit_write_failures.clone(),
        );
        registry.register(
            "trace_spans_dropped",
            "Trace spans dropped because the OTLP export queue was full (--otlp-endpoint); raise OTEL_BSP_MAX_QUEUE_SIZE or sample less",
            metrics.trace_spans_dropped.clone(),
        );
        for result in ["ok", "refused"] {
            let _ = metrics.tls_reloads.get_or_create(&ResultLabels { result });
        }
        for kind in crate::anomaly::AlertKind::ALL {
            // Present from the start, so a rate() over them works at zero.
            let _ = metrics
                .anomalies
                .get_or_create(&KindLabels { kind: kind.name() });
        }
        Self {
            registry,
            ..metrics
        }
    }

    /// Counts one handled call.
    pub fn request(&self, operation: &'static str, status: &'static str, latency: Duration) {
        self.requests
            .get_or_create(&RequestLabels { operation, status })
            .inc();
        self.latency
            .get_or_create(&OperationLabels { operation })
            .observe(latency.as_secs_f64());
    }

    /// Counts one call of `identity` (its own series for the first
    /// [`MAX_IDENTITY_SERIES`] identities seen, `other` past them). Known
    /// identities, and every identity once the cap is reached, cost a read
    /// lock and a lookup; only a new identity under the cap takes the
    /// write lock.
    pub fn identity_request(&self, identity: &str) {
        {
            let counters = self
                .identity_counters
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(counter) = counters.get(identity) {
                counter.inc();
                return;
            }
            if counters.len() >= MAX_IDENTITY_SERIES {
                self.other_identities.inc();
                return;
            }
        }
        let mut counters = self
            .identity_counters
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another call may have filled the last places meanwhile.
        let counter = if let Some(counter) = counters.get(identity) {
            counter.clone()
        } else if counters.len() >= MAX_IDENTITY_SERIES {
            self.other_identities.clone()
        } else {
            let counter = self
                .identity_requests
                .get_or_create(&IdentityLabels {
                    identity: identity.to_owned(),
                })
                .clone();
            counters.insert(identity.to_owned(), counter.clone());
            counter
        };
        counter.inc();
    }

    /// Counts one processed item of a batch call.
    pub fn batch_item(&self, operation: &'static str, status: &'static str) {
        self.batch_items
            .get_or_create(&RequestLabels { operation, status })
            .inc();
    }

    /// Counts an anomaly alert.
    pub fn anomaly(&self, kind: &'static str) {
        self.anomalies.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts a TLS reload: applied (`true`) or refused.
    pub fn tls_reload(&self, applied: bool) {
        let result = if applied { "ok" } else { "refused" };
        self.tls_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Counts a TLS handshake of the listener by its `result`: `ok`,
    /// `refused` or `timed_out`.
    pub fn tls_handshake(&self, result: &'static str) {
        self.tls_handshakes
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// When the served certificate and the earliest client CA expire (Unix
    /// seconds).
    pub fn tls_expiry(&self, server: i64, earliest_client_ca: i64) {
        for (cert, at) in [("server", server), ("client_ca", earliest_client_ca)] {
            self.tls_expiry.get_or_create(&CertLabels { cert }).set(at);
        }
    }

    /// Counts a data-key lookup.
    pub fn dek_lookup(&self, hit: bool) {
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    /// Brings `tresor_trace_spans_dropped_total` up to `total`, the count
    /// the trace exporter keeps since the process started.
    pub fn set_trace_spans_dropped(&self, total: u64) {
        catch_up(&self.trace_spans_dropped, total);
    }

    /// The exposition text, with the point-in-time values of `snapshot`.
    pub fn render(&self, snapshot: Snapshot) -> String {
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        if let Some(keys) = snapshot.keys {
            self.keys.set(gauge(keys));
        }
        self.sealed.set(i64::from(snapshot.sealed));
        self.store_up.set(i64::from(snapshot.store_up));
        self.audit_queue_depth
            .set(gauge(snapshot.audit_queue_depth));
        self.audit_stdout_dropped
            .set(gauge(snapshot.audit_stdout_dropped));
        catch_up(&self.audit_write_failures, snapshot.audit_records_failed);
        if let Some(overdue) = snapshot.keys_rotation_overdue {
            self.keys_rotation_overdue.set(gauge(overdue));
        }
        let (hits, misses) = (self.cache_hits.get(), self.cache_misses.get());
        if hits + misses > 0 {
            self.cache_hit_ratio
                .set(hits as f64 / (hits + misses) as f64);
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let metrics = Metrics::new();
        metrics.request("Encrypt", "OK", Duration::from_micros(300));
        metrics.request("Encrypt", "OK", Duration::from_micros(300));
        metrics.request("Decrypt", "PERMISSION_DENIED", Duration::from_micros(80));
        metrics.request("DecryptBatch", "OK", Duration::from_micros(900));
        metrics.batch_item("DecryptBatch", "OK");
        metrics.batch_item("DecryptBatch", "OK");
        metrics.batch_item("DecryptBatch", "INVALID_ARGUMENT");
        metrics.anomaly("decrypt_spike");
        metrics.dek_lookup(true);
        metrics.dek_lookup(false);
        metrics.identity_request("spiffe://t/billing");
        metrics.identity_request("spiffe://t/billing");
        for n in 0..MAX_IDENTITY_SERIES + 5 {
            metrics.identity_request(&format!("spiffe://t/svc-{n}"));
        }
        for total in [5, 3, 8] {
            metrics.set_trace_spans_dropped(total);
        }
        let text = metrics.render(Snapshot {
            keys: Some(7),
            sealed: true,
            store_up: true,
            audit_queue_depth: 3,
            audit_stdout_dropped: 0,
            audit_records_failed: 2,
            keys_rotation_overdue: Some(0),
        });
        for expected in [
            "tresor_requests_total{operation=\"Encrypt\",status=\"OK\"} 2",
            "tresor_requests_total{operation=\"Decrypt\",status=\"PERMISSION_DENIED\"} 1",
            "tresor_request_duration_seconds_count{operation=\"Encrypt\"} 2",
            "tresor_requests_total{operation=\"DecryptBatch\",status=\"OK\"} 1",
            "tresor_batch_items_total{operation=\"DecryptBatch\",status=\"OK\"} 2",
            "tresor_batch_items_total{operation=\"DecryptBatch\",status=\"INVALID_ARGUMENT\"} 1",
            "tresor_anomaly_alerts_total{kind=\"decrypt_spike\"} 1",
            "tresor_anomaly_alerts_total{kind=\"new_keys\"} 0",
            "tresor_keys 7",
            "tresor_sealed 1",
            "tresor_audit_queue_depth 3",
            "tresor_dek_cache_hit_ratio 0.5",
            "tresor_trace_spans_dropped_total 8",
            "tresor_audit_write_failures_total 2",
            "tresor_identity_requests_total{identity=\"spiffe://t/billing\"} 2",
            "tresor_identity_requests_total{identity=\"spiffe://t/svc-0\"} 1",
            "tresor_identity_requests_total{identity=\"other\"} 6",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
        let series = text
            .lines()
            .filter(|line| line.starts_with("tresor_identity_requests_total{"))
            .count();
        assert_eq!(series, MAX_IDENTITY_SERIES + 1, "bounded, plus other");
    }
}
