//! [`SledKeyStore`]: the embedded single-node keystore on sled 0.34.
//!
//! Trees: `meta` (root record, key count), `records` (key id -> metadata,
//! and key id NUL version -> wrapped DEK: a key's versions sort right after
//! it), `deletions` (deletion time ++ key id -> empty, the schedule of
//! pending deletions), `rotations` (the same for automatic rotations, by
//! next rotation time), `usage_pages` (key id NUL version -> big-endian
//! count of encryptions), `owners` (owner NUL key id -> empty, the owner
//! index; see [`owner_index`](owner_index)). `records`,
//! `usage_pages` and `owners` are [`PackedTree`]s:
//! sled holds buckets of about 4 KiB of entries, not one entry per record,
//! so that opening a keystore of a million keys does not rebuild a page
//! table of hundreds of thousands of nodes, and a key's metadata and wrapped
//! DEK usually come from one sled read. Keystores written before the
//! packing (trees `keys`, `versions`, `usage`, one entry per record) are
//! moved into the packed trees, and those written before the owner index
//! get it, when opened ([`migration`](migration)). Every mutation is one sled
//! transaction over the trees it touches, followed by a flush (fsync of
//! sled's log) before the method returns.

mod aliases;
pub(crate) mod compaction;
mod migration;
mod owner_index;
mod packed_tree;
mod roles;
mod tx;

use std::path::Path;

use async_trait::async_trait;
use sled::Transactional;

use super::records;
use super::{
    AuditMark, KeyStore, KeyUpdate, Rewrap, RewrapCursor, Snapshot, StoredRoot, StoredVersion,
    UpdateFn,
};
use crate::error::{Error, StoreError};
use crate::identity::Identity;
use crate::model::{KeyId, KeyMetadata, KeyVersion, UnixTime};
use migration::{OWNER_INDEX_ENTRY, OWNER_INDEX_VERSION};
use packed_tree::{PackedTree, backend, tx_result};
use tx::{
    check_root_generation, due_in, entries_of, is_version_entry, read_count, reschedule,
    write_count,
};

pub(super) const ROOT_ENTRY: &[u8] = b"root";
pub(super) const KEY_COUNT_ENTRY: &[u8] = b"key_count";

/// Serialises every mutation and flush of every sled keystore in this
/// process; see [`SledKeyStore::write`].
static WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const SEALED_ENTRY: &[u8] = b"sealed";

/// What the meta entries holding audit checkpoints start with.
const AUDIT_CHECKPOINT_PREFIX: &str = "audit_checkpoint:";

/// The meta entry holding an audit log's latest checkpoint.
fn audit_mark_entry(log: &str) -> String {
    format!("{AUDIT_CHECKPOINT_PREFIX}{log}")
}
const REWRAP_CURSOR_ENTRY: &[u8] = b"rewrap_cursor";

/// The sled-backed keystore.
#[derive(Clone)]
pub struct SledKeyStore {
    pub(super) db: sled::Db,
    pub(super) meta: sled::Tree,
    /// Key records and wrapped DEKs, together.
    pub(super) records: PackedTree,
    deletions: sled::Tree,
    rotations: sled::Tree,
    pub(super) usage: PackedTree,
    /// The owner index ([`owner_index`](owner_index)).
    pub(super) owners: PackedTree,
    /// Aliases ([`aliases`](aliases)).
    aliases: sled::Tree,
    /// Role bindings ([`roles`](roles)).
    role_bindings: sled::Tree,
}

/// The size budget of a bucket of key records and wrapped DEKs: about a
/// dozen keys with one version each per sled entry. Larger buckets open
/// faster (fewer sled pages) but make every cold read page in a larger sled
/// node (sled 0.34 keeps up to 16 entries per leaf). 4 KiB was the best
/// of the sizes measured over a million keys (docs/BENCHMARKS.md, "Scale").
const RECORD_BUCKET_BYTES: usize = 4096;

