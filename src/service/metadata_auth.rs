//! Authenticated key metadata: write access to the keystore alone (the
//! PostgreSQL tables, the sled files) cannot grant anyone a key.
//!
//! Every key record carries an HMAC-SHA256 tag over a canonical encoding of
//! everything that decides access and lifecycle (owner, grants, state,
//! versions, minimum decryption version, rotation period...), under a
//! *metadata key* kept in the root record sealed under the root key (like
//! the audit key, and re-sealed by root-key rotation). The service tags
//! every record it writes, inside the store's compare-and-swap, and checks
//! the tag of every record it reads before using it: a record whose tag is
//! missing or wrong is refused ([`Error::TamperedKeyRecord`]), logged and
//! audited, never used to authorize.
//!
//! **Stripping the tags does not help.** Whether a keystore's metadata is
//! authenticated is bound into the root key's wrapping by the master key
//! ([`RootFormat`]): a keystore migrated to authenticated metadata has its
//! root wrapped for the keystore id `ID/metadata-authenticated-v1`, which
//! the database cannot forge. So deleting the metadata key or the tags
//! makes records fail, rather than making the keystore look like an old
//! one to be migrated (which would tag whatever the database holds). A
//! keystore whose root wrapping is the legacy one is migrated once, at
//! start or unseal, before anything is served: every record is tagged,
//! then the root is re-wrapped, so a crash at any point leaves a keystore
//! that the next start migrates again or finds done.
//!
//! Not covered (see SECURITY.md): putting back an *older* copy of a whole
//! root record (the legacy wrapping saved before migration) or of one key
//! record (tagged, but stale: a revoked grant comes back). Both need the
//! old bytes; keep database backups as sensitive as the master key.

use std::borrow::Cow;

use super::Service;
use super::root_secrets::{self, RootSecret};
use crate::error::{CryptoError, Error, MasterKeyError, StoreError};
use crate::master_key::MasterKey;
use crate::model::{
    Alias, ContextConstraint, KeyId, KeyMetadata, KeyPurpose, KeyState, RoleBinding,
};
use crate::store::{KeyStore, KeyUpdate, RetiringRoot, RootWrapping, StoredRoot, UpdateFn};
use tresor_crypto::{MacKey, SecretKey};

/// The HKDF label of the tag key derived from the metadata key.
const TAG_LABEL: &[u8] = b"tresor key metadata v1";
/// The first field of the canonical encoding (its version).
const ENCODING_LABEL: &[u8] = b"tresor/key-metadata v1";
/// The first field of an alias record's canonical encoding.
const ALIAS_ENCODING_LABEL: &[u8] = b"tresor/alias v1";
/// The first field of a role binding's canonical encoding.
const ROLE_BINDING_ENCODING_LABEL: &[u8] = b"tresor/role-binding v1";
/// Keys tagged per page while migrating.
const MIGRATION_PAGE: usize = 256;
/// Tampered key ids remembered so each is audited once, not per read.
const MAX_REPORTED: usize = 1024;

/// How a keystore's root wrapping binds the keystore, and so whether its
/// key metadata is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootFormat {
    /// Bound to the bare keystore id: a keystore from before authenticated
    /// metadata, migrated at its next start.
    Legacy,
    /// Bound to `ID/metadata-authenticated-v1`: every key record must carry
    /// a valid tag.
    Authenticated,
}

/// The keystore id a root wrapping of `format` binds.
fn binding_id(keystore_id: &str, format: RootFormat) -> Cow<'_, str> {
    match format {
        RootFormat::Legacy => Cow::Borrowed(keystore_id),
        RootFormat::Authenticated => Cow::Owned(format!("{keystore_id}/metadata-authenticated-v1")),
    }
}

/// Wraps a root key in the current format (every wrapping tresor writes).
pub(super) async fn wrap_root(
    master: &dyn MasterKey,
    root: &SecretKey,
    keystore_id: &str,
    generation: u32,
) -> Result<Vec<u8>, MasterKeyError> {
    let id = binding_id(keystore_id, RootFormat::Authenticated);
    master.wrap_root_key(root, &id, generation).await
}

