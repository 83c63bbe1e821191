//! Control-plane operations: key lifecycle, grants, listing and status.

use super::authz::{self, Action};
use super::{Service, lifecycle};
use crate::error::{Error, StoreError};
use crate::identity::Identity;
use crate::model::{
    ALIAS_PREFIX, AliasName, ConditionalGrant, ContextConstraint, Grantee, KeyId, KeyMetadata,
    KeyPurpose, KeyState, KeyVersion, Labels, OperationSet, RotationPeriod, VersionInfo,
};
use crate::store::KeyUpdate;
use tresor_crypto::SecretKey;

/// Longest key description accepted.
pub const MAX_DESCRIPTION_BYTES: usize = 1024;
/// Page size when the request gives 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page size.
pub const MAX_PAGE_SIZE: usize = 1000;

/// What CreateKey makes: everything about a new key but its id.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The identity that owns it.
    pub owner: Identity,
    /// Free text for humans (at most [`MAX_DESCRIPTION_BYTES`]).
    pub description: String,
    /// Automatic rotation, if any.
    pub rotation_period: Option<RotationPeriod>,
    /// What the key is for, fixed for its life.
    pub purpose: KeyPurpose,
    /// Labels.
    pub labels: Labels,
}

impl NewKey {
    /// An encryption key owned by `owner`, without description, rotation
    /// period or labels.
    pub fn owned_by(owner: Identity) -> Self {
        Self {
            owner,
            description: String::new(),
            rotation_period: None,
            purpose: KeyPurpose::default(),
            labels: Labels::new(),
        }
    }
}

/// One page of a key listing.
#[derive(Debug)]
pub struct KeyPage {
    /// The keys, in id order.
    pub keys: Vec<KeyMetadata>,
    /// The last key of this page when another page follows (the gRPC edge
    /// turns it into the next page token); `None` on the last page.
    pub next_after: Option<KeyId>,
}

/// What GetStatus reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStatus {
    /// Whether the service is sealed.
    pub sealed: bool,
    /// Keys in the keystore.
    pub key_count: u64,
    /// This server's version.
    pub server_version: &'static str,
    /// The master key in use.
    pub master_key: String,
    /// Generation of the current root key.
    pub root_generation: u32,
    /// A root-key rotation in progress: `Some` even while paused (sealed).
    pub root_rotation: Option<crate::service::RootRotation>,
    /// Where unsealing stands (the quorum, and the open round if any).
    pub unseal: crate::service::UnsealProgress,
    /// The certificate new TLS handshakes get, once the listener serves.
    pub server_certificate: Option<ServedCertificate>,
}

/// The server certificate the listener presents to new handshakes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedCertificate {
    /// Its subject, as text (`CN=tresor`).
    pub subject: String,
    /// Its serial, colon-separated lower-case hex.
    pub serial: String,
    /// Start of its validity, Unix seconds.
    pub not_before_unix: i64,
    /// End of its validity, Unix seconds.
    pub not_after_unix: i64,
}

/// The domain error an update function refused with, or the store's.
pub(super) fn unwrap_rejected(err: StoreError) -> Error {
    match err {
        StoreError::Rejected(inner) => *inner,
        StoreError::NotFound => Error::NotFound,
        other => Error::Store(other),
    }
}

impl Service {
    /// Loads a key and checks that `identity` may do `action` on it.
    async fn authorized_key(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        action: Action,
    ) -> Result<KeyMetadata, Error> {
        let key = self.live_key(key_id).await?;
        authz::authorize(self.caller(identity).await?, action, key.as_deref())?;
        key.map(std::sync::Arc::unwrap_or_clone)
            .ok_or(Error::NotFound)
    }

    /// Authorizes, then applies a pure transition atomically.
    async fn transition(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        action: Action,
        change: impl Fn(&KeyMetadata) -> Result<KeyMetadata, Error> + Send + Sync,
    ) -> Result<KeyMetadata, Error> {
        self.authorized_key(identity, key_id, action).await?;
        let key = self
            .update_authenticated(key_id, &|current| change(current).map(KeyUpdate::metadata))
            .await
            .map_err(unwrap_rejected)?;
        self.remember(&key);
        Ok(key)
    }