/// The size budget of a bucket of encryption counts: the counts of the
/// versions used in the last second are rewritten every second, so their
/// buckets are kept smaller.
const USAGE_BUCKET_BYTES: usize = 1024;

impl std::fmt::Debug for SledKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledKeyStore").finish_non_exhaustive()
    }
}

/// How long [`SledKeyStore::open`] waits for a lock held by a previous
/// instance.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn is_lock_held(err: &sled::Error) -> bool {
    matches!(err, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// sled's page cache. Its default, 1 GiB, let a server whose callers touch
/// a million keys grow far past what the cache was set to (sled's
/// accounting counts serialised bytes, well below what its nodes take in
/// memory). Hot keys live in tresor's own caches (metadata for 500 ms,
/// unwrapped DEKs in a bounded LRU), and sled needs only to keep the pages
/// those caches refresh from; random reads over a million keys were no
/// slower with 16 MiB than with 64 (docs/BENCHMARKS.md, "Figures behind design choices").
const SLED_CACHE_BYTES: u64 = 16 * 1024 * 1024;

impl SledKeyStore {
    /// Opens (or creates) the keystore in `dir`.
    ///
    /// sled holds an exclusive file lock while open. A previous instance in
    /// this process (a restart after seal, a test) releases it from a
    /// background thread shortly after it is dropped, so a held lock is
    /// retried for up to five seconds before giving up.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        if dir.is_dir() {
            compaction::finish_interrupted(dir)?;
        }
        let started = std::time::Instant::now();
        let db = loop {
            match sled::Config::new()
                .path(dir)
                .mode(sled::Mode::HighThroughput)
                .cache_capacity(SLED_CACHE_BYTES)
                // Every write is flushed explicitly; see `write`.
                .flush_every_ms(None)
                .open()
            {
                Ok(db) => break db,
                Err(e) if is_lock_held(&e) && started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) if is_lock_held(&e) => {
                    return Err(StoreError::Backend(format!(
                        "{} is in use by another tresor process (sled lock held): {e}",
                        dir.display()
                    )));
                }
                Err(e) => {
                    return Err(StoreError::Backend(format!(
                        "cannot open {}: {e}",
                        dir.display()
                    )));
                }
            }
        };
        let packed = |name: &str, budget: usize| {
            db.open_tree(name)
                .map(|tree| PackedTree::new(tree, budget))
                .map_err(backend)
        };
        let store = Self {
            meta: db.open_tree("meta").map_err(backend)?,
            records: packed("records", RECORD_BUCKET_BYTES)?,
            deletions: db.open_tree("deletions").map_err(backend)?,
            rotations: db.open_tree("rotations").map_err(backend)?,
            usage: packed("usage_pages", USAGE_BUCKET_BYTES)?,
            owners: packed(owner_index::TREE, owner_index::BUCKET_BYTES)?,
            aliases: db.open_tree(aliases::TREE).map_err(backend)?,
            role_bindings: db.open_tree(roles::TREE).map_err(backend)?,
            db,
        };
        migration::migrate(&store)?;
        Ok(store)
    }

    /// Rewrites the keystore in `dir` so that nothing it removed (destroyed
    /// versions, deleted keys) stays in its files; the server must be
    /// stopped. Crash-safe: an interrupted compaction is finished by the
    /// next open. See `store/sled/compaction.rs`.
    pub fn compact_offline(dir: &Path) -> Result<super::CompactionReport, StoreError> {
        compaction::compact(dir)
    }

    /// Every tree a key mutation may touch, for one transaction.
    fn key_trees(
        &self,
    ) -> (
        &sled::Tree,
        &sled::Tree,
        &sled::Tree,
        &sled::Tree,
        &sled::Tree,
    ) {
        (
            &self.meta,
            self.records.sled_tree(),
            &self.deletions,
            &self.rotations,
            self.owners.sled_tree(),
        )
    }

    /// Runs one mutation and makes it durable.
    ///
    /// sled 0.34 guards every tree with one process-wide reader/writer lock:
    /// transactions and batches take it for writing, while a flush holds it
    /// for reading until the log is stable, and the threads that make the
    /// log stable need it for reading too. A writer queued behind a flush
    /// therefore deadlocks the process (seen in our tests with concurrent
    /// rotations). So every mutation and its flush run under one
    /// process-wide async mutex, in sled's own threads' absence: sled's
    /// background flusher is disabled in [`SledKeyStore::open`] and the
    /// flush runs on a blocking thread, not on sled's small thread pool.
    async fn write<T>(
        &self,
        mutation: impl FnOnce(&Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _serial = WRITES.lock().await;
        let outcome = mutation(self)?;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Backend(format!("flush task failed: {e}")))?
            .map_err(backend)?;
        Ok(outcome)
    }
}

