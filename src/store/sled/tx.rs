//! Helpers of the sled keystore's transactions: aborting with a store
//! error, the key counter, the root-generation check, the schedule indexes
//! (deletions, rotations) and the per-version entries of one key.

use sled::transaction::{
    ConflictableTransactionError, TransactionalTree, UnabortableTransactionError,
};

use super::packed_tree::{PackedTree, backend};
use super::{KEY_COUNT_ENTRY, ROOT_ENTRY};
use crate::error::StoreError;
use crate::model::{KeyId, UnixTime};
use crate::store::records;

/// Why a transaction stopped: a store-level error to return as is.
pub(super) type TxError = ConflictableTransactionError<StoreError>;

pub(super) fn abort(err: StoreError) -> TxError {
    ConflictableTransactionError::Abort(err)
}

pub(super) fn read_count(meta: &TransactionalTree) -> Result<u64, TxError> {
    Ok(match meta.get(KEY_COUNT_ENTRY)? {
        Some(bytes) => {
            let raw: [u8; 8] = bytes.as_ref().try_into().map_err(|_| {
                abort(StoreError::Corrupt(
                    "key count entry has the wrong length".into(),
                ))
            })?;
            u64::from_be_bytes(raw)
        }
        None => 0,
    })
}

/// Refuses a DEK wrapped under a root key that is no longer current (a
/// root-key rotation switched in between): the caller re-wraps and retries.
pub(super) fn check_root_generation(
    meta: &TransactionalTree,
    generation: u32,
) -> Result<(), TxError> {
    let Some(bytes) = meta.get(ROOT_ENTRY)? else {
        return Err(abort(StoreError::NotInitialised));
    };
    let root = records::decode_root(&bytes).map_err(abort)?;
    if root.generation == generation {
        Ok(())
    } else {
        Err(abort(StoreError::Conflict))
    }
}

pub(super) fn write_count(
    meta: &TransactionalTree,
    count: u64,
) -> Result<(), UnabortableTransactionError> {
    meta.insert(KEY_COUNT_ENTRY, &count.to_be_bytes())?;
    Ok(())
}

/// Moves a key's entry in a schedule index (`deletions`, `rotations`) from
/// `old` to `new` time; `None` means not scheduled.
pub(super) fn reschedule(
    schedule: &TransactionalTree,
    id: &KeyId,
    old: Option<UnixTime>,
    new: Option<UnixTime>,
) -> Result<(), UnabortableTransactionError> {
    if old != new {
        if let Some(at) = old {
            schedule.remove(records::schedule_index_key(at, id))?;
        }
        if let Some(at) = new {
            schedule.insert(records::schedule_index_key(at, id), &[] as &[u8])?;
        }
    }
    Ok(())
}

/// Whether an entry of `records` is a wrapped DEK (its key holds the NUL
/// separator, which no key id contains), not a key record.
pub(super) fn is_version_entry(key: &[u8]) -> bool {
    key.contains(&0)
}

/// The entry keys of one key's versions in a per-version map.
pub(super) fn entries_of(tree: &PackedTree, id: &KeyId) -> Result<Vec<Vec<u8>>, StoreError> {
    let prefix = records::version_prefix(id);
    tree.scan_prefix(&prefix)
        .map(|entry| entry.map(|(key, _)| key))
        .collect()
}

/// Ids in a schedule index due at or before `now`, soonest first.
pub(super) fn due_in(
    schedule: &sled::Tree,
    now: UnixTime,
    limit: usize,
) -> Result<Vec<KeyId>, StoreError> {
    let end = now.saturating_add(1).to_be_bytes();
    schedule
        .range(..end.to_vec())
        .take(limit)
        .map(|entry| records::parse_schedule_index_key(&entry.map_err(backend)?.0))
        .collect()
}
