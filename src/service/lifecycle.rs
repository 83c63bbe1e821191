//! Key state transitions as pure functions from the current metadata to the
//! next. The store runs them inside its atomic update, so concurrent calls on
//! one key serialise.

use crate::error::{Error, Precondition};
use crate::identity::Identity;
use crate::model::{KeyMetadata, KeyState, KeyVersion, OperationSet, UnixTime, VersionInfo};

/// Shortest deletion window, in days.
pub const MIN_PENDING_DAYS: u32 = 7;
/// Longest deletion window, in days.
pub const MAX_PENDING_DAYS: u32 = 30;
/// Window used when the request gives 0.
pub const DEFAULT_PENDING_DAYS: u32 = 30;
const SECONDS_PER_DAY: i64 = 86_400;

fn refuse_if_pending(key: &KeyMetadata) -> Result<(), Error> {
    match key.state {
        KeyState::PendingDeletion { .. } => {
            Err(Error::FailedPrecondition(Precondition::PendingDeletion))
        }
        _ => Ok(()),
    }
}

/// Whether data-plane operations may use the key now.
pub fn ensure_usable(key: &KeyMetadata) -> Result<(), Error> {
    match key.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(Error::FailedPrecondition(Precondition::Disabled)),
        KeyState::PendingDeletion { .. } => {
            Err(Error::FailedPrecondition(Precondition::PendingDeletion))
        }
    }
}

/// Adds the next version and makes it primary. Disabled keys may rotate;
/// keys pending deletion may not.
pub fn rotate(key: &KeyMetadata, now: UnixTime) -> Result<(KeyMetadata, KeyVersion), Error> {
    refuse_if_pending(key)?;
    let version = key.primary_version.next()?;
    let mut next = key.clone();
    next.primary_version = version;
    next.versions.push(VersionInfo {
        version,
        created_at: now,
    });
    Ok((next, version))
}

/// Disables the key (idempotent).
pub fn disable(key: &KeyMetadata) -> Result<KeyMetadata, Error> {
    refuse_if_pending(key)?;
    Ok(KeyMetadata {
        state: KeyState::Disabled,
        ..key.clone()
    })
}

/// Enables the key (idempotent). A key pending deletion needs
/// CancelKeyDeletion first.
pub fn enable(key: &KeyMetadata) -> Result<KeyMetadata, Error> {
    if key.deletion_at().is_some() {
        return Err(Error::FailedPrecondition(Precondition::Other(
            "key is pending deletion; cancel the deletion first".into(),
        )));
    }
    Ok(KeyMetadata {
        state: KeyState::Enabled,
        ..key.clone()
    })
}

/// Sets the minimum decryption version (1 ..= primary version).
pub fn set_min_decryption_version(key: &KeyMetadata, version: u32) -> Result<KeyMetadata, Error> {
    refuse_if_pending(key)?;
    let version = KeyVersion::new(version)?;
    if version > key.primary_version {
        return Err(Error::InvalidArgument(format!(
            "version {version} does not exist; the primary version is {}",
            key.primary_version
        )));
    }
    Ok(KeyMetadata {
        min_decryption_version: version,
        ..key.clone()
    })
}

/// Schedules deletion `pending_days` from `now` (0 means the default).
pub fn schedule_deletion(
    key: &KeyMetadata,
    pending_days: u32,
    now: UnixTime,
) -> Result<KeyMetadata, Error> {
    let days = if pending_days == 0 {
        DEFAULT_PENDING_DAYS
    } else {
        pending_days
    };
    if !(MIN_PENDING_DAYS..=MAX_PENDING_DAYS).contains(&days) {
        return Err(Error::InvalidArgument(format!(
            "pending_days must be between {MIN_PENDING_DAYS} and {MAX_PENDING_DAYS}"
        )));
    }
    if key.deletion_at().is_some() {
        return Err(Error::FailedPrecondition(Precondition::Other(
            "key is already pending deletion".into(),
        )));
    }
    Ok(KeyMetadata {
        state: KeyState::PendingDeletion {
            deletion_at: now + i64::from(days) * SECONDS_PER_DAY,
        },
        ..key.clone()
    })
}

