//! Root-key rotation: a new root key becomes current at once (new DEKs are
//! wrapped under it), and a background task re-wraps every existing DEK in
//! batches. Each batch is one atomic store write that also records a
//! cursor, so a crash loses at most the batch in flight and the task
//! resumes from the cursor at the next start. The previous root key stays
//! in the keystore (wrapped by the master key) until a full pass finds no
//! DEK still wrapped by it; only then is it dropped. Encrypt and decrypt
//! keep working throughout: each DEK records which root key wrapped it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{Error, Precondition};
use crate::identity::Identity;
use crate::service::root::crash_point;
use crate::service::{Service, authz};
use crate::store::{RetiringRoot, Rewrap, RewrapCursor, RootWrapping, StoredRoot};
use tresor_crypto::SecretKey;

/// DEKs re-wrapped per store write, unless configured otherwise.
pub const DEFAULT_REWRAP_BATCH: usize = 500;

/// Progress of the background re-wrap, for status reports.
#[derive(Debug, Default)]
pub(in crate::service) struct RewrapProgress {
    running: AtomicBool,
    rewrapped: AtomicU64,
    total: AtomicU64,
    task: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

/// A root-key rotation in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootRotation {
    /// DEK versions visited in the current pass.
    pub rewrapped: u64,
    /// DEK versions in the keystore when the pass started.
    pub total: u64,
}

impl Service {
    /// Makes a new root key current and starts re-wrapping every DEK under
    /// it in the background. Security officers only; needs the service unsealed.
    pub async fn rotate_root_key(self: &Arc<Self>, identity: &Identity) -> Result<(), Error> {
        authz::require(
            self.caller(identity).await?,
            crate::model::Role::SecurityOfficer,
        )?;
        let keyring = self.keyring()?;
        let stored = self
            .store
            .root()
            .await?
            .ok_or(Error::Store(crate::error::StoreError::NotInitialised))?;
        if stored.retiring.is_some() {
            return Err(Error::FailedPrecondition(Precondition::Other(
                "a root-key rotation is already in progress".into(),
            )));
        }
        let master = self.master();
        let new_root = SecretKey::generate()?;
        let generation = stored.generation + 1;
        let wrapped_root_key = crate::service::metadata_auth::wrap_root(
            master.as_ref(),
            &new_root,
            &stored.keystore_id,
            generation,
        )
        .await?;
        self.store.clear_rewrap_cursor().await?;
        let mut next = StoredRoot {
            current: RootWrapping {
                master_key: master.describe(),
                wrapped_root_key,
            },
            pending: None,
            generation,
            retiring: Some(RetiringRoot {
                generation: stored.generation,
                wrapping: stored.current.clone(),
            }),
            ..stored.clone()
        };
        let (_, current) = keyring.current_root()?;
        crate::service::root_secrets::reseal_all(&stored, &current, &new_root, &mut next)?;
        self.store.replace_root(&stored, &next).await?;
        keyring.install_current_root(generation, new_root);
        tracing::warn!(by = %identity, generation, "rotated the root key; re-wrapping every DEK in the background");
        crash_point("root-rotate:after-switch");
        self.spawn_root_rewrap();
        Ok(())
    }

    /// The rotation in progress, if any.
    pub fn root_rotation(&self) -> Option<RootRotation> {
        let progress = &self.rewrap;
        progress
            .running
            .load(Ordering::SeqCst)
            .then(|| RootRotation {
                rewrapped: progress.rewrapped.load(Ordering::SeqCst),
                total: progress.total.load(Ordering::SeqCst),
            })
    }

    /// Starts (or resumes, after a restart) the background re-wrap if the
    /// keystore has a retiring root key and no task is running.
    pub fn spawn_root_rewrap(self: &Arc<Self>) {
        if self
            .rewrap
            .running
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        let service = Arc::clone(self);
        let task = tokio::spawn(async move {
            loop {
                match service.rewrap_all().await {
                    Ok(()) => break,
                    Err(Error::Sealed) => {
                        // Paused by a seal: continue after unseal.
                        let mut sealed = service.watch_sealed();
                        while *sealed.borrow_and_update() {
                            if sealed.changed().await.is_err() {
                                service.rewrap.running.store(false, Ordering::SeqCst);
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "root-key rotation stopped; it resumes at the next start");
                        break;
                    }
                }
            }
            service.rewrap.running.store(false, Ordering::SeqCst);
        });
        *self
            .rewrap
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task.abort_handle());
    }

