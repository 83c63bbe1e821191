//! Keystore: where key metadata and wrapped key material are kept.
//!
//! [`KeyStore`] names the capability and knows nothing about any backend;
//! [`SledKeyStore`] is the embedded single-node backend. Everything a store
//! holds is either public metadata or key material wrapped by a higher key:
//! a store never sees a plaintext key.
//!
//! Durability contract for every implementation: when a mutating method
//! returns `Ok`, the change is on stable storage (a crash right after loses
//! nothing), and each mutation is atomic.

#[doc(hidden)]
pub mod conformance;
mod postgres;
pub(crate) mod records;
mod sled;

use async_trait::async_trait;

use crate::error::{Error, StoreError};
use crate::identity::Identity;
use crate::model::{
    Alias, AliasName, Grantee, KeyId, KeyMetadata, KeyVersion, Role, RoleBinding, UnixTime,
};

pub use postgres::PostgresKeyStore;
pub use postgres::tls::{DbTls, StoreUrlError, check_store_url, store_url_has_password};
pub use sled::SledKeyStore;
pub use sled::compaction::CompactionReport;

/// The root key wrapped by one master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootWrapping {
    /// Which master key wrapped it (`file:PATH`, `aws-kms:KEY`).
    pub master_key: String,
    /// The root key, wrapped by that master key.
    pub wrapped_root_key: Vec<u8>,
}

/// The root key of a keystore, wrapped by the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoot {
    /// Random id of this keystore; bound into the root-key wrapping.
    pub keystore_id: String,
    /// The wrapping under the current master key.
    pub current: RootWrapping,
    /// During a master-key rotation, the wrapping under the new master key
    /// (written first, promoted second), so that after a crash at any
    /// instant the keystore opens with either the old or the new key.
    pub pending: Option<RootWrapping>,
    /// Generation of the current root key (1 for the first).
    pub generation: u32,
    /// During a root-key rotation, the previous root key, kept until every
    /// DEK is re-wrapped under the current one.
    pub retiring: Option<RetiringRoot>,
    /// The audit log's MAC key, sealed under the current root key (`None`
    /// in keystores made before the audit log existed, until first start).
    /// A root-key rotation re-seals it in the same write.
    pub audit_key: Option<Vec<u8>>,
    /// The key that authenticates key metadata, sealed under the current
    /// root key (`None` until the keystore's metadata is first
    /// authenticated). A root-key rotation re-seals it in the same write.
    pub metadata_key: Option<Vec<u8>>,
}

/// The latest checkpoint of one audit log, kept in the keystore so that a
/// log file cut short is detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditMark {
    /// Sequence number of the checkpoint record.
    pub sequence: u64,
    /// SHA-256 of its line.
    pub record_hash: Vec<u8>,
}

impl AuditMark {
    /// Whether `self` may replace `stored`: `Ok(true)` when it moves the
    /// checkpoint forward (or there is none yet), `Ok(false)` when it is the
    /// same checkpoint (nothing to write), else
    /// [`StoreError::AuditMarkBehind`].
    pub fn advances(&self, stored: Option<&AuditMark>) -> Result<bool, StoreError> {
        match stored {
            None => Ok(true),
            Some(old) if old.sequence < self.sequence => Ok(true),
            Some(old) if old == self => Ok(false),
            Some(old) => Err(StoreError::AuditMarkBehind {
                stored: old.sequence,
                offered: self.sequence,
            }),
        }
    }
}

/// A previous root key that still wraps some DEKs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiringRoot {
    /// Its generation.
    pub generation: u32,
    /// It, wrapped by the current master key.
    pub wrapping: RootWrapping,
}

/// Position of a root-key rotation: the last DEK re-wrapped (and, read
/// from a version entry's key, which version an entry holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrapCursor {
    /// The key.
    pub key_id: KeyId,
    /// Its version.
    pub version: KeyVersion,
}

/// A consistent copy of a whole keystore: what a backup holds. Everything
/// in it is metadata or key material wrapped by the root key, which is
/// itself wrapped by the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The root record.
    pub root: StoredRoot,
    /// Every key's metadata, in id order.
    pub keys: Vec<KeyMetadata>,
    /// Every wrapped DEK, in (key id, version) order.
    pub versions: Vec<(KeyId, StoredVersion)>,
    /// Every alias, in name order.
    pub aliases: Vec<Alias>,
    /// Every role binding, in store-key order ([`RoleBinding::store_key`]).
    pub role_bindings: Vec<RoleBinding>,
}

/// A change to key metadata made by another process sharing the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    /// This key changed (or was created or destroyed).
    Key(KeyId),
    /// Anything may have changed (a reconnect missed notifications, a
    /// restore replaced the keystore).
    All,
}

