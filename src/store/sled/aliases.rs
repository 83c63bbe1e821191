//! Aliases in the sled keystore: one tree, `aliases`, from the alias name
//! to its record. Every write goes through [`SledKeyStore::write`], so it
//! is serialised with every other mutation and flushed before it returns.

use async_trait::async_trait;

use super::SledKeyStore;
use super::packed_tree::backend;
use crate::error::StoreError;
use crate::model::{Alias, AliasName};
use crate::store::{AliasStore, records};

/// The tree's name.
pub(super) const TREE: &str = "aliases";

/// Every alias, in name order (for a snapshot).
pub(super) fn all(tree: &sled::Tree) -> Result<Vec<Alias>, StoreError> {
    tree.iter()
        .map(|entry| {
            let (_, value) = entry.map_err(backend)?;
            records::decode_alias(&value)
        })
        .collect()
}

/// Writes `aliases` into an emptied tree (a restore).
pub(super) fn restore(tree: &sled::Tree, aliases: &[Alias]) -> Result<(), StoreError> {
    for alias in aliases {
        tree.insert(alias.name.as_str(), records::encode_alias(alias))
            .map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl AliasStore for SledKeyStore {
    async fn alias(&self, name: &AliasName) -> Result<Option<Alias>, StoreError> {
        self.aliases
            .get(name.as_str())
            .map_err(backend)?
            .map(|bytes| records::decode_alias(&bytes))
            .transpose()
    }

    async fn create_alias(&self, alias: &Alias) -> Result<(), StoreError> {
        let encoded = records::encode_alias(alias);
        self.write(|store| {
            store
                .aliases
                .compare_and_swap(alias.name.as_str(), None as Option<&[u8]>, Some(encoded))
                .map_err(backend)?
                .map_err(|_| StoreError::AlreadyExists)
        })
        .await
    }

    async fn replace_alias(&self, alias: &Alias) -> Result<(), StoreError> {
        let encoded = records::encode_alias(alias);
        self.write(|store| {
            // Writes are serialised: nothing removes the alias in between.
            if !store
                .aliases
                .contains_key(alias.name.as_str())
                .map_err(backend)?
            {
                return Err(StoreError::NotFound);
            }
            store
                .aliases
                .insert(alias.name.as_str(), encoded)
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn delete_alias(&self, name: &AliasName) -> Result<(), StoreError> {
        self.write(
            |store| match store.aliases.remove(name.as_str()).map_err(backend)? {
                Some(_) => Ok(()),
                None => Err(StoreError::NotFound),
            },
        )
        .await
    }

    async fn list_aliases(
        &self,
        prefix: &str,
        start_after: Option<&AliasName>,
        limit: usize,
    ) -> Result<Vec<Alias>, StoreError> {
        let mut out = Vec::new();
        for entry in self.aliases.scan_prefix(prefix) {
            if out.len() >= limit {
                break;
            }
            let (name, value) = entry.map_err(backend)?;
            if start_after.is_some_and(|after| name.as_ref() <= after.as_str().as_bytes()) {
                continue;
            }
            out.push(records::decode_alias(&value)?);
        }
        Ok(out)
    }
}
