//! The policy file's model: what `tresor.yaml` may say, as serde types
//! (docs/POLICY.md documents it by example, docs/policy.schema.json as a
//! JSON Schema).
//!
//! Parse, don't validate: every value with rules of its own (a key id, an
//! identity, a duration, a timestamp, an operation) is a type of
//! [`super::values`] whose `Deserialize` checks them, so the YAML parser
//! reports a bad value with its line and column. Checks across entries (duplicates, an alias naming
//! a key the file does not declare) are in [`super::validate`]. Unknown
//! fields are refused everywhere (`deny_unknown_fields`).
//!
//! The same types describe the server's current state ([`super::state`])
//! and what `tresor export` writes, so a plan compares like with like.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};

use super::super::keys::PurposeArg;
pub use super::values::{
    AliasText, FileVersion, GranteeText, IdentityText, KeyIdText, KeyStateSpec, LabelMap, Op,
    Period, RoleName, Timestamp, op_names,
};
use tresor_proto::v1 as proto;

/// A whole policy file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// The format version: 1.
    pub version: FileVersion,
    /// The keys the file manages, with their grants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyEntry>,
    /// Aliases of keys the file declares.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<AliasEntry>,
    /// Role bindings; absent: the file does not manage roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<RoleEntry>>,
}

/// One key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// The key's id.
    pub id: Spanned<KeyIdText>,
    /// The identity that owns it.
    pub owner: IdentityText,
    /// What it is for; fixed at creation (default encrypt-decrypt).
    #[serde(default, skip_serializing_if = "is_default_purpose")]
    pub purpose: PurposeArg,
    /// Free text for humans (default empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// How often the server rotates it; absent: only on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period: Option<Period>,
    /// Enabled or disabled; absent: whichever it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<KeyStateSpec>,
    /// Labels (metadata only; default none).
    #[serde(default, skip_serializing_if = "LabelMap::is_empty")]
    pub labels: LabelMap,
    /// Who else may use it, for what.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<GrantEntry>,
}

/// One grant on a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantEntry {
    /// An identity, or `spiffe://TRUST-DOMAIN/PATH/*`.
    pub grantee: Spanned<GranteeText>,
    /// What it allows (a set: order and repeats do not matter).
    pub operations: BTreeSet<Op>,
    /// Only requests whose context is exactly these pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_equals: Option<BTreeMap<String, String>>,
    /// Only requests whose context contains these pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_subset: Option<BTreeMap<String, String>>,
    /// When it stops allowing anything; absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// One alias.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasEntry {
    /// `alias/...`.
    pub alias: Spanned<AliasText>,
    /// The key it points at (one the file declares).
    pub key: Spanned<KeyIdText>,
}

/// One role binding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleEntry {
    /// The role.
    pub role: RoleName,
    /// An identity, or `spiffe://TRUST-DOMAIN/PATH/*`.
    pub identity: GranteeText,
}

/// What a grant is, apart from its operations: two grants with the same
/// terms are one grant on the server (their operations join).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GrantTerms {
    /// The grantee as text.
    pub grantee: String,
    /// `context_equals` (empty: none).
    pub equals: BTreeMap<String, String>,
    /// `context_subset` (empty: none).
    pub subset: BTreeMap<String, String>,
    /// Unix seconds; 0: never.
    pub expires_at: i64,
}

impl GrantEntry {
    /// Its terms.
    pub fn terms(&self) -> GrantTerms {
        GrantTerms {
            grantee: self.grantee.value.to_string(),
            equals: self.context_equals.clone().unwrap_or_default(),
            subset: self.context_subset.clone().unwrap_or_default(),
            expires_at: self.expires_at.map_or(0, |at| at.0),
        }
    }

    /// Whether it has expired at `now` (Unix seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at.0 <= now)
    }

    /// The same grant with other operations.
    pub fn with_operations(&self, operations: BTreeSet<Op>) -> Self {
        Self {
            operations,
            ..self.clone()
        }
    }

    /// The CreateGrant request for it on `key_id`.
    pub fn request(&self, key_id: &str) -> proto::GrantRequest {
        let map = |pairs: &Option<BTreeMap<String, String>>| {
            pairs
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        proto::GrantRequest {
            key_id: key_id.to_owned(),
            grantee: self.grantee.value.to_string(),
            operations: self.operations.iter().map(|op| op.0.into()).collect(),
            context_equals: map(&self.context_equals),
            context_subset: map(&self.context_subset),
            expires_at_unix: self.expires_at.map_or(0, |at| at.0),
        }
    }
}

