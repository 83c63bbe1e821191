//! Per-identity request-rate limits with a sliding-window counter: the
//! count of the current one-second window plus the previous window's count
//! weighted by how much of it still overlaps the last second. Memory is one
//! small entry per identity; the check is one short mutex hold.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::identity::Identity;

const WINDOW: Duration = Duration::from_secs(1);

/// A rate: requests per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(pub u32);

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let number = text.strip_suffix("/s").unwrap_or(text);
        let per_second: u32 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a rate like 500/s"))?;
        if per_second == 0 {
            return Err("a rate must be at least 1/s".into());
        }
        Ok(Self(per_second))
    }
}

/// Limits by identity, with a default for everyone else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// The limit of identities not listed (`None`: unlimited).
    pub default: Option<Rate>,
    /// Limits of named identities.
    pub per_identity: HashMap<Identity, Rate>,
}

impl RateLimits {
    /// Parses one `IDENTITY=N/s` flag value into the table.
    pub fn add(&mut self, spec: &str) -> Result<(), String> {
        let (identity, rate) = spec
            .rsplit_once('=')
            .ok_or_else(|| format!("{spec:?}: expected IDENTITY=N/s"))?;
        let identity = Identity::parse(identity).map_err(|e| format!("{spec:?}: {e}"))?;
        self.per_identity.insert(identity, rate.parse()?);
        Ok(())
    }

    fn limit_of(&self, identity: &Identity) -> Option<Rate> {
        self.per_identity.get(identity).copied().or(self.default)
    }

    /// Whether no limit applies to anyone.
    pub fn is_unlimited(&self) -> bool {
        self.default.is_none() && self.per_identity.is_empty()
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    current: u32,
    previous: u32,
}

/// Counts requests and refuses those beyond an identity's limit.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    windows: Mutex<HashMap<Identity, Window>>,
}

impl RateLimiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `identity` at `now`; `Err` with the limit when
    /// it is beyond it (a refused request is not counted).
    pub fn check(&self, identity: &Identity, now: Instant) -> Result<(), Rate> {
        self.check_n(identity, now, 1)
    }

    /// Counts `cost` requests at once (the items of a batch call): all of
    /// them fit under the limit, or none is counted. A cost above the
    /// limit never fits.
    pub fn check_n(&self, identity: &Identity, now: Instant, cost: u32) -> Result<(), Rate> {
        let Some(limit) = self.limits.limit_of(identity) else {
            return Ok(());
        };
        // The map only holds counters; a panic elsewhere cannot leave one
        // half-updated, so a poisoned lock is safe to use.
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = windows.entry(identity.clone()).or_insert(Window {
            start: now,
            current: 0,
            previous: 0,
        });
        let elapsed = now.saturating_duration_since(window.start);
        if elapsed >= WINDOW * 2 {
            *window = Window {
                start: now,
                current: 0,
                previous: 0,
            };
        } else if elapsed >= WINDOW {
            *window = Window {
                start: window.start + WINDOW,
                current: 0,
                previous: window.current,
            };
        }
        let into_window = now.saturating_duration_since(window.start).as_secs_f64();
        let overlap = 1.0 - into_window / WINDOW.as_secs_f64();
        let estimate = f64::from(window.previous) * overlap.max(0.0) + f64::from(window.current);
        if estimate + f64::from(cost) > f64::from(limit.0) {
            return Err(limit);
        }
        window.current = window.current.saturating_add(cost);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &str) -> Identity {
        Identity::parse(raw).expect("identity")
    }

    #[test]
    fn limits_parse_from_flags() {
        let mut limits = RateLimits::default();
        limits.add("spiffe://x/billing=500/s").expect("parse");
        assert_eq!(limits.limit_of(&id("spiffe://x/billing")), Some(Rate(500)));
        assert_eq!(limits.limit_of(&id("spiffe://x/other")), None);
        assert!(limits.add("spiffe://x/billing").is_err());
        assert!(limits.add("spiffe://x/billing=0/s").is_err());
        assert!(limits.add("spiffe://x/billing=fast").is_err());
        assert_eq!("20".parse::<Rate>(), Ok(Rate(20)));
    }

    #[test]
    fn a_limit_holds_over_any_sliding_second_and_frees_up_after() {
        let mut limits = RateLimits {
            default: Some(Rate(10)),
            ..RateLimits::default()
        };
        limits.add("spiffe://x/vip=100/s").expect("parse");
        let limiter = RateLimiter::new(limits);
        let start = Instant::now();
        let (busy, vip) = (id("spiffe://x/busy"), id("spiffe://x/vip"));
        let admitted = (0..50)
            .filter(|_| limiter.check(&busy, start).is_ok())
            .count();
        assert_eq!(admitted, 10);
        assert_eq!(
            (0..50)
                .filter(|_| limiter.check(&vip, start).is_ok())
                .count(),
            50
        );
        // Half a second into the next window, half of the previous one
        // still counts: 5 more fit.
        let half = start + Duration::from_millis(1500);
        assert_eq!(
            (0..50)
                .filter(|_| limiter.check(&busy, half).is_ok())
                .count(),
            5
        );
        // Two seconds of quiet: the full rate again.
        let later = start + Duration::from_secs(4);
        assert_eq!(
            (0..50)
                .filter(|_| limiter.check(&busy, later).is_ok())
                .count(),
            10
        );
        // A batch counts as its items: the whole rate in one go fits, one
        // more does not, and a refused batch is not counted.
        let quiet = start + Duration::from_secs(10);
        assert_eq!(limiter.check_n(&busy, quiet, 11), Err(Rate(10)));
        assert_eq!(limiter.check_n(&busy, quiet, 10), Ok(()));
        assert_eq!(limiter.check_n(&busy, quiet, 1), Err(Rate(10)));
    }
}