#[async_trait]
impl KeyStore for SledKeyStore {
    async fn root(&self) -> Result<Option<StoredRoot>, StoreError> {
        self.meta
            .get(ROOT_ENTRY)
            .map_err(backend)?
            .map(|bytes| records::decode_root(&bytes))
            .transpose()
    }

    async fn init_root(&self, root: StoredRoot) -> Result<StoredRoot, StoreError> {
        let encoded = records::encode_root(&root);
        let outcome = self
            .write(|store| {
                store
                    .meta
                    .compare_and_swap(ROOT_ENTRY, None as Option<&[u8]>, Some(encoded))
                    .map_err(backend)
            })
            .await?;
        match outcome {
            Ok(()) => Ok(root),
            Err(existing) => match existing.current {
                Some(bytes) => records::decode_root(&bytes),
                None => Err(StoreError::Corrupt("root entry vanished".into())),
            },
        }
    }

    async fn replace_root(
        &self,
        expected: &StoredRoot,
        new: &StoredRoot,
    ) -> Result<(), StoreError> {
        let new = records::encode_root(new);
        self.write(|store| {
            // Compare decoded values: a record an older version wrote may
            // encode the same root differently.
            let current = store
                .meta
                .get(ROOT_ENTRY)
                .map_err(backend)?
                .ok_or(StoreError::Conflict)?;
            if &records::decode_root(&current)? != expected {
                return Err(StoreError::Conflict);
            }
            store
                .meta
                .compare_and_swap(ROOT_ENTRY, Some(current), Some(new))
                .map_err(backend)?
                .map_err(|_| StoreError::Conflict)
        })
        .await
    }