/// One DEK to re-wrap: its key, the stored value expected, the new value.
pub type Rewrap = (KeyId, StoredVersion, StoredVersion);

/// One version of a key: its DEK wrapped by the root key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// The version number.
    pub version: KeyVersion,
    /// The DEK, wrapped by the root key and bound to key id and version.
    pub wrapped_dek: Vec<u8>,
    /// Generation of the root key that wrapped it.
    pub root_generation: u32,
}

/// What an update function decided: the new metadata, and possibly a new
/// version to add or an old version's DEK to erase, in the same atomic step.
#[derive(Debug)]
pub struct KeyUpdate {
    /// The metadata to store.
    pub metadata: KeyMetadata,
    /// A version to add (rotation).
    pub new_version: Option<StoredVersion>,
    /// A version whose wrapped DEK to remove (DestroyKeyVersion).
    pub destroy_version: Option<KeyVersion>,
}

impl KeyUpdate {
    /// An update that only changes metadata.
    pub fn metadata(metadata: KeyMetadata) -> Self {
        Self {
            metadata,
            new_version: None,
            destroy_version: None,
        }
    }
}

/// A function deciding an update from the current metadata. It may run more
/// than once when concurrent updates race, so it must not have side effects.
pub type UpdateFn<'a> = dyn Fn(&KeyMetadata) -> Result<KeyUpdate, Error> + Send + Sync + 'a;

/// Aliases: names that point at keys. Every write is atomic and durable
/// before it returns `Ok`; the service tags and checks the records, the
/// store only keeps them.
#[async_trait]
pub trait AliasStore: Send + Sync {
    /// The alias named `name`.
    async fn alias(&self, name: &AliasName) -> Result<Option<Alias>, StoreError>;

    /// Stores a new alias; [`StoreError::AlreadyExists`] if the name is
    /// taken.
    async fn create_alias(&self, alias: &Alias) -> Result<(), StoreError>;

    /// Replaces an existing alias; [`StoreError::NotFound`] if there is
    /// none of that name.
    async fn replace_alias(&self, alias: &Alias) -> Result<(), StoreError>;

    /// Removes an alias; [`StoreError::NotFound`] if there is none.
    async fn delete_alias(&self, name: &AliasName) -> Result<(), StoreError>;

    /// Aliases in name order whose name starts with `prefix`, after
    /// `start_after`, at most `limit` of them.
    async fn list_aliases(
        &self,
        prefix: &str,
        start_after: Option<&AliasName>,
        limit: usize,
    ) -> Result<Vec<Alias>, StoreError>;
}

/// Role bindings: which identities (or patterns) hold which control-plane
/// role. Every write is atomic and durable before it returns `Ok`; the
/// service tags and checks the records, the store only keeps them.
#[async_trait]
pub trait RoleStore: Send + Sync {
    /// Every role binding, in the byte order of [`RoleBinding::store_key`]
    /// (role name, then grantee).
    async fn role_bindings(&self) -> Result<Vec<RoleBinding>, StoreError>;

    /// Stores a new binding; [`StoreError::AlreadyExists`] if that role is
    /// already bound to that grantee.
    async fn add_role_binding(&self, binding: &RoleBinding) -> Result<(), StoreError>;

    /// Removes a binding; [`StoreError::NotFound`] if there is none.
    async fn remove_role_binding(&self, role: Role, grantee: &Grantee) -> Result<(), StoreError>;
}

