//! Backups: a consistent snapshot of the keystore taken while serving,
//! written in the [`crate::backup`] format, and opened offline with the
//! master key (tag checked, every DEK unwrapped) before a restore.

use std::num::NonZeroUsize;
use std::sync::Arc;

use super::keyring::Keyring;
use super::metadata_auth::unwrap_root;
use super::{Service, authz};
use crate::backup::{self, BackupError};
use crate::error::{Error, MasterKeyError, StoreError};
use crate::identity::Identity;
use crate::master_key::MasterKey;
use crate::store::{Snapshot, StoredRoot};
use tresor_crypto::SecretKey;

/// What an opened backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// The keystore it came from.
    pub keystore_id: String,
    /// When it was made (Unix seconds).
    pub created_at: i64,
    /// Keys in it.
    pub keys: usize,
    /// Key versions (wrapped DEKs) in it; every one unwrapped during the
    /// check.
    pub versions: usize,
}

fn backup_error(err: BackupError) -> Error {
    match err {
        BackupError::Record(e) => Error::Store(e),
        other => Error::InvalidArgument(other.to_string()),
    }
}

impl Service {
    /// A backup of the whole keystore. Security officers only; needs the service
    /// unsealed (the tag is keyed by the root key).
    pub async fn create_backup(&self, identity: &Identity) -> Result<Vec<u8>, Error> {
        authz::require(
            self.caller(identity).await?,
            crate::model::Role::SecurityOfficer,
        )?;
        self.backup_now().await
    }

    /// Checks a backup's integrity tag with the root key in memory (the
    /// scheduled backups read back what they wrote).
    pub fn check_backup(&self, bytes: &[u8]) -> Result<(), Error> {
        let keyring = self.keyring()?;
        let unchecked = backup::parse(bytes).map_err(backup_error)?;
        let generation = unchecked.snapshot.root.generation;
        let root = keyring.root_of(generation).ok_or_else(|| {
            Error::Store(StoreError::Corrupt(format!(
                "root key generation {generation} is not loaded"
            )))
        })?;
        unchecked.verify(&root).map_err(backup_error)?;
        Ok(())
    }

    /// A backup, without authorization (the scheduled backups).
    pub async fn backup_now(&self) -> Result<Vec<u8>, Error> {
        let keyring = self.keyring()?;
        let snapshot = self.store.snapshot().await?;
        let generation = snapshot.root.generation;
        if keyring.root_of(generation).is_none() {
            self.refresh_roots(&keyring).await?;
        }
        let root = keyring.root_of(generation).ok_or_else(|| {
            Error::Store(StoreError::Corrupt(format!(
                "root key generation {generation} is not loaded"
            )))
        })?;
        Ok(backup::encode(&snapshot, &root, self.clock.now())?)
    }
}

pub(super) async fn unwrap_current(
    root: &StoredRoot,
    master: &dyn MasterKey,
) -> Result<SecretKey, Error> {
    match unwrap_root(
        master,
        &root.current.wrapped_root_key,
        &root.keystore_id,
        root.generation,
    )
    .await
    {
        Ok((key, _)) => Ok(key),
        Err(first) => match &root.pending {
            Some(pending) => Ok(unwrap_root(
                master,
                &pending.wrapped_root_key,
                &root.keystore_id,
                root.generation,
            )
            .await?
            .0),
            None => Err(match first {
                MasterKeyError::WrongMasterKey | MasterKeyError::KmsAccessDenied { .. } => {
                    MasterKeyError::Mismatch {
                        given: master.describe(),
                        wrapped_by: root.current.master_key.clone(),
                    }
                    .into()
                }
                other => other.into(),
            }),
        },
    }
}

/// Opens a backup with the master key: checks its integrity tag and
/// unwraps every DEK in it, so a backup that opens here restores to a
/// keystore that decrypts everything it held.
pub async fn open_backup(
    bytes: &[u8],
    master: &dyn MasterKey,
) -> Result<(Snapshot, BackupSummary), Error> {
    let unchecked = backup::parse(bytes).map_err(backup_error)?;
    let root = unchecked.snapshot.root.clone();
    let current = unwrap_current(&root, master).await?;
    let retiring = match &root.retiring {
        Some(retiring) => Some((
            retiring.generation,
            unwrap_root(
                master,
                &retiring.wrapping.wrapped_root_key,
                &root.keystore_id,
                retiring.generation,
            )
            .await?
            .0,
        )),
        None => None,
    };
    let created_at = unchecked.created_at;
    let snapshot = unchecked.verify(&current).map_err(backup_error)?;
    let keyring = Keyring::new(root.generation, current, NonZeroUsize::MIN);
    if let Some((generation, key)) = retiring {
        keyring.install_retiring_root(generation, key);
    }
    for (id, version) in &snapshot.versions {
        keyring.unwrap_dek(id, version)?;
    }
    let summary = BackupSummary {
        keystore_id: root.keystore_id.clone(),
        created_at,
        keys: snapshot.keys.len(),
        versions: snapshot.versions.len(),
    };
    Ok((snapshot, summary))
}

/// Opens `bytes` with `master` and writes it into `store` (empty, unless
/// `replace`).
pub async fn restore_backup(
    bytes: &[u8],
    master: &dyn MasterKey,
    store: Arc<dyn crate::store::KeyStore>,
    replace: bool,
) -> Result<BackupSummary, Error> {
    plan_restore(bytes, master, store.as_ref())
        .await?
        .apply(store.as_ref(), replace)
        .await
}

/// A backup opened and checked, and what restoring it over a keystore
/// would bring back.
#[derive(Debug)]
pub struct RestorePlan {
    snapshot: Snapshot,
    /// What the backup holds.
    pub summary: BackupSummary,
    /// What the keystore removed or tightened since the backup was made and
    /// the restore would undo, one human line each (empty for an empty
    /// keystore). See [`what_comes_back`].
    pub comes_back: Vec<String>,
}

impl RestorePlan {
    /// Restores the backup into `store` (`replace`: even if it is not
    /// empty). The audit logs' checkpoints in `store` are kept.
    pub async fn apply(
        self,
        store: &dyn crate::store::KeyStore,
        replace: bool,
    ) -> Result<BackupSummary, Error> {
        store.restore(&self.snapshot, replace).await?;
        Ok(self.summary)
    }
}

/// Opens the backup with the master key, and compares it with what
/// `store` holds now.
pub async fn plan_restore(
    bytes: &[u8],
    master: &dyn MasterKey,
    store: &dyn crate::store::KeyStore,
) -> Result<RestorePlan, Error> {
    let (snapshot, summary) = open_backup(bytes, master).await?;
    let comes_back = match store.root().await? {
        Some(_) => super::restore_diff::what_comes_back(&store.snapshot().await?, &snapshot),
        None => Vec::new(),
    };
    Ok(RestorePlan {
        snapshot,
        summary,
        comes_back,
    })
}
