//! Role bindings in the PostgreSQL keystore: the table
//! `tresor_role_bindings` (schema version 5), one row per binding, keyed
//! by [`RoleBinding::store_key`]. Replicas read the table again when their
//! short-lived role cache expires (the service's metadata bound), so no
//! notification is needed.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::{PostgresKeyStore, db, pool_error};
use crate::error::StoreError;
use crate::model::{Grantee, Role, RoleBinding};
use crate::store::{RoleStore, records};

/// Every binding, in store-key order, as `client` sees them.
pub(super) async fn all(client: &impl GenericClient) -> Result<Vec<RoleBinding>, StoreError> {
    client
        .query(
            "SELECT record FROM tresor_role_bindings ORDER BY binding",
            &[],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|row| records::decode_role_binding(row.get(0)))
        .collect()
}

/// Writes `bindings` into the emptied table (a restore's transaction).
pub(super) async fn restore(
    tx: &deadpool_postgres::Transaction<'_>,
    bindings: &[RoleBinding],
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM tresor_role_bindings", &[])
        .await
        .map_err(db)?;
    let insert = tx
        .prepare("INSERT INTO tresor_role_bindings (binding, record) VALUES ($1, $2)")
        .await
        .map_err(db)?;
    for binding in bindings {
        let key = RoleBinding::store_key(binding.role, &binding.grantee);
        tx.execute(&insert, &[&key, &records::encode_role_binding(binding)])
            .await
            .map_err(db)?;
    }
    Ok(())
}

#[async_trait]
impl RoleStore for PostgresKeyStore {
    async fn role_bindings(&self) -> Result<Vec<RoleBinding>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        all(&client).await
    }

    async fn add_role_binding(&self, binding: &RoleBinding) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let key = RoleBinding::store_key(binding.role, &binding.grantee);
        let added = client
            .execute(
                "INSERT INTO tresor_role_bindings (binding, record) VALUES ($1, $2) ON CONFLICT (binding) DO NOTHING",
                &[&key, &records::encode_role_binding(binding)],
            )
            .await
            .map_err(db)?;
        if added == 1 {
            Ok(())
        } else {
            Err(StoreError::AlreadyExists)
        }
    }

    async fn remove_role_binding(&self, role: Role, grantee: &Grantee) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let key = RoleBinding::store_key(role, grantee);
        let removed = client
            .execute(
                "DELETE FROM tresor_role_bindings WHERE binding = $1",
                &[&key],
            )
            .await
            .map_err(db)?;
        if removed == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }
}
