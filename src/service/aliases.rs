//! Aliases in the service: resolving them on the data plane, and the
//! admin calls that manage them (CreateAlias, UpdateAlias, DeleteAlias,
//! ListAliases).
//!
//! Authorization is always decided on the target key, never on the
//! alias: a call through an alias is exactly the call on its key. A
//! missing alias resolves to no key, so a caller without access gets the
//! same PERMISSION_DENIED for a missing alias as for a forbidden key.
//! Alias records are tagged under the metadata key like key records, so a
//! database writer cannot point an alias at another key unnoticed.

use std::sync::Arc;

use super::Service;
use super::admin::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use super::authz;
use crate::error::{Error, Precondition, StoreError};
use crate::identity::Identity;
use crate::model::{Alias, AliasName, KeyId, KeyMetadata};

/// One page of an alias listing.
#[derive(Debug)]
pub struct AliasPage {
    /// The aliases, in name order.
    pub aliases: Vec<Alias>,
    /// The last alias of this page when another page follows.
    pub next_after: Option<AliasName>,
}

/// Aliases read per store call while scanning (listing, purging).
const SCAN_PAGE: usize = 256;

impl Service {
    /// The live key a data-plane key id names: the key itself, or the
    /// target of the alias it names (`None`: no such key or alias).
    pub(super) async fn live_key_or_alias(
        &self,
        id: &KeyId,
    ) -> Result<Option<Arc<KeyMetadata>>, Error> {
        if !AliasName::names_alias(id.as_str()) {
            return self.live_key(id).await;
        }
        let Ok(name) = AliasName::parse(id.as_str()) else {
            return Ok(None);
        };
        match self.alias_target(&name).await? {
            Some(target) => self.live_key(&target).await,
            None => Ok(None),
        }
    }

    /// Where an alias points, from the cache or the store.
    async fn alias_target(&self, name: &AliasName) -> Result<Option<KeyId>, Error> {
        if let Some(target) = self.aliases.get(name) {
            return Ok(Some(target));
        }
        let read_started = std::time::Instant::now();
        let Some(alias) = self.store.alias(name).await? else {
            return Ok(None);
        };
        let alias = self.verified_alias(alias).await?;
        self.aliases
            .put_read(name.clone(), alias.key_id.clone(), read_started);
        Ok(Some(alias.key_id))
    }

    /// `alias` if its tag is valid; a tampered one is logged, audited and
    /// refused like a tampered key record.
    async fn verified_alias(&self, alias: Alias) -> Result<Alias, Error> {
        match self.keyring()?.metadata_auth()?.check_alias(&alias) {
            Ok(()) => Ok(alias),
            Err(Error::TamperedKeyRecord(id)) => {
                self.report_tampered(&id).await;
                Err(Error::TamperedKeyRecord(id))
            }
            Err(other) => Err(other),
        }
    }

    /// A key an alias may point at: it exists and is not past its
    /// deletion time (disabled and pending keys are fine: an alias to them
    /// behaves like them), and is not itself named like an alias.
    async fn alias_target_key(&self, key_id: &KeyId) -> Result<Arc<KeyMetadata>, Error> {
        if AliasName::names_alias(key_id.as_str()) {
            return Err(Error::InvalidArgument(
                "key_id must name a key, not another alias".into(),
            ));
        }
        self.live_key(key_id).await?.ok_or(Error::NotFound)
    }

    /// Creates `name` pointing at `key_id`. Admins only.
    pub async fn create_alias(
        &self,
        identity: &Identity,
        name: &AliasName,
        key_id: &KeyId,
    ) -> Result<Alias, Error> {
        authz::require(self.caller(identity).await?, crate::model::Role::Admin)?;
        self.alias_target_key(key_id).await?;
        let now = self.clock.now();
        let alias = self.keyring()?.metadata_auth()?.tagged_alias(Alias {
            name: name.clone(),
            key_id: key_id.clone(),
            created_at: now,
            updated_at: now,
            tag: None,
        });
        self.store.create_alias(&alias).await.map_err(|e| match e {
            StoreError::AlreadyExists => Error::AlreadyExists,
            other => other.into(),
        })?;
        self.aliases.put_written(name.clone(), Some(key_id.clone()));
        tracing::info!(alias = %name, key_id = %key_id, by = %identity, "created alias");
        Ok(alias)
    }

