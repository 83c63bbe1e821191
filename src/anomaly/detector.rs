//! Per-identity anomaly detection over time buckets (one minute by
//! default): a decrypt rate far above the identity's own baseline, a burst
//! of keys the identity never used before, a spike of permission denials.
//! Each kind alerts at most once per identity per bucket.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Alert, AlertKind};
use crate::identity::Identity;

/// Most distinct keys remembered per identity.
const MAX_KNOWN_KEYS: usize = 10_000;

/// Thresholds of the detector.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorOptions {
    /// Length of one bucket.
    pub bucket: Duration,
    /// Buckets of history that make the baseline (60 one-minute buckets:
    /// the hourly average).
    pub history_buckets: usize,
    /// A bucket's decrypts alert when above this many times the baseline...
    pub decrypt_factor: f64,
    /// ...and above this floor.
    pub decrypt_floor: u64,
    /// Keys first used in one bucket, past the identity's first bucket,
    /// that alert.
    pub new_keys: u32,
    /// Permission denials in one bucket that alert.
    pub denials: u32,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        Self {
            bucket: Duration::from_secs(60),
            history_buckets: 60,
            decrypt_factor: 10.0,
            decrypt_floor: 600,
            new_keys: 20,
            denials: 30,
        }
    }
}

/// What one call tells the detector.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// Who called.
    pub identity: &'a Identity,
    /// The call was a decrypt (Decrypt or ReEncrypt).
    pub decrypt: bool,
    /// The key named, if any.
    pub key_id: Option<&'a str>,
    /// The call was refused with PERMISSION_DENIED.
    pub denied: bool,
}

#[derive(Debug)]
struct IdentityState {
    first_bucket: u64,
    bucket: u64,
    decrypts: u64,
    history: VecDeque<u64>,
    new_keys: u32,
    denials: u32,
    known_keys: HashSet<String>,
    alerted: HashSet<AlertKind>,
}

impl IdentityState {
    fn new(bucket: u64) -> Self {
        Self {
            first_bucket: bucket,
            bucket,
            decrypts: 0,
            history: VecDeque::new(),
            new_keys: 0,
            denials: 0,
            known_keys: HashSet::new(),
            alerted: HashSet::new(),
        }
    }

    /// Moves to `bucket`, pushing finished buckets into the history.
    fn advance(&mut self, bucket: u64, history_len: usize) {
        if bucket <= self.bucket {
            return;
        }
        self.history.push_back(self.decrypts);
        let quiet = (bucket - self.bucket - 1).min(history_len as u64);
        for _ in 0..quiet {
            self.history.push_back(0);
        }
        while self.history.len() > history_len {
            self.history.pop_front();
        }
        self.bucket = bucket;
        self.decrypts = 0;
        self.new_keys = 0;
        self.denials = 0;
        self.alerted.clear();
    }

    fn baseline(&self) -> f64 {
        if self.history.is_empty() {
            return 0.0;
        }
        self.history.iter().sum::<u64>() as f64 / self.history.len() as f64
    }
}

/// The detector: feed it every call, get alerts back.
#[derive(Debug)]
pub struct Detector {
    options: DetectorOptions,
    epoch: Instant,
    identities: Mutex<HashMap<Identity, IdentityState>>,
}

impl Detector {
    /// A detector with these thresholds.
    pub fn new(options: DetectorOptions) -> Self {
        Self {
            options,
            epoch: Instant::now(),
            identities: Mutex::new(HashMap::new()),
        }
    }

    /// The thresholds.
    pub fn options(&self) -> &DetectorOptions {
        &self.options
    }

