//! SPIFFE trust domains: the `--trust-domain` allowlist of `tresor serve`,
//! and the trust domain a caller's identity belongs to.
//!
//! Names are checked and compared as the SPIFFE library reads them
//! (`spiffe::TrustDomain`): letters (compared in lower case), digits, `.`,
//! `-` and `_`, given bare (`acme.test`) or as an id (`spiffe://acme.test`).

use std::collections::BTreeSet;

use super::{Identity, IdentityKind};

/// The trust domains whose SPIFFE ids may connect; empty means any
/// certificate the client CA bundle verifies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustDomains(BTreeSet<String>);

impl TrustDomains {
    /// No allowlist: every verified client certificate may connect.
    pub fn any() -> Self {
        Self::default()
    }

    /// The allowlist of `names` (`acme.test` or `spiffe://acme.test`);
    /// an empty list allows any.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        names
            .iter()
            .map(|name| {
                spiffe::TrustDomain::new(name.as_ref())
                    .map(|domain| domain.as_str().to_owned())
                    .map_err(|e| format!("{:?} is not a trust domain name: {e}", name.as_ref()))
            })
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }

    /// Whether there is no allowlist.
    pub fn is_any(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a caller from `trust_domain` may connect.
    pub fn permits(&self, trust_domain: &str) -> bool {
        self.is_any() || self.0.contains(trust_domain)
    }

    /// The allowed names, in order (none when any is allowed).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl Identity {
    /// The trust domain of a SPIFFE id (`spiffe://acme.test/billing` →
    /// `acme.test`); `None` for any other identity.
    pub fn spiffe_trust_domain(&self) -> Option<String> {
        if self.kind != IdentityKind::Uri {
            return None;
        }
        spiffe::SpiffeId::new(self.as_str())
            .ok()
            .map(|id| id.trust_domain_name().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_bare_or_as_ids_and_checked() {
        let allowed = TrustDomains::parse(&["acme.test", "spiffe://other.test"]).expect("valid");
        assert!(allowed.permits("acme.test"));
        assert!(allowed.permits("other.test"));
        assert!(!allowed.permits("evil.test"));
        // Names are compared in lower case, as the SPIFFE library writes them.
        assert!(
            TrustDomains::parse(&["Acme.Test"])
                .expect("valid")
                .permits("acme.test")
        );
        assert!(TrustDomains::parse(&["acme test"]).is_err());
        assert!(TrustDomains::any().permits("anything.test"));
    }

    #[test]
    fn only_spiffe_ids_have_a_trust_domain() {
        let id = |s: &str| Identity::parse(s).expect("identity");
        assert_eq!(
            id("spiffe://acme.test/billing")
                .spiffe_trust_domain()
                .as_deref(),
            Some("acme.test")
        );
        assert_eq!(id("https://acme.test/billing").spiffe_trust_domain(), None);
        assert_eq!(id("billing.acme.test").spiffe_trust_domain(), None);
        assert_eq!(id("cn:billing").spiffe_trust_domain(), None);
    }
}