/// A value without a place in a file (read from the server).
pub fn unspanned<T>(value: T) -> Spanned<T> {
    Spanned::new(value, Location::UNKNOWN, Location::UNKNOWN)
}

fn is_default_purpose(purpose: &PurposeArg) -> bool {
    *purpose == PurposeArg::EncryptDecrypt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<PolicyFile, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn values_are_parsed_into_their_canonical_form() {
        let file = parse(
            "version: 1\nkeys:\n  - id: billing/a\n    owner: Billing.Example.ORG\n    rotation_period: 2160h\n    grants:\n      - grantee: spiffe://x.test/ns/*\n        operations: [decrypt, encrypt, decrypt]\n        expires_at: 2027-01-01T00:00:00Z\n",
        )
        .expect("parses");
        let key = &file.keys[0];
        assert_eq!(key.id.referenced.line(), 3);
        assert_eq!(key.owner.as_str(), "billing.example.org");
        assert_eq!(
            key.rotation_period.map(|p| p.to_string()),
            Some("90d".into())
        );
        let grant = &key.grants[0];
        assert_eq!(op_names(&grant.operations), "encrypt,decrypt");
        assert_eq!(
            grant.expires_at.map(|t| t.to_string()),
            Some("2027-01-01T00:00:00Z".into())
        );
        assert!(file.roles.is_none());
    }

    #[test]
    fn bad_values_name_their_line_and_column() {
        for (yaml, expected) in [
            ("version: 2\n", "version 2 is not supported"),
            (
                "version: 1\nkeys:\n  - id: a\n    owner: x*\n",
                "line 4 column 12",
            ),
            (
                "version: 1\nkeys:\n  - id: a\n    owner: spiffe://x.test/a\n    rotation_period: 10m\n",
                "rotation period must be between",
            ),
            (
                "version: 1\nkeys:\n  - id: a\n    owner: spiffe://x.test/a\n    rotation_period: soon\n",
                "is not a duration",
            ),
            (
                "version: 1\nkeys:\n  - id: alias/a\n    owner: spiffe://x.test/a\n",
                "cannot start with alias/",
            ),
            (
                "version: 1\nkeys:\n  - id: a\n    owner: spiffe://x.test/a\n    colour: red\n",
                "unknown field `colour`",
            ),
            (
                "version: 1\nkeys:\n  - id: a\n    owner: spiffe://x.test/a\n    labels: {Team: x}\n",
                "line 5",
            ),
            (
                "version: 1\nkeys:\n  - id: a\n    owner: spiffe://x.test/a\n    grants:\n      - grantee: spiffe://x.test/*/b\n        operations: [decrypt]\n",
                "line 6 column 18",
            ),
            (
                "version: 1\nkeys:\n  - id: a\n    owner: spiffe://x.test/a\n    grants:\n      - grantee: spiffe://x.test/b\n        operations: [peek]\n",
                "unknown operation \"peek\"",
            ),
            (
                "version: 1\nkeys:\n  - id: a\n    owner: spiffe://x.test/a\n    grants:\n      - grantee: spiffe://x.test/b\n        operations: [decrypt]\n        expires_at: tomorrow\n",
                "not an RFC 3339 UTC time",
            ),
            (
                "version: 1\nroles:\n  - role: root\n    identity: spiffe://x.test/a\n",
                "unknown variant `root`",
            ),
        ] {
            let err = parse(yaml).expect_err(yaml);
            assert!(err.contains(expected), "{yaml}\n--- gave ---\n{err}");
        }
    }

    #[test]
    fn a_file_written_is_read_back_the_same() {
        let yaml = "version: 1\nkeys:\n  - id: crm/email\n    owner: spiffe://x.test/crm\n    purpose: mac\n    description: 'blind index: email'\n    rotation_period: 12h\n    state: disabled\n    labels: {team: crm, n: '42'}\n    grants:\n      - grantee: spiffe://x.test/a\n        operations: [mac]\n        context_subset: {table: users}\naliases:\n  - alias: alias/email\n    key: crm/email\nroles:\n  - role: auditor\n    identity: spiffe://x.test/audit/*\n";
        let file = parse(yaml).expect("parses");
        let written = serde_saphyr::to_string(&file).expect("writes");
        let again = parse(&written).expect("reads back");
        assert_eq!(serde_saphyr::to_string(&again).expect("writes"), written);
        assert!(written.contains("purpose: mac"), "{written}");
        assert!(written.contains("state: disabled"), "{written}");
    }
}
