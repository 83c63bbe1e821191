//! Domain operations: the data plane (encrypt, decrypt, re-encrypt, data
//! keys), the control plane (key lifecycle, grants) and seal/unseal.
//!
//! This is the only layer that authorizes ([`authz::authorize`]). It works on
//! typed values ([`KeyId`], [`Identity`], [`Context`](tresor_crypto::Context)) that the gRPC layer
//! has already validated.

mod admin;
mod alias_cache;
mod aliases;
pub mod allowances;
mod audit;
pub mod authz;
mod backup;
mod data;
mod grant_sweep;
mod guard;
mod key_count;
mod keyring;
pub mod lifecycle;
mod mac;
mod metadata_auth;
mod metadata_cache;
pub mod metrics;
mod restore_diff;
pub mod roles;
mod root;
mod root_secrets;
mod rotation;
mod unseal;

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;
use tracing::Instrument;

use crate::error::{Error, StoreError};
use crate::identity::Identity;
use crate::master_key::MasterKey;
use crate::model::{AliasName, KeyId, KeyMetadata, Role, UnixTime};
use crate::store::KeyStore;

pub use admin::{KeyPage, NewKey, ServedCertificate, ServiceStatus};
pub use aliases::AliasPage;
pub use audit::{
    AuditReport, AuditSettings, AuditedContext, Intent, ItemRecord, LOCAL_LOG, RequestRecord,
    default_audit_file, offline_audit_key, stored_checkpoint,
};
pub use backup::{BackupSummary, RestorePlan, open_backup, plan_restore, restore_backup};
pub use data::{
    BatchInput, BatchItem, DataKey, DataKeySize, Decrypted, Encrypted, ReEncryptItem,
    context_too_large, context_within_limits,
};
pub use grant_sweep::EXPIRED_GRANT_RETENTION;
pub use guard::{DEFAULT_CONTROL_PLANE_RATE, DEFAULT_SEAL_DENIAL_IDENTITIES, GuardOptions};
pub use key_count::KEY_COUNT_TTL;
#[cfg(not(test))]
use keyring::Keyring;
/// Crate-visible for the secret inventory (`src/secret_inventory.rs`).
#[cfg(test)]
pub(crate) use keyring::Keyring;
pub use mac::{MacInput, MacToken, MacVerdict};
pub use metadata_cache::METADATA_TTL;
pub use rotation::root_key::{DEFAULT_REWRAP_BATCH, RootRotation};
pub use rotation::schedule::{
    DEFAULT_LIFECYCLE_CHECK_INTERVAL, DEFAULT_MAX_VERSIONS_PER_KEY, LifecycleOptions, SharedClock,
};
pub use rotation::usage::{DEFAULT_MAX_ENCRYPTIONS_PER_VERSION, FLUSH_AFTER, USAGE_FLUSH_INTERVAL};
pub use unseal::{
    DEFAULT_UNSEAL_WINDOW, UnsealOutcome, UnsealPolicy, UnsealProgress, UnsealRefused,
    UnsealTokenVerifier, generate_unseal_token,
};

/// Default bound on cached unwrapped DEKs.
pub const DEFAULT_DEK_CACHE_CAPACITY: usize = 10_000;

/// Default bound on the items of one batch call (`--max-batch-items`).
pub const DEFAULT_MAX_BATCH_ITEMS: usize = 1000;

/// Largest encryption context accepted, in bytes of keys plus values.
pub const MAX_CONTEXT_BYTES: usize = 16 * 1024;

/// Most pairs an encryption context may have.
pub const MAX_CONTEXT_PAIRS: usize = 64;

