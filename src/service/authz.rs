//! The single authorization check. Pure: it looks only at the caller, whether
//! the caller is an admin, what is asked and the key's metadata.

use crate::error::Error;
use crate::identity::Identity;
use crate::model::{KeyMetadata, Operation};

/// What a caller wants to do with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A data-plane operation: owner, or a grantee holding that operation.
    Use(Operation),
    /// RotateKey: admins and the owner.
    Rotate,
    /// GetKey: admins and the owner.
    Read,
    /// Any other control-plane change: admins only.
    Manage,
}

/// Who is asking.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The identity from the client certificate.
    pub identity: &'a Identity,
    /// Whether that identity was named with `--admin`.
    pub is_admin: bool,
}

/// Decides whether `caller` may do `action` on `key` (`None`: no such key).
///
/// Non-admins get `PermissionDenied` for keys that do not exist, exactly as
/// for keys they may not use, so the answer is no existence oracle. Admins
/// are told `NotFound`. Admins do not get data-plane use of keys they neither
/// own nor hold a grant for.
pub fn authorize(
    caller: Caller<'_>,
    action: Action,
    key: Option<&KeyMetadata>,
) -> Result<(), Error> {
    let Some(key) = key else {
        return Err(if caller.is_admin {
            Error::NotFound
        } else {
            Error::PermissionDenied
        });
    };
    let is_owner = &key.owner == caller.identity;
    let allowed = match action {
        Action::Use(op) => {
            is_owner
                || key
                    .grants
                    .get(caller.identity)
                    .is_some_and(|ops| ops.contains(op))
        }
        Action::Rotate | Action::Read => is_owner || caller.is_admin,
        Action::Manage => caller.is_admin,
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::PermissionDenied)
    }
}

/// ListKeys: admins see every key, everyone else the keys it owns (not
/// the keys it holds grants on: a grantee learns a key id from its owner).
pub fn lists(caller: Caller<'_>, key: &KeyMetadata) -> bool {
    caller.is_admin || &key.owner == caller.identity
}

/// Control-plane calls that are not about one key (CreateKey, Seal, ...).
pub fn require_admin(caller: Caller<'_>) -> Result<(), Error> {
    if caller.is_admin {
        Ok(())
    } else {
        Err(Error::PermissionDenied)
    }
}

/// Unseal: an unseal approver (by default the admins; see
/// `--unseal-approver`), whether or not it is an admin.
pub fn require_unseal_approver(is_approver: bool) -> Result<(), Error> {
    if is_approver {
        Ok(())
    } else {
        Err(Error::PermissionDenied)
    }
}

/// GetStatus: admins, and unseal approvers (who follow the unseal progress).
pub fn require_admin_or_approver(caller: Caller<'_>, is_approver: bool) -> Result<(), Error> {
    if caller.is_admin || is_approver {
        Ok(())
    } else {
        Err(Error::PermissionDenied)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{KeyId, KeyState, KeyVersion, OperationSet};

    fn ident(s: &str) -> Identity {
        Identity::parse(s).expect("identity")
    }

    fn key_owned_by(owner: &str, grants: &[(&str, &[Operation])]) -> KeyMetadata {
        KeyMetadata {
            id: KeyId::parse("k").expect("id"),
            owner: ident(owner),
            description: String::new(),
            state: KeyState::Enabled,
            primary_version: KeyVersion::FIRST,
            min_decryption_version: KeyVersion::FIRST,
            versions: vec![],
            created_at: 0,
            grants: grants
                .iter()
                .map(|(who, ops)| (ident(who), ops.iter().copied().collect::<OperationSet>()))
                .collect::<BTreeMap<_, _>>(),
            rotation_period: None,
            purpose: Default::default(),
            labels: Default::default(),
            tag: None,
        }
    }

    #[test]
    fn owner_uses_everything_grantee_only_what_was_granted() {
        let key = key_owned_by("owner", &[("friend", &[Operation::Decrypt])]);
        let owner = ident("owner");
        let friend = ident("friend");
        let owner = Caller {
            identity: &owner,
            is_admin: false,
        };
        let friend = Caller {
            identity: &friend,
            is_admin: false,
        };
        for op in Operation::ALL {
            assert!(authorize(owner, Action::Use(op), Some(&key)).is_ok());
        }
        assert!(authorize(owner, Action::Rotate, Some(&key)).is_ok());
        assert!(authorize(owner, Action::Manage, Some(&key)).is_err());
        assert!(authorize(friend, Action::Use(Operation::Decrypt), Some(&key)).is_ok());
        assert!(authorize(friend, Action::Use(Operation::Encrypt), Some(&key)).is_err());
        assert!(authorize(friend, Action::Read, Some(&key)).is_err());
    }

    #[test]
    fn admins_manage_but_do_not_use_and_learn_of_missing_keys() {
        let key = key_owned_by("owner", &[]);
        let admin = ident("admin");
        let admin = Caller {
            identity: &admin,
            is_admin: true,
        };
        assert!(authorize(admin, Action::Manage, Some(&key)).is_ok());
        assert!(authorize(admin, Action::Rotate, Some(&key)).is_ok());
        assert!(matches!(
            authorize(admin, Action::Use(Operation::Encrypt), Some(&key)),
            Err(Error::PermissionDenied)
        ));
        assert!(matches!(
            authorize(admin, Action::Manage, None),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn listings_show_admins_everything_and_others_their_own_keys() {
        let key = key_owned_by("owner", &[("friend", &[Operation::Decrypt])]);
        let [owner, friend, admin] = ["owner", "friend", "admin"].map(ident);
        let caller = |identity, is_admin| Caller { identity, is_admin };
        assert!(lists(caller(&owner, false), &key));
        assert!(lists(caller(&admin, true), &key));
        assert!(
            !lists(caller(&friend, false), &key),
            "a grant does not list"
        );
        assert!(!lists(caller(&admin, false), &key));
    }

    #[test]
    fn strangers_cannot_tell_missing_keys_from_forbidden_ones() {
        let key = key_owned_by("owner", &[]);
        let stranger = ident("stranger");
        let stranger = Caller {
            identity: &stranger,
            is_admin: false,
        };
        for action in [
            Action::Use(Operation::Decrypt),
            Action::Read,
            Action::Manage,
            Action::Rotate,
        ] {
            let existing = authorize(stranger, action, Some(&key));
            let missing = authorize(stranger, action, None);
            assert!(matches!(existing, Err(Error::PermissionDenied)));
            assert!(matches!(missing, Err(Error::PermissionDenied)));
        }
    }
}
