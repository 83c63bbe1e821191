//! A short-lived cache of key metadata, so the request path does not read
//! the keystore on every call.
//!
//! Freshness bound: an entry is used for at most [`METADATA_TTL`] after it
//! was read. Changes made through this replica update it at once; changes
//! made through another replica arrive as notifications from the keystore
//! (PostgreSQL LISTEN/NOTIFY) and evict the entry within milliseconds, and
//! the TTL bounds staleness even when a notification is lost. During a
//! keystore outage nothing older than the TTL is served: the next read
//! fails and the caller gets UNAVAILABLE.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::model::{KeyId, KeyMetadata};
use crate::store::KeyChange;

/// Longest time a cached key is used without re-reading the keystore.
pub const METADATA_TTL: Duration = Duration::from_millis(500);

/// Bounded number of cached keys.
const MAX_ENTRIES: usize = 100_000;

/// Size below which the cache never sweeps out stale entries.
const SWEEP_FLOOR: usize = 1024;

/// An entry: the metadata (or `None` after an eviction, so that a read that
/// started before the eviction cannot put stale metadata back), and when it
/// was read, written or evicted. Shared, so a hit costs a reference count,
/// not a copy of the key's versions and grants.
type Entry = (Option<Arc<KeyMetadata>>, Instant);

/// The entries, swept of stale ones whenever they have doubled since the
/// last sweep: callers drawing from a million keys would otherwise fill the
/// cache to [`MAX_ENTRIES`] with entries nobody may use any more. Memory
/// stays within about twice what was read in the last [`METADATA_TTL`],
/// at an amortised constant cost per insert.
#[derive(Debug, Default)]
struct Entries {
    map: HashMap<KeyId, Entry>,
    /// The size at which the next sweep runs.
    sweep_at_len: usize,
}

impl Entries {
    fn insert(&mut self, id: KeyId, entry: Entry) {
        if self.map.len() >= self.sweep_at_len.max(SWEEP_FLOOR) {
            self.map
                .retain(|_, (_, read_at)| read_at.elapsed() < METADATA_TTL);
            if self.map.len() >= MAX_ENTRIES {
                self.map.clear();
            }
            let keep = (2 * self.map.len()).max(SWEEP_FLOOR);
            if self.map.capacity() > 2 * keep {
                self.map.shrink_to(keep);
            }
            self.sweep_at_len = keep;
        }
        self.map.insert(id, entry);
    }
}

/// The cache.
#[derive(Debug, Default)]
pub struct MetadataCache {
    entries: Mutex<Entries>,
    /// When the whole cache was last cleared; reads that started earlier
    /// are not cached.
    cleared_at: Mutex<Option<Instant>>,
}