    async fn versions_after(
        &self,
        after: Option<&RewrapCursor>,
        limit: usize,
    ) -> Result<Vec<(KeyId, StoredVersion)>, StoreError> {
        let from = match after {
            Some(cursor) => {
                let mut from = records::version_entry_key(&cursor.key_id, cursor.version);
                from.push(0);
                from
            }
            None => Vec::new(),
        };
        self.records
            .scan_from(&from)
            .filter(|entry| {
                entry
                    .as_ref()
                    .map_or(true, |(key, _)| is_version_entry(key))
            })
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                let id = records::parse_version_entry_key(&key)?.key_id;
                Ok((id, records::decode_version(&value)?))
            })
            .collect()
    }

    async fn rewrap_versions(
        &self,
        batch: &[Rewrap],
        cursor: &RewrapCursor,
    ) -> Result<usize, StoreError> {
        let cursor = records::encode_cursor(cursor);
        let entries: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = batch
            .iter()
            .map(|(id, expected, new)| {
                (
                    records::version_entry_key(id, expected.version),
                    records::encode_version(expected),
                    records::encode_version(new),
                )
            })
            .collect();
        self.write(|store| {
            let mut versions = store.records.stage();
            let mut replaced = 0;
            for (key, expected, new) in &entries {
                if versions.get(key)?.as_deref() == Some(expected.as_slice()) {
                    versions.insert(key, new)?;
                    replaced += 1;
                }
            }
            let versions = versions.into_writes();
            tx_result((&store.meta, store.records.sled_tree()).transaction(
                |(meta, versions_tx)| {
                    versions.apply(versions_tx)?;
                    meta.insert(REWRAP_CURSOR_ENTRY, cursor.as_slice())?;
                    Ok(())
                },
            ))?;
            Ok(replaced)
        })
        .await
    }

    async fn rewrap_cursor(&self) -> Result<Option<RewrapCursor>, StoreError> {
        self.meta
            .get(REWRAP_CURSOR_ENTRY)
            .map_err(backend)?
            .map(|bytes| records::decode_cursor(&bytes))
            .transpose()
    }

    async fn clear_rewrap_cursor(&self) -> Result<(), StoreError> {
        self.write(|store| {
            store.meta.remove(REWRAP_CURSOR_ENTRY).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        // Holding the write lock keeps every mutation out while the trees
        // are read, so the copy is consistent; reads go on.
        let _serial = WRITES.lock().await;
        let root = self.root().await?.ok_or(StoreError::NotInitialised)?;
        let (mut keys, mut versions) = (Vec::new(), Vec::new());
        for entry in self.records.scan_from(&[]) {
            let (key, value) = entry?;
            if is_version_entry(&key) {
                let id = records::parse_version_entry_key(&key)?.key_id;
                versions.push((id, records::decode_version(&value)?));
            } else {
                keys.push(records::decode_key(&value)?);
            }
        }
        Ok(Snapshot {
            root,
            keys,
            versions,
            aliases: aliases::all(&self.aliases)?,
            role_bindings: roles::all(&self.role_bindings)?,
        })
    }

    async fn restore(&self, snapshot: &Snapshot, replace: bool) -> Result<(), StoreError> {
        let root = records::encode_root(&snapshot.root);
        let keys: Vec<(&KeyMetadata, Vec<u8>)> = snapshot
            .keys
            .iter()
            .map(|key| (key, records::encode_key(key)))
            .collect();
        let versions: Vec<(Vec<u8>, Vec<u8>)> = snapshot
            .versions
            .iter()
            .map(|(id, v)| {
                (
                    records::version_entry_key(id, v.version),
                    records::encode_version(v),
                )
            })
            .collect();
        let count = u64::try_from(keys.len()).unwrap_or(u64::MAX);
        self.write(|store| {
            let occupied = store.meta.get(ROOT_ENTRY).map_err(backend)?.is_some()
                || !store.records.is_empty()?;
            if occupied && !replace {
                return Err(StoreError::NotEmpty);
            }
            // The audit logs' checkpoints stay: they describe the log
            // files, which a restore does not touch, and without them a
            // log cut short before the restore would go unnoticed.
            let checkpoints: Vec<(sled::IVec, sled::IVec)> = store
                .meta
                .scan_prefix(AUDIT_CHECKPOINT_PREFIX)
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            for tree in [
                &store.meta,
                store.records.sled_tree(),
                &store.deletions,
                &store.rotations,
                store.usage.sled_tree(),
                store.owners.sled_tree(),
                &store.aliases,
                &store.role_bindings,
            ] {
                tree.clear().map_err(backend)?;
            }
            // Before the root goes in: a restore cut short here leaves no
            // root, so it is simply run again.
            aliases::restore(&store.aliases, &snapshot.aliases)?;
            roles::restore(&store.role_bindings, &snapshot.role_bindings)?;
            let mut staged = store.records.stage();
            for (key, record) in &keys {
                staged.insert(key.id.as_str().as_bytes(), record)?;
            }
            for (key, record) in &versions {
                staged.insert(key, record)?;
            }
            let staged = staged.into_writes();
            let mut owners = store.owners.stage();
            for (key, _) in &keys {
                owner_index::stage(&mut owners, &key.id, None, Some(&key.owner))?;
            }
            let owners = owners.into_writes();
            tx_result(store.key_trees().transaction(
                |(meta, records_tx, deletions, rotations, owners_tx)| {
                    meta.insert(ROOT_ENTRY, root.as_slice())?;
                    meta.insert(OWNER_INDEX_ENTRY, OWNER_INDEX_VERSION)?;
                    owners.apply(owners_tx)?;
                    write_count(meta, count)?;
                    for (name, mark) in &checkpoints {
                        meta.insert(name, mark)?;
                    }
                    for (key, _) in &keys {
                        reschedule(deletions, &key.id, None, key.deletion_at())?;
                        reschedule(rotations, &key.id, None, key.next_rotation_at())?;
                    }
                    staged.apply(records_tx)?;
                    Ok(())
                },
            ))
        })
        .await
    }

    async fn sealed(&self) -> Result<bool, StoreError> {
        Ok(self.meta.get(SEALED_ENTRY).map_err(backend)?.is_some())
    }

    async fn set_sealed(&self, sealed: bool) -> Result<(), StoreError> {
        self.write(|store| {
            if sealed {
                store.meta.insert(SEALED_ENTRY, &[1u8]).map_err(backend)?;
            } else {
                store.meta.remove(SEALED_ENTRY).map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn audit_mark(&self, log: &str) -> Result<Option<AuditMark>, StoreError> {
        self.meta
            .get(audit_mark_entry(log))
            .map_err(backend)?
            .map(|bytes| records::decode_audit_mark(&bytes))
            .transpose()
    }

    async fn set_audit_mark(&self, log: &str, mark: &AuditMark) -> Result<(), StoreError> {
        let entry = audit_mark_entry(log);
        let encoded = records::encode_audit_mark(mark);
        let mark = mark.clone();
        self.write(move |store| {
            // Writes are serialised (`WRITES`) and sled allows one process:
            // nothing changes the entry between this read and the swap.
            let stored = store
                .meta
                .get(entry.as_bytes())
                .map_err(backend)?
                .map(|bytes| records::decode_audit_mark(&bytes))
                .transpose()?;
            if mark.advances(stored.as_ref())? {
                store
                    .meta
                    .insert(entry.as_bytes(), encoded.as_slice())
                    .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn create_key(
        &self,
        metadata: &KeyMetadata,
        first: &StoredVersion,
    ) -> Result<(), StoreError> {
        let id_bytes = metadata.id.as_str().as_bytes();
        let encoded = records::encode_key(metadata);
        let version_key = records::version_entry_key(&metadata.id, first.version);
        let version = records::encode_version(first);
        self.write(|store| {
            let mut staged = store.records.stage();
            if staged.insert(id_bytes, &encoded)?.is_some() {
                return Err(StoreError::AlreadyExists);
            }
            staged.insert(&version_key, &version)?;
            let staged = staged.into_writes();
            let mut owners = store.owners.stage();
            owner_index::stage(&mut owners, &metadata.id, None, Some(&metadata.owner))?;
            let owners = owners.into_writes();
            tx_result(store.key_trees().transaction(
                |(meta, records_tx, _, rotations, owners_tx)| {
                    check_root_generation(meta, first.root_generation)?;
                    staged.apply(records_tx)?;
                    owners.apply(owners_tx)?;
                    reschedule(rotations, &metadata.id, None, metadata.next_rotation_at())?;
                    let count = read_count(meta)?;
                    write_count(meta, count + 1)?;
                    Ok(())
                },
            ))
        })
        .await
    }

    async fn key(&self, id: &KeyId) -> Result<Option<KeyMetadata>, StoreError> {
        self.records
            .get(id.as_str().as_bytes())?
            .map(|bytes| records::decode_key(&bytes))
            .transpose()
    }

    async fn update_key(
        &self,
        id: &KeyId,
        update: &UpdateFn<'_>,
    ) -> Result<KeyMetadata, StoreError> {
        let id_bytes = id.as_str().as_bytes();
        self.write(|store| {
            let mut staged = store.records.stage();
            let current = match staged.get(id_bytes)? {
                Some(bytes) => records::decode_key(&bytes)?,
                None => return Err(StoreError::NotFound),
            };
            let KeyUpdate {
                metadata,
                new_version,
                destroy_version,
            } = update(&current).map_err(|e: Error| StoreError::Rejected(Box::new(e)))?;
            if let Some(version) = &new_version {
                staged.insert(
                    &records::version_entry_key(id, version.version),
                    &records::encode_version(version),
                )?;
            }
            if let Some(version) = destroy_version {
                staged.remove(&records::version_entry_key(id, version))?;
            }
            staged.insert(id_bytes, &records::encode_key(&metadata))?;
            let staged = staged.into_writes();
            let mut owners = store.owners.stage();
            owner_index::stage(&mut owners, id, Some(&current.owner), Some(&metadata.owner))?;
            let owners = owners.into_writes();
            tx_result(store.key_trees().transaction(
                |(meta, records_tx, deletions, rotations, owners_tx)| {
                    if let Some(version) = &new_version {
                        check_root_generation(meta, version.root_generation)?;
                    }
                    staged.apply(records_tx)?;
                    owners.apply(owners_tx)?;
                    reschedule(deletions, id, current.deletion_at(), metadata.deletion_at())?;
                    reschedule(
                        rotations,
                        id,
                        current.next_rotation_at(),
                        metadata.next_rotation_at(),
                    )?;
                    Ok(())
                },
            ))?;
            Ok(metadata)
        })
        .await
    }

    async fn version(
        &self,
        id: &KeyId,
        version: KeyVersion,
    ) -> Result<Option<StoredVersion>, StoreError> {
        self.records
            .get(&records::version_entry_key(id, version))?
            .map(|bytes| records::decode_version(&bytes))
            .transpose()
    }

    async fn list_keys(
        &self,
        prefix: &str,
        start_after: Option<&KeyId>,
        limit: usize,
    ) -> Result<Vec<KeyMetadata>, StoreError> {
        let mut out = Vec::new();
        let from = match start_after {
            Some(after) => {
                let mut from = after.as_str().as_bytes().to_vec();
                from.push(0);
                from
            }
            None => prefix.as_bytes().to_vec(),
        };
        for entry in self.records.scan_from(&from) {
            if out.len() >= limit {
                break;
            }
            let (key, value) = entry?;
            if is_version_entry(&key) {
                continue;
            }
            if !key.starts_with(prefix.as_bytes()) {
                if key.as_slice() > prefix.as_bytes() {
                    break;
                }
                continue;
            }
            out.push(records::decode_key(&value)?);
        }
        Ok(out)
    }

    async fn list_owned_keys(
        &self,
        owner: &Identity,
        prefix: &str,
        start_after: Option<&KeyId>,
        limit: usize,
    ) -> Result<Vec<KeyMetadata>, StoreError> {
        let ids = owner_index::owned_ids(&self.owners, owner, prefix, start_after, limit)?;
        let mut keys = Vec::with_capacity(ids.len());
        for id in ids {
            // Reads take no lock: a key deleted between the index read and
            // this one is gone, and not listed.
            if let Some(bytes) = self.records.get(id.as_str().as_bytes())? {
                let key = records::decode_key(&bytes)?;
                if &key.owner == owner {
                    keys.push(key);
                }
            }
        }
        Ok(keys)
    }

    async fn key_count(&self) -> Result<u64, StoreError> {
        match self.meta.get(KEY_COUNT_ENTRY).map_err(backend)? {
            Some(bytes) => {
                let raw: [u8; 8] = bytes.as_ref().try_into().map_err(|_| {
                    StoreError::Corrupt("key count entry has the wrong length".into())
                })?;
                Ok(u64::from_be_bytes(raw))
            }
            None => Ok(0),
        }
    }

    async fn due_deletions(&self, now: UnixTime) -> Result<Vec<KeyId>, StoreError> {
        due_in(&self.deletions, now, usize::MAX)
    }

    async fn due_rotations(&self, now: UnixTime, limit: usize) -> Result<Vec<KeyId>, StoreError> {
        due_in(&self.rotations, now, limit)
    }

    async fn add_usage(&self, deltas: &[(KeyId, KeyVersion, u64)]) -> Result<Vec<u64>, StoreError> {
        let entries: Vec<(Vec<u8>, u64)> = deltas
            .iter()
            .map(|(id, version, count)| (records::version_entry_key(id, *version), *count))
            .collect();
        self.write(|store| {
            let mut usage = store.usage.stage();
            let mut totals = Vec::with_capacity(entries.len());
            for (entry, count) in &entries {
                let before = match usage.get(entry)? {
                    Some(bytes) => {
                        u64::from_be_bytes(bytes.as_slice().try_into().map_err(|_| {
                            StoreError::Corrupt("usage entry has the wrong length".into())
                        })?)
                    }
                    None => 0,
                };
                let total = before.saturating_add(*count);
                usage.insert(entry, &total.to_be_bytes())?;
                totals.push(total);
            }
            let usage = usage.into_writes();
            store.usage.write_alone(&usage)?;
            Ok(totals)
        })
        .await
    }

    async fn compact(&self) -> Result<(), StoreError> {
        Err(StoreError::Backend(
            "sled is compacted offline: stop the server, then run `tresor keystore compact --data-dir DIR`".into(),
        ))
    }

    async fn delete_key(&self, id: &KeyId) -> Result<(), StoreError> {
        let id_bytes = id.as_str().as_bytes();
        self.write(|store| {
            let version_keys = entries_of(&store.records, id)?;
            // Counts are not secret; they go outside the transaction, after
            // the key (a crash in between leaves only counts behind).
            let usage_keys = entries_of(&store.usage, id)?;
            let mut staged = store.records.stage();
            let Some(bytes) = staged.remove(id_bytes)? else {
                return Err(StoreError::NotFound);
            };
            let current = records::decode_key(&bytes)?;
            for key in &version_keys {
                staged.remove(key)?;
            }
            let staged = staged.into_writes();
            let mut owners = store.owners.stage();
            owner_index::stage(&mut owners, id, Some(&current.owner), None)?;
            let owners = owners.into_writes();
            tx_result(store.key_trees().transaction(
                |(meta, records_tx, deletions, rotations, owners_tx)| {
                    staged.apply(records_tx)?;
                    owners.apply(owners_tx)?;
                    reschedule(deletions, id, current.deletion_at(), None)?;
                    reschedule(rotations, id, current.next_rotation_at(), None)?;
                    let count = read_count(meta)?;
                    write_count(meta, count.saturating_sub(1))?;
                    Ok(())
                },
            ))?;
            let mut usage = store.usage.stage();
            for key in &usage_keys {
                usage.remove(key)?;
            }
            let usage = usage.into_writes();
            store.usage.write_alone(&usage)
        })
        .await
    }
}

#[cfg(test)]
impl SledKeyStore {
    /// Test hook: stores `bytes` as the record of key `id`, bypassing the
    /// codec and the owner index (an unreadable record of nobody's).
    pub(crate) fn put_raw_record(&self, id: &str, bytes: &[u8]) {
        let mut staged = self.records.stage();
        staged.insert(id.as_bytes(), bytes).expect("stage");
        self.records
            .write_alone(&staged.into_writes())
            .expect("write");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{ensure_root, first_version, metadata};

    fn key_name(i: usize) -> String {
        format!("legacy/key-{i:05}")
    }

    #[tokio::test]
    async fn keys_created_through_the_store_share_buckets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledKeyStore::open(dir.path()).expect("open");
        ensure_root(&store).await;
        for i in 0..200 {
            store
                .create_key(&metadata(&key_name(i)), &first_version(7))
                .await
                .expect("create");
        }
        assert!(store.records.sled_tree().len() < 80);
        drop(store);
        let store = SledKeyStore::open(dir.path()).expect("reopen");
        let listed = store.list_keys("", None, usize::MAX).await.expect("list");
        assert_eq!(listed.len(), 200);
    }
}