    /// Creates a key with a first version and no rotation period. Admins
    /// only.
    pub async fn create_key(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        owner: &Identity,
        description: &str,
    ) -> Result<KeyMetadata, Error> {
        let spec = NewKey {
            description: description.to_owned(),
            ..NewKey::owned_by(owner.clone())
        };
        self.create_key_as(identity, key_id, spec).await
    }

    /// Creates a key as `spec` says, with a first version. Admins only.
    pub async fn create_key_as(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        spec: NewKey,
    ) -> Result<KeyMetadata, Error> {
        authz::require(self.caller(identity).await?, crate::model::Role::Admin)?;
        if AliasName::names_alias(key_id.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "key ids starting with {ALIAS_PREFIX} name aliases; create the key under another id and point an alias at it"
            )));
        }
        let NewKey {
            owner,
            description,
            rotation_period,
            purpose,
            labels,
        } = spec;
        let owner = &owner;
        if description.len() > MAX_DESCRIPTION_BYTES {
            return Err(Error::InvalidArgument(format!(
                "description is longer than {MAX_DESCRIPTION_BYTES} bytes"
            )));
        }
        let keyring = self.keyring()?;
        self.refresh_roots(&keyring).await?;
        let now = self.clock.now();
        let dek = SecretKey::generate()?;
        let first = keyring.wrap_dek(key_id, KeyVersion::FIRST, &dek)?;
        let key = KeyMetadata {
            id: key_id.clone(),
            owner: owner.clone(),
            description,
            state: KeyState::Enabled,
            primary_version: KeyVersion::FIRST,
            min_decryption_version: KeyVersion::FIRST,
            versions: vec![VersionInfo::new(KeyVersion::FIRST, now)],
            created_at: now,
            grants: Default::default(),
            conditional_grants: Vec::new(),
            rotation_period,
            purpose,
            labels,
            tag: None,
        };
        let key = self.tag_new(key)?;
        if let Some(stale) = self.store.key(key_id).await? {
            // A key past its deletion window that the purge has not reached
            // yet: destroy it now so the id can be reused.
            if stale.deletion_at().is_some_and(|at| at <= now) {
                self.purge_due_deletions().await?;
            }
        }
        let mut first = first;
        for attempt in 0..2 {
            match self.store.create_key(&key, &first).await {
                Ok(()) => break,
                Err(StoreError::AlreadyExists) => return Err(Error::AlreadyExists),
                Err(StoreError::Conflict) if attempt == 0 => {
                    // A root-key rotation switched root keys meanwhile.
                    self.refresh_roots(&keyring).await?;
                    first = keyring.wrap_dek(key_id, KeyVersion::FIRST, &dek)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.remember(&key);
        tracing::info!(key_id = %key_id, owner = %owner, purpose = %purpose, by = %identity, "created key");
        Ok(key)
    }

    /// Adds a version and makes it primary. Admins and the owner.
    pub async fn rotate_key(
        &self,
        identity: &Identity,
        key_id: &KeyId,
    ) -> Result<KeyMetadata, Error> {
        let keyring = self.keyring()?;
        self.authorized_key(identity, key_id, Action::Rotate)
            .await?;
        let now = self.clock.now();
        let max_versions = self.options.lifecycle.max_versions_per_key;
        let rotated = self
            .rotate_with(&keyring, key_id, |current| {
                lifecycle::rotate_on_request(current, now, max_versions)
            })
            .await?;
        tracing::info!(key_id = %key_id, version = %rotated.primary_version, by = %identity, "rotated key");
        Ok(rotated)
    }

    /// A key's metadata. Admins and the owner.
    pub async fn get_key(&self, identity: &Identity, key_id: &KeyId) -> Result<KeyMetadata, Error> {
        self.authorized_key(identity, key_id, Action::Read).await
    }

    /// Disables a key. Admins only.
    pub async fn disable_key(
        &self,
        identity: &Identity,
        key_id: &KeyId,
    ) -> Result<KeyMetadata, Error> {
        self.transition(identity, key_id, Action::Manage, lifecycle::disable)
            .await
    }

    /// Enables a key. Admins only.
    pub async fn enable_key(
        &self,
        identity: &Identity,
        key_id: &KeyId,
    ) -> Result<KeyMetadata, Error> {
        self.transition(identity, key_id, Action::Manage, lifecycle::enable)
            .await
    }

    /// Sets the minimum decryption version. Admins only.
    pub async fn set_min_decryption_version(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        version: KeyVersion,
    ) -> Result<KeyMetadata, Error> {
        self.transition(identity, key_id, Action::Manage, |key| {
            lifecycle::set_min_decryption_version(key, version)
        })
        .await
    }

    /// Sets or clears the automatic rotation period. Admins only.
    pub async fn set_rotation_period(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        period: Option<RotationPeriod>,
    ) -> Result<KeyMetadata, Error> {
        let key = self
            .transition(identity, key_id, Action::Manage, |key| {
                lifecycle::set_rotation_period(key, period)
            })
            .await?;
        tracing::info!(key_id = %key_id, period_secs = ?period.map(RotationPeriod::secs), by = %identity, "set rotation period");
        Ok(key)
    }

    /// Replaces a key's labels (an empty set removes them all). Admins
    /// only: labels are metadata and never authorize anything.
    pub async fn set_key_labels(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        labels: Labels,
    ) -> Result<KeyMetadata, Error> {
        let count = labels.len();
        let key = self
            .transition(identity, key_id, Action::Manage, |key| {
                Ok(KeyMetadata {
                    labels: labels.clone(),
                    ..key.clone()
                })
            })
            .await?;
        tracing::info!(key_id = %key_id, labels = count, by = %identity, "set key labels");
        Ok(key)
    }

    /// Makes `new_owner` the key's owner. Admins only, and never to
    /// themselves (separation of duties: another admin must).
    pub async fn transfer_key_ownership(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        new_owner: &Identity,
    ) -> Result<KeyMetadata, Error> {
        let caller = self.caller(identity).await?;
        let owner = Grantee::Exact(new_owner.clone());
        let key = self
            .transition(identity, key_id, Action::Manage, |key| {
                authz::check_not_self_grant(caller, key, &owner)?;
                lifecycle::refuse_if_pending(key)?;
                Ok(KeyMetadata {
                    owner: new_owner.clone(),
                    ..key.clone()
                })
            })
            .await?;
        tracing::info!(key_id = %key_id, owner = %new_owner, by = %identity, "transferred key ownership");
        Ok(key)
    }

    /// Replaces a key's description. Admins only.
    pub async fn update_key_description(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        description: &str,
    ) -> Result<KeyMetadata, Error> {
        if description.len() > MAX_DESCRIPTION_BYTES {
            return Err(Error::InvalidArgument(format!(
                "description is longer than {MAX_DESCRIPTION_BYTES} bytes"
            )));
        }
        self.transition(identity, key_id, Action::Manage, |key| {
            Ok(KeyMetadata {
                description: description.to_owned(),
                ..key.clone()
            })
        })
        .await
    }

    /// Destroys one old version: marks it destroyed and erases its wrapped
    /// DEK from the store in one atomic step, then drops any cached copy.
    /// Ciphertexts of that version can never be decrypted again. Admins
    /// only.
    pub async fn destroy_key_version(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        version: KeyVersion,
    ) -> Result<KeyMetadata, Error> {
        self.authorized_key(identity, key_id, Action::Manage)
            .await?;
        let now = self.clock.now();
        let destroy = |current: &KeyMetadata| {
            let lifecycle::VersionChange { metadata, version } =
                lifecycle::destroy_version(current, version, now)?;
            Ok(KeyUpdate {
                metadata,
                new_version: None,
                destroy_version: Some(version),
            })
        };
        let key = self
            .update_authenticated(key_id, &destroy)
            .await
            .map_err(unwrap_rejected)?;
        self.remember(&key);
        if let Some(keyring) = self.read_keyring().clone() {
            keyring.forget_version(key_id, key.created_at, version);
        }
        tracing::warn!(key_id = %key_id, version = version.get(), by = %identity, "destroyed key version");
        Ok(key)
    }

    /// Schedules deletion. Admins only.
    pub async fn schedule_key_deletion(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        pending_days: u32,
    ) -> Result<KeyMetadata, Error> {
        let now = self.clock.now();
        let key = self
            .transition(identity, key_id, Action::Manage, |key| {
                lifecycle::schedule_deletion(key, pending_days, now)
            })
            .await?;
        tracing::warn!(key_id = %key_id, deletion_at = ?key.deletion_at(), by = %identity, "scheduled key deletion");
        Ok(key)
    }

    /// Cancels a scheduled deletion. Admins only.
    pub async fn cancel_key_deletion(
        &self,
        identity: &Identity,
        key_id: &KeyId,
    ) -> Result<KeyMetadata, Error> {
        self.transition(identity, key_id, Action::Manage, lifecycle::cancel_deletion)
            .await
    }

    /// Grants operations to another identity. Admins only.
    pub async fn create_grant(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        grantee: &Identity,
        operations: OperationSet,
    ) -> Result<KeyMetadata, Error> {
        let caller = self.caller(identity).await?;
        let covered = Grantee::Exact(grantee.clone());
        self.transition(identity, key_id, Action::Manage, |key| {
            authz::check_not_self_grant(caller, key, &covered)?;
            lifecycle::grant(key, grantee, operations)
        })
        .await
    }

    /// Revokes operations (all when empty) from a grantee. Admins only.
    pub async fn revoke_grant(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        grantee: &Identity,
        operations: OperationSet,
    ) -> Result<KeyMetadata, Error> {
        self.revoke_grantee(
            identity,
            key_id,
            &Grantee::Exact(grantee.clone()),
            operations,
        )
        .await
    }

    /// Grants operations to an identity or a SPIFFE-ID pattern, with a
    /// context constraint and an expiry if given (a grant with neither,
    /// to one identity, is a plain grant). Admins only.
    pub async fn create_conditional_grant(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        grant: ConditionalGrant,
    ) -> Result<KeyMetadata, Error> {
        let plain = grant.constraint == ContextConstraint::None && grant.expires_at.is_none();
        if let (Grantee::Exact(grantee), true) = (&grant.grantee, plain) {
            return self
                .create_grant(identity, key_id, grantee, grant.operations)
                .await;
        }
        let now = self.clock.now();
        let caller = self.caller(identity).await?;
        self.transition(identity, key_id, Action::Manage, |key| {
            authz::check_not_self_grant(caller, key, &grant.grantee)?;
            lifecycle::grant_conditional(key, grant.clone(), now)
        })
        .await
    }

    /// Revokes operations (all when empty) from every grant of `grantee`
    /// (an identity or a pattern), plain or conditional. Admins only.
    pub async fn revoke_grantee(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        grantee: &Grantee,
        operations: OperationSet,
    ) -> Result<KeyMetadata, Error> {
        self.transition(identity, key_id, Action::Manage, |key| {
            lifecycle::revoke_grantee(key, grantee, operations)
        })
        .await
    }

    /// Lists keys: every key for admins, owned keys for everyone else (not
    /// keys it holds grants on). A non-admin's listing reads the store's
    /// owner index, so its cost follows its own keys, not the store's.
    pub async fn list_keys(
        &self,
        identity: &Identity,
        prefix: &str,
        page_size: u32,
        start_after: Option<KeyId>,
    ) -> Result<KeyPage, Error> {
        self.list_keys_matching(identity, prefix, &Labels::new(), page_size, start_after)
            .await
    }

    /// ListKeys with a label selector: only keys carrying every label of
    /// `selector` (equality). Otherwise as [`Service::list_keys`].
    pub async fn list_keys_matching(
        &self,
        identity: &Identity,
        prefix: &str,
        selector: &Labels,
        page_size: u32,
        start_after: Option<KeyId>,
    ) -> Result<KeyPage, Error> {
        if prefix.len() > crate::model::MAX_KEY_ID_LEN {
            return Err(Error::InvalidArgument("prefix is too long".into()));
        }
        let page_size = match usize::try_from(page_size).unwrap_or(usize::MAX) {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let mut after = start_after;
        let caller = self.caller(identity).await?;
        let now = self.clock.now();
        let mut keys: Vec<KeyMetadata> = Vec::with_capacity(page_size);
        let mut more = false;
        'scan: loop {
            // One extra entry per batch, so a full last page is known to be
            // the last and gets no token.
            let batch = if caller.sees_every_key() {
                self.store
                    .list_keys(prefix, after.as_ref(), page_size + 1)
                    .await?
            } else {
                self.store
                    .list_owned_keys(identity, prefix, after.as_ref(), page_size + 1)
                    .await?
            };
            let exhausted = batch.len() <= page_size;
            for key in batch {
                after = Some(key.id.clone());
                // A tampered record is left out (and reported), not listed.
                let key = match self.verified(key).await {
                    Ok(key) => key,
                    Err(Error::TamperedKeyRecord(_)) => continue,
                    Err(e) => return Err(e),
                };
                let visible = authz::lists(caller, &key);
                let live = key.deletion_at().is_none_or(|at| at > now);
                if visible && live && key.labels.matches(selector) {
                    if keys.len() == page_size {
                        more = true;
                        break 'scan;
                    }
                    keys.push(key);
                }
            }
            if exhausted {
                break;
            }
        }
        let next_after = match keys.last() {
            Some(last) if more => Some(last.id.clone()),
            _ => None,
        };
        Ok(KeyPage { keys, next_after })
    }

    /// Seal state, key count, version and unseal progress. Any role
    /// holder and the unseal approvers.
    pub async fn status(&self, identity: &Identity) -> Result<ServiceStatus, Error> {
        self.authorize_status(identity).await?;
        self.current_status().await
    }

    /// The status as [`Service::status`] shows it, without a check: the
    /// answer of a call already authorized (Seal, Unseal, RotateRootKey),
    /// which a bound security officer must get even though a sealed
    /// service no longer recognises its role.
    pub async fn current_status(&self) -> Result<ServiceStatus, Error> {
        let root = self.store.root().await?;
        let root_generation = root.as_ref().map_or(0, |r| r.generation);
        let rotating = root.as_ref().is_some_and(|r| r.retiring.is_some());
        let root_rotation = rotating.then(|| {
            self.root_rotation()
                .unwrap_or(crate::service::RootRotation {
                    rewrapped: 0,
                    total: 0,
                })
        });
        Ok(ServiceStatus {
            root_generation,
            root_rotation,
            sealed: self.is_sealed(),
            key_count: self.store.key_count().await?,
            server_version: env!("CARGO_PKG_VERSION"),
            master_key: self.master().describe(),
            unseal: self.unseal_progress().await,
            server_certificate: self.served_certificate(),
        })
    }

    /// Records the certificate new handshakes get (the server calls it at
    /// start and after every reload).
    pub fn set_served_certificate(&self, certificate: ServedCertificate) {
        match self.served_certificate.write() {
            Ok(mut served) => *served = Some(certificate),
            Err(poisoned) => *poisoned.into_inner() = Some(certificate),
        }
    }

    fn served_certificate(&self) -> Option<ServedCertificate> {
        match self.served_certificate.read() {
            Ok(served) => served.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
