//! The values of a policy file that have rules of their own: each type's
//! `Deserialize` checks them (with the server's own parsers where the
//! model has one), so a bad value is reported by the YAML parser with its
//! line and column; `Serialize` writes the canonical spelling back.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::super::keys::parse_operation;
use super::super::output;
use crate::identity::Identity;
use crate::model::{AliasName, Grantee, KeyId, Labels, RotationPeriod};
use tresor_proto::v1 as proto;

/// The only file format version this tresor reads and writes.
pub const FILE_VERSION: u32 = 1;

/// Deserializes a string and turns it into `T` with `parse`, whose error
/// becomes the parser's (with the value's line and column).
fn parsed<'de, D, T>(
    deserializer: D,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = String::deserialize(deserializer)?;
    parse(&raw).map_err(de::Error::custom)
}

/// Declares a string newtype: `Serialize` as the string, `Deserialize`
/// through `$parse` (which returns the canonical text), an unchecked
/// constructor for values read from the server, and `as_str`.
macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $parse:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A value the server sent (the server checked it).
            pub fn from_server(text: &str) -> Self {
                Self(text.to_owned())
            }

            /// The text.
            #[allow(dead_code, reason = "declared for every text type; not all need it")]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                parsed(deserializer, $parse).map(Self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(
    /// A key id (1-128 characters of `A-Za-z0-9._/-`, not `alias/...`).
    KeyIdText,
    |raw: &str| {
        if AliasName::names_alias(raw) {
            return Err(format!("{raw:?}: a key id cannot start with alias/ (aliases go under aliases:)"));
        }
        KeyId::parse(raw).map(|id| id.to_string()).map_err(|e| format!("{raw:?}: {e}"))
    }
);

text_type!(
    /// An alias name (`alias/...`).
    AliasText,
    |raw: &str| AliasName::parse(raw).map(|a| a.to_string()).map_err(|e| format!("{raw:?}: {e}"))
);

text_type!(
    /// One identity (a key's owner), in its canonical spelling.
    IdentityText,
    |raw: &str| {
        if raw.contains('*') {
            return Err(format!("{raw:?}: an owner is one identity, not a pattern"));
        }
        Identity::parse(raw).map(|id| id.to_string()).map_err(|e| format!("{raw:?} is not an identity: {e}"))
    }
);

text_type!(
    /// An identity or a pattern `spiffe://TRUST-DOMAIN/PATH/*`, in its
    /// canonical spelling.
    GranteeText,
    |raw: &str| Grantee::parse(raw).map(|g| g.to_string()).map_err(|e| format!("{raw:?}: {e}"))
);

/// The file format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FileVersion(u32);

impl FileVersion {
    /// The version this tresor writes.
    pub const CURRENT: Self = Self(FILE_VERSION);
}

impl<'de> Deserialize<'de> for FileVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let version = u32::deserialize(deserializer)?;
        if version != FILE_VERSION {
            return Err(de::Error::custom(format!(
                "version {version} is not supported: this tresor reads version {FILE_VERSION}"
            )));
        }
        Ok(Self(version))
    }
}

/// A rotation period: `90d`, `12h`, `1h 30m` (1 hour to 10 years).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period(pub u64);

impl Period {
    /// As a duration.
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0)
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&output::period(self.duration()))
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, |raw| {
            let period = humantime::parse_duration(raw)
                .map_err(|e| format!("{raw:?} is not a duration ({e}); for example 90d or 12h"))?;
            RotationPeriod::from_secs(period.as_secs())
                .map(|p| Self(u64::from(p.secs())))
                .map_err(|e| format!("{raw:?}: {e}"))
        })
    }
}

/// An instant, written as RFC 3339 UTC (`2027-01-01T00:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&output::timestamp(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, |raw| {
            humantime::parse_rfc3339(raw)
                .ok()
                .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|since| i64::try_from(since.as_secs()).ok())
                .filter(|secs| *secs > 0)
                .map(Self)
                .ok_or_else(|| {
                    format!("{raw:?} is not an RFC 3339 UTC time such as 2027-01-01T00:00:00Z")
                })
        })
    }
}

/// An operation a grant allows, spelled as `tresor grant create --ops`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Op(pub proto::Operation);

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(output::operation_name(self.0))
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, parse_operation).map(Self)
    }
}

/// The names of a set of operations, comma-separated.
pub fn op_names(ops: &BTreeSet<Op>) -> String {
    ops.iter()
        .map(|op| output::operation_name(op.0))
        .collect::<Vec<_>>()
        .join(",")
}

/// A key's state as a file may declare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyStateSpec {
    /// Usable on the data plane.
    Enabled,
    /// Refused on the data plane until enabled.
    Disabled,
}

/// A control-plane role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoleName {
    /// Keys, grants, aliases, labels and role bindings.
    Admin,
    /// Seal, master-key and root-key rotation, backups.
    SecurityOfficer,
    /// Read-only.
    Auditor,
}

impl RoleName {
    /// The name as the file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::SecurityOfficer => "security-officer",
            Self::Auditor => "auditor",
        }
    }
}

/// A key's labels, checked as the server checks them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LabelMap(pub BTreeMap<String, String>);

impl LabelMap {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `k=v, k=v` (or `none`).
    pub fn summary(&self) -> String {
        if self.0.is_empty() {
            return "none".to_owned();
        }
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl<'de> Deserialize<'de> for LabelMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let labels = BTreeMap::<String, String>::deserialize(deserializer)?;
        Labels::parse(labels.clone()).map_err(de::Error::custom)?;
        Ok(Self(labels))
    }
}
