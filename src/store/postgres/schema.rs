//! The PostgreSQL keystore's schema: the migrations that create and
//! upgrade it, run at start-up under an advisory lock so that replicas
//! starting together do not race. A schema change adds a version, never
//! edits one.

use deadpool_postgres::Pool;

use super::{db, pool_error};
use crate::error::StoreError;
use crate::store::records;

/// Advisory lock key taken while migrating ("tresor" in ASCII).
const MIGRATION_LOCK: i64 = 0x7472_6573_6f72;
/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = 5;
/// The version that added the `owner` column.
const OWNER_VERSION: i32 = 3;

const MIGRATIONS: [&str; 5] = [
    // Version 1.
    r#"
    CREATE TABLE tresor_meta (
        name  TEXT PRIMARY KEY,
        value BYTEA NOT NULL
    );
    CREATE TABLE tresor_keys (
        key_id      TEXT COLLATE "C" PRIMARY KEY,
        record      BYTEA NOT NULL,
        deletion_at BIGINT
    );
    CREATE INDEX tresor_keys_deletion ON tresor_keys (deletion_at)
        WHERE deletion_at IS NOT NULL;
    CREATE TABLE tresor_versions (
        key_id  TEXT COLLATE "C" NOT NULL,
        version INTEGER NOT NULL,
        record  BYTEA NOT NULL,
        PRIMARY KEY (key_id, version)
    );
    "#,
    // Version 2: automatic rotation (keys made before have no period) and
    // encryption counts per version (usage-based rotation).
    r#"
    ALTER TABLE tresor_keys ADD COLUMN next_rotation_at BIGINT;
    CREATE INDEX tresor_keys_rotation ON tresor_keys (next_rotation_at)
        WHERE next_rotation_at IS NOT NULL;
    CREATE TABLE tresor_usage (
        key_id      TEXT COLLATE "C" NOT NULL,
        version     INTEGER NOT NULL,
        encryptions BIGINT NOT NULL,
        PRIMARY KEY (key_id, version)
    );
    "#,
    // Version 3: the owner of each key, indexed with its id, so that a
    // non-admin's ListKeys reads only its own keys. Rows written before are
    // filled in by `fill_owners` in the same transaction.
    r#"
    ALTER TABLE tresor_keys ADD COLUMN owner TEXT COLLATE "C";
    CREATE INDEX tresor_keys_owner ON tresor_keys (owner, key_id);
    "#,
    // Version 4: aliases (issue 21), one row per alias name.
    r#"
    CREATE TABLE tresor_aliases (
        name   TEXT COLLATE "C" PRIMARY KEY,
        record BYTEA NOT NULL
    );
    "#,
    // Version 5: role bindings (issue 22), one row per role and grantee
    // (`ROLE\nGRANTEE`).
    r#"
    CREATE TABLE tresor_role_bindings (
        binding TEXT COLLATE "C" PRIMARY KEY,
        record  BYTEA NOT NULL
    );
    "#,
];

/// Creates or upgrades the schema to [`SCHEMA_VERSION`] in one
/// transaction.
pub(super) async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS tresor_schema (version INTEGER NOT NULL)")
        .await
        .map_err(db)?;
    let current: i32 = tx
        .query_opt("SELECT version FROM tresor_schema", &[])
        .await
        .map_err(db)?
        .map(|row| row.get(0))
        .unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "the database schema is version {current}, newer than this tresor ({SCHEMA_VERSION}); upgrade tresor"
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        if version > current {
            tx.batch_execute(migration).await.map_err(db)?;
            if version == OWNER_VERSION {
                fill_owners(&tx).await?;
            }
            tracing::info!(version, "migrated the database schema");
        }
    }
    tx.execute("DELETE FROM tresor_schema", &[])
        .await
        .map_err(db)?;
    tx.execute(
        "INSERT INTO tresor_schema (version) VALUES ($1)",
        &[&SCHEMA_VERSION],
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(())
}

/// Rows one statement of [`fill_owners`] reads.
const FILL_BATCH: i64 = 10_000;

/// Fills the `owner` column of rows written before it existed, from their
/// records, a batch at a time (inside the migration's transaction).
async fn fill_owners(tx: &deadpool_postgres::Transaction<'_>) -> Result<(), StoreError> {
    let select = tx
        .prepare(
            "SELECT key_id, record FROM tresor_keys WHERE owner IS NULL ORDER BY key_id LIMIT $1",
        )
        .await
        .map_err(db)?;
    let update = tx
        .prepare("UPDATE tresor_keys SET owner = $2 WHERE key_id = $1")
        .await
        .map_err(db)?;
    let mut filled = 0usize;
    loop {
        let rows = tx.query(&select, &[&FILL_BATCH]).await.map_err(db)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let id: &str = row.get(0);
            let key = records::decode_key(row.get(1))?;
            tx.execute(&update, &[&id, &key.owner.as_str()])
                .await
                .map_err(db)?;
        }
        filled += rows.len();
    }
    if filled > 0 {
        tracing::info!(keys = filled, "filled in the owner of every key");
    }
    Ok(())
}
