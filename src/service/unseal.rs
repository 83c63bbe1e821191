//! Unsealing: who may approve it, how many distinct approvals it takes,
//! within what window, and the optional out-of-band unseal token.
//!
//! By default one Unseal call by any admin unseals (as before quorums
//! existed). With a quorum of N, the first approval opens a *round*; the
//! round collects distinct approvers until N have approved, then the root
//! key is unwrapped. A round lasts [`UnsealPolicy::window`] from its first
//! approval; an approval after that starts a new round. Rounds live in
//! memory only: a restart, or a Seal, discards them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ring::digest;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{Service, authz};
use crate::error::Error;
use crate::identity::Identity;

/// Default `--unseal-window`: long enough to reach a second approver by
/// phone, short enough that a stale approval does not linger.
pub const DEFAULT_UNSEAL_WINDOW: Duration = Duration::from_secs(15 * 60);

/// What a token starts with: names the kind and its version.
const TOKEN_PREFIX: &str = "tresor-unseal-token-v1:";
/// What a verifier file starts with.
const VERIFIER_PREFIX: &str = "tresor-unseal-verifier-v1:sha256:";

/// What the server keeps of an unseal token: its SHA-256, so a copy of the
/// server's files does not yield the token. The token itself is 256 random
/// bits, so a hash without salt or stretching is enough.
#[derive(Clone, PartialEq, Eq)]
pub struct UnsealTokenVerifier([u8; 32]);

impl std::fmt::Debug for UnsealTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsealTokenVerifier(REDACTED)")
    }
}

impl UnsealTokenVerifier {
    /// The verifier of `token` (the text as the operator holds it).
    pub fn of_token(token: &str) -> Self {
        let hash = digest::digest(&digest::SHA256, token.trim().as_bytes());
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(hash.as_ref());
        Self(bytes)
    }

    /// Reads a verifier file's text (one line, as [`Self::to_file_text`]
    /// writes it).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.starts_with(TOKEN_PREFIX) {
            return Err(
                "this file holds the unseal token itself: keep it offline and give the server its verifier file".into(),
            );
        }
        let hex_digest = text
            .strip_prefix(VERIFIER_PREFIX)
            .ok_or("not an unseal verifier file (make one with `tresor unseal-token generate`)")?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut bytes)
            .map_err(|_| "the verifier is not 64 hex digits")?;
        Ok(Self(bytes))
    }

    /// The text of a verifier file.
    pub fn to_file_text(&self) -> String {
        format!("{VERIFIER_PREFIX}{}\n", hex::encode(self.0))
    }

    /// Whether `token` is the one this verifies, compared in constant time.
    pub fn matches(&self, token: &str) -> bool {
        Self::of_token(token).0.ct_eq(&self.0).into()
    }
}

/// A new unseal token: 256 bits from the OS CSPRNG, as text.
pub fn generate_unseal_token() -> Result<Zeroizing<String>, Error> {
    let random = tresor_crypto::random_bytes(32)?;
    let mut token = Zeroizing::new(String::with_capacity(TOKEN_PREFIX.len() + 64));
    token.push_str(TOKEN_PREFIX);
    let digits = Zeroizing::new(hex::encode(random.expose()));
    token.push_str(&digits);
    Ok(token)
}

/// Who may unseal, and what it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsealPolicy {
    /// Distinct approvals needed (at least 1).
    pub quorum: u32,
    /// Who may approve; `None`: the admins.
    pub approvers: Option<BTreeSet<Identity>>,
    /// How long a round lasts from its first approval.
    pub window: Duration,
    /// The out-of-band token every approval must carry, if any.
    pub token: Option<UnsealTokenVerifier>,
}

impl Default for UnsealPolicy {
    /// One call by any admin, no token: the behaviour without flags.
    fn default() -> Self {
        Self {
            quorum: 1,
            approvers: None,
            window: DEFAULT_UNSEAL_WINDOW,
            token: None,
        }
    }
}

/// Where unsealing stands, as GetStatus and Unseal report it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnsealProgress {
    /// Distinct approvals needed.
    pub quorum: u32,
    /// Who approved in the open round, in order (empty: no round).
    pub approved_by: Vec<Identity>,
    /// Time left in the open round (zero: no round).
    pub window_remaining: Duration,
    /// Whether each approval needs the unseal token.
    pub token_required: bool,
}

