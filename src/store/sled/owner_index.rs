//! The owner index of the sled keystore: a [`PackedTree`] named `owners`
//! whose entries are `owner NUL key id -> empty`, written in the same
//! transaction as the key record they index. A non-admin's ListKeys reads
//! the entries under its own identity, then each listed key's record, so
//! its cost grows with the keys it owns, not with the keys in the store.
//! Identities hold no control character and key ids no NUL, so the
//! separator is unambiguous and one owner's entries sort together, in key
//! id order.

use super::packed_tree::{PackedChanges, PackedTree};
use crate::error::StoreError;
use crate::identity::Identity;
use crate::model::KeyId;

/// The sled tree holding the index.
pub(super) const TREE: &str = "owners";

/// The size budget of a bucket of index entries (a few dozen entries).
pub(super) const BUCKET_BYTES: usize = 4096;

/// The index entry of key `id` owned by `owner`.
pub(super) fn entry_key(owner: &Identity, id: &KeyId) -> Vec<u8> {
    let mut key = owner_prefix(owner, "");
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

/// The prefix of the entries of `owner`'s keys whose id starts with
/// `key_prefix`.
fn owner_prefix(owner: &Identity, key_prefix: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(owner.as_str().len() + 1 + key_prefix.len());
    key.extend_from_slice(owner.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(key_prefix.as_bytes());
    key
}

/// Stages the index change of key `id` whose owner goes from `old` to
/// `new` (`None`: the key does not exist on that side).
pub(super) fn stage(
    changes: &mut PackedChanges<'_>,
    id: &KeyId,
    old: Option<&Identity>,
    new: Option<&Identity>,
) -> Result<(), StoreError> {
    if old == new {
        return Ok(());
    }
    if let Some(old) = old {
        changes.remove(&entry_key(old, id))?;
    }
    if let Some(new) = new {
        changes.insert(&entry_key(new, id), &[])?;
    }
    Ok(())
}

/// Ids of `owner`'s keys in id order whose id starts with `prefix`, after
/// `start_after`, at most `limit`: one index scan of those entries only.
pub(super) fn owned_ids(
    owners: &PackedTree,
    owner: &Identity,
    prefix: &str,
    start_after: Option<&KeyId>,
    limit: usize,
) -> Result<Vec<KeyId>, StoreError> {
    let scope = owner_prefix(owner, prefix);
    let from = match start_after {
        Some(after) => {
            let mut from = owner_prefix(owner, after.as_str());
            from.push(0);
            from.max(scope.clone())
        }
        None => scope.clone(),
    };
    let id_start = owner.as_str().len() + 1;
    owners
        .scan_from(&from)
        .take_while(|entry| entry.as_ref().map_or(true, |(k, _)| k.starts_with(&scope)))
        .take(limit)
        .map(|entry| {
            let (key, _) = entry?;
            let id = key
                .get(id_start..)
                .and_then(|raw| std::str::from_utf8(raw).ok())
                .ok_or_else(|| StoreError::Corrupt("owner index entry is malformed".into()))?;
            KeyId::parse(id).map_err(|e| StoreError::Corrupt(format!("owner index entry: {e}")))
        })
        .collect()
}