/// Tells the time; replaceable in tests.
pub trait Clock: std::fmt::Debug + Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn now(&self) -> UnixTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// Settings of the service layer.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Identities allowed to use the control plane.
    pub admins: BTreeSet<Identity>,
    /// Who may unseal and what it takes (default: one call by an admin).
    pub unseal: UnsealPolicy,
    /// Largest plaintext accepted by Encrypt.
    pub max_plaintext_bytes: usize,
    /// Most items in one EncryptBatch or DecryptBatch call.
    pub max_batch_items: usize,
    /// Bound on cached unwrapped DEKs.
    pub dek_cache_capacity: NonZeroUsize,
    /// DEKs re-wrapped per store write during a root-key rotation.
    pub rewrap_batch_size: usize,
    /// The audit log (`None`: auditing off, for tests and benchmarks).
    pub audit: Option<AuditSettings>,
    /// Rate limits and anomaly alerts.
    pub guard: GuardOptions,
    /// Automatic rotation, and the clock.
    pub lifecycle: LifecycleOptions,
    /// The master keys an online master-key rotation may move to.
    pub master_key_targets: crate::master_key::RotationTargets,
}

/// How long past its rotation time a key counts as overdue in
/// `tresor_keys_rotation_overdue` (seconds).
pub const ROTATION_OVERDUE_AFTER: i64 = 3600;
/// Most overdue keys the metric counts.
const ROTATION_OVERDUE_CAP: usize = 10_000;

/// Largest plaintext Encrypt accepts by default (`--max-plaintext-bytes`).
pub const DEFAULT_MAX_PLAINTEXT_BYTES: usize = 4 * 1024 * 1024;

impl ServiceOptions {
    /// Every default, with these admins: Unseal by one admin call,
    /// plaintexts up to [`DEFAULT_MAX_PLAINTEXT_BYTES`], batches of up to
    /// [`DEFAULT_MAX_BATCH_ITEMS`], [`DEFAULT_DEK_CACHE_CAPACITY`] cached
    /// DEKs, [`DEFAULT_REWRAP_BATCH`] DEKs per re-wrap write, no audit log,
    /// the default rate limits, alerts and rotation checks, and no master
    /// key an online rotation may move to. Change fields with struct update
    /// syntax: `ServiceOptions { audit: Some(..), ..ServiceOptions::new(admins) }`.
    pub fn new(admins: BTreeSet<Identity>) -> Self {
        const DEK_CACHE_CAPACITY: NonZeroUsize = match NonZeroUsize::new(DEFAULT_DEK_CACHE_CAPACITY)
        {
            Some(capacity) => capacity,
            None => panic!("DEFAULT_DEK_CACHE_CAPACITY is not zero"),
        };
        Self {
            admins,
            unseal: UnsealPolicy::default(),
            max_plaintext_bytes: DEFAULT_MAX_PLAINTEXT_BYTES,
            max_batch_items: DEFAULT_MAX_BATCH_ITEMS,
            dek_cache_capacity: DEK_CACHE_CAPACITY,
            rewrap_batch_size: DEFAULT_REWRAP_BATCH,
            audit: None,
            guard: GuardOptions::default(),
            lifecycle: LifecycleOptions::default(),
            master_key_targets: crate::master_key::RotationTargets::default(),
        }
    }
}

/// The tresor service.
pub struct Service {
    store: Arc<dyn KeyStore>,
    master: RwLock<Arc<dyn MasterKey>>,
    options: ServiceOptions,
    clock: Arc<dyn Clock>,
    /// Shared with the task that follows other replicas' changes.
    keyring: Arc<RwLock<Option<Arc<Keyring>>>>,
    sealed: watch::Sender<bool>,
    unseal_round: unseal::RoundSlot,
    rewrap: rotation::root_key::RewrapProgress,
    metadata: metadata_cache::SharedMetadataCache,
    /// Alias targets, shared with the task that follows other replicas.
    aliases: Arc<alias_cache::AliasCache>,
    /// Where the expired-grant sweep resumes.
    grant_sweep: grant_sweep::SweepCursor,
    /// Verified role bindings, re-read within the metadata bound.
    roles: roles::RoleCache,
    audit: std::sync::OnceLock<crate::audit::AuditLog>,
    limiter: crate::anomaly::RateLimiter,
    /// Limits non-admins' control-plane calls.
    control_limiter: crate::anomaly::RateLimiter,
    detector: crate::anomaly::Detector,
    denial_spikes: guard::DenialSpikes,
    alerts: tokio::sync::broadcast::Sender<crate::anomaly::Alert>,
    metrics: crate::service::metrics::Metrics,
    usage: rotation::usage::UsageCounter,
    key_count: key_count::KeyCountCache,
    /// Tampered key records already audited.
    tamper_reports: metadata_auth::TamperReports,
    /// What the listener serves, for the status.
    served_certificate: std::sync::RwLock<Option<ServedCertificate>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("master", &self.master().describe())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Opens the service over `store`: initialises the keystore with a new
    /// root key on first use, then unwraps the root key once with the master
    /// key. Starts unsealed.
    pub async fn open(
        store: Arc<dyn KeyStore>,
        master: Arc<dyn MasterKey>,
        options: ServiceOptions,
    ) -> Result<Self, Error> {
        let clock = options.lifecycle.clock.0.clone();
        Self::open_with_clock(store, master, options, clock).await
    }

