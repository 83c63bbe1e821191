//! Roles in the service: which roles a caller holds (the `--admin`
//! break-glass identities hold every role; everyone else what the role
//! bindings kept in the keystore give them), and the admin calls that
//! manage the bindings (AddRoleBinding, RemoveRoleBinding,
//! ListRoleBindings).
//!
//! Bindings are tagged under the keystore's metadata key like key
//! records, so write access to the database cannot give anyone a role; a
//! binding whose tag fails is ignored, logged and audited once. A sealed
//! service holds no metadata key, so it cannot tell a real binding from a
//! forged one: while sealed only the break-glass identities (and the
//! unseal approvers, for Unseal and GetStatus) are recognised.
//!
//! Each replica caches the verified bindings for [`ROLE_TTL`] (the
//! metadata cache's bound) and drops the cache on its own writes, so a
//! binding added or removed on one replica holds on every replica within
//! that bound.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::Service;
use super::authz::{self, Caller};
use super::metadata_cache::METADATA_TTL;
use crate::error::{Error, StoreError};
use crate::identity::Identity;
use crate::model::{Grantee, MAX_ROLE_BINDINGS, Role, RoleBinding, RoleSet};

/// How long a replica trusts the bindings it read.
pub const ROLE_TTL: std::time::Duration = METADATA_TTL;

/// Tampered bindings remembered so each is audited once, not per read.
const MAX_REPORTED: usize = 1024;

/// The verified bindings a replica read last, and when.
#[derive(Debug, Default)]
pub(super) struct RoleCache {
    loaded: Mutex<Option<(Instant, Arc<[RoleBinding]>)>>,
    /// Store keys of tampered bindings already audited.
    reported: Mutex<HashSet<String>>,
}

impl RoleCache {
    fn fresh(&self) -> Option<Arc<[RoleBinding]>> {
        let loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        loaded
            .as_ref()
            .filter(|(at, _)| at.elapsed() < ROLE_TTL)
            .map(|(_, bindings)| bindings.clone())
    }

    fn put(&self, read_started: Instant, bindings: Arc<[RoleBinding]>) {
        *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((read_started, bindings));
    }

    /// Forgets the cached bindings (after a write on this replica).
    pub(super) fn invalidate(&self) {
        *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Whether a tampered binding is reported for the first time.
    fn first_report(&self, key: &str) -> bool {
        let mut seen = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_REPORTED {
            seen.clear();
        }
        seen.insert(key.to_owned())
    }
}

/// The roles `bindings` give `identity`.
pub fn roles_from(bindings: &[RoleBinding], identity: &Identity) -> RoleSet {
    bindings
        .iter()
        .filter(|binding| binding.grantee.matches(identity))
        .fold(RoleSet::NONE, |roles, binding| roles.with(binding.role))
}

impl Service {
    /// Who is asking, with every role it holds: all of them for a
    /// break-glass `--admin` identity, else those the keystore's bindings
    /// give it (none while sealed).
    pub(super) async fn caller<'a>(&self, identity: &'a Identity) -> Result<Caller<'a>, Error> {
        let roles = if self.is_admin(identity) {
            RoleSet::ALL
        } else if self.is_sealed() {
            RoleSet::NONE
        } else {
            roles_from(&self.role_bindings().await?, identity)
        };
        Ok(Caller { identity, roles })
    }

    /// The caller as the data plane sees it: break-glass identities are
    /// told NOT_FOUND for a missing key, everyone else PERMISSION_DENIED.
    /// Roles give no data-plane use, so the keystore's bindings are not
    /// read on the hot path.
    pub(super) fn data_plane_caller<'a>(&self, identity: &'a Identity) -> Caller<'a> {
        Caller {
            identity,
            roles: if self.is_admin(identity) {
                RoleSet::ALL
            } else {
                RoleSet::NONE
            },
        }
    }

    /// The verified bindings, from the cache or the store.
    async fn role_bindings(&self) -> Result<Arc<[RoleBinding]>, Error> {
        if let Some(bindings) = self.roles.fresh() {
            return Ok(bindings);
        }
        let read_started = Instant::now();
        let auth = self.keyring()?.metadata_auth()?;
        let mut verified = Vec::new();
        for binding in self.store.role_bindings().await? {
            if auth.is_authentic_role_binding(&binding) {
                verified.push(binding);
            } else {
                self.report_tampered_binding(&binding).await;
            }
        }
        let verified: Arc<[RoleBinding]> = verified.into();
        self.roles.put(read_started, verified.clone());
        Ok(verified)
    }

    async fn report_tampered_binding(&self, binding: &RoleBinding) {
        let key = RoleBinding::store_key(binding.role, &binding.grantee);
        tracing::error!(
            role = %binding.role,
            grantee = %binding.grantee,
            "a role binding fails its integrity check: it was changed outside tresor; ignored"
        );
        if self.roles.first_report(&key) {
            self.audit_event(
                "tampered-role-binding",
                None,
                &format!(
                    "role binding {} {} fails its integrity check; ignored",
                    binding.role, binding.grantee
                ),
            )
            .await;
        }
    }

    /// Gives `role` to `grantee`. Admins only; an admin cannot give itself
    /// a role it does not hold.
    pub async fn add_role_binding(
        &self,
        identity: &Identity,
        role: Role,
        grantee: Grantee,
    ) -> Result<RoleBinding, Error> {
        let caller = self.caller(identity).await?;
        authz::require(caller, Role::Admin)?;
        authz::check_not_self_role(caller, role, &grantee)?;
        if self.store.role_bindings().await?.len() >= MAX_ROLE_BINDINGS {
            return Err(Error::InvalidArgument(format!(
                "a keystore holds at most {MAX_ROLE_BINDINGS} role bindings; bind a pattern instead"
            )));
        }
        let binding = self
            .keyring()?
            .metadata_auth()?
            .tagged_role_binding(RoleBinding {
                role,
                grantee,
                created_at: self.now(),
                created_by: identity.clone(),
                tag: None,
            });
        let added = self.store.add_role_binding(&binding).await;
        self.roles.invalidate();
        match added {
            Ok(()) => Ok(binding),
            Err(StoreError::AlreadyExists) => Err(Error::RoleBindingExists),
            Err(other) => Err(other.into()),
        }
    }

    /// Takes `role` from `grantee`. Admins only.
    pub async fn remove_role_binding(
        &self,
        identity: &Identity,
        role: Role,
        grantee: &Grantee,
    ) -> Result<(), Error> {
        authz::require(self.caller(identity).await?, Role::Admin)?;
        let removed = self.store.remove_role_binding(role, grantee).await;
        self.roles.invalidate();
        match removed {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(Error::NoSuchRoleBinding),
            Err(other) => Err(other.into()),
        }
    }

    /// Every verified binding. Anyone holding a role may look.
    pub async fn list_role_bindings(&self, identity: &Identity) -> Result<Vec<RoleBinding>, Error> {
        authz::require_any_role(self.caller(identity).await?)?;
        Ok(self.role_bindings().await?.to_vec())
    }
}
