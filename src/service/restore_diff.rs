//! What restoring a backup over a keystore undoes: keys deleted, versions
//! destroyed, grants revoked, keys disabled, minimum versions raised and
//! root keys rotated since the backup was made all come back with it. An
//! operator must see that list before agreeing to it.

use std::collections::BTreeMap;

use crate::model::{KeyMetadata, KeyState, OperationSet};
use crate::store::Snapshot;

/// Every removal or tightening in `current` that restoring `restored`
/// would undo, one human line each, in key id order.
pub fn what_comes_back(current: &Snapshot, restored: &Snapshot) -> Vec<String> {
    let mut lines = Vec::new();
    if restored.root.generation < current.root.generation {
        lines.push(format!(
            "the root key goes back from generation {} to {}",
            current.root.generation, restored.root.generation
        ));
    }
    let now: BTreeMap<_, _> = current.keys.iter().map(|key| (&key.id, key)).collect();
    for old in &restored.keys {
        match now.get(&old.id) {
            None => lines.push(format!("key {}: comes back (deleted since)", old.id)),
            Some(key) => key_changes(key, old, &mut lines),
        }
    }
    lines
}

/// What restoring `old` over `key` (the same id) undoes.
fn key_changes(key: &KeyMetadata, old: &KeyMetadata, lines: &mut Vec<String>) {
    let id = &old.id;
    if key.created_at != old.created_at {
        lines.push(format!(
            "key {id}: the key deleted since comes back in place of today's key of that name"
        ));
        return;
    }
    for version in &old.versions {
        let destroyed_since = version.destroyed_at.is_none()
            && key
                .version_info(version.version)
                .is_some_and(|now| now.destroyed_at.is_some());
        if destroyed_since {
            lines.push(format!(
                "key {id}: version {} comes back (destroyed since)",
                version.version.get()
            ));
        }
    }
    for (grantee, operations) in &old.grants {
        let now = key
            .grants
            .get(grantee)
            .copied()
            .unwrap_or(OperationSet::EMPTY);
        let revoked = operations.difference(now);
        if !revoked.is_empty() {
            let names: Vec<String> = revoked.iter().map(|op| op.to_string()).collect();
            lines.push(format!(
                "key {id}: the grant to {grantee} of {} comes back (revoked since)",
                names.join(", ")
            ));
        }
    }
    if old.owner != key.owner {
        lines.push(format!(
            "key {id}: its owner goes back from {} to {}",
            key.owner, old.owner
        ));
    }
    if old.min_decryption_version < key.min_decryption_version {
        lines.push(format!(
            "key {id}: its minimum decryption version goes back from {} to {}",
            key.min_decryption_version.get(),
            old.min_decryption_version.get()
        ));
    }
    let usable = |state: &KeyState| matches!(state, KeyState::Enabled);
    if usable(&old.state) && !usable(&key.state) {
        lines.push(format!(
            "key {id}: enabled again (disabled or pending deletion since)"
        ));
    }
}
