//! Encryptions counted per key version, for usage-based rotation (defence
//! in depth beside the rotation period: no DEK protects more than
//! `--max-encryptions-per-version` messages, whatever the traffic).
//!
//! The request path only adds one to an in-memory counter. A background
//! task adds the counts to the keystore every [`USAGE_FLUSH_INTERVAL`], or
//! sooner once a version has [`FLUSH_AFTER`] uncounted encryptions, and
//! rotates keys whose primary version reached the limit. A crash loses at
//! most the uncounted encryptions: about one flush interval of traffic
//! (and never less than [`FLUSH_AFTER`] per version), an undercount the
//! default limit (2^30, a quarter of the 2^32 messages AES-GCM with random
//! nonces allows per key) leaves ample room for.
//!
//! Counts are kept in quanta of limit / [`QUANTA_PER_LIMIT`] (exact, one
//! per encryption, for limits up to 65,536): an encryption adds a whole
//! quantum with probability 1 / quantum. The stored count is an unbiased
//! estimate whose standard deviation when it reaches the limit is 1/256 of
//! it (0.4%). Why: a server whose callers spread their traffic over a
//! million keys would otherwise write a count for nearly every key every
//! second; with the default limit it writes one for about one encryption
//! in 16,384, and a key rotates after 2^30 ± 2^22 encryptions.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::Duration;

use crate::error::Error;
use crate::model::{KeyId, KeyVersion};
use crate::service::Service;
use crate::service::lifecycle::AutoRotation;

/// Default limit: encryptions under one version before the key rotates.
pub const DEFAULT_MAX_ENCRYPTIONS_PER_VERSION: u64 = 1 << 30;

/// How often counts go to the keystore.
pub const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Uncounted encryptions of one version that trigger a flush at once.
pub const FLUSH_AFTER: u64 = 4096;

/// A count is kept in quanta of the limit divided by this.
pub const QUANTA_PER_LIMIT: u64 = 1 << 16;

/// Independent locks, so that concurrent requests on different keys rarely
/// wait for each other.
const SHARDS: usize = 16;

type Shard = HashMap<KeyId, Vec<(KeyVersion, u64)>>;

/// Encryptions not yet added to the keystore, per key version.
#[derive(Debug)]
pub struct UsageCounter {
    hasher: std::collections::hash_map::RandomState,
    shards: [Mutex<Shard>; SHARDS],
    flush_now: tokio::sync::Notify,
    /// Encryptions one counted unit stands for (1: exact counts).
    quantum: u64,
    /// Draws so far, mixed into each sampling draw.
    draws: std::sync::atomic::AtomicU64,
}

impl Default for UsageCounter {
    /// Exact counts.
    fn default() -> Self {
        Self::new(1)
    }
}

/// Encryptions of one version to add to the keystore.
pub type UsageDelta = (KeyId, KeyVersion, u64);

