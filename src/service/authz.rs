//! The single authorization check. Pure: it looks only at the caller, the
//! roles it holds, what is asked and the key's metadata.
//!
//! | role               | may                                                        |
//! |--------------------|------------------------------------------------------------|
//! | `admin`            | keys (create, change, delete, transfer), grants, aliases,  |
//! |                    | labels, role bindings; read and list everything            |
//! | `security-officer` | seal, master-key and root-key rotation, backups, status    |
//! | `auditor`          | read and list keys, grants, aliases and role bindings,     |
//! |                    | verify the audit log, status                               |
//! | key owner          | use its key, read it, rotate it                            |
//! | grantee            | the operations of its grants, under their conditions       |
//!
//! Roles give no data-plane use of keys. `--admin` identities hold every
//! role (break-glass). Everything is additive: no rule denies what another
//! allows, so there is no precedence.

use crate::error::Error;
use crate::identity::Identity;
use crate::model::{ConditionalGrant, Grantee, KeyMetadata, Operation, Role, RoleSet, UnixTime};
use tresor_crypto::Context;

/// What a caller wants to do with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// RotateKey: admins and the owner.
    Rotate,
    /// GetKey: admins, auditors and the owner.
    Read,
    /// Any other control-plane change: admins only.
    Manage,
}

/// Who is asking.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The identity from the client certificate.
    pub identity: &'a Identity,
    /// The roles it holds.
    pub roles: RoleSet,
}

impl Caller<'_> {
    /// Whether the caller may see every key (and so is told when one does
    /// not exist): admins and auditors.
    pub fn sees_every_key(self) -> bool {
        self.roles.has(Role::Admin) || self.roles.has(Role::Auditor)
    }
}

/// Decides whether `caller` may do `action` on `key` (`None`: no such key).
///
/// Callers who may not see every key get `PermissionDenied` for keys that
/// do not exist, exactly as for keys they may not use, so the answer is no
/// existence oracle. Admins and auditors are told `NotFound`. No role gives
/// data-plane use of keys the caller neither owns nor holds a grant for.
pub fn authorize(
    caller: Caller<'_>,
    action: Action,
    key: Option<&KeyMetadata>,
) -> Result<(), Error> {
    let Some(key) = key else {
        return Err(if caller.sees_every_key() {
            Error::NotFound
        } else {
            Error::PermissionDenied
        });
    };
    let is_owner = &key.owner == caller.identity;
    let allowed = match action {
        Action::Rotate => is_owner || caller.roles.has(Role::Admin),
        Action::Read => is_owner || caller.sees_every_key(),
        Action::Manage => caller.roles.has(Role::Admin),
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::PermissionDenied)
    }
}

/// What allowed a data-plane call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// The caller owns the key.
    Owner,
    /// A plain grant to the caller's identity.
    Grant,
    /// The conditional grant at this index of the key's list.
    ConditionalGrant(usize),
}

/// Decides a data-plane call of `op` by `caller` on `key` with `context`
/// at `now`: the owner, a plain grant, or any conditional grant (pattern,
/// context constraint, expiry) that allows it. Grants only add: there is
/// no deny and no precedence. A refusal is the same
/// [`Error::PermissionDenied`] whatever was missing, and for a missing key
/// too (admins are told [`Error::NotFound`]); no role gives data-plane use.
pub fn authorize_use(
    caller: Caller<'_>,
    op: Operation,
    key: Option<&KeyMetadata>,
    context: &Context,
    now: UnixTime,
) -> Result<Allowed, Error> {
    let Some(key) = key else {
        return Err(if caller.roles.has(Role::Admin) {
            Error::NotFound
        } else {
            Error::PermissionDenied
        });
    };
    if &key.owner == caller.identity {
        return Ok(Allowed::Owner);
    }
    if key
        .grants
        .get(caller.identity)
        .is_some_and(|ops| ops.contains(op))
    {
        return Ok(Allowed::Grant);
    }
    conditional_grant_for(&key.conditional_grants, caller.identity, op, context, now)
        .map(Allowed::ConditionalGrant)
        .ok_or(Error::PermissionDenied)
}