    fn bucket_of(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.epoch);
        (elapsed.as_nanos() / self.options.bucket.as_nanos().max(1)) as u64
    }

    /// Counts one call made at `now`; returns the alerts it raises.
    pub fn observe(&self, seen: Observation<'_>, now: Instant) -> Vec<Alert> {
        let bucket = self.bucket_of(now);
        let options = &self.options;
        // Only counters behind the lock; a poisoned lock is safe to use.
        let mut identities = self
            .identities
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Look up before inserting: the identity is cloned only the first
        // time it is seen, not on every call (or batch item).
        if !identities.contains_key(seen.identity) {
            identities.insert(seen.identity.clone(), IdentityState::new(bucket));
        }
        let Some(state) = identities.get_mut(seen.identity) else {
            return Vec::new();
        };
        state.advance(bucket, options.history_buckets);
        let mut alerts = Vec::new();
        // The detail is written only for an alert not yet raised in this
        // bucket: past a threshold, every further call would format it.
        let mut raise =
            |state: &mut IdentityState, kind: AlertKind, detail: &dyn Fn() -> String| {
                if state.alerted.insert(kind) {
                    alerts.push(Alert {
                        kind,
                        identity: seen.identity.clone(),
                        detail: detail(),
                    });
                }
            };
        if seen.decrypt {
            state.decrypts += 1;
            let baseline = state.baseline();
            let threshold = (baseline * options.decrypt_factor).max(options.decrypt_floor as f64);
            if state.decrypts as f64 > threshold {
                let decrypts = state.decrypts;
                raise(state, AlertKind::DecryptSpike, &|| {
                    format!(
                        "{decrypts} decrypts in the current {:?} bucket; baseline {baseline:.1} per bucket (alerts above {:.0}x and above {})",
                        options.bucket, options.decrypt_factor, options.decrypt_floor
                    )
                });
            }
        }
        if let Some(key_id) = seen.key_id
            && !state.known_keys.contains(key_id)
        {
            if state.known_keys.len() < MAX_KNOWN_KEYS {
                state.known_keys.insert(key_id.to_owned());
            }
            // In its first bucket every key is new to an identity.
            if state.bucket > state.first_bucket {
                state.new_keys += 1;
                if state.new_keys > options.new_keys {
                    let new_keys = state.new_keys;
                    raise(state, AlertKind::NewKeys, &|| {
                        format!(
                            "{new_keys} keys used for the first time in the current {:?} bucket (alerts above {})",
                            options.bucket, options.new_keys
                        )
                    });
                }
            }
        }
        if seen.denied {
            state.denials += 1;
            if state.denials > options.denials {
                let denials = state.denials;
                raise(state, AlertKind::DenialSpike, &|| {
                    format!(
                        "{denials} permission denials in the current {:?} bucket (alerts above {})",
                        options.bucket, options.denials
                    )
                });
            }
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> DetectorOptions {
        DetectorOptions {
            bucket: Duration::from_secs(60),
            history_buckets: 60,
            decrypt_factor: 10.0,
            decrypt_floor: 100,
            new_keys: 5,
            denials: 10,
        }
    }

    fn decrypt<'a>(identity: &'a Identity, key: &'a str) -> Observation<'a> {
        Observation {
            identity,
            decrypt: true,
            key_id: Some(key),
            denied: false,
        }
    }

    #[test]
    fn a_decrypt_rate_far_above_the_baseline_alerts_once() {
        let detector = Detector::new(options());
        let app = Identity::parse("spiffe://x/app").expect("id");
        let start = detector.epoch;
        let minute = Duration::from_secs(60);
        // An hour at 50 decrypts a minute: under the floor, no alert.
        for m in 0..60u32 {
            for _ in 0..50 {
                assert!(
                    detector
                        .observe(decrypt(&app, "k"), start + minute * m)
                        .is_empty()
                );
            }
        }
        // 10x the baseline is 500: the 501st decrypt of a minute alerts, once.
        let now = start + minute * 60;
        let alerts: Vec<Alert> = (0..800)
            .flat_map(|_| detector.observe(decrypt(&app, "k"), now))
            .collect();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::DecryptSpike);
        assert!(
            alerts[0].detail.starts_with("501 decrypts"),
            "{}",
            alerts[0].detail
        );
        // The next minute starts quiet again.
        assert!(
            detector
                .observe(decrypt(&app, "k"), now + minute)
                .is_empty()
        );
    }

    #[test]
    fn many_new_keys_and_many_denials_alert() {
        let detector = Detector::new(options());
        let app = Identity::parse("spiffe://x/app").expect("id");
        let start = detector.epoch;
        // First bucket: learning, any number of keys.
        for n in 0..50 {
            assert!(
                detector
                    .observe(decrypt(&app, &format!("old-{n}")), start)
                    .is_empty()
            );
        }
        let later = start + Duration::from_secs(61);
        let mut kinds = Vec::new();
        for n in 0..6 {
            kinds.extend(detector.observe(decrypt(&app, &format!("new-{n}")), later));
        }
        assert_eq!(
            kinds.iter().map(|a| a.kind).collect::<Vec<_>>(),
            [AlertKind::NewKeys]
        );
        let denied = Observation {
            identity: &app,
            decrypt: false,
            key_id: Some("old-1"),
            denied: true,
        };
        let alerts: Vec<Alert> = (0..20)
            .flat_map(|_| detector.observe(denied, later))
            .collect();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::DenialSpike);
    }
}