/// The storage capability tresor needs. Implementations must make every
/// mutation atomic and durable before returning `Ok`.
#[async_trait]
pub trait KeyStore: AliasStore + RoleStore + Send + Sync + 'static {
    /// The stored root key, if the keystore is initialised.
    async fn root(&self) -> Result<Option<StoredRoot>, StoreError>;

    /// Stores `root` unless a root is already stored; returns the root that
    /// is stored afterwards (so two racing initialisations agree).
    async fn init_root(&self, root: StoredRoot) -> Result<StoredRoot, StoreError>;

    /// Replaces the root record if it still equals `expected` (compare and
    /// swap); [`StoreError::Conflict`] otherwise.
    async fn replace_root(&self, expected: &StoredRoot, new: &StoredRoot)
    -> Result<(), StoreError>;

    /// Wrapped DEKs of every key, in (key id, version) order, after
    /// `after`, at most `limit`.
    async fn versions_after(
        &self,
        after: Option<&RewrapCursor>,
        limit: usize,
    ) -> Result<Vec<(KeyId, StoredVersion)>, StoreError>;

    /// Atomically replaces each wrapped DEK that still equals its expected
    /// value (others changed or vanished concurrently and are skipped) and
    /// records `cursor`. Returns how many were replaced.
    async fn rewrap_versions(
        &self,
        batch: &[Rewrap],
        cursor: &RewrapCursor,
    ) -> Result<usize, StoreError>;

    /// Where an interrupted root-key rotation stopped.
    async fn rewrap_cursor(&self) -> Result<Option<RewrapCursor>, StoreError>;

    /// Forgets the rotation cursor.
    async fn clear_rewrap_cursor(&self) -> Result<(), StoreError>;

    /// Notifications of key changes made by other processes sharing this
    /// store (other replicas). `None` for a store only this process writes.
    fn key_changes(&self) -> Option<tokio::sync::broadcast::Receiver<KeyChange>> {
        None
    }

    /// A consistent snapshot of the whole keystore, taken while serving.
    async fn snapshot(&self) -> Result<Snapshot, StoreError>;

    /// Writes `snapshot` into this store in one transaction. Refuses a
    /// store that holds a root key or any key ([`StoreError::NotEmpty`])
    /// unless `replace`, which first removes everything.
    async fn restore(&self, snapshot: &Snapshot, replace: bool) -> Result<(), StoreError>;

    /// Whether the keystore was left sealed. Seal survives restarts: a server
    /// that was sealed starts sealed.
    async fn sealed(&self) -> Result<bool, StoreError>;

    /// Records the seal state durably.
    async fn set_sealed(&self, sealed: bool) -> Result<(), StoreError>;

    /// The latest checkpoint recorded for the audit log named `log` (one
    /// per replica).
    async fn audit_mark(&self, log: &str) -> Result<Option<AuditMark>, StoreError>;

    /// Records the latest checkpoint of the audit log `log` durably, as a
    /// compare-and-swap on its sequence number: it only moves forward
    /// ([`AuditMark::advances`]); setting the stored one again is a no-op.
    async fn set_audit_mark(&self, log: &str, mark: &AuditMark) -> Result<(), StoreError>;

    /// Creates a key with its first version. Fails with
    /// [`StoreError::AlreadyExists`] if the id is taken.
    async fn create_key(
        &self,
        metadata: &KeyMetadata,
        first: &StoredVersion,
    ) -> Result<(), StoreError>;

    /// The metadata of a key.
    async fn key(&self, id: &KeyId) -> Result<Option<KeyMetadata>, StoreError>;

    /// Atomically reads, transforms and writes a key's metadata (and adds a
    /// version if the update says so). [`StoreError::NotFound`] if the key
    /// does not exist; [`StoreError::Rejected`] carries the update
    /// function's error.
    async fn update_key(
        &self,
        id: &KeyId,
        update: &UpdateFn<'_>,
    ) -> Result<KeyMetadata, StoreError>;

    /// A key version's wrapped DEK.
    async fn version(
        &self,
        id: &KeyId,
        version: KeyVersion,
    ) -> Result<Option<StoredVersion>, StoreError>;

    /// Keys in id order whose id starts with `prefix`, after `start_after`,
    /// at most `limit` of them.
    async fn list_keys(
        &self,
        prefix: &str,
        start_after: Option<&KeyId>,
        limit: usize,
    ) -> Result<Vec<KeyMetadata>, StoreError>;

    /// Keys owned by `owner`, in id order, whose id starts with `prefix`,
    /// after `start_after`, at most `limit` of them. Served from an owner
    /// index: the cost grows with the keys `owner` has, not with the keys
    /// in the store.
    async fn list_owned_keys(
        &self,
        owner: &Identity,
        prefix: &str,
        start_after: Option<&KeyId>,
        limit: usize,
    ) -> Result<Vec<KeyMetadata>, StoreError>;

    /// How many keys exist.
    async fn key_count(&self) -> Result<u64, StoreError>;

    /// Ids of keys pending deletion whose deletion time is at or before
    /// `now`.
    async fn due_deletions(&self, now: UnixTime) -> Result<Vec<KeyId>, StoreError>;

    /// Destroys a key: its metadata and every wrapped DEK.
    async fn delete_key(&self, id: &KeyId) -> Result<(), StoreError>;

    /// Ids of keys whose automatic rotation is due at or before `now`
    /// ([`KeyMetadata::next_rotation_at`]), soonest first, at most `limit`.
    async fn due_rotations(&self, now: UnixTime, limit: usize) -> Result<Vec<KeyId>, StoreError>;

    /// Adds encryption counts per key version (usage-based rotation) in one
    /// atomic, durable write; returns each version's new total, in order.
    async fn add_usage(&self, deltas: &[(KeyId, KeyVersion, u64)]) -> Result<Vec<u64>, StoreError>;

    /// Rewrites the store's files so that nothing removed from it (the
    /// wrapped DEKs of destroyed versions and deleted keys) remains in them.
    /// What this covers, and what stays on disk regardless (write-ahead
    /// logs, the file system's freed blocks), is each backend's to document.
    async fn compact(&self) -> Result<(), StoreError>;
}
