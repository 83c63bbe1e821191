//! The unsealed key material: the root key (two during a root-key
//! rotation) and a bounded cache of unwrapped DEKs. Dropping a [`Keyring`] (seal) drops every key it holds; each one
//! zeroizes itself.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, RwLock};

use lru::LruCache;

use crate::error::{Error, StoreError};
use crate::model::{KeyId, KeyVersion, UnixTime};
use crate::store::StoredVersion;
use tresor_crypto::{self as crypto, Binding, Context, Purpose, SecretKey};

fn missing_root(generation: u32) -> Error {
    Error::Store(StoreError::Corrupt(format!(
        "root key generation {generation} is not loaded"
    )))
}

/// Identifies one DEK. The key's creation time is part of it so that a key
/// deleted and created again under the same id never meets a stale entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DekSlot {
    key_id: KeyId,
    created_at: UnixTime,
    version: KeyVersion,
}

/// The root keys in memory: the current one, and during a root-key
/// rotation the one being retired.
#[derive(Default)]
struct Roots {
    current: u32,
    by_generation: BTreeMap<u32, Arc<SecretKey>>,
}

/// Root keys plus cached DEKs.
pub struct Keyring {
    roots: RwLock<Roots>,
    deks: Mutex<LruCache<DekSlot, Arc<SecretKey>>>,
    /// Checks key records' integrity tags; set once the keystore's
    /// metadata key is loaded (before the keyring serves).
    metadata_auth: std::sync::OnceLock<Arc<super::metadata_auth::MetadataAuth>>,
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
    /// A keyring around the current root key of `generation`, caching up
    /// to `capacity` DEKs.
    pub fn new(generation: u32, root: SecretKey, capacity: NonZeroUsize) -> Self {
        let roots = Roots {
            current: generation,
            by_generation: BTreeMap::from([(generation, Arc::new(root))]),
        };
        Self {
            roots: RwLock::new(roots),
            deks: Mutex::new(LruCache::new(capacity)),
            metadata_auth: std::sync::OnceLock::new(),
        }
    }

    /// Installs the keystore's metadata authenticator (once).
    pub fn install_metadata_auth(&self, auth: super::metadata_auth::MetadataAuth) {
        let _ = self.metadata_auth.set(Arc::new(auth));
    }

    /// The keystore's metadata authenticator.
    ///
    /// # Errors
    ///
    /// [`Error::Sealed`] before it is installed (the keyring is not
    /// serving yet).
    pub fn metadata_auth(&self) -> Result<Arc<super::metadata_auth::MetadataAuth>, Error> {
        self.metadata_auth.get().cloned().ok_or(Error::Sealed)
    }

    fn read_roots(&self) -> std::sync::RwLockReadGuard<'_, Roots> {
        // Writers only insert or remove whole entries; a panic cannot leave
        // the map half-updated, so a poisoned lock is safe to use.
        self.roots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_roots(&self) -> std::sync::RwLockWriteGuard<'_, Roots> {
        self.roots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current root key and its generation.
    pub fn current_root(&self) -> Result<(u32, Arc<SecretKey>), Error> {
        let roots = self.read_roots();
        let root = roots
            .by_generation
            .get(&roots.current)
            .cloned()
            .ok_or_else(|| missing_root(roots.current))?;
        Ok((roots.current, root))
    }

    /// The root key of `generation`, if in memory.
    pub fn root_of(&self, generation: u32) -> Option<Arc<SecretKey>> {
        self.read_roots().by_generation.get(&generation).cloned()
    }

    /// Adds a root key and makes it current (root-key rotation).
    pub fn install_current_root(&self, generation: u32, root: SecretKey) {
        let mut roots = self.write_roots();
        roots.by_generation.insert(generation, Arc::new(root));
        roots.current = generation;
    }

    /// Adds a root key that is not current (a retiring one, at unseal).
    pub fn install_retiring_root(&self, generation: u32, root: SecretKey) {
        self.write_roots()
            .by_generation
            .insert(generation, Arc::new(root));
    }

    /// Drops a retired root key.
    pub fn drop_root(&self, generation: u32) {
        let mut roots = self.write_roots();
        if roots.current != generation {
            roots.by_generation.remove(&generation);
        }
    }

    /// Wraps a DEK under the current root key, bound to key id and version.
    pub fn wrap_dek(
        &self,
        key_id: &KeyId,
        version: KeyVersion,
        dek: &SecretKey,
    ) -> Result<StoredVersion, Error> {
        let (generation, root) = self.current_root()?;
        let context = Context::new();
        let wrapped_dek =
            crypto::seal(&root, &dek_binding(key_id, version, &context), dek.expose())?;
        Ok(StoredVersion {
            version,
            wrapped_dek,
            root_generation: generation,
        })
    }

    /// Unwraps a DEK with the root key of its generation. A wrapped DEK
    /// moved to another key or version fails here; that is store corruption
    /// or tampering, reported as internal.
    pub fn unwrap_dek(&self, key_id: &KeyId, stored: &StoredVersion) -> Result<SecretKey, Error> {
        let version = stored.version;
        let root = self
            .root_of(stored.root_generation)
            .ok_or_else(|| missing_root(stored.root_generation))?;
        let context = Context::new();
        let dek = crypto::open(
            &root,
            &dek_binding(key_id, version, &context),
            &stored.wrapped_dek,
        )
        .map_err(|e| {
            Error::Store(StoreError::Corrupt(format!(
                "wrapped DEK {key_id} v{version} does not open under root key generation {}: {e}",
                stored.root_generation
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

    /// Forgets the cached DEK of one version (after it is destroyed).
    pub fn forget_version(&self, key_id: &KeyId, created_at: UnixTime, version: KeyVersion) {
        self.lock().pop(&Self::slot(key_id, created_at, version));
    }

    /// Forgets every cached DEK (a backup restored by another replica).
    pub fn forget_all(&self) {
        self.lock().clear();
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
