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

/// The cache.
#[derive(Debug, Default)]
pub struct MetadataCache {
    entries: Mutex<HashMap<KeyId, (KeyMetadata, Instant)>>,
}

impl MetadataCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<KeyId, (KeyMetadata, Instant)>> {
        // Every operation is a single map call; a panic cannot leave the map
        // inconsistent, so a poisoned lock is safe to use.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh entry, if any.
    pub fn get(&self, id: &KeyId) -> Option<KeyMetadata> {
        let entries = self.lock();
        let (key, read_at) = entries.get(id)?;
        (read_at.elapsed() < METADATA_TTL).then(|| key.clone())
    }

    /// Remembers metadata just read or written.
    pub fn put(&self, key: KeyMetadata) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, read_at)| read_at.elapsed() < METADATA_TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key.id.clone(), (key, Instant::now()));
    }

    /// Forgets one key.
    pub fn evict(&self, id: &KeyId) {
        self.lock().remove(id);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Applies keystore change notifications until the cache or the
    /// channel is gone.
    pub fn follow(cache: Weak<Self>, mut changes: tokio::sync::broadcast::Receiver<KeyChange>) {
        tokio::spawn(async move {
            loop {
                let change = changes.recv().await;
                let Some(cache) = cache.upgrade() else {
                    return;
                };
                match change {
                    Ok(KeyChange::Key(id)) => cache.evict(&id),
                    // Missed notifications or a reconnect: start afresh.
                    Ok(KeyChange::All)
                    | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        cache.clear();
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

/// A cache shared with its notification task.
pub type SharedMetadataCache = Arc<MetadataCache>;
