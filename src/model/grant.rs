//! Conditional grants: a grant to a SPIFFE-ID path pattern, with a
//! constraint on the encryption context, or with an expiry. Plain grants
//! (one exact identity, no constraint, no expiry) stay in
//! [`KeyMetadata::grants`](super::KeyMetadata::grants); the decision over
//! both is `service::authz`'s.
//!
//! Grants are only additive: a request is allowed when the owner makes
//! it or any one grant allows it, so there is no precedence to resolve.

use std::collections::BTreeMap;
use std::fmt;

use super::{Operation, OperationSet, UnixTime};
use crate::error::Error;
use crate::identity::{Identity, IdentityKind};
use tresor_crypto::Context;

/// Most conditional grants a key holds.
pub const MAX_CONDITIONAL_GRANTS: usize = 4096;
/// Most pairs in a grant's context constraint.
pub const MAX_CONSTRAINT_PAIRS: usize = 64;

/// Who a conditional grant covers: one identity, or every SPIFFE id under
/// a path prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grantee {
    /// Exactly this identity.
    Exact(Identity),
    /// Every SPIFFE id whose path continues this prefix at a segment
    /// boundary: written `spiffe://acme.test/ns/prod/*`, kept without the
    /// `*` (`spiffe://acme.test/ns/prod/`).
    PathPrefix(String),
}

impl Grantee {
    /// Parses a grantee as an API request names it: an identity, or a
    /// SPIFFE id prefix ending in `/*` (the only wildcard).
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let Some(prefix) = raw.strip_suffix('*') else {
            if raw.contains('*') {
                return Err(pattern_error());
            }
            return Identity::parse(raw)
                .map(Self::Exact)
                .map_err(|e| Error::InvalidArgument(e.to_string()));
        };
        let Some(base) = prefix.strip_suffix('/') else {
            return Err(pattern_error());
        };
        if !base.starts_with("spiffe://") || base.contains('*') {
            return Err(pattern_error());
        }
        // The part before `/*` must itself be a SPIFFE id (a trust domain,
        // or a trust domain and a path), so the pattern is too.
        let id = Identity::parse(base).map_err(|_| pattern_error())?;
        if id.kind() != IdentityKind::Uri {
            return Err(pattern_error());
        }
        Ok(Self::PathPrefix(prefix.to_owned()))
    }

    /// Whether `identity` is covered.
    pub fn matches(&self, identity: &Identity) -> bool {
        match self {
            Self::Exact(exact) => exact == identity,
            Self::PathPrefix(prefix) => {
                identity.kind() == IdentityKind::Uri
                    && identity
                        .as_str()
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| !rest.is_empty())
            }
        }
    }
}

impl fmt::Display for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(identity) => write!(f, "{identity}"),
            Self::PathPrefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

fn pattern_error() -> Error {
    Error::InvalidArgument(
        "a grantee pattern is a SPIFFE id followed by /* (spiffe://TRUST-DOMAIN/PATH/*); no other wildcard is allowed".into(),
    )
}

/// A constraint on the request's encryption context (AWS KMS semantics).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ContextConstraint {
    /// Any context.
    #[default]
    None,
    /// The context must be exactly this map.
    Equals(BTreeMap<String, String>),
    /// The context must contain every one of these pairs.
    Subset(BTreeMap<String, String>),
}

impl ContextConstraint {
    /// Builds a constraint from the two request fields (at most one may be
    /// given).
    pub fn from_fields(
        equals: BTreeMap<String, String>,
        subset: BTreeMap<String, String>,
    ) -> Result<Self, Error> {
        let pairs = equals.len().max(subset.len());
        if pairs > MAX_CONSTRAINT_PAIRS {
            return Err(Error::InvalidArgument(format!(
                "a context constraint has at most {MAX_CONSTRAINT_PAIRS} pairs"
            )));
        }
        match (equals.is_empty(), subset.is_empty()) {
            (true, true) => Ok(Self::None),
            (false, true) => Ok(Self::Equals(equals)),
            (true, false) => Ok(Self::Subset(subset)),
            (false, false) => Err(Error::InvalidArgument(
                "give context_equals or context_subset, not both".into(),
            )),
        }
    }

    /// Whether `context` satisfies the constraint.
    pub fn allows(&self, context: &Context) -> bool {
        match self {
            Self::None => true,
            Self::Equals(pairs) => {
                context.len() == pairs.len()
                    && pairs
                        .iter()
                        .all(|(k, v)| context.get(k) == Some(v.as_str()))
            }
            Self::Subset(pairs) => pairs
                .iter()
                .all(|(k, v)| context.get(k) == Some(v.as_str())),
        }
    }
}

