//! Retrying calls the server could not serve for a moment (sealed,
//! keystore or audit log unavailable, connection lost), with capped
//! exponential backoff and full jitter (each wait drawn uniformly between
//! zero and the cap, so many clients retrying together spread out).
//!
//! Only calls that may safely run twice are retried on every such failure:
//! reads, Encrypt and GenerateDataKey (a second run makes another
//! ciphertext or data key and changes nothing), and admin calls that set a
//! state (enable, disable, grant...). Calls that change state each time
//! they run (CreateKey, RotateKey, root and master key rotation) are
//! retried only when the server certainly did nothing: it was sealed, or no
//! connection could be made.

use std::future::Future;
use std::time::Duration;

use super::ClientError;

/// How a call may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// Running it twice has the effect of running it once (or no effect).
    Safe,
    /// Running it twice changes state twice.
    Unsafe,
}

/// When and how often a failed call is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 disables retries).
    pub max_attempts: u32,
    /// The backoff cap before the first retry; it doubles each retry.
    pub initial_backoff: Duration,
    /// The largest backoff cap.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, waits capped at 50, 100 and 200 ms.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// No retries: every failure is returned at once.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The cap on the wait before retry number `retry` (from 1).
    fn cap(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// Whether `error` after attempt `attempt` (from 1) calls for another.
    fn should_retry(&self, attempt: u32, idempotency: Idempotency, error: &ClientError) -> bool {
        attempt < self.max_attempts
            && match idempotency {
                Idempotency::Safe => error.is_transient(),
                Idempotency::Unsafe => error.nothing_done(),
            }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the attempts
    /// are spent; returns the last outcome.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        idempotency: Idempotency,
        mut attempt: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut tried = 0;
        loop {
            tried += 1;
            match attempt().await {
                Err(error) if self.should_retry(tried, idempotency, &error) => {
                    let wait = jitter(self.cap(tried));
                    tracing::debug!(attempt = tried, ?wait, %error, "retrying");
                    tokio::time::sleep(wait).await;
                }
                outcome => return outcome,
            }
        }
    }
}

/// A wait drawn uniformly from zero to `cap` (half of it if the system
/// random number generator fails; a retry is rare enough to ask it).
fn jitter(cap: Duration) -> Duration {
    let Ok(bytes) = tresor_crypto::random_bytes(8) else {
        return cap / 2;
    };
    let mut raw = [0u8; 8];
    raw.copy_from_slice(bytes.expose());
    let fraction = u64::from_le_bytes(raw) as f64 / u64::MAX as f64;
    cap.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::ConnectHint;

    fn refused() -> ClientError {
        ClientError::Connect {
            endpoint: "x".into(),
            hint: ConnectHint::ServerNotRunning,
            detail: "connection refused".into(),
        }
    }

    fn quick(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
        }
    }

    async fn attempts(
        policy: RetryPolicy,
        idempotency: Idempotency,
        failures: Vec<ClientError>,
    ) -> (u32, Result<(), ClientError>) {
        let calls = AtomicU32::new(0);
        let failures = std::sync::Mutex::new(failures.into_iter());
        let outcome = policy
            .run(idempotency, || {
                calls.fetch_add(1, Ordering::SeqCst);
                let next = failures.lock().expect("lock").next();
                async move { next.map_or(Ok(()), Err) }
            })
            .await;
        (calls.load(Ordering::SeqCst), outcome)
    }

    #[tokio::test]
    async fn safe_calls_retry_transient_failures_until_they_pass() {
        let failures = vec![
            ClientError::Sealed,
            ClientError::Unavailable("keystore unavailable".into()),
            refused(),
        ];
        let (calls, outcome) = attempts(quick(4), Idempotency::Safe, failures).await;
        assert_eq!(calls, 4);
        assert!(outcome.is_ok());
    }

    #[tokio::test]
    async fn attempts_are_bounded() {
        let failures = (0..10).map(|_| ClientError::Sealed).collect();
        let (calls, outcome) = attempts(quick(3), Idempotency::Safe, failures).await;
        assert_eq!(calls, 3);
        assert!(matches!(outcome, Err(ClientError::Sealed)));
        let (calls, _) = attempts(
            RetryPolicy::none(),
            Idempotency::Safe,
            vec![ClientError::Sealed],
        )
        .await;
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn unsafe_calls_retry_only_when_nothing_was_done() {
        let (calls, outcome) = attempts(
            quick(4),
            Idempotency::Unsafe,
            vec![ClientError::Sealed, refused()],
        )
        .await;
        assert_eq!(calls, 3);
        assert!(outcome.is_ok());
        // The audit log refused the answer after the change may have been
        // made: sending it again could rotate a key twice.
        let (calls, outcome) = attempts(
            quick(4),
            Idempotency::Unsafe,
            vec![ClientError::Unavailable("audit log unavailable".into())],
        )
        .await;
        assert_eq!(calls, 1);
        assert!(matches!(outcome, Err(ClientError::Unavailable(_))));
    }

    #[tokio::test]
    async fn refusals_are_never_retried() {
        for error in [
            ClientError::PermissionDenied("no".into()),
            ClientError::KeyDisabled,
            ClientError::InvalidCiphertext,
            ClientError::RateLimited("slow down".into()),
        ] {
            let (calls, outcome) = attempts(quick(4), Idempotency::Safe, vec![error]).await;
            assert_eq!(calls, 1);
            assert!(outcome.is_err());
        }
    }

    #[test]
    fn backoff_caps_double_up_to_the_maximum() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(300),
        };
        let caps: Vec<u128> = (1..=5).map(|n| policy.cap(n).as_millis()).collect();
        assert_eq!(caps, vec![50, 100, 200, 300, 300]);
    }
}