    /// Stops background work (at shutdown). An interrupted re-wrap resumes
    /// from its cursor at the next start; each batch is atomic.
    pub fn stop_background_tasks(&self) {
        if let Some(task) = self
            .rewrap
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
        self.rewrap.running.store(false, Ordering::SeqCst);
    }

    /// Re-wraps until no DEK is wrapped by the retiring root key, then drops
    /// it. Returns at once when no rotation is in progress.
    async fn rewrap_all(&self) -> Result<(), Error> {
        let batch = self.options.rewrap_batch_size.max(1);
        let mut cursor: Option<RewrapCursor> = self.store.rewrap_cursor().await?;
        loop {
            let Some(stored) = self.store.root().await? else {
                return Ok(());
            };
            let Some(retiring) = stored.retiring.clone() else {
                return Ok(());
            };
            self.rewrap.rewrapped.store(0, Ordering::SeqCst);
            self.rewrap
                .total
                .store(self.count_versions(batch).await?, Ordering::SeqCst);
            let mut still_old = 0u64;
            loop {
                let keyring = self.keyring()?;
                let (current, _) = keyring.current_root()?;
                let page = self.store.versions_after(cursor.as_ref(), batch).await?;
                let Some((last_id, last)) = page.last() else {
                    break;
                };
                let last = RewrapCursor {
                    key_id: last_id.clone(),
                    version: last.version,
                };
                let mut rewraps: Vec<Rewrap> = Vec::new();
                for (id, stored_version) in &page {
                    if stored_version.root_generation == current {
                        continue;
                    }
                    let dek = keyring.unwrap_dek(id, stored_version)?;
                    let new = keyring.wrap_dek(id, stored_version.version, &dek)?;
                    rewraps.push((id.clone(), stored_version.clone(), new));
                }
                let replaced = self.store.rewrap_versions(&rewraps, &last).await?;
                still_old += (rewraps.len() - replaced) as u64;
                self.rewrap
                    .rewrapped
                    .fetch_add(page.len() as u64, Ordering::SeqCst);
                crash_point("root-rotate:after-batch");
                cursor = Some(last);
            }
            cursor = None;
            // A pass that changed nothing proves no DEK is left under the
            // retiring key (one wrapped by a rotation racing the switch is
            // caught by the next pass).
            if still_old == 0 && self.no_dek_under(retiring.generation, batch).await? {
                let finished = StoredRoot {
                    retiring: None,
                    ..stored.clone()
                };
                // The cursor goes first, so that a finished rotation (no
                // retiring key) never shows a cursor; a crash in between
                // only makes the next start scan once more from the top.
                self.store.clear_rewrap_cursor().await?;
                self.store.replace_root(&stored, &finished).await?;
                if let Ok(keyring) = self.keyring() {
                    keyring.drop_root(retiring.generation);
                }
                tracing::warn!(
                    retired = retiring.generation,
                    current = stored.generation,
                    "root-key rotation finished; the previous root key is gone"
                );
                self.audit_event(
                    "root_rotation_finished",
                    None,
                    &format!(
                        "every DEK is wrapped by root key generation {}",
                        stored.generation
                    ),
                )
                .await;
                return Ok(());
            }
        }
    }

    async fn count_versions(&self, batch: usize) -> Result<u64, Error> {
        let mut total = 0u64;
        let mut cursor: Option<RewrapCursor> = None;
        loop {
            let page = self.store.versions_after(cursor.as_ref(), batch).await?;
            let Some((id, last)) = page.last() else {
                return Ok(total);
            };
            cursor = Some(RewrapCursor {
                key_id: id.clone(),
                version: last.version,
            });
            total += page.len() as u64;
        }
    }

    async fn no_dek_under(&self, generation: u32, batch: usize) -> Result<bool, Error> {
        let mut cursor: Option<RewrapCursor> = None;
        loop {
            let page = self.store.versions_after(cursor.as_ref(), batch).await?;
            let Some((id, last)) = page.last() else {
                return Ok(true);
            };
            if page.iter().any(|(_, v)| v.root_generation == generation) {
                return Ok(false);
            }
            cursor = Some(RewrapCursor {
                key_id: id.clone(),
                version: last.version,
            });
        }
    }
}