/// The index of a conditional grant allowing the call, if any. The list
/// is kept sorted by grantee (exact identities first, in order, then
/// patterns: `lifecycle::grant_conditional`), so the caller's exact grants
/// are found by binary search and only pattern grants are scanned: a key
/// with a thousand grants to other services costs a lookup, not a walk.
fn conditional_grant_for(
    grants: &[ConditionalGrant],
    identity: &Identity,
    op: Operation,
    context: &Context,
    now: UnixTime,
) -> Option<usize> {
    let exact_start = grants.partition_point(|grant| match &grant.grantee {
        Grantee::Exact(other) => other < identity,
        Grantee::PathPrefix(_) => false,
    });
    let patterns_start = grants.partition_point(|grant| matches!(grant.grantee, Grantee::Exact(_)));
    let exact = (exact_start..patterns_start)
        .take_while(|i| matches!(&grants[*i].grantee, Grantee::Exact(other) if other == identity));
    exact
        .chain(patterns_start..grants.len())
        .find(|i| grants[*i].allows(identity, op, context, now))
}

/// For an operator reading a denial's audit record: the conditional grant
/// that came closest to allowing it — one covering the caller and holding
/// the operation (so its constraint or expiry failed), else one covering
/// the caller. Never shown to the caller.
pub fn closest_grant(key: &KeyMetadata, identity: &Identity, op: Operation) -> Option<usize> {
    let covering = || {
        key.conditional_grants
            .iter()
            .enumerate()
            .filter(|(_, grant)| grant.grantee.matches(identity))
    };
    covering()
        .find(|(_, grant)| grant.operations.contains(op))
        .or_else(|| covering().next())
        .map(|(index, _)| index)
}

/// Separation of duties: `caller` may not give itself data-plane use of
/// `key` unless it owns it already — a grant whose grantee covers the
/// caller (exactly or by pattern), or the key's ownership (`grantee` the
/// new owner). Another admin must do it.
pub fn check_not_self_grant(
    caller: Caller<'_>,
    key: &KeyMetadata,
    grantee: &Grantee,
) -> Result<(), Error> {
    if &key.owner != caller.identity && grantee.matches(caller.identity) {
        return Err(Error::SelfGrant);
    }
    Ok(())
}

/// Separation of duties: `caller` may not give itself a role it does not
/// hold (a binding of `role` whose grantee covers the caller); another
/// admin must. Binding a role the caller already holds to a pattern that
/// also covers it gives it nothing new, and is allowed.
pub fn check_not_self_role(caller: Caller<'_>, role: Role, grantee: &Grantee) -> Result<(), Error> {
    if grantee.matches(caller.identity) && !caller.roles.has(role) {
        return Err(Error::SelfRole);
    }
    Ok(())
}

/// ListKeys and ListAliases: admins and auditors see every key, everyone
/// else the keys it owns (not the keys it holds grants on: a grantee
/// learns a key id from its owner).
pub fn lists(caller: Caller<'_>, key: &KeyMetadata) -> bool {
    caller.sees_every_key() || &key.owner == caller.identity
}

/// Control-plane calls that are not about one key and need `role`
/// (CreateKey: admin; Seal, RotateMasterKey, CreateBackup:
/// security-officer; VerifyAuditLog: auditor; ...).
pub fn require(caller: Caller<'_>, role: Role) -> Result<(), Error> {
    if caller.roles.has(role) {
        Ok(())
    } else {
        Err(Error::PermissionDenied)
    }
}

