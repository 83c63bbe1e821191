//! The key count `/metrics` reports, cached: PostgreSQL counts rows with a
//! scan of the whole table, so counting on every scrape would let anyone
//! who can reach the metrics port make the database scan it at will. One
//! count runs at a time; scrapes within [`KEY_COUNT_TTL`] of the last
//! successful count reuse it.

use std::time::{Duration, Instant};

use super::Service;

/// How long a counted number of keys is reported before it is counted
/// again.
pub const KEY_COUNT_TTL: Duration = Duration::from_secs(30);

/// How long one count may take before the scrape reports no count.
const COUNT_TIMEOUT: Duration = Duration::from_secs(2);

/// The last successful count and when it was taken.
#[derive(Debug, Default)]
pub(super) struct KeyCountCache(tokio::sync::Mutex<Option<(Instant, u64)>>);

impl Service {
    /// The number of keys, counted at most once per [`KEY_COUNT_TTL`];
    /// `None` when the store did not answer in time.
    pub(super) async fn cached_key_count(&self) -> Option<u64> {
        // Held across the count, so concurrent scrapes wait for one count
        // instead of starting their own.
        let mut last = self.key_count.0.lock().await;
        if let Some((at, count)) = *last
            && at.elapsed() < KEY_COUNT_TTL
        {
            return Some(count);
        }
        let count = tokio::time::timeout(COUNT_TIMEOUT, self.store.key_count())
            .await
            .ok()
            .and_then(Result::ok)?;
        *last = Some((Instant::now(), count));
        Some(count)
    }
}
