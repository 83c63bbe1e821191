//! [`PostgresKeyStore`]: the keystore in PostgreSQL (or anything speaking its
//! protocol), shared by several tresor replicas.
//!
//! Tables: `tresor_meta` (root record, rotation cursor, per-replica seal
//! marks), `tresor_keys` (one row per key: its metadata record and its
//! deletion time, indexed), `tresor_versions` (one row per key version: the
//! wrapped DEK). Records use the same encoding as the sled backend. Every
//! mutation is one transaction; PostgreSQL's commit makes it durable before
//! tresor answers. Concurrent rotations of one key serialise on the key's
//! row lock (`SELECT ... FOR UPDATE`), so versions come out consecutive.
//! `tresor_keys` also holds each key's owner, indexed with its id (the
//! owner index). The schema is created and migrated at start-up under an
//! advisory lock, so replicas starting together do not race
//! ([`schema`](schema)).

mod aliases;
mod notify;
mod roles;
mod schema;
pub(crate) mod tls;

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::broadcast;
use tokio_postgres::NoTls;

use super::records;
use super::{
    AuditMark, KeyChange, KeyStore, KeyUpdate, Rewrap, RewrapCursor, Snapshot, StoredRoot,
    StoredVersion, UpdateFn,
};
use crate::error::{Error, StoreError};
use crate::identity::Identity;
use crate::model::{KeyId, KeyMetadata, KeyVersion, UnixTime};
use notify::{EVERYTHING, notify, spawn_listener};
use tls::{DbTls, connection_config};

const ROOT: &str = "root";
const REWRAP_CURSOR: &str = "rewrap_cursor";

/// The PostgreSQL-backed keystore.
#[derive(Clone)]
pub struct PostgresKeyStore {
    pool: Pool,
    replica: String,
    changes: Arc<broadcast::Sender<KeyChange>>,
}

/// Refuses a DEK wrapped under a root key that is no longer current. The
/// share lock on the root row makes a root-key switch wait for this
/// transaction, and this transaction see a switch that committed first.
async fn check_root_generation(
    tx: &deadpool_postgres::Transaction<'_>,
    generation: u32,
) -> Result<(), StoreError> {
    let row = tx
        .query_opt(
            "SELECT value FROM tresor_meta WHERE name = $1 FOR SHARE",
            &[&ROOT],
        )
        .await
        .map_err(db)?
        .ok_or(StoreError::NotInitialised)?;
    let root = records::decode_root(row.get(0))?;
    if root.generation == generation {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

impl std::fmt::Debug for PostgresKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresKeyStore")
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

/// A database failure: the database is unreachable or refused, so the
/// caller fails closed with UNAVAILABLE.
/// A database error, with the server's own message when it sent one
/// (tokio-postgres displays only "db error" for those).
pub(super) fn db(err: tokio_postgres::Error) -> StoreError {
    match err.as_db_error() {
        Some(server) => StoreError::Unavailable(format!(
            "{}: {} ({})",
            server.severity(),
            server.message(),
            server.code().code()
        )),
        None => StoreError::Unavailable(err.to_string()),
    }
}

pub(super) fn pool_error(err: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(format!("database connection: {err}"))
}

impl PostgresKeyStore {
    /// The key records a `SELECT record FROM tresor_keys ...` query returns.
    async fn select_keys(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<KeyMetadata>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let rows = client.query(sql, params).await.map_err(db)?;
        rows.iter()
            .map(|row| records::decode_key(row.get(0)))
            .collect()
    }

    /// Connects to `url` (`postgres://user:password@host:port/db`) without
    /// TLS, creates or migrates the schema, and returns the store. `replica`
    /// names this replica for its seal mark (seal is per replica). Only a
    /// database on this machine is reachable this way; see
    /// [`PostgresKeyStore::connect_with_tls`].
    pub async fn connect(url: &str, replica: &str) -> Result<Self, StoreError> {
        Self::connect_with_tls(url, replica, DbTls::Off).await
    }

    /// [`PostgresKeyStore::connect`] over TLS when `tls` says so. The URL
    /// must pass [`check_store_url`](super::check_store_url): with TLS,
    /// sslmode is forced to `require` (a server that offers no TLS is
    /// refused, never talked to in plaintext).
    pub async fn connect_with_tls(
        url: &str,
        replica: &str,
        tls: DbTls,
    ) -> Result<Self, StoreError> {
        let config = connection_config(url, matches!(tls, DbTls::Verified(_)))?;
        let (changes, _) = broadcast::channel(4096);
        let changes = Arc::new(changes);
        spawn_listener(config.clone(), tls.clone(), Arc::downgrade(&changes));
        let manager_config = deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        };
        let manager = match tls {
            DbTls::Off => deadpool_postgres::Manager::from_config(config, NoTls, manager_config),
            DbTls::Verified(tls) => {
                deadpool_postgres::Manager::from_config(config, tls, manager_config)
            }
        };
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(5)))
            .create_timeout(Some(std::time::Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Backend(format!("database pool: {e}")))?;
        let store = Self {
            pool,
            replica: replica.to_owned(),
            changes,
        };
        schema::migrate(&store.pool).await?;
        Ok(store)
    }

    /// Key ids a query selects, given a time bound (`$1`) and a limit (`$2`).
    async fn key_ids(
        &self,
        query: &str,
        now: UnixTime,
        limit: usize,
    ) -> Result<Vec<KeyId>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client.query(query, &[&now, &limit]).await.map_err(db)?;
        rows.iter()
            .map(|row| {
                let id: String = row.get(0);
                KeyId::parse(&id).map_err(|e| StoreError::Corrupt(format!("key row: {e}")))
            })
            .collect()
    }

    fn sealed_entry(&self) -> String {
        format!("sealed:{}", self.replica)
    }

    async fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        Ok(client
            .query_opt("SELECT value FROM tresor_meta WHERE name = $1", &[&name])
            .await
            .map_err(db)?
            .map(|row| row.get(0)))
    }
}