impl UsageCounter {
    /// A counter for versions that rotate after `limit` encryptions.
    pub fn new(limit: u64) -> Self {
        Self {
            hasher: Default::default(),
            shards: Default::default(),
            flush_now: tokio::sync::Notify::new(),
            quantum: (limit / QUANTA_PER_LIMIT).max(1),
            draws: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The encryptions to count for `count` new ones: `count` itself when
    /// counts are exact, else whole quanta, the last one drawn with the
    /// probability of the fraction it stands for (an unbiased estimate).
    fn sample(&self, id: &KeyId, version: KeyVersion, count: u64) -> u64 {
        let quantum = self.quantum;
        if quantum == 1 {
            return count;
        }
        let (whole, fraction) = (count / quantum * quantum, count % quantum);
        if fraction == 0 {
            return whole;
        }
        // Not secret and not adversarial: a keyed SipHash of a counter is
        // uniform enough, costs no system call, and cannot fail.
        let n = self
            .draws
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let draw = self.hasher.hash_one((id, version.get(), n)) % quantum;
        if draw < fraction {
            whole + quantum
        } else {
            whole
        }
    }

    fn shard(&self, id: &KeyId) -> std::sync::MutexGuard<'_, Shard> {
        // `SHARDS` is small; the remainder fits any usize.
        let index = (self.hasher.hash_one(id) % SHARDS as u64) as usize;
        // A panic cannot leave a count half-written: a poisoned shard is
        // still consistent.
        self.shards[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts `count` encryptions under `version` of `id`.
    pub fn record(&self, id: &KeyId, version: KeyVersion, count: u64) {
        let count = self.sample(id, version, count);
        if count == 0 {
            return;
        }
        self.add(id, version, count);
    }

    /// Adds `count` counted encryptions to the pending ones.
    fn add(&self, id: &KeyId, version: KeyVersion, count: u64) {
        let pending = {
            let mut shard = self.shard(id);
            let versions = match shard.get_mut(id) {
                Some(versions) => versions,
                None => shard.entry(id.clone()).or_default(),
            };
            match versions.iter_mut().find(|(v, _)| *v == version) {
                Some((_, pending)) => {
                    *pending = pending.saturating_add(count);
                    *pending
                }
                None => {
                    versions.push((version, count));
                    count
                }
            }
        };
        if pending >= FLUSH_AFTER && pending - count < FLUSH_AFTER {
            self.flush_now.notify_one();
        }
    }

    /// Takes every pending count.
    pub fn drain(&self) -> Vec<UsageDelta> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let taken = std::mem::take(
                &mut *shard
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            for (id, versions) in taken {
                for (version, count) in versions {
                    out.push((id.clone(), version, count));
                }
            }
        }
        out
    }

    /// Puts counts back after a failed flush, to go with the next one.
    pub fn restore(&self, deltas: Vec<UsageDelta>) {
        for (id, version, count) in deltas {
            self.add(&id, version, count);
        }
    }

    /// Resolves when a version has piled up [`FLUSH_AFTER`] uncounted
    /// encryptions.
    pub async fn wants_flush(&self) {
        self.flush_now.notified().await;
    }
}

impl Service {
    /// Counts one encryption under `version` of `id`.
    pub(in crate::service) fn count_encryption(&self, id: &KeyId, version: KeyVersion) {
        self.usage.record(id, version, 1);
    }

    /// Adds the pending encryption counts to the keystore, then rotates the
    /// keys whose primary version reached the limit. Counts that could not
    /// be stored stay pending for the next flush.
    pub async fn flush_usage(&self) -> Result<(), Error> {
        let deltas = self.usage.drain();
        if deltas.is_empty() {
            return Ok(());
        }
        let totals = match self.store.add_usage(&deltas).await {
            Ok(totals) => totals,
            Err(e) => {
                self.usage.restore(deltas);
                return Err(e.into());
            }
        };
        let limit = self.options.lifecycle.max_encryptions_per_version;
        for ((id, version, _), total) in deltas.iter().zip(totals) {
            if total < limit {
                continue;
            }
            // Sealed: nothing encrypts until unseal, and the first count
            // after it tries again.
            let Ok(keyring) = self.keyring() else {
                break;
            };
            let trigger = AutoRotation::Usage { version: *version };
            if let Err(e) = self.rotate_automatically(&keyring, id, trigger).await {
                tracing::error!(key_id = %id, %version, error = %e, "rotation at the encryption limit failed; retried at the next count");
            }
        }
        Ok(())
    }

    /// Waits until the pending counts should be flushed: the interval
    /// passed, or a version piled up enough.
    pub async fn usage_flush_due(&self) {
        tokio::select! {
            () = self.usage.wants_flush() => {}
            () = tokio::time::sleep(USAGE_FLUSH_INTERVAL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &str) -> KeyId {
        KeyId::parse(raw).expect("id")
    }

    #[test]
    fn counts_add_up_per_version_and_drain_empties_them() {
        let counter = UsageCounter::default();
        let v1 = KeyVersion::FIRST;
        let v2 = KeyVersion::new(2).expect("v2");
        for _ in 0..3 {
            counter.record(&id("a"), v1, 1);
        }
        counter.record(&id("a"), v2, 5);
        counter.record(&id("b"), v1, 1);
        let mut drained = counter.drain();
        drained.sort();
        assert_eq!(
            drained,
            vec![(id("a"), v1, 3), (id("a"), v2, 5), (id("b"), v1, 1)]
        );
        assert!(counter.drain().is_empty());
        counter.restore(drained);
        assert_eq!(counter.drain().len(), 3, "a failed flush keeps its counts");
    }

    #[test]
    fn large_limits_count_in_unbiased_quanta() {
        let counter = UsageCounter::new(100 * QUANTA_PER_LIMIT);
        let encryptions = 1_000_000u64;
        for i in 0..encryptions {
            counter.record(&id(&format!("k{}", i % 1000)), KeyVersion::FIRST, 1);
        }
        counter.record(&id("batch"), KeyVersion::FIRST, 250);
        let drained = counter.drain();
        assert!(drained.iter().all(|(_, _, count)| count % 100 == 0));
        let batch: u64 = drained
            .iter()
            .filter(|(key, _, _)| key.as_str() == "batch")
            .map(|(_, _, count)| count)
            .sum();
        assert!(
            batch == 200 || batch == 300,
            "a batch counts its whole quanta: {batch}"
        );
        let total: u64 = drained
            .iter()
            .filter(|(key, _, _)| key.as_str() != "batch")
            .map(|(_, _, count)| count)
            .sum();
        // Standard deviation sqrt(n * quantum) = 10,000: five of them.
        assert!(
            total.abs_diff(encryptions) < 50_000,
            "{total} counted for {encryptions}"
        );
    }

    #[test]
    fn sampled_counts_leave_most_keys_of_a_spread_load_untouched() {
        let counter = UsageCounter::new(1 << 30);
        for i in 0..100_000u32 {
            counter.record(&id(&format!("spread-{i}")), KeyVersion::FIRST, 1);
        }
        let pending = counter.drain().len();
        // Each of 100,000 keys is counted with probability 1/16,384.
        assert!(
            pending < 40,
            "{pending} keys to write for 100,000 encryptions"
        );
    }

    #[test]
    fn limits_up_to_the_quanta_count_exactly() {
        let counter = UsageCounter::new(QUANTA_PER_LIMIT);
        for _ in 0..1234 {
            counter.record(&id("exact"), KeyVersion::FIRST, 1);
        }
        assert_eq!(
            counter.drain(),
            vec![(id("exact"), KeyVersion::FIRST, 1234)]
        );
    }

    #[tokio::test]
    async fn a_pile_of_uncounted_encryptions_asks_for_a_flush() {
        let counter = std::sync::Arc::new(UsageCounter::default());
        counter.record(&id("hot"), KeyVersion::FIRST, FLUSH_AFTER - 1);
        let waiter = tokio::spawn({
            let counter = counter.clone();
            async move { counter.wants_flush().await }
        });
        counter.record(&id("hot"), KeyVersion::FIRST, 1);
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the flush was asked for")
            .expect("task");
    }
}
