//! An optional cache of data keys for local envelope encryption, bounded
//! the way the AWS Encryption SDK bounds its caching materials manager.
//!
//! Without it, every locally encrypted message costs a GenerateDataKey
//! round trip (and every opened one a Decrypt). With it, one data key
//! serves several messages under the same key id and encryption context
//! until any limit is reached: its age ([`DataKeyCacheLimits::max_age`]),
//! the messages it encrypted (`max_messages`) or the bytes
//! (`max_bytes`); at most `max_entries` keys are kept (least recently used
//! first out). Unwrapped keys for opening are cached under the same age
//! and entry limits, keyed by the exact wrapped key, key id and context.
//!
//! **Off by default, and a trade-off** (say so in your threat model):
//! - a plaintext data key stays in this process's memory for up to
//!   `max_age` (zeroized when it leaves the cache), so a compromise of the
//!   process exposes every message it encrypted, up to `max_messages`;
//! - the server's audit log shows one GenerateDataKey per cached key, not
//!   one call per message, and one Decrypt per cached unwrapped key;
//! - disabling the key or revoking a grant on the server stops cached keys
//!   only when they expire: `max_age` bounds how long;
//! - each message still gets its own salt and message key, so reusing a
//!   data key does not weaken the encryption of one message.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lru::LruCache;

use tresor_crypto::{Context, SecretKey};

/// The limits of a [`DataKeyCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataKeyCacheLimits {
    /// Longest time a data key is used after it was generated (or an
    /// unwrapped key after it was unwrapped).
    pub max_age: Duration,
    /// Most messages one data key encrypts.
    pub max_messages: u64,
    /// Most plaintext bytes one data key encrypts.
    pub max_bytes: u64,
    /// Most data keys kept (for encrypting, and again for opening).
    pub max_entries: NonZeroUsize,
}

impl Default for DataKeyCacheLimits {
    /// One minute, 10,000 messages, 1 GiB, 100 keys.
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(60),
            max_messages: 10_000,
            max_bytes: 1 << 30,
            max_entries: NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// A data key as GenerateDataKey returned it.
#[derive(Debug)]
pub struct DataKey {
    /// The key itself (zeroized on drop).
    pub key: SecretKey,
    /// The key wrapped under the tresor key: what the message stores.
    pub wrapped: Vec<u8>,
    /// The tresor key version that wrapped it.
    pub key_version: u32,
}

/// Where a cached data key applies: key id and canonical context bytes.
type Scope = (String, Vec<u8>);

/// A cached data key for encrypting, with its use so far.
struct Sealing {
    key: Arc<DataKey>,
    born: Instant,
    messages: u64,
    bytes: u64,
}

/// A cached unwrapped key for opening, with the key version that wrapped
/// it.
struct Opening {
    key: Arc<SecretKey>,
    key_version: u32,
    born: Instant,
}

/// The cache; share it (it is internally locked).
pub struct DataKeyCache {
    limits: DataKeyCacheLimits,
    sealing: Mutex<LruCache<Scope, Sealing>>,
    /// Keyed by scope and wrapped key.
    opening: Mutex<LruCache<(Scope, Vec<u8>), Opening>>,
}

impl std::fmt::Debug for DataKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeyCache")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Locks a cache map; a panic cannot leave an LRU map half-updated in a way
/// that matters here (entries are whole values).
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Canonical, so that equal contexts in any order share a scope.
fn scope(key_id: &str, context: &HashMap<String, String>) -> Scope {
    let canonical: Context = context.iter().collect();
    (key_id.to_owned(), canonical.canonical_bytes())
}

impl DataKeyCache {
    /// An empty cache with these limits.
    pub fn new(limits: DataKeyCacheLimits) -> Self {
        Self {
            limits,
            sealing: Mutex::new(LruCache::new(limits.max_entries)),
            opening: Mutex::new(LruCache::new(limits.max_entries)),
        }
    }

    /// The limits.
    pub fn limits(&self) -> DataKeyCacheLimits {
        self.limits
    }

    /// A cached data key for one more message of `bytes` bytes under
    /// `key_id` and `context`, counted against its limits; `None` when
    /// there is none that may take it (the caller generates one and
    /// [`DataKeyCache::put_sealing`]s it).
    pub fn take_sealing(
        &self,
        key_id: &str,
        context: &HashMap<String, String>,
        bytes: u64,
    ) -> Option<Arc<DataKey>> {
        let scope = scope(key_id, context);
        let mut map = locked(&self.sealing);
        let entry = map.get_mut(&scope)?;
        let fits = entry.born.elapsed() < self.limits.max_age
            && entry.messages < self.limits.max_messages
            && entry.bytes.saturating_add(bytes) <= self.limits.max_bytes;
        if !fits {
            // Spent or expired: a later message may be smaller, but a key
            // past its age or count never comes back.
            map.pop(&scope);
            return None;
        }
        entry.messages += 1;
        entry.bytes += bytes;
        Some(Arc::clone(&entry.key))
    }

