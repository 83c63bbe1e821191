//! Domain types shared by the store and the service: key ids, versions,
//! states, operations, grants and key metadata, and the RPCs by name
//! ([`Rpc`]). Pure data, no I/O, and nothing secret (wrapped DEKs live in
//! [`crate::store::StoredVersion`]).

mod alias;
mod grant;
mod labels;
mod purpose;
mod role;
mod rpc;

pub use alias::{ALIAS_PREFIX, Alias, AliasName};
pub use grant::{
    ConditionalGrant, ContextConstraint, Grantee, MAX_CONDITIONAL_GRANTS, MAX_CONSTRAINT_PAIRS,
};
pub use labels::{Labels, MAX_LABEL_KEY_LEN, MAX_LABEL_VALUE_LEN, MAX_LABELS};
pub use purpose::KeyPurpose;
pub use role::{MAX_ROLE_BINDINGS, Role, RoleBinding, RoleSet};
pub use rpc::Rpc;

use std::collections::BTreeMap;
use std::fmt;

use crate::error::Error;
use crate::identity::Identity;

/// Longest key id accepted.
pub const MAX_KEY_ID_LEN: usize = 128;

/// A validated key id: 1 to 128 characters of `A-Za-z0-9._/-`, not starting
/// with `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Validates `raw` as a key id.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        if raw.is_empty() {
            return Err(Error::InvalidArgument("key_id is empty".into()));
        }
        if raw.len() > MAX_KEY_ID_LEN {
            return Err(Error::InvalidArgument(format!(
                "key_id is longer than {MAX_KEY_ID_LEN} characters"
            )));
        }
        if raw.starts_with('/') {
            return Err(Error::InvalidArgument(
                "key_id must not start with '/'".into(),
            ));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
        {
            return Err(Error::InvalidArgument(
                "key_id may contain only A-Z a-z 0-9 . _ / -".into(),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key version number; versions start at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyVersion(u32);

impl KeyVersion {
    /// The first version of every key.
    pub const FIRST: Self = Self(1);

    /// Validates a version number (must be at least 1).
    pub fn new(raw: u32) -> Result<Self, Error> {
        if raw == 0 {
            return Err(Error::InvalidArgument("version must be at least 1".into()));
        }
        Ok(Self(raw))
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The version after this one.
    pub fn next(self) -> Result<Self, Error> {
        self.0
            .checked_add(1)
            .map(Self)
            .ok_or_else(|| Error::InvalidArgument("key has reached the maximum version".into()))
    }
}

impl fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// Lifecycle state of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Usable.
    Enabled,
    /// Not usable for data-plane operations until enabled.
    Disabled,
    /// Not usable; destroyed at `deletion_at`.
    PendingDeletion {
        /// When the key is destroyed.
        deletion_at: UnixTime,
    },
}

/// A data-plane operation that a grant can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// Encrypt.
    Encrypt,
    /// Decrypt.
    Decrypt,
    /// ReEncrypt.
    ReEncrypt,
    /// GenerateDataKey.
    GenerateDataKey,
    /// Mac, MacAllVersions and MacBatch items (MAC keys).
    Mac,
    /// VerifyMac (MAC keys).
    VerifyMac,
}

impl Operation {
    /// Every operation, in a fixed order.
    pub const ALL: [Self; 6] = [
        Self::Encrypt,
        Self::Decrypt,
        Self::ReEncrypt,
        Self::GenerateDataKey,
        Self::Mac,
        Self::VerifyMac,
    ];

    fn bit(self) -> u8 {
        match self {
            Self::Encrypt => 1,
            Self::Decrypt => 2,
            Self::ReEncrypt => 4,
            Self::GenerateDataKey => 8,
            Self::Mac => 16,
            Self::VerifyMac => 32,
        }
    }

    /// Lower-case name, as the CLI and the logs spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::ReEncrypt => "reencrypt",
            Self::GenerateDataKey => "generate-data-key",
            Self::Mac => "mac",
            Self::VerifyMac => "verify-mac",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of operations (what a grant allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OperationSet(u8);

impl OperationSet {
    /// The empty set.
    pub const EMPTY: Self = Self(0);

    /// Rebuilds a set from its stored bits, dropping unknown bits.
    pub fn from_bits(bits: u8) -> Self {
        Self(bits & 0x3f)
    }

    /// The stored representation.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether `op` is in the set.
    pub fn contains(self, op: Operation) -> bool {
        self.0 & op.bit() != 0
    }

    /// The union.
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// `self` without the operations of `other`.
    pub fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The operations in the set, in [`Operation::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Operation> {
        Operation::ALL
            .into_iter()
            .filter(move |op| self.contains(*op))
    }
}

impl FromIterator<Operation> for OperationSet {
    fn from_iter<I: IntoIterator<Item = Operation>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, op| bits | op.bit()))
    }
}

/// When a key version was created, and destroyed if it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version.
    pub version: KeyVersion,
    /// Its creation time.
    pub created_at: UnixTime,
    /// When its DEK was erased (DestroyKeyVersion); `None` while it exists.
    pub destroyed_at: Option<UnixTime>,
}

impl VersionInfo {
    /// A version made at `created_at`, not destroyed.
    pub fn new(version: KeyVersion, created_at: UnixTime) -> Self {
        Self {
            version,
            created_at,
            destroyed_at: None,
        }
    }
}

/// Shortest automatic rotation period, as in Vault: one hour.
pub const MIN_ROTATION_PERIOD_SECS: u32 = 3600;
/// Longest automatic rotation period: ten years.
pub const MAX_ROTATION_PERIOD_SECS: u32 = 10 * 365 * 86_400;

/// How often the server rotates a key by itself: one hour to ten years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RotationPeriod(u32);

impl RotationPeriod {
    /// Validates a period in seconds.
    pub fn from_secs(secs: u64) -> Result<Self, Error> {
        u32::try_from(secs)
            .ok()
            .filter(|secs| (MIN_ROTATION_PERIOD_SECS..=MAX_ROTATION_PERIOD_SECS).contains(secs))
            .map(Self)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "rotation period must be between {MIN_ROTATION_PERIOD_SECS} seconds (1 hour) and {MAX_ROTATION_PERIOD_SECS} seconds (10 years)"
                ))
            })
    }

    /// A period as the API sends it: 0 means none.
    pub fn optional(secs: u64) -> Result<Option<Self>, Error> {
        match secs {
            0 => Ok(None),
            secs => Self::from_secs(secs).map(Some),
        }
    }

    /// The period in seconds.
    pub fn secs(self) -> u32 {
        self.0
    }
}

/// Everything tresor knows about a key except its key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMetadata {
    /// The key's id.
    pub id: KeyId,
    /// The identity that owns the key.
    pub owner: Identity,
    /// Free text for humans.
    pub description: String,
    /// Lifecycle state.
    pub state: KeyState,
    /// The version new encryptions use.
    pub primary_version: KeyVersion,
    /// Ciphertexts of lower versions are refused.
    pub min_decryption_version: KeyVersion,
    /// Every version, oldest first.
    pub versions: Vec<VersionInfo>,
    /// Creation time.
    pub created_at: UnixTime,
    /// Who else may use the key, and for what: plain grants, one exact
    /// identity each, no constraint, no expiry.
    pub grants: BTreeMap<Identity, OperationSet>,
    /// Grants to a SPIFFE-ID pattern, with a context constraint or with an
    /// expiry, in the order they were made.
    pub conditional_grants: Vec<ConditionalGrant>,
    /// Automatic rotation: a new version this long after the primary
    /// version was made. `None`: rotated only on request.
    pub rotation_period: Option<RotationPeriod>,
    /// What the key is for, fixed at creation.
    pub purpose: KeyPurpose,
    /// Labels for humans and tooling; they never authorize anything.
    pub labels: Labels,
    /// The integrity tag the service computed over everything above, under
    /// the keystore's metadata key (`service/metadata_auth.rs`). The store
    /// keeps it and never computes or checks it. `None` in records written
    /// before metadata was authenticated, and in values not yet written.
    pub tag: Option<Vec<u8>>,
}

impl KeyMetadata {
    /// When the key is due for destruction, if it is pending deletion.
    pub fn deletion_at(&self) -> Option<UnixTime> {
        match self.state {
            KeyState::PendingDeletion { deletion_at } => Some(deletion_at),
            _ => None,
        }
    }

    /// Whether `version` exists for this key (destroyed versions included).
    pub fn has_version(&self, version: KeyVersion) -> bool {
        version >= KeyVersion::FIRST && version <= self.primary_version
    }

    /// The version's record, if it exists.
    pub fn version_info(&self, version: KeyVersion) -> Option<&VersionInfo> {
        self.versions.iter().find(|info| info.version == version)
    }

    /// Whether `version`'s DEK was destroyed.
    pub fn is_destroyed(&self, version: KeyVersion) -> bool {
        self.version_info(version)
            .is_some_and(|info| info.destroyed_at.is_some())
    }

    /// The highest destroyed version, if any.
    pub fn highest_destroyed(&self) -> Option<KeyVersion> {
        self.versions
            .iter()
            .filter(|info| info.destroyed_at.is_some())
            .map(|info| info.version)
            .max()
    }

    /// When the server rotates this key next by itself: the primary
    /// version's creation plus the rotation period, for enabled keys with a
    /// period. Disabled keys wait until enabled (then rotate at once if
    /// due); keys pending deletion never rotate.
    pub fn next_rotation_at(&self) -> Option<UnixTime> {
        let period = self.rotation_period?;
        if self.state != KeyState::Enabled {
            return None;
        }
        let primary_created = self
            .version_info(self.primary_version)
            .map_or(self.created_at, |info| info.created_at);
        Some(primary_created.saturating_add(i64::from(period.secs())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_follow_the_documented_alphabet() {
        for good in ["a", "billing/customer-records", "A.b_c-9", &"k".repeat(128)] {
            assert!(KeyId::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "/abs", "sp ace", "ü", "a\n", &"k".repeat(129), "a:b"] {
            assert!(
                matches!(KeyId::parse(bad), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn operation_sets_round_trip_through_bits() {
        let set: OperationSet = [Operation::Encrypt, Operation::GenerateDataKey]
            .into_iter()
            .collect();
        assert!(set.contains(Operation::Encrypt));
        assert!(!set.contains(Operation::Decrypt));
        assert_eq!(OperationSet::from_bits(set.bits()), set);
        assert_eq!(
            set.difference([Operation::Encrypt].into_iter().collect())
                .iter()
                .collect::<Vec<_>>(),
            vec![Operation::GenerateDataKey]
        );
    }

    #[test]
    fn version_zero_is_refused() {
        assert!(KeyVersion::new(0).is_err());
        assert_eq!(KeyVersion::new(3).map(KeyVersion::get).ok(), Some(3));
    }
}
