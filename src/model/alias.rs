//! Aliases: stable names (`alias/payments`) that point at a key and can be
//! repointed, so applications need not hard-code key ids.

use std::fmt;

use super::{KeyId, UnixTime};
use crate::error::Error;

/// What every alias starts with.
pub const ALIAS_PREFIX: &str = "alias/";

/// A validated alias name: `alias/` followed by 1 to 128 characters of the
/// key id alphabet (`A-Za-z0-9._/-`, not starting with `/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AliasName(String);

impl AliasName {
    /// Validates `raw` as an alias name.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let Some(rest) = raw.strip_prefix(ALIAS_PREFIX) else {
            return Err(Error::InvalidArgument(format!(
                "an alias starts with {ALIAS_PREFIX}"
            )));
        };
        KeyId::parse(rest).map_err(|_| {
            Error::InvalidArgument(format!(
                "an alias is {ALIAS_PREFIX} followed by 1 to 128 characters of A-Z a-z 0-9 . _ / - not starting with '/'"
            ))
        })?;
        Ok(Self(raw.to_owned()))
    }

    /// Whether a key id as a caller sent it names an alias.
    pub fn names_alias(raw: &str) -> bool {
        raw.starts_with(ALIAS_PREFIX)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AliasName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An alias and the key it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The alias.
    pub name: AliasName,
    /// The key it resolves to.
    pub key_id: KeyId,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it was last pointed at a key (its creation, or UpdateAlias).
    pub updated_at: UnixTime,
    /// The service's integrity tag over name and key id, under the
    /// keystore's metadata key (the store keeps it, never checks it).
    pub tag: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names_follow_the_documented_rules() {
        for good in [
            "alias/a",
            "alias/payments/prod",
            &format!("alias/{}", "k".repeat(128)),
        ] {
            assert!(AliasName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "alias/",
            "alias//x",
            "payments",
            "Alias/x",
            "alias/a b",
            &format!("alias/{}", "k".repeat(129)),
        ] {
            assert!(AliasName::parse(bad).is_err(), "{bad}");
        }
        assert!(AliasName::names_alias("alias/x"));
        assert!(!AliasName::names_alias("aliases/x"));
    }
}