    /// [`Service::open`] with another clock (tests).
    pub async fn open_with_clock(
        store: Arc<dyn KeyStore>,
        master: Arc<dyn MasterKey>,
        options: ServiceOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let (sealed, _) = watch::channel(true);
        let service = Self {
            store,
            master: RwLock::new(master),
            clock,
            keyring: Arc::default(),
            sealed,
            unseal_round: Default::default(),
            rewrap: Default::default(),
            metadata: Default::default(),
            aliases: Default::default(),
            grant_sweep: Default::default(),
            roles: Default::default(),
            audit: Default::default(),
            limiter: crate::anomaly::RateLimiter::new(options.guard.rate_limits.clone()),
            control_limiter: crate::anomaly::RateLimiter::new(crate::anomaly::RateLimits {
                default: options.guard.control_plane_rate,
                ..Default::default()
            }),
            detector: crate::anomaly::Detector::new(options.guard.anomaly.clone()),
            denial_spikes: Default::default(),
            alerts: tokio::sync::broadcast::channel(256).0,
            metrics: crate::service::metrics::Metrics::new(),
            usage: rotation::usage::UsageCounter::new(
                options.lifecycle.max_encryptions_per_version,
            ),
            key_count: Default::default(),
            tamper_reports: Default::default(),
            served_certificate: Default::default(),
            options,
        };
        if let Some(changes) = service.store.key_changes() {
            // Another replica changed a key (destroyed a version, deleted
            // it, restored a backup): its DEKs leave this replica's memory
            // too, not only at LRU eviction.
            let keyring = Arc::downgrade(&service.keyring);
            let aliases = Arc::downgrade(&service.aliases);
            metadata_cache::MetadataCache::follow(
                Arc::downgrade(&service.metadata),
                changes,
                move |changed| {
                    if let Some(aliases) = aliases.upgrade() {
                        match changed.map(|id| AliasName::parse(id.as_str())) {
                            Some(Ok(name)) => aliases.evict(&name),
                            Some(Err(_)) => {}
                            None => aliases.clear(),
                        }
                    }
                    let Some(slot) = keyring.upgrade() else {
                        return;
                    };
                    let current = slot
                        .read()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clone();
                    if let Some(current) = current {
                        match changed {
                            Some(id) => current.forget_key(id),
                            None => current.forget_all(),
                        }
                    }
                },
            );
        }
        service.initialise_root().await?;
        let sealed = service.store.sealed().await?;
        if !sealed || service.options.audit.is_some() {
            // Sealed with auditing on: unwrap the root key once for the
            // audit key, then drop it again.
            service.load_keyring().await?;
            let keyring = service.keyring()?;
            service.open_audit_log(&keyring).await?;
        }
        if sealed {
            drop(service.write_keyring().take());
            service.sealed.send_replace(true);
            tracing::warn!(
                "the keystore was sealed when it last ran: starting sealed; an admin must call Unseal"
            );
        }
        Ok(service)
    }

