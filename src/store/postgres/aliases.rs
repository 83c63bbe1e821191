//! Aliases in the PostgreSQL keystore: the table `tresor_aliases` (schema
//! version 4), one row per alias. Every write notifies the other replicas
//! with the alias name, so their caches drop it at once.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::notify::notify;
use super::{PostgresKeyStore, db, pool_error};
use crate::error::StoreError;
use crate::model::{Alias, AliasName};
use crate::store::{AliasStore, records};

/// Every alias, in name order, as `client` (a snapshot's transaction)
/// sees them.
pub(super) async fn all(client: &impl GenericClient) -> Result<Vec<Alias>, StoreError> {
    client
        .query("SELECT record FROM tresor_aliases ORDER BY name", &[])
        .await
        .map_err(db)?
        .iter()
        .map(|row| records::decode_alias(row.get(0)))
        .collect()
}

/// Writes `aliases` into the emptied table (a restore's transaction).
pub(super) async fn restore(
    tx: &deadpool_postgres::Transaction<'_>,
    aliases: &[Alias],
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM tresor_aliases", &[])
        .await
        .map_err(db)?;
    let insert = tx
        .prepare("INSERT INTO tresor_aliases (name, record) VALUES ($1, $2)")
        .await
        .map_err(db)?;
    for alias in aliases {
        tx.execute(
            &insert,
            &[&alias.name.as_str(), &records::encode_alias(alias)],
        )
        .await
        .map_err(db)?;
    }
    Ok(())
}

impl PostgresKeyStore {
    /// Runs one alias write (`sql` with the name and the record, or the
    /// name alone) and notifies; `Ok(false)` when it touched no row.
    async fn write_alias(
        &self,
        name: &AliasName,
        sql: &str,
        record: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(db)?;
        let touched = match &record {
            Some(record) => tx.execute(sql, &[&name.as_str(), record]).await,
            None => tx.execute(sql, &[&name.as_str()]).await,
        }
        .map_err(db)?;
        if touched == 0 {
            return Ok(false);
        }
        notify(&tx, name.as_str()).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }
}

#[async_trait]
impl AliasStore for PostgresKeyStore {
    async fn alias(&self, name: &AliasName) -> Result<Option<Alias>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .query_opt(
                "SELECT record FROM tresor_aliases WHERE name = $1",
                &[&name.as_str()],
            )
            .await
            .map_err(db)?
            .map(|row| records::decode_alias(row.get(0)))
            .transpose()
    }

    async fn create_alias(&self, alias: &Alias) -> Result<(), StoreError> {
        let created = self
            .write_alias(
                &alias.name,
                "INSERT INTO tresor_aliases (name, record) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                Some(records::encode_alias(alias)),
            )
            .await?;
        if created {
            Ok(())
        } else {
            Err(StoreError::AlreadyExists)
        }
    }

    async fn replace_alias(&self, alias: &Alias) -> Result<(), StoreError> {
        let replaced = self
            .write_alias(
                &alias.name,
                "UPDATE tresor_aliases SET record = $2 WHERE name = $1",
                Some(records::encode_alias(alias)),
            )
            .await?;
        if replaced {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn delete_alias(&self, name: &AliasName) -> Result<(), StoreError> {
        let deleted = self
            .write_alias(name, "DELETE FROM tresor_aliases WHERE name = $1", None)
            .await?;
        if deleted {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn list_aliases(
        &self,
        prefix: &str,
        start_after: Option<&AliasName>,
        limit: usize,
    ) -> Result<Vec<Alias>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = start_after.map_or("", AliasName::as_str);
        // starts_with on COLLATE "C" text: byte order, no LIKE escaping.
        client
            .query(
                "SELECT record FROM tresor_aliases WHERE starts_with(name, $1) AND name > $2 ORDER BY name LIMIT $3",
                &[&prefix, &after, &limit],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|row| records::decode_alias(row.get(0)))
            .collect()
    }
}
