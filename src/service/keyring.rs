//! The unsealed key material: the root key and a bounded cache of unwrapped
//! DEKs. Dropping a [`Keyring`] (seal) drops every key it holds; each one
//! zeroizes itself.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::crypto::{self, Binding, Context, Purpose, SecretKey};
use crate::error::Error;
use crate::model::{KeyId, KeyVersion, UnixTime};

/// Identifies one DEK. The key's creation time is part of it so that a key
/// deleted and created again under the same id never meets a stale entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DekSlot {
    key_id: KeyId,
    created_at: UnixTime,
    version: KeyVersion,
}

/// Root key plus cached DEKs.
pub struct Keyring {
    root: SecretKey,
    deks: Mutex<LruCache<DekSlot, Arc<SecretKey>>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(REDACTED)")
    }
}

fn dek_binding<'a>(key_id: &'a KeyId, version: KeyVersion, context: &'a Context) -> Binding<'a> {
    Binding {
        purpose: Purpose::WrapDataKey,
        key_id: key_id.as_str(),
        key_version: version.get(),
        context,
    }
}

impl Keyring {
    /// A keyring around an unwrapped root key, caching up to `capacity` DEKs.
    pub fn new(root: SecretKey, capacity: NonZeroUsize) -> Self {
        Self {
            root,
            deks: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The root key (for re-wrapping it under another master key).
    pub fn root(&self) -> &SecretKey {
        &self.root
    }

    /// Wraps a DEK under the root key, bound to key id and version.
    pub fn wrap_dek(
        &self,
        key_id: &KeyId,
        version: KeyVersion,
        dek: &SecretKey,
    ) -> Result<Vec<u8>, Error> {
        let context = Context::new();
        Ok(crypto::seal(
            &self.root,
            &dek_binding(key_id, version, &context),
            dek.expose(),
        )?)
    }

    /// Unwraps a DEK. A wrapped DEK moved to another key or version fails
    /// here; that is store corruption or tampering, reported as internal.
    pub fn unwrap_dek(
        &self,
        key_id: &KeyId,
        version: KeyVersion,
        wrapped: &[u8],
    ) -> Result<SecretKey, Error> {
        let context = Context::new();
        let dek = crypto::open(&self.root, &dek_binding(key_id, version, &context), wrapped)
            .map_err(|e| {
                Error::Store(crate::error::StoreError::Corrupt(format!(
                    "wrapped DEK {key_id} v{version} does not open under the root key: {e}"
                )))
            })?;
        Ok(SecretKey::from_bytes(dek.expose())?)
    }

    fn slot(key_id: &KeyId, created_at: UnixTime, version: KeyVersion) -> DekSlot {
        DekSlot {
            key_id: key_id.clone(),
            created_at,
            version,
        }
    }

    /// A cached DEK.
    pub fn cached(
        &self,
        key_id: &KeyId,
        created_at: UnixTime,
        version: KeyVersion,
    ) -> Option<Arc<SecretKey>> {
        self.lock()
            .get(&Self::slot(key_id, created_at, version))
            .cloned()
    }

    /// Caches a DEK, evicting the least recently used one when full.
    pub fn remember(
        &self,
        key_id: &KeyId,
        created_at: UnixTime,
        version: KeyVersion,
        dek: Arc<SecretKey>,
    ) {
        self.lock()
            .put(Self::slot(key_id, created_at, version), dek);
    }

    /// Forgets every cached DEK of a key (after it is destroyed).
    pub fn forget_key(&self, key_id: &KeyId) {
        let mut cache = self.lock();
        let stale: Vec<DekSlot> = cache
            .iter()
            .filter(|(slot, _)| &slot.key_id == key_id)
            .map(|(slot, _)| slot.clone())
            .collect();
        for slot in stale {
            cache.pop(&slot);
        }
    }

    /// Number of cached DEKs.
    #[cfg(test)]
    pub fn cached_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<DekSlot, Arc<SecretKey>>> {
        // A panic while holding this lock cannot leave the cache logically
        // inconsistent (every operation is a single LRU call), so a poisoned
        // lock is safe to keep using.
        self.deks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