impl MetadataCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Every operation is a single map call; a panic cannot leave the map
        // inconsistent, so a poisoned lock is safe to use.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh entry, if any.
    pub fn get(&self, id: &KeyId) -> Option<Arc<KeyMetadata>> {
        let entries = self.lock();
        let (key, read_at) = entries.map.get(id)?;
        if read_at.elapsed() < METADATA_TTL {
            key.clone()
        } else {
            None
        }
    }

    /// Remembers metadata read from the keystore by a read that started at
    /// `read_started`, unless this replica wrote the key after that (a slow
    /// read must not put back what a write just replaced).
    pub fn put_read(&self, key: Arc<KeyMetadata>, read_started: Instant) {
        let cleared_after = self
            .cleared_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|at| at > read_started);
        let newer = self
            .lock()
            .map
            .get(&key.id)
            .is_some_and(|(_, at)| *at > read_started);
        if !newer && !cleared_after {
            self.insert(Some(key), read_started);
        }
    }

    /// Remembers metadata this replica just wrote.
    pub fn put_written(&self, key: KeyMetadata) {
        self.insert(Some(Arc::new(key)), Instant::now());
    }

    fn insert(&self, key: Option<Arc<KeyMetadata>>, at: Instant) {
        let Some(id) = key.as_ref().map(|k| k.id.clone()) else {
            return;
        };
        self.insert_entry(id, key, at);
    }

    fn insert_entry(&self, id: KeyId, key: Option<Arc<KeyMetadata>>, at: Instant) {
        self.lock().insert(id, (key, at));
    }

    /// Forgets one key (and refuses reads that started before now).
    pub fn evict(&self, id: &KeyId) {
        self.insert_entry(id.clone(), None, Instant::now());
    }

    /// Forgets everything (and refuses reads that started before now).
    pub fn clear(&self) {
        *self
            .cleared_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        self.lock().map.clear();
    }

    /// Applies keystore change notifications until the cache or the
    /// channel is gone; `also` hears each one too (`Some(key)` for one key,
    /// `None` for all of them), for the other caches of key state.
    pub fn follow(
        cache: Weak<Self>,
        mut changes: tokio::sync::broadcast::Receiver<KeyChange>,
        also: impl Fn(Option<&KeyId>) + Send + 'static,
    ) {
        tokio::spawn(async move {
            loop {
                let change = changes.recv().await;
                let Some(cache) = cache.upgrade() else {
                    return;
                };
                match change {
                    Ok(KeyChange::Key(id)) => {
                        cache.evict(&id);
                        also(Some(&id));
                    }
                    // Missed notifications or a reconnect: start afresh.
                    Ok(KeyChange::All)
                    | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        cache.clear();
                        also(None);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

/// A cache shared with its notification task.
pub type SharedMetadataCache = Arc<MetadataCache>;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::identity::Identity;
    use crate::model::{KeyState, KeyVersion};

    fn key(state: KeyState) -> KeyMetadata {
        KeyMetadata {
            id: KeyId::parse("k").expect("id"),
            owner: Identity::parse("o").expect("identity"),
            description: String::new(),
            state,
            primary_version: KeyVersion::FIRST,
            min_decryption_version: KeyVersion::FIRST,
            versions: vec![],
            created_at: 0,
            grants: BTreeMap::new(),
            rotation_period: None,
            conditional_grants: Vec::new(),
            purpose: Default::default(),
            labels: Default::default(),
            tag: None,
        }
    }

    #[test]
    fn stale_entries_are_swept_so_memory_follows_the_recent_reads() {
        let cache = MetadataCache::default();
        let stale = Instant::now() - 2 * METADATA_TTL;
        for i in 0..10 * SWEEP_FLOOR {
            let id = KeyId::parse(&format!("k{i}")).expect("id");
            cache.insert_entry(id, Some(Arc::new(key(KeyState::Enabled))), stale);
        }
        assert!(cache.lock().map.len() <= SWEEP_FLOOR);
        // Fresh entries are kept, however many.
        for i in 0..3 * SWEEP_FLOOR {
            let id = KeyId::parse(&format!("f{i}")).expect("id");
            cache.insert_entry(id, Some(Arc::new(key(KeyState::Enabled))), Instant::now());
        }
        assert!(cache.lock().map.len() >= 3 * SWEEP_FLOOR);
        let fresh = KeyId::parse("f0").expect("id");
        assert!(cache.get(&fresh).is_some());
    }

    #[test]
    fn a_slow_read_cannot_put_back_what_a_write_replaced() {
        let cache = MetadataCache::default();
        let id = KeyId::parse("k").expect("id");
        let read_started = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        cache.put_written(key(KeyState::Disabled));
        cache.put_read(Arc::new(key(KeyState::Enabled)), read_started);
        assert_eq!(cache.get(&id).map(|k| k.state), Some(KeyState::Disabled));
        // A read that started after the write may refresh the entry.
        cache.put_read(Arc::new(key(KeyState::Disabled)), Instant::now());
        assert_eq!(cache.get(&id).map(|k| k.state), Some(KeyState::Disabled));
        // An eviction (another replica changed the key) also wins over a
        // read that started before it, and so does clearing everything.
        let read_started = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        cache.evict(&id);
        cache.put_read(Arc::new(key(KeyState::Enabled)), read_started);
        assert!(cache.get(&id).is_none());
        let read_started = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        cache.clear();
        cache.put_read(Arc::new(key(KeyState::Enabled)), read_started);
        assert!(cache.get(&id).is_none());
        cache.put_read(Arc::new(key(KeyState::Enabled)), Instant::now());
        assert_eq!(cache.get(&id).map(|k| k.state), Some(KeyState::Enabled));
    }
}