/// Read-only calls any role may make (ListRoleBindings).
pub fn require_any_role(caller: Caller<'_>) -> Result<(), Error> {
    if caller.roles.any() {
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

/// GetStatus: any role, and unseal approvers (who follow the unseal
/// progress).
pub fn require_any_role_or_approver(caller: Caller<'_>, is_approver: bool) -> Result<(), Error> {
    if caller.roles.any() || is_approver {
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

    /// A data-plane call with an empty context at time 0.
    fn use_(
        caller: Caller<'_>,
        op: Operation,
        key: Option<&KeyMetadata>,
    ) -> Result<Allowed, Error> {
        authorize_use(caller, op, key, &Context::default(), 0)
    }

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
            conditional_grants: Vec::new(),
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
            roles: RoleSet::NONE,
        };
        let friend = Caller {
            identity: &friend,
            roles: RoleSet::NONE,
        };
        for op in Operation::ALL {
            assert_eq!(use_(owner, op, Some(&key)).ok(), Some(Allowed::Owner));
        }
        assert!(authorize(owner, Action::Rotate, Some(&key)).is_ok());
        assert!(authorize(owner, Action::Manage, Some(&key)).is_err());
        assert_eq!(
            use_(friend, Operation::Decrypt, Some(&key)).ok(),
            Some(Allowed::Grant)
        );
        assert!(use_(friend, Operation::Encrypt, Some(&key)).is_err());
        assert!(authorize(friend, Action::Read, Some(&key)).is_err());
    }

    #[test]
    fn admins_manage_but_do_not_use_and_learn_of_missing_keys() {
        let key = key_owned_by("owner", &[]);
        let admin = ident("admin");
        let admin = Caller {
            identity: &admin,
            roles: RoleSet::ALL,
        };
        assert!(authorize(admin, Action::Manage, Some(&key)).is_ok());
        assert!(authorize(admin, Action::Rotate, Some(&key)).is_ok());
        assert!(matches!(
            use_(admin, Operation::Encrypt, Some(&key)),
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
        let caller = |identity, roles| Caller { identity, roles };
        assert!(lists(caller(&owner, RoleSet::NONE), &key));
        assert!(lists(caller(&admin, RoleSet::only(Role::Admin)), &key));
        assert!(lists(caller(&admin, RoleSet::only(Role::Auditor)), &key));
        assert!(
            !lists(caller(&friend, RoleSet::NONE), &key),
            "a grant does not list"
        );
        assert!(!lists(caller(&admin, RoleSet::NONE), &key));
        assert!(!lists(
            caller(&admin, RoleSet::only(Role::SecurityOfficer)),
            &key
        ));
    }

    #[test]
    fn strangers_cannot_tell_missing_keys_from_forbidden_ones() {
        let key = key_owned_by("owner", &[]);
        let stranger = ident("stranger");
        let stranger = Caller {
            identity: &stranger,
            roles: RoleSet::NONE,
        };
        assert!(matches!(
            use_(stranger, Operation::Decrypt, Some(&key)),
            Err(Error::PermissionDenied)
        ));
        assert!(matches!(
            use_(stranger, Operation::Decrypt, None),
            Err(Error::PermissionDenied)
        ));
        for action in [Action::Read, Action::Manage, Action::Rotate] {
            let existing = authorize(stranger, action, Some(&key));
            let missing = authorize(stranger, action, None);
            assert!(matches!(existing, Err(Error::PermissionDenied)));
            assert!(matches!(missing, Err(Error::PermissionDenied)));
        }
    }

    mod reference_model {
        //! Property: for random plain and conditional grants and random
        //! requests, [`authorize_use`] allows exactly what a reference
        //! model, written here from the rules alone, allows.

        use std::collections::BTreeMap;

        use proptest::prelude::*;

        use super::super::*;
        use crate::model::{ConditionalGrant, ContextConstraint, Grantee, OperationSet};

        const IDENTITIES: [&str; 5] = [
            "spiffe://t/ns/prod/a",
            "spiffe://t/ns/prod/b",
            "spiffe://t/ns/dev/a",
            "spiffe://t/owner",
            "billing.internal",
        ];
        const PATTERNS: [&str; 3] = ["spiffe://t/ns/prod/", "spiffe://t/ns/", "spiffe://t/"];

        /// A grantee of the model: an identity index, or a pattern index.
        #[derive(Debug, Clone)]
        enum Who {
            One(usize),
            Under(usize),
        }

        #[derive(Debug, Clone)]
        struct ModelGrant {
            who: Who,
            ops: u8,
            /// 0 none, 1 equals, 2 subset.
            kind: u8,
            pairs: BTreeMap<String, String>,
            expires: Option<i64>,
        }

        fn model_allows(
            owner: usize,
            plain: &[(usize, u8)],
            grants: &[ModelGrant],
            caller: usize,
            op: u8,
            context: &BTreeMap<String, String>,
            now: i64,
        ) -> bool {
            if caller == owner {
                return true;
            }
            if plain
                .iter()
                .any(|(who, ops)| *who == caller && ops & op != 0)
            {
                return true;
            }
            let name = IDENTITIES[caller];
            grants.iter().any(|g| {
                let covered = match g.who {
                    Who::One(i) => i == caller,
                    Who::Under(p) => {
                        name.len() > PATTERNS[p].len() && name.starts_with(PATTERNS[p])
                    }
                };
                let constraint = match g.kind {
                    0 => true,
                    1 => &g.pairs == context,
                    _ => g.pairs.iter().all(|(k, v)| context.get(k) == Some(v)),
                };
                covered && g.ops & op != 0 && constraint && g.expires.is_none_or(|at| now < at)
            })
        }

        fn pairs() -> impl Strategy<Value = BTreeMap<String, String>> {
            prop::collection::btree_map(
                prop::sample::select(vec!["tenant".to_owned(), "table".to_owned()]),
                prop::sample::select(vec!["1".to_owned(), "2".to_owned()]),
                0..3,
            )
        }

        fn model_grant() -> impl Strategy<Value = ModelGrant> {
            (
                prop_oneof![
                    (0..IDENTITIES.len()).prop_map(Who::One),
                    (0..PATTERNS.len()).prop_map(Who::Under)
                ],
                1u8..64,
                0u8..3,
                pairs(),
                prop::option::of(0i64..20),
            )
                .prop_map(|(who, ops, kind, pairs, expires)| ModelGrant {
                    who,
                    ops,
                    kind,
                    pairs,
                    expires,
                })
        }

        proptest! {
            #[test]
            fn the_decision_equals_the_reference_model(
                owner in 0..IDENTITIES.len(),
                plain in prop::collection::vec((0..IDENTITIES.len(), 1u8..64), 0..3),
                grants in prop::collection::vec(model_grant(), 0..6),
                caller in 0..IDENTITIES.len(),
                op_index in 0..Operation::ALL.len(),
                context in pairs(),
                now in 0i64..20,
            ) {
                let ident = |i: usize| Identity::parse(IDENTITIES[i]).expect("identity");
                let mut key = super::key_owned_by(IDENTITIES[owner], &[]);
                for (who, ops) in &plain {
                    let entry = key.grants.entry(ident(*who)).or_default();
                    *entry = entry.union(OperationSet::from_bits(*ops));
                }
                key.conditional_grants = grants
                    .iter()
                    .map(|g| ConditionalGrant {
                        grantee: match g.who {
                            Who::One(i) => Grantee::Exact(ident(i)),
                            Who::Under(p) => Grantee::PathPrefix(PATTERNS[p].to_owned()),
                        },
                        operations: OperationSet::from_bits(g.ops),
                        constraint: match g.kind {
                            0 => ContextConstraint::None,
                            1 => ContextConstraint::Equals(g.pairs.clone()),
                            _ => ContextConstraint::Subset(g.pairs.clone()),
                        },
                        expires_at: g.expires,
                    })
                    .collect();
                // As the service keeps them: sorted by grantee.
                key.conditional_grants.sort_by(|a, b| a.grantee.cmp(&b.grantee));
                let op = Operation::ALL[op_index];
                let op_bit = OperationSet::from_iter([op]).bits();
                let caller_identity = ident(caller);
                let decided = authorize_use(
                    Caller { identity: &caller_identity, roles: RoleSet::NONE },
                    op,
                    Some(&key),
                    &context.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    now,
                )
                .is_ok();
                // The owner in the model is compared by index; two indices
                // never name the same identity.
                let plain_by_index: Vec<(usize, u8)> = plain.clone();
                prop_assert_eq!(
                    decided,
                    model_allows(owner, &plain_by_index, &grants, caller, op_bit, &context, now)
                );
            }
        }
    }
}
