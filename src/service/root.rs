//! The root key: initialised once per keystore, unwrapped with the master
//! key at start-up and unseal, and re-wrapped when the master key rotates.
//!
//! Master-key rotation is two compare-and-swap writes, each flushed: first
//! the new wrapping is added as *pending* beside the current one, then it
//! is promoted. After a crash at any instant the keystore opens with either
//! the old master key (before the promotion) or the new one (after the
//! first write); opening finishes or discards an interrupted rotation.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::keyring::Keyring;
use super::metadata_auth::{unwrap_root, wrap_root};
use super::{Service, authz};
use crate::error::{Error, MasterKeyError, Precondition, StoreError};
use crate::identity::Identity;
use crate::master_key::{MasterKey, TargetRefused};
use crate::store::{RootWrapping, StoredRoot};
use tresor_crypto::SecretKey;

/// Test-only crash hook: in debug builds, `TRESOR_CRASH_AT=<point>` aborts
/// the process at that point (like `kill -9`: no destructors, no flush), so
/// tests can prove crash safety. Release builds compile it away.
pub(crate) fn crash_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("TRESOR_CRASH_AT").is_ok_and(|wanted| wanted == point) {
        eprintln!("TRESOR_CRASH_AT={point}: aborting now");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

impl Service {
    pub(super) async fn initialise_root(&self) -> Result<(), Error> {
        if self.store.root().await?.is_some() {
            return Ok(());
        }
        let master = self.master();
        let root = SecretKey::generate()?;
        let keystore_id = hex::encode(tresor_crypto::random_bytes(16)?.expose());
        let wrapped_root_key = wrap_root(master.as_ref(), &root, &keystore_id, 1).await?;
        let stored = self
            .store
            .init_root(StoredRoot {
                keystore_id,
                current: RootWrapping {
                    master_key: master.describe(),
                    wrapped_root_key,
                },
                pending: None,
                generation: 1,
                retiring: None,
                audit_key: None,
                // Authenticated from the start: the key is made with the
                // keystore (a fresh keystore has no records to tag).
                metadata_key: Some(super::root_secrets::seal(
                    &root,
                    super::root_secrets::RootSecret::Metadata,
                    &SecretKey::generate()?,
                )?),
            })
            .await?;
        tracing::info!(keystore_id = %stored.keystore_id, master_key = %master.describe(), "initialised a new keystore");
        Ok(())
    }

    async fn stored_root(&self) -> Result<StoredRoot, Error> {
        self.store
            .root()
            .await?
            .ok_or(Error::Store(StoreError::NotInitialised))
    }

    /// Unwraps the root key, finishing or discarding an interrupted
    /// master-key rotation, and installs the keyring.
    pub(super) async fn load_keyring(&self) -> Result<(), Error> {
        let stored = self.stored_root().await?;
        let master = self.master();
        let id = &stored.keystore_id;
        let given = master.describe();
        // "Does not open" from the provider: a wrong key, or (KMS) an access
        // denial that, for a key other than the recorded one, means the same.
        let wrong_key = |e: &MasterKeyError, recorded: &str| match e {
            MasterKeyError::WrongMasterKey => true,
            MasterKeyError::KmsAccessDenied { .. } => recorded != given,
            _ => false,
        };
        let (root, format) = match unwrap_root(
            master.as_ref(),
            &stored.current.wrapped_root_key,
            id,
            stored.generation,
        )
        .await
        {
            Ok(root) => {
                if let Some(pending) = &stored.pending {
                    tracing::warn!(
                        abandoned = %pending.master_key,
                        "discarding an interrupted master-key rotation: the keystore opened with the previous master key"
                    );
                    let clean = StoredRoot {
                        pending: None,
                        ..stored.clone()
                    };
                    self.store.replace_root(&stored, &clean).await?;
                }
                root
            }
            Err(e) if wrong_key(&e, &stored.current.master_key) => {
                let Some(pending) = &stored.pending else {
                    return Err(mismatch(&stored, master.as_ref()));
                };
                let root = unwrap_root(
                    master.as_ref(),
                    &pending.wrapped_root_key,
                    id,
                    stored.generation,
                )
                .await
                .map_err(|e| {
                    if wrong_key(&e, &pending.master_key) {
                        mismatch(&stored, master.as_ref())
                    } else {
                        e.into()
                    }
                })?;
                tracing::warn!(
                    master_key = %pending.master_key,
                    "completing an interrupted master-key rotation"
                );
                let done = StoredRoot {
                    current: pending.clone(),
                    pending: None,
                    ..stored.clone()
                };
                self.store.replace_root(&stored, &done).await?;
                root
            }
            Err(other) => return Err(other.into()),
        };
        let retiring = match &stored.retiring {
            Some(retiring) => {
                let (old, _) = unwrap_root(
                    master.as_ref(),
                    &retiring.wrapping.wrapped_root_key,
                    id,
                    retiring.generation,
                )
                .await?;
                Some((retiring.generation, old))
            }
            None => None,
        };
        let auth = self
            .prepare_metadata_auth(&root, format, retiring.as_ref().map(|(_, key)| key))
            .await?;
        let keyring = Arc::new(Keyring::new(
            stored.generation,
            root,
            self.options.dek_cache_capacity,
        ));
        keyring.install_metadata_auth(auth);
        if let Some((generation, old)) = retiring {
            keyring.install_retiring_root(generation, old);
        }
        *self.write_keyring() = Some(keyring);
        self.sealed.send_replace(false);
        Ok(())
    }

    /// Brings the keyring's root keys in line with the keystore: another
    /// replica may have rotated the root key. Costs one master-key call per
    /// root key this replica has not seen yet; none otherwise.
    pub(super) async fn refresh_roots(&self, keyring: &Keyring) -> Result<(), Error> {
        let stored = self.stored_root().await?;
        let master = self.master();
        let id = &stored.keystore_id;
        if let Some(retiring) = &stored.retiring
            && keyring.root_of(retiring.generation).is_none()
        {
            let (old, _) = unwrap_root(
                master.as_ref(),
                &retiring.wrapping.wrapped_root_key,
                id,
                retiring.generation,
            )
            .await?;
            keyring.install_retiring_root(retiring.generation, old);
        }
        let (current, _) = keyring.current_root()?;
        if current != stored.generation {
            let (root, _) = unwrap_root(
                master.as_ref(),
                &stored.current.wrapped_root_key,
                id,
                stored.generation,
            )
            .await?;
            keyring.install_current_root(stored.generation, root);
            tracing::info!(
                generation = stored.generation,
                "loaded a root key rotated by another replica"
            );
        }
        Ok(())
    }

    /// Unwraps the root key even if the keystore is marked sealed, without
    /// clearing the mark (offline maintenance such as `tresor master-key
    /// rotate --data-dir`).
    pub async fn open_root_for_maintenance(&self) -> Result<(), Error> {
        if self.is_sealed() {
            self.load_keyring().await?;
        }
        Ok(())
    }

    /// Re-wraps the root key under the master key a request names (admins
    /// only; needs the service unsealed): `name` empty means the current
    /// master key, anything else must be one of the server's
    /// `--allowed-master-key` entries, and `endpoint` must be empty (only
    /// the server's `--aws-endpoint` applies). Nothing named by the request
    /// is opened, read or contacted before it passes that check. Returns
    /// the description of the master key now in use.
    pub async fn rotate_master_key(
        &self,
        identity: &Identity,
        name: &str,
        endpoint: &str,
    ) -> Result<String, Error> {
        authz::require(
            self.caller(identity).await?,
            crate::model::Role::SecurityOfficer,
        )?;
        let new = if name.is_empty() && endpoint.is_empty() {
            self.master()
        } else {
            let spec = self
                .options
                .master_key_targets
                .resolve(name, endpoint)
                .map_err(|refused| match refused {
                    TargetRefused::NotAllowed => {
                        Error::FailedPrecondition(Precondition::Other(refused.to_string()))
                    }
                    other => Error::InvalidArgument(other.to_string()),
                })?;
            tracing::warn!(target = %spec.full_description(), "rotating the master key");
            spec.open().await?
        };
        self.rewrap_root(new).await
    }

    /// The rotation itself, without authorization (the offline command calls
    /// it on a stopped keystore).
    pub async fn rewrap_root(&self, new: Arc<dyn MasterKey>) -> Result<String, Error> {
        let keyring = self.keyring()?;
        let stored = self.stored_root().await?;
        if stored.retiring.is_some() {
            return Err(Error::FailedPrecondition(
                crate::error::Precondition::Other(
                    "a root-key rotation is in progress; rotate the master key after it finishes"
                        .into(),
                ),
            ));
        }
        let id = &stored.keystore_id;
        let (generation, root) = keyring.current_root()?;
        let wrapped = wrap_root(new.as_ref(), &root, id, generation).await?;
        // Prove the new wrapping opens before the keystore depends on it.
        let (check, _) = unwrap_root(new.as_ref(), &wrapped, id, generation).await?;
        // Constant time: the keys are secret, however briefly compared.
        if !bool::from(check.ct_eq(&root)) {
            return Err(MasterKeyError::WrongMasterKey.into());
        }
        let wrapping = RootWrapping {
            master_key: new.describe(),
            wrapped_root_key: wrapped,
        };
        let pending = StoredRoot {
            pending: Some(wrapping.clone()),
            ..stored.clone()
        };
        self.store.replace_root(&stored, &pending).await?;
        crash_point("master-key-rotate:after-pending");
        let promoted = StoredRoot {
            current: wrapping,
            pending: None,
            ..stored.clone()
        };
        self.store.replace_root(&pending, &promoted).await?;
        crash_point("master-key-rotate:after-promote");
        let described = new.describe();
        *self
            .master
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = new;
        tracing::warn!(from = %stored.current.master_key, to = %described, "rotated the master key");
        Ok(described)
    }
}

fn mismatch(stored: &StoredRoot, given: &dyn MasterKey) -> Error {
    MasterKeyError::Mismatch {
        given: given.describe(),
        wrapped_by: stored.current.master_key.clone(),
    }
    .into()
}
