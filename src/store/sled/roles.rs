//! Role bindings in the sled keystore: one tree, `role_bindings`, from
//! `ROLE\nGRANTEE` to the record. Every write goes through
//! [`SledKeyStore::write`], so it is serialised with every other mutation
//! and flushed before it returns.

use async_trait::async_trait;

use super::SledKeyStore;
use super::packed_tree::backend;
use crate::error::StoreError;
use crate::model::{Grantee, Role, RoleBinding};
use crate::store::{RoleStore, records};

/// The tree's name.
pub(super) const TREE: &str = "role_bindings";

/// Every binding, in store-key order.
pub(super) fn all(tree: &sled::Tree) -> Result<Vec<RoleBinding>, StoreError> {
    tree.iter()
        .map(|entry| {
            let (_, value) = entry.map_err(backend)?;
            records::decode_role_binding(&value)
        })
        .collect()
}

/// Writes `bindings` into an emptied tree (a restore).
pub(super) fn restore(tree: &sled::Tree, bindings: &[RoleBinding]) -> Result<(), StoreError> {
    for binding in bindings {
        tree.insert(
            RoleBinding::store_key(binding.role, &binding.grantee),
            records::encode_role_binding(binding),
        )
        .map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl RoleStore for SledKeyStore {
    async fn role_bindings(&self) -> Result<Vec<RoleBinding>, StoreError> {
        all(&self.role_bindings)
    }

    async fn add_role_binding(&self, binding: &RoleBinding) -> Result<(), StoreError> {
        let key = RoleBinding::store_key(binding.role, &binding.grantee);
        let encoded = records::encode_role_binding(binding);
        self.write(|store| {
            store
                .role_bindings
                .compare_and_swap(key.as_str(), None as Option<&[u8]>, Some(encoded))
                .map_err(backend)?
                .map_err(|_| StoreError::AlreadyExists)
        })
        .await
    }

    async fn remove_role_binding(&self, role: Role, grantee: &Grantee) -> Result<(), StoreError> {
        let key = RoleBinding::store_key(role, grantee);
        self.write(
            |store| match store.role_bindings.remove(key.as_str()).map_err(backend)? {
                Some(_) => Ok(()),
                None => Err(StoreError::NotFound),
            },
        )
        .await
    }
}
