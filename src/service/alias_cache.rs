//! A short-lived cache of alias targets, so that a call naming an alias
//! does not read the keystore every time. Same freshness rules as the
//! metadata cache (`metadata_cache.rs`): an entry is used for at most
//! [`METADATA_TTL`](super::METADATA_TTL) after it was read; this replica's
//! own writes update it at once; other replicas' writes evict it by
//! notification; a read that started before a write or an eviction cannot
//! put a stale target back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::metadata_cache::METADATA_TTL;
use crate::model::{AliasName, KeyId};

/// Bound on cached aliases; past it the cache starts afresh.
const MAX_ENTRIES: usize = 100_000;

/// An entry: the target (`None` after an eviction) and when it was read,
/// written or evicted.
type Entry = (Option<KeyId>, Instant);

/// The cache.
#[derive(Debug, Default)]
pub struct AliasCache {
    entries: Mutex<HashMap<AliasName, Entry>>,
    /// When the whole cache was last cleared.
    cleared_at: Mutex<Option<Instant>>,
}

impl AliasCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AliasName, Entry>> {
        // Single map calls only: a poisoned lock is safe to use.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The target of a fresh entry, if any.
    pub fn get(&self, name: &AliasName) -> Option<KeyId> {
        let entries = self.lock();
        let (target, at) = entries.get(name)?;
        (at.elapsed() < METADATA_TTL).then(|| target.clone())?
    }

    /// Remembers a target read by a read that started at `read_started`,
    /// unless a write, eviction or clear came after that.
    pub fn put_read(&self, name: AliasName, target: KeyId, read_started: Instant) {
        let cleared_after = self
            .cleared_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|at| at > read_started);
        if cleared_after {
            return;
        }
        let mut entries = self.lock();
        if entries.get(&name).is_some_and(|(_, at)| *at > read_started) {
            return;
        }
        Self::insert(&mut entries, name, (Some(target), read_started));
    }

    /// Remembers what this replica just wrote (`None`: deleted).
    pub fn put_written(&self, name: AliasName, target: Option<KeyId>) {
        Self::insert(&mut self.lock(), name, (target, Instant::now()));
    }

    fn insert(entries: &mut HashMap<AliasName, Entry>, name: AliasName, entry: Entry) {
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, at)| at.elapsed() < METADATA_TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(name, entry);
    }

    /// Forgets one alias (another replica changed it).
    pub fn evict(&self, name: &AliasName) {
        self.put_written(name.clone(), None);
    }

    /// Forgets everything (missed notifications, a restore).
    pub fn clear(&self) {
        *self
            .cleared_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> AliasName {
        AliasName::parse("alias/a").expect("alias")
    }

    fn key(raw: &str) -> KeyId {
        KeyId::parse(raw).expect("key id")
    }

    #[test]
    fn a_slow_read_cannot_put_back_what_a_write_replaced() {
        let cache = AliasCache::default();
        let read_started = Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        cache.put_written(name(), Some(key("new")));
        cache.put_read(name(), key("old"), read_started);
        assert_eq!(cache.get(&name()), Some(key("new")));
        let read_started = Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        cache.evict(&name());
        cache.put_read(name(), key("old"), read_started);
        assert_eq!(cache.get(&name()), None);
        let read_started = Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        cache.clear();
        cache.put_read(name(), key("old"), read_started);
        assert_eq!(cache.get(&name()), None);
        cache.put_read(name(), key("new"), Instant::now());
        assert_eq!(cache.get(&name()), Some(key("new")));
    }
}