    /// Points `name` at `key_id`, which must have the same purpose as the
    /// key it points at now (as in AWS KMS: a repoint never turns an
    /// encryption alias into a MAC one). Admins only.
    pub async fn update_alias(
        &self,
        identity: &Identity,
        name: &AliasName,
        key_id: &KeyId,
    ) -> Result<Alias, Error> {
        authz::require(self.caller(identity).await?, crate::model::Role::Admin)?;
        let current = self.store.alias(name).await?.ok_or(Error::NotFound)?;
        let current = self.verified_alias(current).await?;
        let target = self.alias_target_key(key_id).await?;
        // The key it points at now, also past its deletion time (until the
        // purge destroys it): a repoint never changes the purpose.
        let old = match self.store.key(&current.key_id).await? {
            Some(old) => Some(self.verified(old).await?),
            None => None,
        };
        if let Some(old) = old
            && old.purpose != target.purpose
        {
            return Err(Error::FailedPrecondition(Precondition::WrongKeyPurpose {
                purpose: target.purpose.name(),
                operation: "an alias of a key of another purpose",
            }));
        }
        let alias = self.keyring()?.metadata_auth()?.tagged_alias(Alias {
            key_id: key_id.clone(),
            updated_at: self.clock.now(),
            tag: None,
            ..current
        });
        self.store.replace_alias(&alias).await.map_err(not_found)?;
        self.aliases.put_written(name.clone(), Some(key_id.clone()));
        tracing::info!(alias = %name, key_id = %key_id, by = %identity, "repointed alias");
        Ok(alias)
    }

    /// Deletes `name`; its key is untouched. Admins only.
    pub async fn delete_alias(&self, identity: &Identity, name: &AliasName) -> Result<(), Error> {
        authz::require(self.caller(identity).await?, crate::model::Role::Admin)?;
        self.store.delete_alias(name).await.map_err(not_found)?;
        self.aliases.put_written(name.clone(), None);
        tracing::info!(alias = %name, by = %identity, "deleted alias");
        Ok(())
    }

    /// Aliases whose name starts with `prefix`, a page at a time: admins
    /// see every alias, others the aliases of keys they own. Tampered
    /// records are left out (and reported).
    pub async fn list_aliases(
        &self,
        identity: &Identity,
        prefix: &str,
        page_size: u32,
        start_after: Option<AliasName>,
    ) -> Result<AliasPage, Error> {
        if prefix.len() > crate::model::MAX_KEY_ID_LEN + crate::model::ALIAS_PREFIX.len() {
            return Err(Error::InvalidArgument("prefix is too long".into()));
        }
        let page_size = match usize::try_from(page_size).unwrap_or(usize::MAX) {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let caller = self.caller(identity).await?;
        let mut after = start_after;
        let mut aliases = Vec::with_capacity(page_size);
        loop {
            let batch = self
                .store
                .list_aliases(prefix, after.as_ref(), SCAN_PAGE)
                .await?;
            let exhausted = batch.len() < SCAN_PAGE;
            for alias in batch {
                after = Some(alias.name.clone());
                let alias = match self.verified_alias(alias).await {
                    Ok(alias) => alias,
                    Err(Error::TamperedKeyRecord(_)) => continue,
                    Err(e) => return Err(e),
                };
                let visible = caller.sees_every_key()
                    || self
                        .live_key(&alias.key_id)
                        .await?
                        .is_some_and(|key| authz::lists(caller, &key));
                if visible {
                    if aliases.len() == page_size {
                        let next_after = aliases.last().map(|a: &Alias| a.name.clone());
                        return Ok(AliasPage {
                            aliases,
                            next_after,
                        });
                    }
                    aliases.push(alias);
                }
            }
            if exhausted {
                return Ok(AliasPage {
                    aliases,
                    next_after: None,
                });
            }
        }
    }

    /// Deletes every alias of a key that was just destroyed, so that a
    /// later key with the same id never inherits them; each deletion is
    /// audited.
    pub(super) async fn delete_aliases_of(&self, key_id: &KeyId) -> Result<(), Error> {
        let mut after: Option<AliasName> = None;
        loop {
            let batch = self
                .store
                .list_aliases(crate::model::ALIAS_PREFIX, after.as_ref(), SCAN_PAGE)
                .await?;
            let exhausted = batch.len() < SCAN_PAGE;
            for alias in batch {
                after = Some(alias.name.clone());
                if &alias.key_id != key_id {
                    continue;
                }
                match self.store.delete_alias(&alias.name).await {
                    Ok(()) | Err(StoreError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
                self.aliases.put_written(alias.name.clone(), None);
                self.audit_event(
                    "alias_deleted",
                    Some(key_id.as_str()),
                    &format!("{} pointed at the destroyed key", alias.name),
                )
                .await;
            }
            if exhausted {
                return Ok(());
            }
        }
    }
}

fn not_found(e: StoreError) -> Error {
    match e {
        StoreError::NotFound => Error::NotFound,
        other => other.into(),
    }
}