impl UnsealProgress {
    fn approvals(&self) -> usize {
        self.approved_by.len()
    }
}

/// What one Unseal call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnsealOutcome {
    /// The service was not sealed: nothing to approve.
    NotSealed,
    /// The approval counted; more are needed.
    Approved(UnsealProgress),
    /// This approver had approved in this round already: not counted twice.
    AlreadyApproved(UnsealProgress),
    /// The quorum was reached and the root key unwrapped.
    Unsealed {
        /// Approvals counted, the last one included.
        approvals: u32,
        /// Approvals needed.
        quorum: u32,
    },
}

impl std::fmt::Display for UnsealOutcome {
    /// The audit record's detail: the progress, never a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotSealed => f.write_str("not sealed: nothing to approve"),
            Self::Approved(p) => write!(
                f,
                "approval {} of {}; still sealed; round ends in {}s",
                p.approvals(),
                p.quorum,
                p.window_remaining.as_secs()
            ),
            Self::AlreadyApproved(p) => write!(
                f,
                "already approved in this round (not counted twice): {} of {}; still sealed",
                p.approvals(),
                p.quorum
            ),
            Self::Unsealed { approvals, quorum } => {
                write!(f, "approval {approvals} of {quorum}: unsealed")
            }
        }
    }
}

/// A refused Unseal call: the error for the caller, and why, for the audit
/// record.
#[derive(Debug)]
pub struct UnsealRefused {
    /// What the caller is told.
    pub error: Error,
    /// Why, for the audit record (never a token).
    pub why: &'static str,
}

/// Approvals of the open round.
#[derive(Debug)]
pub(super) struct Round {
    started: Instant,
    approved_by: Vec<Identity>,
}

impl Round {
    fn progress(&self, policy: &UnsealPolicy, now: Instant) -> UnsealProgress {
        UnsealProgress {
            quorum: policy.quorum,
            approved_by: self.approved_by.clone(),
            window_remaining: (self.started + policy.window).saturating_duration_since(now),
            token_required: policy.token.is_some(),
        }
    }
}

/// The open round, if any. A tokio mutex: the last approval holds it while
/// the master key unwraps the root key, so two last approvals never race.
pub(super) type RoundSlot = tokio::sync::Mutex<Option<Round>>;

impl Service {
    fn unseal_policy(&self) -> &UnsealPolicy {
        &self.options.unseal
    }

    /// Whether `identity` may approve unsealing.
    fn is_unseal_approver(&self, identity: &Identity) -> bool {
        match &self.unseal_policy().approvers {
            Some(approvers) => approvers.contains(identity),
            None => self.is_admin(identity),
        }
    }

    /// Who may read the status (GetStatus): any role holder and the
    /// unseal approvers.
    pub async fn authorize_status(&self, identity: &Identity) -> Result<(), Error> {
        authz::require_any_role_or_approver(
            self.caller(identity).await?,
            self.is_unseal_approver(identity),
        )
    }

    /// Where unsealing stands now.
    pub(super) async fn unseal_progress(&self) -> UnsealProgress {
        let policy = self.unseal_policy();
        let now = Instant::now();
        match self.unseal_round.lock().await.as_ref() {
            Some(round) if now < round.started + policy.window => round.progress(policy, now),
            _ => UnsealProgress {
                quorum: policy.quorum,
                token_required: policy.token.is_some(),
                ..Default::default()
            },
        }
    }

    /// On Seal, after the key material was dropped: waits for an unseal in
    /// progress, discards the open round, and drops whatever key material
    /// that unseal installed, so a Seal always wins over a concurrent Unseal.
    pub(super) async fn cancel_unseal(&self) {
        let mut round = self.unseal_round.lock().await;
        *round = None;
        self.drop_key_material();
    }

    /// Unseal, for callers without a token: see [`Service::approve_unseal`].
    pub async fn unseal(&self, identity: &Identity) -> Result<UnsealOutcome, Error> {
        self.approve_unseal(identity, None)
            .await
            .map_err(|refused| refused.error)
    }

