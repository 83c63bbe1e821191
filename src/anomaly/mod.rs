//! Rate limits and anomaly alerts.
//!
//! - [`rate_limit`]: per-identity sliding-window limits (RESOURCE_EXHAUSTED
//!   beyond them).
//! - [`detector`]: per-identity baselines that raise an [`Alert`] when an
//!   identity's decrypt rate jumps far above its own recent average, when it
//!   touches many keys it never used before, or when its permission denials
//!   spike.
//!
//! Pure counting, no I/O: the service logs, audits, counts and forwards the
//! alerts (webhook, seal on a severe alert).

pub mod detector;
pub mod rate_limit;

pub use detector::{Detector, DetectorOptions, Observation};
pub use rate_limit::{Rate, RateLimiter, RateLimits};

use crate::identity::Identity;

/// The kinds of anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertKind {
    /// Decrypts far above the identity's own baseline.
    DecryptSpike,
    /// Many keys the identity never used before.
    NewKeys,
    /// Many permission denials.
    DenialSpike,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [Self; 3] = [Self::DecryptSpike, Self::NewKeys, Self::DenialSpike];

    /// The stable name used in logs, metrics, audit records, webhooks and
    /// `--seal-on-anomaly`.
    pub fn name(self) -> &'static str {
        match self {
            Self::DecryptSpike => "decrypt_spike",
            Self::NewKeys => "new_keys",
            Self::DenialSpike => "denial_spike",
        }
    }
}

impl std::str::FromStr for AlertKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| {
                format!("{text:?} is not an anomaly kind (decrypt_spike, new_keys, denial_spike)")
            })
    }
}

/// One anomaly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// What kind.
    pub kind: AlertKind,
    /// Whose calls.
    pub identity: Identity,
    /// What was observed against which threshold.
    pub detail: String,
}