/// Unwraps a root key of either format, and says which it was. A wrapping
/// that opens in neither is the provider's error for the legacy attempt
/// (so "wrong master key" still reads as such).
pub(super) async fn unwrap_root(
    master: &dyn MasterKey,
    wrapped: &[u8],
    keystore_id: &str,
    generation: u32,
) -> Result<(SecretKey, RootFormat), MasterKeyError> {
    let current = binding_id(keystore_id, RootFormat::Authenticated);
    match master.unwrap_root_key(wrapped, &current, generation).await {
        Ok(root) => Ok((root, RootFormat::Authenticated)),
        Err(MasterKeyError::WrongMasterKey) => master
            .unwrap_root_key(wrapped, keystore_id, generation)
            .await
            .map(|root| (root, RootFormat::Legacy)),
        Err(other) => Err(other),
    }
}

/// Tags and checks key metadata under one keystore's metadata key.
pub struct MetadataAuth {
    mac: MacKey,
}

impl std::fmt::Debug for MetadataAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetadataAuth(REDACTED)")
    }
}

impl MetadataAuth {
    /// The authenticator of `metadata_key`.
    ///
    /// # Errors
    ///
    /// A [`CryptoError`] if the key derivation fails.
    pub fn new(metadata_key: &SecretKey) -> Result<Self, CryptoError> {
        Ok(Self {
            mac: MacKey::derive(metadata_key, TAG_LABEL)?,
        })
    }

    /// The tag of `key` (its own `tag` field is not covered).
    #[must_use]
    pub fn tag(&self, key: &KeyMetadata) -> Vec<u8> {
        self.mac.sign(&canonical(key)).to_vec()
    }

    /// `key` with its tag set.
    #[must_use]
    pub fn tagged(&self, mut key: KeyMetadata) -> KeyMetadata {
        key.tag = Some(self.tag(&key));
        key
    }

    /// Whether `key` carries a valid tag.
    #[must_use]
    pub fn is_authentic(&self, key: &KeyMetadata) -> bool {
        key.tag
            .as_deref()
            .is_some_and(|tag| self.mac.verify(&canonical(key), tag).is_ok())
    }

    /// `key` if its tag is valid, else [`Error::TamperedKeyRecord`].
    ///
    /// # Errors
    ///
    /// [`Error::TamperedKeyRecord`] for a missing or wrong tag.
    pub fn check(&self, key: &KeyMetadata) -> Result<(), Error> {
        if self.is_authentic(key) {
            Ok(())
        } else {
            Err(Error::TamperedKeyRecord(key.id.clone()))
        }
    }
}

impl MetadataAuth {
    /// `alias` with its tag set: over its name, key id and times, under
    /// the same key as key records with a label of its own.
    #[must_use]
    pub fn tagged_alias(&self, mut alias: Alias) -> Alias {
        alias.tag = Some(self.mac.sign(&alias_canonical(&alias)).to_vec());
        alias
    }

    /// `Ok` if `alias` carries a valid tag, else
    /// [`Error::TamperedKeyRecord`] naming the alias: a database writer
    /// cannot point an alias at another key.
    ///
    /// # Errors
    ///
    /// [`Error::TamperedKeyRecord`] for a missing or wrong tag.
    pub fn check_alias(&self, alias: &Alias) -> Result<(), Error> {
        let authentic = alias
            .tag
            .as_deref()
            .is_some_and(|tag| self.mac.verify(&alias_canonical(alias), tag).is_ok());
        if authentic {
            return Ok(());
        }
        // An alias name is a valid key id (it uses the key id alphabet).
        match KeyId::parse(alias.name.as_str()) {
            Ok(id) => Err(Error::TamperedKeyRecord(id)),
            Err(e) => Err(e),
        }
    }
}

impl MetadataAuth {
    /// `binding` with its tag set: over role, grantee, time and author,
    /// under the same key as key records with a label of its own.
    #[must_use]
    pub fn tagged_role_binding(&self, mut binding: RoleBinding) -> RoleBinding {
        binding.tag = Some(self.mac.sign(&role_binding_canonical(&binding)).to_vec());
        binding
    }

    /// Whether `binding` carries a valid tag: a database writer cannot
    /// give anyone a role.
    #[must_use]
    pub fn is_authentic_role_binding(&self, binding: &RoleBinding) -> bool {
        binding.tag.as_deref().is_some_and(|tag| {
            self.mac
                .verify(&role_binding_canonical(binding), tag)
                .is_ok()
        })
    }
}

/// Length-prefixed fields after a label, then fixed-size numbers: no two
/// different records encode alike.
fn canonical_fields(fields: &[&[u8]], numbers: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    for field in fields {
        out.extend_from_slice(&u64::try_from(field.len()).unwrap_or(u64::MAX).to_be_bytes());
        out.extend_from_slice(field);
    }
    for number in numbers {
        out.extend_from_slice(&number.to_be_bytes());
    }
    out
}