    /// One approval to unseal by `identity`, with the unseal token if the
    /// caller gave one. Unwraps the root key again when this approval
    /// completes the quorum. Idempotent once unsealed.
    pub async fn approve_unseal(
        &self,
        identity: &Identity,
        token: Option<&str>,
    ) -> Result<UnsealOutcome, UnsealRefused> {
        let policy = self.unseal_policy();
        authz::require_unseal_approver(self.is_unseal_approver(identity)).map_err(|error| {
            UnsealRefused {
                error,
                why: "not an unseal approver",
            }
        })?;
        if let Some(verifier) = &policy.token
            && !token.is_some_and(|token| verifier.matches(token))
        {
            return Err(UnsealRefused {
                error: Error::PermissionDenied,
                why: "the unseal token is missing or wrong",
            });
        }
        let mut slot = self.unseal_round.lock().await;
        if !self.is_sealed() {
            *slot = None;
            return Ok(UnsealOutcome::NotSealed);
        }
        let now = Instant::now();
        let round = match slot.take() {
            Some(round) if now < round.started + policy.window => slot.insert(round),
            _ => slot.insert(Round {
                started: now,
                approved_by: Vec::new(),
            }),
        };
        let already = round.approved_by.contains(identity);
        if !already {
            // Bounded: only approvers get here, each once per round.
            round.approved_by.push(identity.clone());
        }
        let approvals = u32::try_from(round.approved_by.len()).unwrap_or(u32::MAX);
        if approvals < policy.quorum {
            let progress = round.progress(policy, now);
            tracing::warn!(by = %identity, approvals, quorum = policy.quorum, "unseal approved; still sealed");
            return Ok(if already {
                UnsealOutcome::AlreadyApproved(progress)
            } else {
                UnsealOutcome::Approved(progress)
            });
        }
        // On failure the round stays open: the next approval retries.
        let unsealed = async {
            self.load_keyring().await?;
            self.store.set_sealed(false).await?;
            Ok::<_, Error>(())
        };
        unsealed.await.map_err(|error| UnsealRefused {
            error,
            why: "the quorum was reached but the root key could not be unwrapped or the unseal recorded",
        })?;
        *slot = None;
        tracing::warn!(by = %identity, approvals, quorum = policy.quorum, "service unsealed");
        Ok(UnsealOutcome::Unsealed {
            approvals,
            quorum: policy.quorum,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_its_verifier_only() {
        let token = generate_unseal_token().expect("token");
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 64);
        let verifier = UnsealTokenVerifier::of_token(&token);
        assert!(verifier.matches(&token));
        assert!(verifier.matches(&format!("{}\n", token.as_str())));
        let other = generate_unseal_token().expect("token");
        assert!(!verifier.matches(&other));
        assert!(!verifier.matches(""));
        let read = UnsealTokenVerifier::parse(&verifier.to_file_text()).expect("parse");
        assert_eq!(read, verifier);
        assert!(!format!("{verifier:?}").contains(&hex::encode(verifier.0)));
    }

    #[test]
    fn a_verifier_file_must_be_one() {
        for text in [
            "",
            "0123",
            token_like(),
            "tresor-unseal-verifier-v1:sha256:zz",
        ] {
            assert!(UnsealTokenVerifier::parse(text).is_err(), "{text:?}");
        }
    }

    fn token_like() -> &'static str {
        "tresor-unseal-token-v1:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    }

    #[test]
    fn the_audit_detail_states_the_progress() {
        let progress = UnsealProgress {
            quorum: 2,
            approved_by: vec![Identity::parse("spiffe://x/alice").expect("id")],
            window_remaining: Duration::from_secs(90),
            token_required: false,
        };
        assert_eq!(
            UnsealOutcome::Approved(progress.clone()).to_string(),
            "approval 1 of 2; still sealed; round ends in 90s"
        );
        assert!(
            UnsealOutcome::AlreadyApproved(progress)
                .to_string()
                .contains("(not counted twice): 1 of 2")
        );
        assert_eq!(
            UnsealOutcome::Unsealed {
                approvals: 2,
                quorum: 2
            }
            .to_string(),
            "approval 2 of 2: unsealed"
        );
    }
}