/// A grant that names a pattern, constrains the context or expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionalGrant {
    /// Who it covers.
    pub grantee: Grantee,
    /// What it allows.
    pub operations: OperationSet,
    /// What the request's context must satisfy.
    pub constraint: ContextConstraint,
    /// When it stops allowing anything (`None`: never).
    pub expires_at: Option<UnixTime>,
}

impl ConditionalGrant {
    /// Whether it has expired at `now`.
    pub fn is_expired(&self, now: UnixTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Whether it allows `identity` to do `op` with `context` at `now`.
    pub fn allows(
        &self,
        identity: &Identity,
        op: Operation,
        context: &Context,
        now: UnixTime,
    ) -> bool {
        !self.is_expired(now)
            && self.operations.contains(op)
            && self.grantee.matches(identity)
            && self.constraint.allows(context)
    }

    /// Whether `other` is the same grant apart from its operations (a
    /// second CreateGrant of it adds operations rather than a grant).
    pub fn same_terms(&self, other: &Self) -> bool {
        self.grantee == other.grantee
            && self.constraint == other.constraint
            && self.expires_at == other.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Identity {
        Identity::parse(s).expect("identity")
    }

    #[test]
    fn patterns_match_at_segment_boundaries_only() {
        let prod = Grantee::parse("spiffe://acme.test/ns/prod/*").expect("pattern");
        assert!(prod.matches(&id("spiffe://acme.test/ns/prod/sa/reports")));
        assert!(prod.matches(&id("spiffe://acme.test/ns/prod/x")));
        assert!(!prod.matches(&id("spiffe://acme.test/ns/production/x")));
        assert!(!prod.matches(&id("spiffe://acme.test/ns/prod")));
        assert!(!prod.matches(&id("spiffe://other.test/ns/prod/x")));
        assert!(!prod.matches(&id("reports.acme.test")));
        assert_eq!(prod.to_string(), "spiffe://acme.test/ns/prod/*");
        let domain = Grantee::parse("spiffe://acme.test/*").expect("pattern");
        assert!(domain.matches(&id("spiffe://acme.test/anything")));
        for bad in [
            "spiffe://acme.test/ns/*/x",
            "spiffe://acme.test/ns/prod*",
            "spiffe://acme.test/ns/pr*d/*",
            "*",
            "/*",
            "reports.acme.test/*",
            "https://acme.test/ns/*",
            "spiffe:///*",
        ] {
            assert!(Grantee::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Grantee::parse("spiffe://acme.test/ns/prod/a").expect("exact"),
            Grantee::Exact(id("spiffe://acme.test/ns/prod/a"))
        );
    }

    #[test]
    fn constraints_follow_aws_semantics() {
        let ctx = |pairs: &[(&str, &str)]| pairs.iter().copied().collect::<Context>();
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        let equals = ContextConstraint::Equals(map(&[("tenant", "42")]));
        assert!(equals.allows(&ctx(&[("tenant", "42")])));
        assert!(!equals.allows(&ctx(&[("tenant", "42"), ("x", "y")])));
        assert!(!equals.allows(&ctx(&[("tenant", "43")])));
        assert!(!equals.allows(&ctx(&[])));
        let subset = ContextConstraint::Subset(map(&[("tenant", "42")]));
        assert!(subset.allows(&ctx(&[("tenant", "42"), ("x", "y")])));
        assert!(!subset.allows(&ctx(&[("x", "y")])));
        assert!(ContextConstraint::None.allows(&ctx(&[])));
        assert!(ContextConstraint::from_fields(map(&[("a", "b")]), map(&[("a", "b")])).is_err());
        assert_eq!(
            ContextConstraint::from_fields(BTreeMap::new(), BTreeMap::new()).expect("none"),
            ContextConstraint::None
        );
    }

    #[test]
    fn an_expired_grant_allows_nothing() {
        let grant = ConditionalGrant {
            grantee: Grantee::Exact(id("spiffe://t/a")),
            operations: [Operation::Decrypt].into_iter().collect(),
            constraint: ContextConstraint::None,
            expires_at: Some(100),
        };
        let ctx = Context::default();
        assert!(grant.allows(&id("spiffe://t/a"), Operation::Decrypt, &ctx, 99));
        assert!(!grant.allows(&id("spiffe://t/a"), Operation::Decrypt, &ctx, 100));
        assert!(!grant.allows(&id("spiffe://t/a"), Operation::Encrypt, &ctx, 0));
        assert!(!grant.allows(&id("spiffe://t/b"), Operation::Decrypt, &ctx, 0));
    }
}