/// The canonical encoding an alias tag covers.
fn alias_canonical(alias: &Alias) -> Vec<u8> {
    canonical_fields(
        &[
            ALIAS_ENCODING_LABEL,
            alias.name.as_str().as_bytes(),
            alias.key_id.as_str().as_bytes(),
        ],
        &[alias.created_at, alias.updated_at],
    )
}

/// The canonical encoding a role binding's tag covers.
fn role_binding_canonical(binding: &RoleBinding) -> Vec<u8> {
    canonical_fields(
        &[
            ROLE_BINDING_ENCODING_LABEL,
            binding.role.as_str().as_bytes(),
            binding.grantee.to_string().as_bytes(),
            binding.created_by.as_str().as_bytes(),
        ],
        &[binding.created_at],
    )
}

/// The canonical encoding the tag covers: a label, then every field in a
/// fixed order, variable-length fields length-prefixed, so that no two
/// different values encode alike. Usage counters live outside the record
/// and are not covered (the store updates them on its own).
fn canonical(key: &KeyMetadata) -> Vec<u8> {
    fn bytes(out: &mut Vec<u8>, data: &[u8]) {
        // Key ids, identities and descriptions are far below 4 GiB.
        out.extend_from_slice(&u64::try_from(data.len()).unwrap_or(u64::MAX).to_be_bytes());
        out.extend_from_slice(data);
    }
    let mut out = Vec::with_capacity(256);
    bytes(&mut out, ENCODING_LABEL);
    bytes(&mut out, key.id.as_str().as_bytes());
    bytes(&mut out, key.owner.as_str().as_bytes());
    bytes(&mut out, key.description.as_bytes());
    match key.state {
        KeyState::Enabled => out.push(1),
        KeyState::Disabled => out.push(2),
        KeyState::PendingDeletion { deletion_at } => {
            out.push(3);
            out.extend_from_slice(&deletion_at.to_be_bytes());
        }
    }
    out.extend_from_slice(&key.primary_version.get().to_be_bytes());
    out.extend_from_slice(&key.min_decryption_version.get().to_be_bytes());
    out.extend_from_slice(
        &u64::try_from(key.versions.len())
            .unwrap_or(u64::MAX)
            .to_be_bytes(),
    );
    for version in &key.versions {
        out.extend_from_slice(&version.version.get().to_be_bytes());
        out.extend_from_slice(&version.created_at.to_be_bytes());
        match version.destroyed_at {
            None => out.push(0),
            Some(at) => {
                out.push(1);
                out.extend_from_slice(&at.to_be_bytes());
            }
        }
    }
    out.extend_from_slice(&key.created_at.to_be_bytes());
    out.extend_from_slice(
        &u64::try_from(key.grants.len())
            .unwrap_or(u64::MAX)
            .to_be_bytes(),
    );
    for (grantee, operations) in &key.grants {
        bytes(&mut out, grantee.as_str().as_bytes());
        out.push(operations.bits());
    }
    match key.rotation_period {
        None => out.push(0),
        Some(period) => {
            out.push(1);
            out.extend_from_slice(&period.secs().to_be_bytes());
        }
    }
    // Fields added later, each only when it is not its default, behind a
    // marker byte, so that every record tagged before they existed keeps
    // its tag (the encoding above is self-delimiting, so the trailer is
    // unambiguous).
    if key.purpose != KeyPurpose::default() {
        out.push(b'P');
        out.push(key.purpose.code());
    }
    if !key.conditional_grants.is_empty() {
        out.push(b'C');
        out.extend_from_slice(
            &u64::try_from(key.conditional_grants.len())
                .unwrap_or(u64::MAX)
                .to_be_bytes(),
        );
        for grant in &key.conditional_grants {
            bytes(&mut out, grant.grantee.to_string().as_bytes());
            out.push(grant.operations.bits());
            let (kind, pairs) = match &grant.constraint {
                ContextConstraint::None => (0u8, None),
                ContextConstraint::Equals(pairs) => (1, Some(pairs)),
                ContextConstraint::Subset(pairs) => (2, Some(pairs)),
            };
            out.push(kind);
            let pairs = pairs
                .map(|p| p.iter().collect::<Vec<_>>())
                .unwrap_or_default();
            out.extend_from_slice(&u64::try_from(pairs.len()).unwrap_or(u64::MAX).to_be_bytes());
            for (k, v) in pairs {
                bytes(&mut out, k.as_bytes());
                bytes(&mut out, v.as_bytes());
            }
            match grant.expires_at {
                None => out.push(0),
                Some(at) => {
                    out.push(1);
                    out.extend_from_slice(&at.to_be_bytes());
                }
            }
        }
    }
    if !key.labels.is_empty() {
        out.push(b'L');
        out.extend_from_slice(
            &u64::try_from(key.labels.len())
                .unwrap_or(u64::MAX)
                .to_be_bytes(),
        );
        for (k, v) in key.labels.iter() {
            bytes(&mut out, k.as_bytes());
            bytes(&mut out, v.as_bytes());
        }
    }
    out
}

