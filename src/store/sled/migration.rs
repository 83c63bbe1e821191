//! Old sled keystores moved over when opened, each step resumable after a
//! crash:
//!
//! 1. Keystores written before [`PackedTree`] (trees `keys`, `versions`,
//!    `usage`, one sled entry per record) are moved into the packed trees.
//! 2. Keystores written before the owner index (see
//!    [`owner_index`](super::owner_index)) get it built from their
//!    key records. The `owner_index` meta entry records that it is complete;
//!    until it is there, the index is rebuilt from scratch at each open, so a
//!    build cut short by a crash is simply done again.

use sled::Transactional;

use super::SledKeyStore;
use super::owner_index;
use super::packed_tree::{PackedTree, backend, tx_result};
use super::tx::is_version_entry;
use crate::error::StoreError;
use crate::store::records;

/// How many entries one transaction moves out of an unpacked tree.
const MIGRATION_BATCH: usize = 1000;

/// How many keys one write adds to the owner index while it is built.
const INDEX_BATCH: usize = 10_000;

/// The meta entry saying the owner index is complete, and the layout
/// version it holds (version 1: `owner NUL key id -> empty`).
pub(super) const OWNER_INDEX_ENTRY: &[u8] = b"owner_index";
/// The owner index layout this build writes.
pub(super) const OWNER_INDEX_VERSION: &[u8] = &[1];

/// Brings a keystore opened from disk to the current layout.
pub(super) fn migrate(store: &SledKeyStore) -> Result<(), StoreError> {
    for (old, packed) in [
        ("keys", &store.records),
        ("versions", &store.records),
        ("usage", &store.usage),
    ] {
        migrate_unpacked(&store.db, old, packed)?;
    }
    build_owner_index(store)
}

/// Builds the owner index from every key record unless the keystore says
/// it is complete. Runs at open, before the store serves anything.
fn build_owner_index(store: &SledKeyStore) -> Result<(), StoreError> {
    match store.meta.get(OWNER_INDEX_ENTRY).map_err(backend)? {
        Some(version) if version.as_ref() == OWNER_INDEX_VERSION => return Ok(()),
        Some(version) => {
            return Err(StoreError::Corrupt(format!(
                "the owner index has layout version {:?}, which this tresor does not know; upgrade tresor",
                version.as_ref()
            )));
        }
        None => {}
    }
    store.owners.sled_tree().clear().map_err(backend)?;
    let mut indexed = 0usize;
    let mut batch = store.owners.stage();
    for entry in store.records.scan_from(&[]) {
        let (key, value) = entry?;
        if is_version_entry(&key) {
            continue;
        }
        let key = records::decode_key(&value)?;
        batch.insert(&owner_index::entry_key(&key.owner, &key.id), &[])?;
        indexed += 1;
        if indexed.is_multiple_of(INDEX_BATCH) {
            store.owners.write_alone(&batch.into_writes())?;
            batch = store.owners.stage();
        }
    }
    store.owners.write_alone(&batch.into_writes())?;
    store.db.flush().map_err(backend)?;
    store
        .meta
        .insert(OWNER_INDEX_ENTRY, OWNER_INDEX_VERSION)
        .map_err(backend)?;
    store.db.flush().map_err(backend)?;
    if indexed > 0 {
        tracing::info!(keys = indexed, "built the owner index of the keystore");
    }
    Ok(())
}