fn version_number(version: KeyVersion) -> i32 {
    i32::try_from(version.get()).unwrap_or(i32::MAX)
}

fn decode_version_row(row: &tokio_postgres::Row) -> Result<(KeyId, StoredVersion), StoreError> {
    let id: String = row.get(0);
    let record: Vec<u8> = row.get(1);
    let id = KeyId::parse(&id).map_err(|e| StoreError::Corrupt(format!("version row: {e}")))?;
    Ok((id, records::decode_version(&record)?))
}

#[async_trait]
impl KeyStore for PostgresKeyStore {
    async fn root(&self) -> Result<Option<StoredRoot>, StoreError> {
        self.meta(ROOT)
            .await?
            .map(|bytes| records::decode_root(&bytes))
            .transpose()
    }

    async fn init_root(&self, root: StoredRoot) -> Result<StoredRoot, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .execute(
                "INSERT INTO tresor_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&ROOT, &records::encode_root(&root)],
            )
            .await
            .map_err(db)?;
        drop(client);
        self.root()
            .await?
            .ok_or_else(|| StoreError::Corrupt("root entry vanished".into()))
    }

    async fn replace_root(
        &self,
        expected: &StoredRoot,
        new: &StoredRoot,
    ) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(db)?;
        let current: Vec<u8> = tx
            .query_opt(
                "SELECT value FROM tresor_meta WHERE name = $1 FOR UPDATE",
                &[&ROOT],
            )
            .await
            .map_err(db)?
            .ok_or(StoreError::Conflict)?
            .get(0);
        // Compare decoded values: a record an older version wrote may
        // encode the same root differently.
        if &records::decode_root(&current)? != expected {
            return Err(StoreError::Conflict);
        }
        tx.execute(
            "UPDATE tresor_meta SET value = $2 WHERE name = $1",
            &[&ROOT, &records::encode_root(new)],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn versions_after(
        &self,
        after: Option<&RewrapCursor>,
        limit: usize,
    ) -> Result<Vec<(KeyId, StoredVersion)>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match after {
            Some(cursor) => client
                .query(
                    "SELECT key_id, record FROM tresor_versions WHERE (key_id, version) > ($1, $2) ORDER BY key_id, version LIMIT $3",
                    &[&cursor.key_id.as_str(), &version_number(cursor.version), &limit],
                )
                .await,
            None => client
                .query(
                    "SELECT key_id, record FROM tresor_versions ORDER BY key_id, version LIMIT $1",
                    &[&limit],
                )
                .await,
        }
        .map_err(db)?;
        rows.iter().map(decode_version_row).collect()
    }

    async fn rewrap_versions(
        &self,
        batch: &[Rewrap],
        cursor: &RewrapCursor,
    ) -> Result<usize, StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(db)?;
        let mut replaced = 0;
        for (id, expected, new) in batch {
            replaced += tx
                .execute(
                    "UPDATE tresor_versions SET record = $4 WHERE key_id = $1 AND version = $2 AND record = $3",
                    &[
                        &id.as_str(),
                        &version_number(expected.version),
                        &records::encode_version(expected),
                        &records::encode_version(new),
                    ],
                )
                .await
                .map_err(db)?;
        }
        tx.execute(
            "INSERT INTO tresor_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            &[&REWRAP_CURSOR, &records::encode_cursor(cursor)],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(usize::try_from(replaced).unwrap_or(usize::MAX))
    }

    async fn rewrap_cursor(&self) -> Result<Option<RewrapCursor>, StoreError> {
        self.meta(REWRAP_CURSOR)
            .await?
            .map(|bytes| records::decode_cursor(&bytes))
            .transpose()
    }

    async fn clear_rewrap_cursor(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .execute("DELETE FROM tresor_meta WHERE name = $1", &[&REWRAP_CURSOR])
            .await
            .map_err(db)?;
        Ok(())
    }

    fn key_changes(&self) -> Option<broadcast::Receiver<KeyChange>> {
        Some(self.changes.subscribe())
    }

    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        // One REPEATABLE READ transaction sees one consistent state while
        // other replicas keep writing.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let root = tx
            .query_opt("SELECT value FROM tresor_meta WHERE name = $1", &[&ROOT])
            .await
            .map_err(db)?
            .map(|row| records::decode_root(row.get(0)))
            .transpose()?
            .ok_or(StoreError::NotInitialised)?;
        let keys = tx
            .query("SELECT record FROM tresor_keys ORDER BY key_id", &[])
            .await
            .map_err(db)?
            .iter()
            .map(|row| records::decode_key(row.get(0)))
            .collect::<Result<Vec<_>, _>>()?;
        let versions = tx
            .query(
                "SELECT key_id, record FROM tresor_versions ORDER BY key_id, version",
                &[],
            )
            .await
            .map_err(db)?
            .iter()
            .map(decode_version_row)
            .collect::<Result<Vec<_>, _>>()?;
        let aliases = aliases::all(&tx).await?;
        let role_bindings = roles::all(&tx).await?;
        tx.commit().await.map_err(db)?;
        Ok(Snapshot {
            root,
            keys,
            versions,
            aliases,
            role_bindings,
        })
    }

    async fn restore(&self, snapshot: &Snapshot, replace: bool) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(db)?;
        let occupied: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM tresor_meta WHERE name = $1) OR EXISTS (SELECT 1 FROM tresor_keys)",
                &[&ROOT],
            )
            .await
            .map_err(db)?
            .get(0);
        if occupied && !replace {
            return Err(StoreError::NotEmpty);
        }
        tx.batch_execute(
            "DELETE FROM tresor_versions; DELETE FROM tresor_usage; DELETE FROM tresor_keys; DELETE FROM tresor_meta WHERE name NOT LIKE 'sealed:%' AND name NOT LIKE 'audit\\_checkpoint:%';",
        )
        .await
        .map_err(db)?;
        tx.execute(
            "INSERT INTO tresor_meta (name, value) VALUES ($1, $2)",
            &[&ROOT, &records::encode_root(&snapshot.root)],
        )
        .await
        .map_err(db)?;
        let insert_key = tx
            .prepare("INSERT INTO tresor_keys (key_id, record, deletion_at, next_rotation_at, owner) VALUES ($1, $2, $3, $4, $5)")
            .await
            .map_err(db)?;
        for key in &snapshot.keys {
            tx.execute(
                &insert_key,
                &[
                    &key.id.as_str(),
                    &records::encode_key(key),
                    &key.deletion_at(),
                    &key.next_rotation_at(),
                    &key.owner.as_str(),
                ],
            )
            .await
            .map_err(db)?;
        }
        let insert_version = tx
            .prepare("INSERT INTO tresor_versions (key_id, version, record) VALUES ($1, $2, $3)")
            .await
            .map_err(db)?;
        for (id, version) in &snapshot.versions {
            tx.execute(
                &insert_version,
                &[
                    &id.as_str(),
                    &version_number(version.version),
                    &records::encode_version(version),
                ],
            )
            .await
            .map_err(db)?;
        }
        aliases::restore(&tx, &snapshot.aliases).await?;
        roles::restore(&tx, &snapshot.role_bindings).await?;
        notify(&tx, EVERYTHING).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn sealed(&self) -> Result<bool, StoreError> {
        Ok(self.meta(&self.sealed_entry()).await?.is_some())
    }

    async fn set_sealed(&self, sealed: bool) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let name = self.sealed_entry();
        if sealed {
            client
                .execute(
                    "INSERT INTO tresor_meta (name, value) VALUES ($1, '\\x01') ON CONFLICT (name) DO NOTHING",
                    &[&name],
                )
                .await
                .map_err(db)?;
        } else {
            client
                .execute("DELETE FROM tresor_meta WHERE name = $1", &[&name])
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    async fn audit_mark(&self, log: &str) -> Result<Option<AuditMark>, StoreError> {
        self.meta(&format!("audit_checkpoint:{log}"))
            .await?
            .map(|bytes| records::decode_audit_mark(&bytes))
            .transpose()
    }

    async fn set_audit_mark(&self, log: &str, mark: &AuditMark) -> Result<(), StoreError> {
        let name = format!("audit_checkpoint:{log}");
        let encoded = records::encode_audit_mark(mark);
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(db)?;
        // The row lock holds off a concurrent writer of the same log until
        // this transaction ends; a first mark races on the primary key.
        let stored = tx
            .query_opt(
                "SELECT value FROM tresor_meta WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .await
            .map_err(db)?
            .map(|row| records::decode_audit_mark(&row.get::<_, Vec<u8>>(0)))
            .transpose()?;
        if !mark.advances(stored.as_ref())? {
            return Ok(());
        }
        let written = tx
            .execute(
                "INSERT INTO tresor_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value WHERE $3",
                &[&name, &encoded, &stored.is_some()],
            )
            .await
            .map_err(db)?;
        if written == 0 {
            // Another writer stored the first mark meanwhile.
            return Err(StoreError::Conflict);
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn create_key(
        &self,
        metadata: &KeyMetadata,
        first: &StoredVersion,
    ) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(db)?;
        check_root_generation(&tx, first.root_generation).await?;
        let inserted = tx
            .execute(
                "INSERT INTO tresor_keys (key_id, record, deletion_at, next_rotation_at, owner) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id) DO NOTHING",
                &[
                    &metadata.id.as_str(),
                    &records::encode_key(metadata),
                    &metadata.deletion_at(),
                    &metadata.next_rotation_at(),
                    &metadata.owner.as_str(),
                ],
            )
            .await
            .map_err(db)?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists);
        }
        tx.execute(
            "INSERT INTO tresor_versions (key_id, version, record) VALUES ($1, $2, $3)",
            &[
                &metadata.id.as_str(),
                &version_number(first.version),
                &records::encode_version(first),
            ],
        )
        .await
        .map_err(db)?;
        notify(&tx, metadata.id.as_str()).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn key(&self, id: &KeyId) -> Result<Option<KeyMetadata>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .query_opt(
                "SELECT record FROM tresor_keys WHERE key_id = $1",
                &[&id.as_str()],
            )
            .await
            .map_err(db)?
            .map(|row| records::decode_key(row.get(0)))
            .transpose()
    }

    async fn update_key(
        &self,
        id: &KeyId,
        update: &UpdateFn<'_>,
    ) -> Result<KeyMetadata, StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(db)?;
        let row = tx
            .query_opt(
                "SELECT record FROM tresor_keys WHERE key_id = $1 FOR UPDATE",
                &[&id.as_str()],
            )
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound)?;
        let current = records::decode_key(row.get(0))?;
        let KeyUpdate {
            metadata,
            new_version,
            destroy_version,
        } = update(&current).map_err(|e: Error| StoreError::Rejected(Box::new(e)))?;
        if let Some(version) = destroy_version {
            tx.execute(
                "DELETE FROM tresor_versions WHERE key_id = $1 AND version = $2",
                &[&id.as_str(), &version_number(version)],
            )
            .await
            .map_err(db)?;
        }
        if let Some(version) = &new_version {
            check_root_generation(&tx, version.root_generation).await?;
            tx.execute(
                "INSERT INTO tresor_versions (key_id, version, record) VALUES ($1, $2, $3)",
                &[
                    &id.as_str(),
                    &version_number(version.version),
                    &records::encode_version(version),
                ],
            )
            .await
            .map_err(db)?;
        }
        tx.execute(
            "UPDATE tresor_keys SET record = $2, deletion_at = $3, next_rotation_at = $4, owner = $5 WHERE key_id = $1",
            &[
                &id.as_str(),
                &records::encode_key(&metadata),
                &metadata.deletion_at(),
                &metadata.next_rotation_at(),
                &metadata.owner.as_str(),
            ],
        )
        .await
        .map_err(db)?;
        notify(&tx, id.as_str()).await?;
        tx.commit().await.map_err(db)?;
        Ok(metadata)
    }

    async fn version(
        &self,
        id: &KeyId,
        version: KeyVersion,
    ) -> Result<Option<StoredVersion>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .query_opt(
                "SELECT record FROM tresor_versions WHERE key_id = $1 AND version = $2",
                &[&id.as_str(), &version_number(version)],
            )
            .await
            .map_err(db)?
            .map(|row| records::decode_version(row.get(0)))
            .transpose()
    }

    async fn list_keys(
        &self,
        prefix: &str,
        start_after: Option<&KeyId>,
        limit: usize,
    ) -> Result<Vec<KeyMetadata>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = start_after.map_or("", KeyId::as_str);
        self.select_keys(
            "SELECT record FROM tresor_keys WHERE starts_with(key_id, $1) AND key_id > $2 ORDER BY key_id LIMIT $3",
            &[&prefix, &after, &limit],
        )
        .await
    }

    async fn list_owned_keys(
        &self,
        owner: &Identity,
        prefix: &str,
        start_after: Option<&KeyId>,
        limit: usize,
    ) -> Result<Vec<KeyMetadata>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = start_after.map_or("", KeyId::as_str);
        // Served by the (owner, key_id) index: a range scan of this
        // owner's keys from the later of the prefix and the cursor.
        self.select_keys(
            "SELECT record FROM tresor_keys WHERE owner = $1 AND key_id >= $2 AND starts_with(key_id, $2) AND key_id > $3 ORDER BY key_id LIMIT $4",
            &[&owner.as_str(), &prefix, &after, &limit],
        )
        .await
    }

    async fn key_count(&self) -> Result<u64, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let count: i64 = client
            .query_one("SELECT count(*) FROM tresor_keys", &[])
            .await
            .map_err(db)?
            .get(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn due_deletions(&self, now: UnixTime) -> Result<Vec<KeyId>, StoreError> {
        self.key_ids(
            "SELECT key_id FROM tresor_keys WHERE deletion_at IS NOT NULL AND deletion_at <= $1 ORDER BY deletion_at, key_id LIMIT $2",
            now,
            usize::MAX,
        )
        .await
    }

    async fn due_rotations(&self, now: UnixTime, limit: usize) -> Result<Vec<KeyId>, StoreError> {
        self.key_ids(
            "SELECT key_id FROM tresor_keys WHERE next_rotation_at IS NOT NULL AND next_rotation_at <= $1 ORDER BY next_rotation_at, key_id LIMIT $2",
            now,
            limit,
        )
        .await
    }

    async fn add_usage(&self, deltas: &[(KeyId, KeyVersion, u64)]) -> Result<Vec<u64>, StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(db)?;
        let upsert = tx
            .prepare(
                "INSERT INTO tresor_usage (key_id, version, encryptions) VALUES ($1, $2, $3) \
                 ON CONFLICT (key_id, version) DO UPDATE SET encryptions = tresor_usage.encryptions + EXCLUDED.encryptions \
                 RETURNING encryptions",
            )
            .await
            .map_err(db)?;
        let mut totals = Vec::with_capacity(deltas.len());
        for (id, version, count) in deltas {
            let count = i64::try_from(*count).unwrap_or(i64::MAX);
            let total: i64 = tx
                .query_one(&upsert, &[&id.as_str(), &version_number(*version), &count])
                .await
                .map_err(db)?
                .get(0);
            totals.push(u64::try_from(total).unwrap_or(0));
        }
        tx.commit().await.map_err(db)?;
        Ok(totals)
    }

    /// `VACUUM FULL` rewrites both tables into new files and truncates the
    /// old ones at commit, so removed rows leave the table files. It holds
    /// an exclusive lock on each table while it runs (reads of uncached
    /// keys wait). The write-ahead log still holds the removed rows until
    /// PostgreSQL recycles its segments, as do WAL archives and base
    /// backups made before (SECURITY.md, "Deletion").
    async fn compact(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        // One statement per query: several in one run as a transaction,
        // which VACUUM refuses.
        for table in ["tresor_versions", "tresor_keys"] {
            client
                .batch_execute(&format!("VACUUM FULL {table}"))
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    async fn delete_key(&self, id: &KeyId) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute(
            "DELETE FROM tresor_versions WHERE key_id = $1",
            &[&id.as_str()],
        )
        .await
        .map_err(db)?;
        tx.execute(
            "DELETE FROM tresor_usage WHERE key_id = $1",
            &[&id.as_str()],
        )
        .await
        .map_err(db)?;
        let deleted = tx
            .execute("DELETE FROM tresor_keys WHERE key_id = $1", &[&id.as_str()])
            .await
            .map_err(db)?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        notify(&tx, id.as_str()).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}