/// Tampered key ids already reported (bounded: past the bound, every
/// further one is still refused and logged, but audited only once more
/// the set is cleared).
#[derive(Debug, Default)]
pub(super) struct TamperReports(std::sync::Mutex<std::collections::HashSet<KeyId>>);

impl TamperReports {
    /// Whether `id` is reported for the first time (and remembers it).
    fn first(&self, id: &KeyId) -> bool {
        let mut seen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= MAX_REPORTED {
            seen.clear();
        }
        seen.insert(id.clone())
    }
}

impl Service {
    /// The authenticator of the loaded keystore.
    fn metadata_auth(&self) -> Result<std::sync::Arc<MetadataAuth>, Error> {
        self.keyring()?.metadata_auth()
    }

    /// Checks a record read from the store; a tampered one is refused,
    /// logged and (once per key) audited.
    pub(super) async fn verified(&self, key: KeyMetadata) -> Result<KeyMetadata, Error> {
        match self.metadata_auth()?.check(&key) {
            Ok(()) => Ok(key),
            Err(refused) => {
                self.report_tampered(&key.id).await;
                Err(refused)
            }
        }
    }

    /// Logs and audits a key record that failed its integrity check.
    pub(super) async fn report_tampered(&self, id: &KeyId) {
        tracing::error!(
            key_id = %id,
            "a key record fails its integrity check: it was changed outside tresor; refused"
        );
        if self.tamper_reports.first(id) {
            self.audit_event(
                "tampered-key-record",
                Some(id.as_str()),
                "the stored key record fails its integrity check; refused",
            )
            .await;
        }
    }

    /// [`KeyStore::update_key`] with the stored record checked before
    /// `update` sees it and the result tagged, all inside the store's
    /// compare-and-swap.
    #[tracing::instrument(name = "keystore.update_key", skip_all)]
    pub(super) async fn update_authenticated(
        &self,
        id: &KeyId,
        update: &UpdateFn<'_>,
    ) -> Result<KeyMetadata, StoreError> {
        let auth = self
            .metadata_auth()
            .map_err(|e| StoreError::Rejected(Box::new(e)))?;
        let tagging = |current: &KeyMetadata| {
            auth.check(current)?;
            let mut next = update(current)?;
            next.metadata = auth.tagged(next.metadata);
            Ok(next)
        };
        let result = self.store.update_key(id, &tagging).await;
        if let Err(StoreError::Rejected(inner)) = &result
            && let Error::TamperedKeyRecord(id) = inner.as_ref()
        {
            self.report_tampered(id).await;
        }
        result
    }

    /// `key` tagged for writing.
    pub(super) fn tag_new(&self, key: KeyMetadata) -> Result<KeyMetadata, Error> {
        Ok(self.metadata_auth()?.tagged(key))
    }

    /// The authenticator for a keystore whose current root key is `root`,
    /// unwrapped in `format`: loads the metadata key, or (legacy keystore)
    /// creates it, tags every key record and re-wraps the root so the
    /// keystore counts as authenticated from now on. `retiring` is the
    /// unwrapped retiring root key during a root-key rotation.
    pub(super) async fn prepare_metadata_auth(
        &self,
        root: &SecretKey,
        format: RootFormat,
        retiring: Option<&SecretKey>,
    ) -> Result<MetadataAuth, Error> {
        let store = self.store.as_ref();
        if format == RootFormat::Authenticated {
            let stored = stored_root(store).await?;
            let sealed = stored.metadata_key.as_ref().ok_or_else(|| {
                Error::Store(StoreError::Corrupt(
                    "the root record has lost its metadata key: it was changed outside tresor \
                     (restore it from a backup)"
                        .into(),
                ))
            })?;
            let key = root_secrets::open(root, RootSecret::Metadata, sealed)?;
            return Ok(MetadataAuth::new(&key)?);
        }
        let key = root_secrets::load_or_create(store, root, RootSecret::Metadata).await?;
        let auth = MetadataAuth::new(&key)?;
        let tagged = tag_every_record(store, &auth).await?;
        super::root::crash_point("metadata-auth:after-tagging");
        self.rewrap_authenticated(root, retiring).await?;
        tracing::warn!(
            tagged,
            "key metadata is now authenticated: every key record was tagged and the root key re-wrapped"
        );
        self.audit_event(
            "metadata-authenticated",
            None,
            &format!("{tagged} key records tagged; the root key re-wrapped"),
        )
        .await;
        Ok(auth)
    }