/// Moves every entry of the unpacked tree `old` (the layout before
/// [`PackedTree`]) into `packed`, a batch per transaction, then drops
/// `old`. Each batch removes what it adds, so an interrupted move resumes
/// at the next open.
fn migrate_unpacked(db: &sled::Db, old: &str, packed: &PackedTree) -> Result<(), StoreError> {
    if !db.tree_names().iter().any(|name| name == old.as_bytes()) {
        return Ok(());
    }
    let old_tree = db.open_tree(old).map_err(backend)?;
    loop {
        let batch: Vec<(sled::IVec, sled::IVec)> = old_tree
            .iter()
            .take(MIGRATION_BATCH)
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        if batch.is_empty() {
            break;
        }
        let mut changes = packed.stage();
        for (key, value) in &batch {
            changes.insert(key, value)?;
        }
        let writes = changes.into_writes();
        tx_result(
            (&old_tree, packed.sled_tree()).transaction(|(old_tx, new_tx)| {
                writes.apply(new_tx)?;
                for (key, _) in &batch {
                    old_tx.remove(key)?;
                }
                Ok(())
            }),
        )?;
    }
    db.flush().map_err(backend)?;
    db.drop_tree(old).map_err(backend)?;
    db.flush().map_err(backend)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::identity::Identity;
    use crate::model::KeyVersion;
    use crate::store::KeyStore;
    use crate::store::conformance::{first_version, metadata, test_root};

    const ROOT_ENTRY: &[u8] = b"root";
    const KEY_COUNT_ENTRY: &[u8] = b"key_count";

    fn key_name(i: usize) -> String {
        format!("legacy/key-{i:05}")
    }

    /// Writes a keystore the way tresor did before packing: one sled entry
    /// per key record, wrapped DEK and count.
    fn write_unpacked(dir: &Path, keys: usize) {
        let db = sled::open(dir).expect("open raw sled");
        let meta = db.open_tree("meta").expect("meta");
        let root = test_root();
        meta.insert(ROOT_ENTRY, records::encode_root(&root))
            .expect("root");
        meta.insert(KEY_COUNT_ENTRY, &(keys as u64).to_be_bytes())
            .expect("count");
        let (key_tree, versions, usage) = (
            db.open_tree("keys").expect("keys"),
            db.open_tree("versions").expect("versions"),
            db.open_tree("usage").expect("usage"),
        );
        for i in 0..keys {
            let meta = metadata(&key_name(i));
            let entry = records::version_entry_key(&meta.id, KeyVersion::FIRST);
            key_tree
                .insert(meta.id.as_str(), records::encode_key(&meta))
                .expect("key");
            versions
                .insert(
                    &entry,
                    records::encode_version(&first_version((i % 251) as u8)),
                )
                .expect("version");
            usage
                .insert(&entry, &(i as u64).to_be_bytes())
                .expect("usage");
        }
        db.flush().expect("flush");
    }

    #[tokio::test]
    async fn an_unpacked_keystore_is_moved_into_packed_trees_when_opened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = 2 * MIGRATION_BATCH + 17;
        write_unpacked(dir.path(), keys);
        let store = SledKeyStore::open(dir.path()).expect("open");
        let names: Vec<String> = store
            .db
            .tree_names()
            .iter()
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect();
        for old in ["keys", "versions", "usage"] {
            assert!(!names.iter().any(|n| n == old), "{old} left in {names:?}");
        }
        assert_eq!(store.key_count().await.expect("count"), keys as u64);
        for i in [0, 1, MIGRATION_BATCH, keys - 1] {
            let meta = metadata(&key_name(i));
            assert_eq!(store.key(&meta.id).await.expect("key"), Some(meta.clone()));
            let version = store
                .version(&meta.id, KeyVersion::FIRST)
                .await
                .expect("version")
                .expect("stored");
            assert_eq!(version, first_version((i % 251) as u8));
            let totals = store
                .add_usage(&[(meta.id.clone(), KeyVersion::FIRST, 1)])
                .await
                .expect("usage");
            assert_eq!(totals, [i as u64 + 1]);
        }
        let listed = store
            .list_keys("legacy/", None, usize::MAX)
            .await
            .expect("list");
        assert_eq!(listed.len(), keys);
        let owner = metadata("x").owner;
        let owned = store
            .list_owned_keys(&owner, "legacy/", None, usize::MAX)
            .await
            .expect("list owned");
        assert_eq!(owned, listed, "the owner index was built after the move");
        assert!(
            listed.windows(2).all(|w| w[0].id < w[1].id),
            "listed in order"
        );
        let all = store
            .versions_after(None, usize::MAX)
            .await
            .expect("versions");
        assert_eq!(all.len(), keys);
        // The point of packing: far fewer sled entries than records (a key
        // record and a wrapped DEK per key).
        let buckets = store.records.sled_tree().len();
        assert!(buckets * 4 < 2 * keys, "{buckets} buckets for {keys} keys");
    }

    #[tokio::test]
    async fn an_interrupted_move_finishes_at_the_next_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_unpacked(dir.path(), 50);
        {
            // Half moved, as if the process died between two batches.
            let db = raw_open(dir.path());
            let packed = PackedTree::new(db.open_tree("records").expect("tree"), 4096);
            let old = db.open_tree("keys").expect("keys");
            let mut changes = packed.stage();
            let moved: Vec<_> = old.iter().take(25).map(|e| e.expect("entry")).collect();
            for (key, value) in &moved {
                changes.insert(key, value).expect("stage");
                old.remove(key).expect("remove");
            }
            let writes = changes.into_writes();
            packed.write_alone(&writes).expect("write");
            db.flush().expect("flush");
        }
        let store = SledKeyStore::open(dir.path()).expect("open");
        let listed = store.list_keys("", None, usize::MAX).await.expect("list");
        assert_eq!(listed.len(), 50);
    }

    /// Opens the sled database of a keystore just dropped (sled releases
    /// its lock from a background thread).
    fn raw_open(dir: &Path) -> sled::Db {
        let started = std::time::Instant::now();
        loop {
            match sled::open(dir) {
                Ok(db) => return db,
                Err(e) if started.elapsed() > crate::store::sled::LOCK_WAIT => {
                    panic!("open raw: {e}")
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }

    /// Takes the owner index away, as in a keystore written before it:
    /// its tree emptied but for `stale` entries, its completion entry gone.
    fn drop_owner_index(dir: &Path, stale: &[Vec<u8>]) {
        let db = raw_open(dir);
        db.open_tree("meta")
            .expect("meta")
            .remove(OWNER_INDEX_ENTRY)
            .expect("remove");
        let owners = PackedTree::new(
            db.open_tree(owner_index::TREE).expect("owners"),
            owner_index::BUCKET_BYTES,
        );
        owners.sled_tree().clear().expect("clear");
        let mut changes = owners.stage();
        for entry in stale {
            changes.insert(entry, &[]).expect("stage");
        }
        owners.write_alone(&changes.into_writes()).expect("write");
        db.flush().expect("flush");
    }

    #[tokio::test]
    async fn a_keystore_without_the_owner_index_gets_it_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (alice, bob) = (
            Identity::parse("spiffe://test/alice").expect("identity"),
            Identity::parse("spiffe://test/bob").expect("identity"),
        );
        let keys = INDEX_BATCH + 5;
        {
            let mut snapshot_keys = Vec::new();
            for i in 0..keys {
                let mut key = metadata(&key_name(i));
                key.owner = if i % 3 == 0 {
                    alice.clone()
                } else {
                    bob.clone()
                };
                snapshot_keys.push(key);
            }
            let store = SledKeyStore::open(dir.path()).expect("open");
            store
                .restore(
                    &crate::store::Snapshot {
                        root: test_root(),
                        keys: snapshot_keys,
                        versions: Vec::new(),
                        aliases: Vec::new(),
                        role_bindings: Vec::new(),
                    },
                    false,
                )
                .await
                .expect("restore");
        }
        // A build cut short leaves entries behind (here one of a key that
        // is not there): the next open starts over.
        let ghost = crate::model::KeyId::parse("ghost").expect("id");
        drop_owner_index(dir.path(), &[owner_index::entry_key(&alice, &ghost)]);
        let store = SledKeyStore::open(dir.path()).expect("reopen");
        let owned = store
            .list_owned_keys(&alice, "", None, usize::MAX)
            .await
            .expect("list");
        let expected: Vec<String> = (0..keys).filter(|i| i % 3 == 0).map(key_name).collect();
        let got: Vec<&str> = owned.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(got, expected);
        assert!(
            owner_index::owned_ids(&store.owners, &alice, "ghost", None, 10)
                .expect("ids")
                .is_empty(),
            "the half-built index was discarded"
        );
        assert_eq!(
            store
                .list_owned_keys(&bob, "", None, usize::MAX)
                .await
                .expect("list")
                .len(),
            keys - expected.len()
        );
    }

    #[tokio::test]
    async fn an_owner_index_of_an_unknown_layout_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(SledKeyStore::open(dir.path()).expect("open"));
        {
            let db = raw_open(dir.path());
            db.open_tree("meta")
                .expect("meta")
                .insert(OWNER_INDEX_ENTRY, &[9u8])
                .expect("insert");
            db.flush().expect("flush");
        }
        assert!(matches!(
            SledKeyStore::open(dir.path()),
            Err(StoreError::Corrupt(_))
        ));
    }
}