/// Cancels a scheduled deletion; the key comes back disabled, as in AWS KMS.
pub fn cancel_deletion(key: &KeyMetadata) -> Result<KeyMetadata, Error> {
    if key.deletion_at().is_none() {
        return Err(Error::FailedPrecondition(Precondition::Other(
            "key is not pending deletion".into(),
        )));
    }
    Ok(KeyMetadata {
        state: KeyState::Disabled,
        ..key.clone()
    })
}

/// Adds `operations` to `grantee`'s grant.
pub fn grant(
    key: &KeyMetadata,
    grantee: &Identity,
    operations: OperationSet,
) -> Result<KeyMetadata, Error> {
    refuse_if_pending(key)?;
    if operations.is_empty() {
        return Err(Error::InvalidArgument(
            "operations must name at least one operation".into(),
        ));
    }
    let mut next = key.clone();
    let entry = next.grants.entry(grantee.clone()).or_default();
    *entry = entry.union(operations);
    Ok(next)
}

/// Removes `operations` from `grantee`'s grant (all of it when empty).
pub fn revoke(
    key: &KeyMetadata,
    grantee: &Identity,
    operations: OperationSet,
) -> Result<KeyMetadata, Error> {
    let mut next = key.clone();
    let remaining = if operations.is_empty() {
        OperationSet::EMPTY
    } else {
        next.grants
            .get(grantee)
            .copied()
            .unwrap_or_default()
            .difference(operations)
    };
    if remaining.is_empty() {
        next.grants.remove(grantee);
    } else {
        next.grants.insert(grantee.clone(), remaining);
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{KeyId, Operation};

    fn key() -> KeyMetadata {
        KeyMetadata {
            id: KeyId::parse("k").expect("id"),
            owner: Identity::parse("owner").expect("identity"),
            description: String::new(),
            state: KeyState::Enabled,
            primary_version: KeyVersion::FIRST,
            min_decryption_version: KeyVersion::FIRST,
            versions: vec![VersionInfo {
                version: KeyVersion::FIRST,
                created_at: 10,
            }],
            created_at: 10,
            grants: BTreeMap::new(),
        }
    }

    #[test]
    fn rotation_appends_and_promotes() {
        let (next, version) = rotate(&key(), 20).expect("rotate");
        assert_eq!(version.get(), 2);
        assert_eq!(next.primary_version, version);
        assert_eq!(next.versions.len(), 2);
        assert_eq!(next.min_decryption_version, KeyVersion::FIRST);
    }

    #[test]
    fn deletion_window_is_bounded_and_cancel_leaves_the_key_disabled() {
        assert!(schedule_deletion(&key(), 6, 0).is_err());
        assert!(schedule_deletion(&key(), 31, 0).is_err());
        let pending = schedule_deletion(&key(), 0, 100).expect("default window");
        assert_eq!(pending.deletion_at(), Some(100 + 30 * 86_400));
        assert!(ensure_usable(&pending).is_err());
        assert!(rotate(&pending, 0).is_err());
        assert!(enable(&pending).is_err());
        assert!(schedule_deletion(&pending, 7, 0).is_err());
        let cancelled = cancel_deletion(&pending).expect("cancel");
        assert_eq!(cancelled.state, KeyState::Disabled);
        assert!(cancel_deletion(&cancelled).is_err());
    }

    #[test]
    fn minimum_decryption_version_stays_within_existing_versions() {
        let (two, _) = rotate(&key(), 1).expect("rotate");
        assert!(set_min_decryption_version(&two, 0).is_err());
        assert!(set_min_decryption_version(&two, 3).is_err());
        assert_eq!(
            set_min_decryption_version(&two, 2)
                .expect("set")
                .min_decryption_version
                .get(),
            2
        );
    }

    #[test]
    fn grants_accumulate_and_revoke_removes_empty_entries() {
        let friend = Identity::parse("friend").expect("identity");
        let one: OperationSet = [Operation::Encrypt].into_iter().collect();
        let two: OperationSet = [Operation::Decrypt].into_iter().collect();
        let granted =
            grant(&grant(&key(), &friend, one).expect("grant"), &friend, two).expect("grant");
        assert_eq!(granted.grants[&friend], one.union(two));
        assert!(grant(&key(), &friend, OperationSet::EMPTY).is_err());
        let less = revoke(&granted, &friend, one).expect("revoke");
        assert_eq!(less.grants[&friend], two);
        let none = revoke(&less, &friend, OperationSet::EMPTY).expect("revoke all");
        assert!(none.grants.is_empty());
    }
}