    /// Caches a fresh data key, already used for one message of `bytes`
    /// bytes; returns it. A message larger than `max_bytes` on its own is
    /// not cached (its key serves it alone).
    pub fn put_sealing(
        &self,
        key_id: &str,
        context: &HashMap<String, String>,
        bytes: u64,
        key: DataKey,
    ) -> Arc<DataKey> {
        let key = Arc::new(key);
        if bytes <= self.limits.max_bytes && self.limits.max_messages > 0 {
            locked(&self.sealing).put(
                scope(key_id, context),
                Sealing {
                    key: Arc::clone(&key),
                    born: Instant::now(),
                    messages: 1,
                    bytes,
                },
            );
        }
        key
    }

    /// A cached unwrapped key for `wrapped` under `key_id` and `context`,
    /// and its key version.
    pub fn get_opening(
        &self,
        key_id: &str,
        context: &HashMap<String, String>,
        wrapped: &[u8],
    ) -> Option<(Arc<SecretKey>, u32)> {
        let slot = (scope(key_id, context), wrapped.to_vec());
        let mut map = locked(&self.opening);
        let entry = map.get(&slot)?;
        if entry.born.elapsed() < self.limits.max_age {
            Some((Arc::clone(&entry.key), entry.key_version))
        } else {
            map.pop(&slot);
            None
        }
    }

    /// Caches a key the server unwrapped; returns it.
    pub fn put_opening(
        &self,
        key_id: &str,
        context: &HashMap<String, String>,
        wrapped: &[u8],
        key: SecretKey,
        key_version: u32,
    ) -> Arc<SecretKey> {
        let key = Arc::new(key);
        locked(&self.opening).put(
            (scope(key_id, context), wrapped.to_vec()),
            Opening {
                key: Arc::clone(&key),
                key_version,
                born: Instant::now(),
            },
        );
        key
    }

    /// Data keys cached for encrypting and for opening.
    pub fn len(&self) -> (usize, usize) {
        (locked(&self.sealing).len(), locked(&self.opening).len())
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_key(version: u32) -> DataKey {
        DataKey {
            key: SecretKey::generate().expect("key"),
            wrapped: vec![version as u8; 8],
            key_version: version,
        }
    }

    fn context(tenant: &str) -> HashMap<String, String> {
        HashMap::from([("tenant".to_owned(), tenant.to_owned())])
    }

    fn limits(messages: u64, bytes: u64, entries: usize, age: Duration) -> DataKeyCacheLimits {
        DataKeyCacheLimits {
            max_age: age,
            max_messages: messages,
            max_bytes: bytes,
            max_entries: NonZeroUsize::new(entries).expect("nonzero"),
        }
    }

    #[test]
    fn a_key_serves_max_messages_then_a_new_one_is_needed() {
        let cache = DataKeyCache::new(limits(3, 1 << 20, 10, Duration::from_secs(60)));
        let ctx = context("a");
        assert!(cache.take_sealing("k", &ctx, 10).is_none());
        let first = cache.put_sealing("k", &ctx, 10, data_key(1));
        for _ in 0..2 {
            let again = cache.take_sealing("k", &ctx, 10).expect("cached");
            assert!(Arc::ptr_eq(&first, &again));
        }
        assert!(
            cache.take_sealing("k", &ctx, 10).is_none(),
            "3 messages used"
        );
    }

    #[test]
    fn bytes_age_and_scope_bound_reuse() {
        let cache = DataKeyCache::new(limits(100, 100, 10, Duration::from_secs(60)));
        let ctx = context("a");
        cache.put_sealing("k", &ctx, 60, data_key(1));
        assert!(
            cache.take_sealing("k", &context("b"), 1).is_none(),
            "other context"
        );
        assert!(
            cache.take_sealing("other", &ctx, 1).is_none(),
            "other key id"
        );
        assert!(
            cache.take_sealing("k", &ctx, 41).is_none(),
            "101 bytes in all"
        );
        // A message over max_bytes on its own is never cached.
        cache.put_sealing("k", &ctx, 101, data_key(2));
        assert!(cache.take_sealing("k", &ctx, 1).is_none());

        let short = DataKeyCache::new(limits(100, 100, 10, Duration::from_millis(20)));
        short.put_sealing("k", &ctx, 1, data_key(1));
        assert!(short.take_sealing("k", &ctx, 1).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(short.take_sealing("k", &ctx, 1).is_none(), "expired");
    }

    #[test]
    fn entries_are_bounded_least_recently_used_first_out() {
        let cache = DataKeyCache::new(limits(100, 1 << 20, 2, Duration::from_secs(60)));
        for tenant in ["a", "b", "c"] {
            cache.put_sealing("k", &context(tenant), 1, data_key(1));
            cache.put_opening(
                "k",
                &context(tenant),
                b"w",
                SecretKey::generate().expect("key"),
                1,
            );
        }
        assert_eq!(cache.len(), (2, 2));
        assert!(
            cache.take_sealing("k", &context("a"), 1).is_none(),
            "evicted"
        );
        assert!(cache.take_sealing("k", &context("c"), 1).is_some());
        assert!(cache.get_opening("k", &context("a"), b"w").is_none());
        assert!(cache.get_opening("k", &context("c"), b"w").is_some());
        assert!(cache.get_opening("k", &context("c"), b"other").is_none());
    }
}