    /// Re-wraps the current (and retiring) root key in the authenticated
    /// format, in one compare-and-swap of the root record.
    async fn rewrap_authenticated(
        &self,
        root: &SecretKey,
        retiring: Option<&SecretKey>,
    ) -> Result<(), Error> {
        let stored = stored_root(self.store.as_ref()).await?;
        let master = self.master();
        let id = &stored.keystore_id;
        let current = RootWrapping {
            master_key: stored.current.master_key.clone(),
            wrapped_root_key: wrap_root(master.as_ref(), root, id, stored.generation).await?,
        };
        let retiring = match (&stored.retiring, retiring) {
            (Some(old), Some(key)) => Some(RetiringRoot {
                generation: old.generation,
                wrapping: RootWrapping {
                    master_key: old.wrapping.master_key.clone(),
                    wrapped_root_key: wrap_root(master.as_ref(), key, id, old.generation).await?,
                },
            }),
            (None, _) => None,
            (Some(_), None) => {
                return Err(Error::Store(StoreError::Corrupt(
                    "a retiring root key is recorded but was not unwrapped".into(),
                )));
            }
        };
        let flipped = StoredRoot {
            current,
            retiring,
            pending: None,
            ..stored.clone()
        };
        match self.store.replace_root(&stored, &flipped).await {
            Ok(()) => Ok(()),
            // Another replica migrating at the same time flipped it first.
            Err(StoreError::Conflict) if self.root_is_authenticated().await? => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the stored root is wrapped in the authenticated format now.
    async fn root_is_authenticated(&self) -> Result<bool, Error> {
        let stored = stored_root(self.store.as_ref()).await?;
        let (_, format) = unwrap_root(
            self.master().as_ref(),
            &stored.current.wrapped_root_key,
            &stored.keystore_id,
            stored.generation,
        )
        .await?;
        Ok(format == RootFormat::Authenticated)
    }
}

async fn stored_root(store: &dyn KeyStore) -> Result<StoredRoot, Error> {
    store
        .root()
        .await?
        .ok_or(Error::Store(StoreError::NotInitialised))
}

/// Tags every key record that is not tagged validly yet; returns how many
/// it wrote.
async fn tag_every_record(store: &dyn KeyStore, auth: &MetadataAuth) -> Result<u64, Error> {
    let mut after: Option<KeyId> = None;
    let mut tagged = 0u64;
    loop {
        let page = store.list_keys("", after.as_ref(), MIGRATION_PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(tagged);
        };
        after = Some(last.id.clone());
        for key in page.iter().filter(|key| !auth.is_authentic(key)) {
            let tag = |current: &KeyMetadata| Ok(KeyUpdate::metadata(auth.tagged(current.clone())));
            match store.update_key(&key.id, &tag).await {
                Ok(_) => tagged += 1,
                // Deleted meanwhile: nothing to tag.
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::model::{KeyVersion, Operation, OperationSet, RotationPeriod, VersionInfo};

    fn key(id: &str) -> KeyMetadata {
        KeyMetadata {
            id: KeyId::parse(id).expect("id"),
            owner: Identity::parse_stored("spiffe://t/owner").expect("identity"),
            description: "d".into(),
            state: KeyState::Enabled,
            primary_version: KeyVersion::FIRST,
            min_decryption_version: KeyVersion::FIRST,
            versions: vec![VersionInfo::new(KeyVersion::FIRST, 10)],
            created_at: 10,
            grants: Default::default(),
            rotation_period: None,
            conditional_grants: Vec::new(),
            purpose: Default::default(),
            labels: Default::default(),
            tag: None,
        }
    }

    /// One edit of a record, as a database writer could make it.
    type Change<'a> = Box<dyn Fn(&mut KeyMetadata) + 'a>;

    fn auth(byte: u8) -> MetadataAuth {
        MetadataAuth::new(&SecretKey::from_bytes(&[byte; 32]).expect("key")).expect("auth")
    }

    #[test]
    fn a_change_to_any_covered_field_breaks_the_tag() {
        let auth = auth(1);
        let good = auth.tagged(KeyMetadata {
            conditional_grants: Vec::new(),
            purpose: crate::model::KeyPurpose::Mac,
            labels: crate::model::Labels::parse([("team", "billing")]).expect("labels"),
            ..key("a/b")
        });
        assert!(auth.is_authentic(&good));
        let grantee = Identity::parse_stored("spiffe://t/attacker").expect("identity");
        let changes: Vec<(&str, Change)> = vec![
            ("owner", Box::new(|k| k.owner = grantee.clone())),
            ("description", Box::new(|k| k.description.push('x'))),
            ("state", Box::new(|k| k.state = KeyState::Disabled)),
            (
                "deletion time",
                Box::new(|k| k.state = KeyState::PendingDeletion { deletion_at: 5 }),
            ),
            (
                "primary version",
                Box::new(|k| k.primary_version = KeyVersion::new(2).expect("v")),
            ),
            (
                "min decryption version",
                Box::new(|k| k.min_decryption_version = KeyVersion::new(2).expect("v")),
            ),
            (
                "version destroyed",
                Box::new(|k| k.versions[0].destroyed_at = Some(11)),
            ),
            (
                "version created",
                Box::new(|k| k.versions[0].created_at = 9),
            ),
            ("versions", Box::new(|k| k.versions.clear())),
            ("created", Box::new(|k| k.created_at = 11)),
            (
                "grant",
                Box::new(|k| {
                    k.grants.insert(
                        grantee.clone(),
                        std::iter::once(Operation::Decrypt).collect::<OperationSet>(),
                    );
                }),
            ),
            (
                "rotation",
                Box::new(|k| {
                    k.rotation_period = Some(RotationPeriod::from_secs(86_400).expect("period"));
                }),
            ),
            (
                "purpose",
                Box::new(|k| k.purpose = crate::model::KeyPurpose::EncryptDecrypt),
            ),
            (
                "labels",
                Box::new(|k| k.labels = crate::model::Labels::new()),
            ),
            (
                "conditional grant",
                Box::new(|k| {
                    k.conditional_grants.push(crate::model::ConditionalGrant {
                        grantee: crate::model::Grantee::PathPrefix("spiffe://t/ns/".into()),
                        operations: std::iter::once(Operation::Decrypt).collect(),
                        constraint: crate::model::ContextConstraint::None,
                        expires_at: None,
                    });
                }),
            ),
            (
                "label value",
                Box::new(|k| {
                    k.labels = crate::model::Labels::parse([("team", "other")]).expect("labels");
                }),
            ),
        ];
        for (what, change) in changes {
            let mut changed = good.clone();
            change(&mut changed);
            assert!(!auth.is_authentic(&changed), "{what} is not covered");
            assert!(matches!(
                auth.check(&changed),
                Err(Error::TamperedKeyRecord(_))
            ));
        }
    }

    /// Records tagged before purposes and labels existed keep their tags:
    /// the defaults add nothing to the canonical encoding.
    #[test]
    fn defaults_of_later_fields_leave_old_tags_valid() {
        let auth = auth(3);
        let old = key("a/b");
        // The bytes an older release tagged end with the rotation period.
        let canonical = canonical(&old);
        assert_eq!(canonical.last(), Some(&0));
        // Fixed: the tag this record has had since metadata was authenticated.
        assert_eq!(
            hex::encode(auth.tag(&old)),
            "08f28236449b933694c7de9866f8820fdac6fcbb822a2ac44899367aedf14718"
        );
    }

    #[test]
    fn a_tag_belongs_to_one_key_and_one_metadata_key() {
        let auth1 = auth(1);
        let a = auth1.tagged(key("a/b"));
        let mut b = key("a/c");
        b.tag = a.tag.clone();
        assert!(!auth1.is_authentic(&b), "a tag moved to another key");
        assert!(!auth(2).is_authentic(&a), "another keystore's metadata key");
        assert!(!auth1.is_authentic(&key("a/b")), "no tag");
    }

    #[test]
    fn root_bindings_differ_by_format() {
        assert_eq!(binding_id("ks", RootFormat::Legacy), "ks");
        assert_ne!(binding_id("ks", RootFormat::Authenticated), "ks");
    }
}
