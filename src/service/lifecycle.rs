//! Key state transitions as pure functions from the current metadata to the
//! next. The store runs them inside its atomic update, so concurrent calls on
//! one key serialise.

use crate::error::{Error, Precondition};
use crate::identity::Identity;
use crate::model::{
    ConditionalGrant, Grantee, KeyMetadata, KeyState, KeyVersion, MAX_CONDITIONAL_GRANTS,
    OperationSet, RotationPeriod, UnixTime, VersionInfo,
};

/// Shortest deletion window, in days.
pub const MIN_PENDING_DAYS: u32 = 7;
/// Longest deletion window, in days.
pub const MAX_PENDING_DAYS: u32 = 30;
/// Window used when the request gives 0.
pub const DEFAULT_PENDING_DAYS: u32 = 30;
const SECONDS_PER_DAY: i64 = 86_400;

pub(super) fn refuse_if_pending(key: &KeyMetadata) -> Result<(), Error> {
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

/// A key's metadata after a transition that added or destroyed one
/// version, and which version that was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionChange {
    /// The key's metadata after the change.
    pub metadata: KeyMetadata,
    /// The version added or destroyed.
    pub version: KeyVersion,
}

/// Adds the next version and makes it primary. Disabled keys may rotate;
/// keys pending deletion may not.
pub fn rotate(key: &KeyMetadata, now: UnixTime) -> Result<VersionChange, Error> {
    refuse_if_pending(key)?;
    let version = key.primary_version.next()?;
    let mut next = key.clone();
    next.primary_version = version;
    next.versions.push(VersionInfo::new(version, now));
    Ok(VersionChange {
        metadata: next,
        version,
    })
}

/// RotateKey: [`rotate`], unless the key already holds `max_versions`
/// versions that are not destroyed. The cap bounds the key record that
/// every rotation rewrites and every data call decodes; destroying old
/// versions makes room. Automatic rotations are not capped: they follow
/// policies only admins and operators set.
pub fn rotate_on_request(
    key: &KeyMetadata,
    now: UnixTime,
    max_versions: u32,
) -> Result<VersionChange, Error> {
    let kept = key
        .versions
        .iter()
        .filter(|info| info.destroyed_at.is_none())
        .count();
    if kept >= usize::try_from(max_versions).unwrap_or(usize::MAX) {
        return Err(Error::FailedPrecondition(Precondition::TooManyVersions {
            max: max_versions,
        }));
    }
    rotate(key, now)
}

/// What makes the server rotate a key by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoRotation {
    /// The key's rotation period has passed since its primary version was
    /// made.
    Schedule,
    /// `version` reached the encryption limit; rotate if it is still primary.
    Usage {
        /// The version that reached the limit.
        version: KeyVersion,
    },
}

/// Rotates the key if `trigger` still holds at `now`. Run inside the
/// store's atomic update, so when several replicas see the same due key,
/// the first rotates and the others find it no longer due
/// ([`Precondition::RotationNotDue`]).
pub fn rotate_automatically(
    key: &KeyMetadata,
    trigger: AutoRotation,
    now: UnixTime,
) -> Result<VersionChange, Error> {
    let due = match trigger {
        AutoRotation::Schedule => key.next_rotation_at().is_some_and(|at| at <= now),
        AutoRotation::Usage { version } => {
            key.primary_version == version && key.deletion_at().is_none()
        }
    };
    if !due {
        return Err(Error::FailedPrecondition(Precondition::RotationNotDue));
    }
    rotate(key, now)
}

/// Sets (or with `None` clears) the automatic rotation period.
pub fn set_rotation_period(
    key: &KeyMetadata,
    period: Option<RotationPeriod>,
) -> Result<KeyMetadata, Error> {
    refuse_if_pending(key)?;
    Ok(KeyMetadata {
        rotation_period: period,
        ..key.clone()
    })
}