    /// The master key in use.
    pub fn master(&self) -> Arc<dyn MasterKey> {
        // A poisoned lock still holds a valid Arc (assignment is atomic).
        self.master
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many unwrapped DEKs this replica holds in memory (0 while
    /// sealed).
    pub fn cached_dek_count(&self) -> usize {
        self.read_keyring()
            .as_ref()
            .map_or(0, |keyring| keyring.cached_count())
    }

    /// How the audit record names a RotateMasterKey request's target: the
    /// full spec with its endpoint, or what was asked when it does not
    /// parse. The request is resolved against the allowlist (after the
    /// admin check) by [`Service::rotate_master_key`].
    pub fn describe_master_key_request(&self, name: &str, request_endpoint: &str) -> String {
        self.options
            .master_key_targets
            .describe_request(name, request_endpoint)
    }

    /// Follows seal state changes (`true` while sealed), for health checks.
    pub fn watch_sealed(&self) -> watch::Receiver<bool> {
        self.sealed.subscribe()
    }

    /// Whether the service is sealed.
    pub fn is_sealed(&self) -> bool {
        self.read_keyring().is_none()
    }

    /// Whether `identity` is an admin.
    pub fn is_admin(&self, identity: &Identity) -> bool {
        self.options.admins.contains(identity)
    }

    /// The role check of a control-plane call, for callers that must
    /// refuse before doing expensive preparation (opening a KMS key).
    pub async fn require_role(&self, identity: &Identity, role: Role) -> Result<(), Error> {
        authz::require(self.caller(identity).await?, role)
    }

    /// The keyring, or `Sealed`.
    fn keyring(&self) -> Result<Arc<Keyring>, Error> {
        self.read_keyring().clone().ok_or(Error::Sealed)
    }

    fn read_keyring(&self) -> std::sync::RwLockReadGuard<'_, Option<Arc<Keyring>>> {
        // The guarded value is a single Option swap; a panic cannot leave it
        // half-written, so a poisoned lock is safe to use.
        self.keyring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_keyring(&self) -> std::sync::RwLockWriteGuard<'_, Option<Arc<Keyring>>> {
        self.keyring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A key's metadata, treating a key whose deletion time has passed as
    /// already gone.
    async fn live_key(&self, id: &KeyId) -> Result<Option<Arc<KeyMetadata>>, Error> {
        let now = self.clock.now();
        let key = match self.metadata.get(id) {
            Some(key) => Some(key),
            None => {
                let read_started = std::time::Instant::now();
                let read = self
                    .store
                    .key(id)
                    .instrument(tracing::info_span!("keystore.read_key"));
                let key = match read.await? {
                    Some(key) => Some(Arc::new(self.verified(key).await?)),
                    None => None,
                };
                if let Some(key) = &key {
                    self.metadata.put_read(Arc::clone(key), read_started);
                }
                key
            }
        };
        Ok(key.filter(|key| key.deletion_at().is_none_or(|at| at > now)))
    }

    /// Forgets the cached metadata of one key: the next read goes to the
    /// keystore.
    fn forget_metadata(&self, id: &KeyId) {
        self.metadata.evict(id);
    }

    /// Records metadata this replica just wrote.
    fn remember(&self, key: &KeyMetadata) {
        self.metadata.put_written(key.clone());
    }

    /// Destroys every key whose deletion window has ended. Returns their ids.
    pub async fn purge_due_deletions(&self) -> Result<Vec<KeyId>, Error> {
        let now = self.clock.now();
        let mut due = self.store.due_deletions(now).await?;
        // Only a key whose own authenticated record says it is due: a
        // deletion time written into the database directly destroys nothing.
        let mut confirmed = Vec::with_capacity(due.len());
        for id in due.drain(..) {
            if let Some(key) = self.store.key(&id).await? {
                match self.verified(key).await {
                    Ok(key) if key.deletion_at().is_some_and(|at| at <= now) => confirmed.push(id),
                    Ok(_) | Err(Error::TamperedKeyRecord(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let due = confirmed;
        for id in &due {
            // Recorded before the key goes, so that no stop or crash can
            // leave a destruction unrecorded: a record whose deletion did
            // not happen is followed by another when the next pass
            // destroys the key. Without a record (the audit log cannot be
            // written), the key stays pending until a pass can record it.
            if let Err(e) = self
                .audit_event_first(
                    "key_destroyed",
                    Some(id.as_str()),
                    "its deletion window ended",
                )
                .await
            {
                tracing::error!(key_id = %id, error = %e, "not destroyed yet: its audit record cannot be written");
                continue;
            }
            // Its aliases go first, so that a later key of this id never
            // inherits them; the key stays pending until they are gone.
            if let Err(e) = self.delete_aliases_of(id).await {
                tracing::error!(key_id = %id, error = %e, "not destroyed yet: its aliases cannot be deleted");
                continue;
            }
            match self.store.delete_key(id).await {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
            self.metadata.evict(id);
            if let Some(keyring) = self.read_keyring().clone() {
                keyring.forget_key(id);
            }
            tracing::warn!(key_id = %id, "destroyed key: its deletion window ended");
        }
        Ok(due)
    }

    /// Drops the root key and every DEK from memory, then records the seal
    /// in the keystore so that a restart stays sealed. Discards the approvals
    /// of an unseal in progress. Idempotent.
    pub async fn seal(&self, identity: &Identity) -> Result<(), Error> {
        authz::require(self.caller(identity).await?, Role::SecurityOfficer)?;
        self.drop_key_material();
        self.cancel_unseal().await;
        tracing::warn!(by = %identity, "service sealed: key material dropped from memory");
        // Key material is gone whatever happens next; if recording the seal
        // fails, the caller is told, and a restart would come up unsealed.
        self.store.set_sealed(true).await?;
        Ok(())
    }

    fn drop_key_material(&self) {
        let previous = self.write_keyring().take();
        self.sealed.send_replace(true);
        drop(previous);
    }

    /// Seals without a caller (a signal, a severe anomaly): audited as an
    /// event; a failure to persist the seal is logged.
    pub async fn seal_for(&self, reason: &str) {
        self.drop_key_material();
        self.cancel_unseal().await;
        tracing::warn!(reason, "service sealed: key material dropped from memory");
        self.audit_event("sealed", None, reason).await;
        if let Err(e) = self.store.set_sealed(true).await {
            tracing::error!(error = %e, "the seal is not recorded in the keystore: a restart would come up unsealed");
        }
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &crate::service::metrics::Metrics {
        &self.metrics
    }

    /// Whether the keystore answers a read within two seconds.
    pub async fn store_answers(&self) -> bool {
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(2), self.store.sealed()).await,
            Ok(Ok(_))
        )
    }

    /// The metrics in Prometheus text format, with current gauges.
    pub async fn render_metrics(&self) -> String {
        let keys = self.cached_key_count().await;
        self.metrics.render(crate::service::metrics::Snapshot {
            keys,
            sealed: self.is_sealed(),
            // The count may be cached: ask the store itself.
            store_up: self.store_answers().await,
            audit_queue_depth: self.audit.get().map_or(0, |log| log.queue_depth() as u64),
            audit_stdout_dropped: self.audit.get().map_or(0, |log| log.stdout_dropped()),
            audit_records_failed: self.audit.get().map_or(0, |log| log.records_failed()),
            keys_rotation_overdue: self.keys_rotation_overdue().await,
        })
    }

    /// Keys due for automatic rotation more than [`ROTATION_OVERDUE_AFTER`]
    /// seconds ago (up to [`ROTATION_OVERDUE_CAP`]); `None` when the store
    /// does not answer. The lifecycle check rotates due keys every
    /// `--lifecycle-check-interval`, so a key left due that long means
    /// rotation is failing (sealed, store errors).
    async fn keys_rotation_overdue(&self) -> Option<u64> {
        let before = self.clock.now().saturating_sub(ROTATION_OVERDUE_AFTER);
        let due = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            self.store.due_rotations(before, ROTATION_OVERDUE_CAP),
        )
        .await;
        match due {
            Ok(Ok(keys)) => Some(keys.len() as u64),
            _ => None,
        }
    }
}

#[cfg(test)]
mod authz_table_tests;
#[cfg(test)]
mod metering_tests;
#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod tests;
