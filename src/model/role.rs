//! Roles on the control plane and the bindings, kept in the keystore,
//! that give them to identities (exact, or by SPIFFE path pattern).

use std::fmt;

use super::{Grantee, UnixTime};
use crate::error::Error;
use crate::identity::Identity;

/// Most role bindings a keystore holds.
pub const MAX_ROLE_BINDINGS: usize = 1024;

/// A control-plane role. What each may do is decided in
/// `service::authz`, nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Keys, grants, aliases, labels, and role bindings.
    Admin,
    /// Seal, master-key and root-key rotation, backups.
    SecurityOfficer,
    /// Read-only: keys, grants, aliases, role bindings, audit
    /// verification, status.
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: [Self; 3] = [Self::Admin, Self::SecurityOfficer, Self::Auditor];

    /// Parses a role's name as the API and the CLI spell it.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == raw)
            .ok_or_else(|| {
                Error::InvalidArgument(
                    "a role is one of admin, security-officer, auditor".to_owned(),
                )
            })
    }

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::SecurityOfficer => "security-officer",
            Self::Auditor => "auditor",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Self::Admin => 1,
            Self::SecurityOfficer => 2,
            Self::Auditor => 4,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roles one caller holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoleSet(u8);

impl RoleSet {
    /// No role.
    pub const NONE: Self = Self(0);
    /// Every role: what a break-glass `--admin` identity holds.
    pub const ALL: Self = Self(7);

    /// Just `role`.
    pub const fn only(role: Role) -> Self {
        Self(role.bit())
    }

    /// This set with `role` added.
    pub const fn with(self, role: Role) -> Self {
        Self(self.0 | role.bit())
    }

    /// Whether `role` is held.
    pub const fn has(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// Whether any role is held.
    pub const fn any(self) -> bool {
        self.0 != 0
    }
}

/// One role given to an identity or a pattern of identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleBinding {
    /// The role.
    pub role: Role,
    /// Who holds it: an exact identity or `spiffe://TD/PATH/*`.
    pub grantee: Grantee,
    /// When it was added.
    pub created_at: UnixTime,
    /// Who added it.
    pub created_by: Identity,
    /// The service's integrity tag under the keystore's metadata key (the
    /// store keeps it, never checks it).
    pub tag: Option<Vec<u8>>,
}

impl RoleBinding {
    /// The key a store files the binding under: role and grantee, unique.
    pub fn store_key(role: Role, grantee: &Grantee) -> String {
        format!("{}\n{grantee}", role.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_from_their_names_only() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()).expect("parses"), role);
        }
        for bad in ["Admin", "security_officer", "", "root"] {
            assert!(Role::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_role_set_holds_what_was_added() {
        let set = RoleSet::only(Role::Auditor).with(Role::SecurityOfficer);
        assert!(set.has(Role::Auditor) && set.has(Role::SecurityOfficer));
        assert!(!set.has(Role::Admin));
        assert!(!RoleSet::NONE.any());
        assert!(Role::ALL.into_iter().all(|role| RoleSet::ALL.has(role)));
    }
}