/// Marks `version` destroyed; the store erases its DEK in the same step.
/// Only versions below the minimum decryption version may go, so nothing
/// still decryptable is lost by accident, and never twice.
pub fn destroy_version(
    key: &KeyMetadata,
    version: KeyVersion,
    now: UnixTime,
) -> Result<VersionChange, Error> {
    refuse_if_pending(key)?;
    if !key.has_version(version) {
        return Err(Error::InvalidArgument(format!(
            "version {version} does not exist; the primary version is {}",
            key.primary_version
        )));
    }
    if version >= key.min_decryption_version {
        return Err(Error::FailedPrecondition(Precondition::Other(format!(
            "only versions below the minimum decryption version ({}) can be destroyed; raise it first",
            key.min_decryption_version
        ))));
    }
    if key.is_destroyed(version) {
        return Err(Error::FailedPrecondition(Precondition::Other(format!(
            "version {version} is already destroyed"
        ))));
    }
    let mut next = key.clone();
    for info in &mut next.versions {
        if info.version == version {
            info.destroyed_at = Some(now);
        }
    }
    Ok(VersionChange {
        metadata: next,
        version,
    })
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
pub fn set_min_decryption_version(
    key: &KeyMetadata,
    version: KeyVersion,
) -> Result<KeyMetadata, Error> {
    refuse_if_pending(key)?;
    if version > key.primary_version {
        return Err(Error::InvalidArgument(format!(
            "version {version} does not exist; the primary version is {}",
            key.primary_version
        )));
    }
    if let Some(destroyed) = key.highest_destroyed().filter(|d| version <= *d) {
        return Err(Error::FailedPrecondition(Precondition::Other(format!(
            "version {destroyed} is destroyed; the minimum decryption version must stay above it"
        ))));
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

/// Adds a conditional grant (a pattern, a context constraint or an
/// expiry): its operations join those of a grant with the same terms, if
/// any; at most [`MAX_CONDITIONAL_GRANTS`] per key.
pub fn grant_conditional(
    key: &KeyMetadata,
    grant: ConditionalGrant,
    now: UnixTime,
) -> Result<KeyMetadata, Error> {
    refuse_if_pending(key)?;
    if grant.operations.is_empty() {
        return Err(Error::InvalidArgument(
            "operations must name at least one operation".into(),
        ));
    }
    if grant.is_expired(now) {
        return Err(Error::InvalidArgument(
            "expires_at is not in the future".into(),
        ));
    }
    let mut next = key.clone();
    if let Some(same) = next
        .conditional_grants
        .iter_mut()
        .find(|existing| existing.same_terms(&grant))
    {
        same.operations = same.operations.union(grant.operations);
        return Ok(next);
    }
    if next.conditional_grants.len() >= MAX_CONDITIONAL_GRANTS {
        return Err(Error::FailedPrecondition(Precondition::Other(format!(
            "the key already has {MAX_CONDITIONAL_GRANTS} conditional grants, the most allowed; revoke some first"
        ))));
    }
    // Kept sorted by grantee (authz finds exact grantees by binary search);
    // a new grant goes after those with the same grantee.
    let at = next
        .conditional_grants
        .partition_point(|existing| existing.grantee <= grant.grantee);
    next.conditional_grants.insert(at, grant);
    Ok(next)
}

/// Removes `operations` (all when empty) from every grant of `grantee`:
/// its plain grant when it is an exact identity, and every conditional
/// grant naming exactly it (whatever the constraint or expiry).
pub fn revoke_grantee(
    key: &KeyMetadata,
    grantee: &Grantee,
    operations: OperationSet,
) -> Result<KeyMetadata, Error> {
    let mut next = match grantee {
        Grantee::Exact(identity) => revoke(key, identity, operations)?,
        Grantee::PathPrefix(_) => key.clone(),
    };
    for grant in &mut next.conditional_grants {
        if &grant.grantee == grantee {
            grant.operations = if operations.is_empty() {
                OperationSet::EMPTY
            } else {
                grant.operations.difference(operations)
            };
        }
    }
    next.conditional_grants
        .retain(|grant| !grant.operations.is_empty());
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

    /// Version `n` (tests name versions by number; 0 cannot be one, which
    /// `KeyVersion::new` and the gRPC edge refuse).
    fn v(n: u32) -> KeyVersion {
        KeyVersion::new(n).expect("version")
    }

    fn key() -> KeyMetadata {
        KeyMetadata {
            id: KeyId::parse("k").expect("id"),
            owner: Identity::parse("owner").expect("identity"),
            description: String::new(),
            state: KeyState::Enabled,
            primary_version: KeyVersion::FIRST,
            min_decryption_version: KeyVersion::FIRST,
            versions: vec![VersionInfo::new(KeyVersion::FIRST, 10)],
            created_at: 10,
            grants: BTreeMap::new(),
            rotation_period: None,
            conditional_grants: Vec::new(),
            purpose: Default::default(),
            labels: Default::default(),
            tag: None,
        }
    }

    #[test]
    fn rotation_appends_and_promotes() {
        let VersionChange {
            metadata: next,
            version,
        } = rotate(&key(), 20).expect("rotate");
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
        let VersionChange { metadata: two, .. } = rotate(&key(), 1).expect("rotate");
        assert!(set_min_decryption_version(&two, v(3)).is_err());
        assert_eq!(
            set_min_decryption_version(&two, v(2))
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

    #[test]
    fn automatic_rotation_happens_once_per_period_and_only_for_enabled_keys() {
        let hour = RotationPeriod::from_secs(3600).expect("period");
        let key = set_rotation_period(&key(), Some(hour)).expect("set");
        assert_eq!(key.next_rotation_at(), Some(10 + 3600));
        let not_due = rotate_automatically(&key, AutoRotation::Schedule, 10 + 3599);
        assert!(matches!(
            not_due,
            Err(Error::FailedPrecondition(Precondition::RotationNotDue))
        ));
        let VersionChange {
            metadata: rotated,
            version,
        } = rotate_automatically(&key, AutoRotation::Schedule, 10 + 3600).expect("due");
        assert_eq!(version.get(), 2);
        assert_eq!(rotated.next_rotation_at(), Some(10 + 7200));
        // A second replica deciding on the rotated key finds nothing due.
        assert!(rotate_automatically(&rotated, AutoRotation::Schedule, 10 + 3600).is_err());
        let disabled = disable(&key).expect("disable");
        assert_eq!(disabled.next_rotation_at(), None);
        assert!(rotate_automatically(&disabled, AutoRotation::Schedule, i64::MAX).is_err());
        assert_eq!(
            set_rotation_period(&key, None)
                .expect("clear")
                .next_rotation_at(),
            None
        );
        let pending = schedule_deletion(&key, 7, 0).expect("schedule");
        assert!(set_rotation_period(&pending, Some(hour)).is_err());
        assert!(RotationPeriod::from_secs(3599).is_err());
        assert!(RotationPeriod::from_secs(u64::from(u32::MAX) + 1).is_err());
    }

    #[test]
    fn usage_rotation_applies_only_while_the_version_is_primary() {
        let trigger = AutoRotation::Usage {
            version: KeyVersion::FIRST,
        };
        let VersionChange {
            metadata: rotated, ..
        } = rotate_automatically(&key(), trigger, 20).expect("rotate");
        assert!(matches!(
            rotate_automatically(&rotated, trigger, 21),
            Err(Error::FailedPrecondition(Precondition::RotationNotDue))
        ));
    }

    #[test]
    fn only_versions_below_the_minimum_can_be_destroyed_once() {
        let VersionChange { metadata: two, .. } = rotate(&key(), 20).expect("rotate");
        assert!(
            matches!(
                destroy_version(&two, v(1), 30),
                Err(Error::FailedPrecondition(_))
            ),
            "version 1 is still decryptable"
        );
        let raised = set_min_decryption_version(&two, v(2)).expect("raise");
        assert!(matches!(
            destroy_version(&raised, v(3), 30),
            Err(Error::InvalidArgument(_))
        ));
        assert!(
            destroy_version(&raised, v(2), 30).is_err(),
            "the primary stays"
        );
        let VersionChange {
            metadata: destroyed,
            version,
        } = destroy_version(&raised, v(1), 30).expect("destroy");
        assert_eq!(version, KeyVersion::FIRST);
        assert!(destroyed.is_destroyed(KeyVersion::FIRST));
        assert_eq!(destroyed.versions[0].destroyed_at, Some(30));
        assert!(!destroyed.is_destroyed(KeyVersion::new(2).expect("v2")));
        assert!(destroy_version(&destroyed, v(1), 31).is_err(), "only once");
        assert!(
            set_min_decryption_version(&destroyed, v(1)).is_err(),
            "a destroyed version cannot become decryptable again"
        );
        assert!(set_min_decryption_version(&destroyed, v(2)).is_ok());
    }
}
