//! Rotation by the server itself: keys whose rotation period has passed
//! since their primary version was made get a new version, audited, with
//! exactly one replica rotating each due key (the decision is re-checked
//! inside the store's atomic update, so a replica that loses the race finds
//! the key no longer due).

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Precondition, StoreError};
use crate::model::{KeyId, KeyMetadata, KeyVersion};
use crate::service::lifecycle::{self, AutoRotation, VersionChange};
use crate::service::{Clock, Service, SystemClock};
use crate::store::KeyUpdate;
use tresor_crypto::SecretKey;

use crate::service::keyring::Keyring;

/// How often the server looks for keys due for automatic rotation or
/// destruction.
pub const DEFAULT_LIFECYCLE_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// Default of `--max-key-versions`: versions (not destroyed) one key may
/// hold before RotateKey is refused.
pub const DEFAULT_MAX_VERSIONS_PER_KEY: u32 = 100;

/// Due keys rotated per store query; the rest wait for the next pass.
const ROTATIONS_PER_PASS: usize = 1000;

/// A clock shared by the service and its background tasks.
#[derive(Debug, Clone)]
pub struct SharedClock(pub Arc<dyn Clock>);

impl Default for SharedClock {
    fn default() -> Self {
        Self(Arc::new(SystemClock))
    }
}

/// Settings of the server's own key lifecycle work.
#[derive(Debug, Clone)]
pub struct LifecycleOptions {
    /// How often to look for keys due for automatic rotation or
    /// destruction.
    pub lifecycle_check_interval: Duration,
    /// Encryptions under one key version after which the server rotates
    /// the key (usage-based rotation).
    pub max_encryptions_per_version: u64,
    /// Most versions (not destroyed) a key may hold before RotateKey is
    /// refused (`--max-key-versions`).
    pub max_versions_per_key: u32,
    /// The clock every lifecycle decision reads (tests move it by hand).
    pub clock: SharedClock,
}

impl Default for LifecycleOptions {
    fn default() -> Self {
        Self {
            lifecycle_check_interval: DEFAULT_LIFECYCLE_CHECK_INTERVAL,
            max_encryptions_per_version: crate::service::DEFAULT_MAX_ENCRYPTIONS_PER_VERSION,
            max_versions_per_key: DEFAULT_MAX_VERSIONS_PER_KEY,
            clock: SharedClock::default(),
        }
    }
}

impl Service {
    /// The lifecycle settings.
    pub fn lifecycle(&self) -> &LifecycleOptions {
        &self.options.lifecycle
    }

    /// Rotates every key whose rotation period has passed. Returns the keys
    /// this replica rotated, with their new primary versions; keys another
    /// replica rotated first are skipped. Refused while sealed (nothing can
    /// be wrapped); the next pass after unseal catches up.
    pub async fn rotate_due_keys(&self) -> Result<Vec<(KeyId, KeyVersion)>, Error> {
        let keyring = self.keyring()?;
        let due = self
            .store
            .due_rotations(self.clock.now(), ROTATIONS_PER_PASS)
            .await?;
        let mut rotated = Vec::new();
        for id in due {
            match self
                .rotate_automatically(&keyring, &id, AutoRotation::Schedule)
                .await
            {
                Ok(Some(key)) => rotated.push((id, key.primary_version)),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(key_id = %id, error = %e, "automatic rotation failed; retried on the next pass");
                }
            }
        }
        Ok(rotated)
    }

    /// Rotates `id` if `trigger` still holds inside the atomic update.
    /// `None` when it no longer does (another replica rotated first, or the
    /// key changed or vanished).
    pub(in crate::service) async fn rotate_automatically(
        &self,
        keyring: &Keyring,
        id: &KeyId,
        trigger: AutoRotation,
    ) -> Result<Option<KeyMetadata>, Error> {
        let now = self.clock.now();
        let rotated = self
            .rotate_with(keyring, id, |current| {
                lifecycle::rotate_automatically(current, trigger, now)
            })
            .await;
        let key = match rotated {
            Ok(key) => key,
            Err(Error::FailedPrecondition(Precondition::RotationNotDue) | Error::NotFound) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let why = match trigger {
            AutoRotation::Schedule => "rotation period",
            AutoRotation::Usage { .. } => "encryption limit",
        };
        tracing::info!(key_id = %id, version = %key.primary_version, why, "rotated key automatically");
        self.audit_event(
            "key_rotated_automatically",
            Some(id.as_str()),
            &format!("version {} ({why})", key.primary_version),
        )
        .await;
        Ok(Some(key))
    }

    /// Adds a version chosen by `decide` (a pure transition run inside the
    /// store's atomic update), wrapping a fresh DEK under the current root
    /// key; retried once when a root-key rotation switched root keys.
    pub(in crate::service) async fn rotate_with(
        &self,
        keyring: &Keyring,
        id: &KeyId,
        decide: impl Fn(&KeyMetadata) -> Result<VersionChange, Error> + Send + Sync,
    ) -> Result<KeyMetadata, Error> {
        self.refresh_roots(keyring).await?;
        let dek = SecretKey::generate()?;
        let rotate = |current: &KeyMetadata| {
            let VersionChange { metadata, version } = decide(current)?;
            Ok(KeyUpdate {
                new_version: Some(keyring.wrap_dek(id, version, &dek)?),
                metadata,
                destroy_version: None,
            })
        };
        let rotated = match self.update_authenticated(id, &rotate).await {
            Err(StoreError::Conflict) => {
                self.refresh_roots(keyring).await?;
                self.update_authenticated(id, &rotate).await
            }
            other => other,
        }
        .map_err(crate::service::admin::unwrap_rejected)?;
        self.remember(&rotated);
        Ok(rotated)
    }
}
