//! Removing expired grants: an expired conditional grant allows nothing
//! at once (`authz`), is shown as expired for [`EXPIRED_GRANT_RETENTION`]
//! so operators see what lapsed, and is then removed by the lifecycle
//! check, a page of keys per pass (the walk resumes where the last pass
//! stopped, so a large keystore is covered over several passes without a
//! long pass).

use std::sync::Mutex;

use super::Service;
use super::admin::unwrap_rejected;
use crate::error::Error;
use crate::model::{KeyId, KeyMetadata, UnixTime};
use crate::store::KeyUpdate;

/// How long an expired grant stays visible before it is removed: 7 days.
pub const EXPIRED_GRANT_RETENTION: i64 = 7 * 86_400;

/// Keys read per lifecycle pass.
const SWEEP_PAGE: usize = 4096;

/// Where the walk over the keys resumes (`None`: from the start).
#[derive(Debug, Default)]
pub(super) struct SweepCursor(Mutex<Option<KeyId>>);

/// Whether `key` holds a grant expired for longer than the retention.
fn has_stale(key: &KeyMetadata, now: UnixTime) -> bool {
    key.conditional_grants
        .iter()
        .any(|grant| grant.is_expired(now.saturating_sub(EXPIRED_GRANT_RETENTION)))
}

impl Service {
    /// The service's clock: seconds since the Unix epoch.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// One pass of the walk: removes, from the next page of keys, the
    /// grants that expired more than [`EXPIRED_GRANT_RETENTION`] ago, each
    /// key's removal audited as `expired_grant_removed`. Returns how many
    /// grants it removed.
    pub async fn sweep_expired_grants(&self) -> Result<usize, Error> {
        let after = self
            .grant_sweep
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let page = self.store.list_keys("", after.as_ref(), SWEEP_PAGE).await?;
        let next = if page.len() < SWEEP_PAGE {
            None
        } else {
            page.last().map(|key| key.id.clone())
        };
        let now = self.now();
        let mut removed = 0;
        for key in page.iter().filter(|key| has_stale(key, now)) {
            let before = key.conditional_grants.len();
            let update = |current: &KeyMetadata| {
                let mut next = current.clone();
                next.conditional_grants
                    .retain(|grant| !grant.is_expired(now.saturating_sub(EXPIRED_GRANT_RETENTION)));
                Ok(KeyUpdate::metadata(next))
            };
            let updated = match self.update_authenticated(&key.id, &update).await {
                Ok(updated) => updated,
                // Destroyed meanwhile, or tampered (reported on read): skip.
                Err(e) => match unwrap_rejected(e) {
                    Error::NotFound | Error::TamperedKeyRecord(_) => continue,
                    other => return Err(other),
                },
            };
            self.remember(&updated);
            let gone = before.saturating_sub(updated.conditional_grants.len());
            removed += gone;
            self.audit_event(
                "expired_grant_removed",
                Some(key.id.as_str()),
                &format!("{gone} grant(s) expired more than 7 days ago"),
            )
            .await;
        }
        *self
            .grant_sweep
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        Ok(removed)
    }
}
