//! The identity of a connection's client certificate, parsed once per
//! connection instead of once per request.
//!
//! tonic hands every request of a connection the same
//! `Arc<Vec<CertificateDer>>` (the verified chain). The cache keys on that
//! allocation's address and keeps a `Weak` to it: while the `Weak` lives the
//! allocation is not freed, so no other chain can appear at the same address,
//! and a live upgrade proves the entry belongs to this very chain. Entries of
//! closed connections are dropped when the cache grows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use rustls::pki_types::CertificateDer;

use crate::identity::{Identity, IdentityError};

/// A verified chain as tonic shares it between a connection's requests.
type Chain = Vec<CertificateDer<'static>>;

/// Entries before closed connections are swept out.
const SWEEP_AT: usize = 4096;

/// Address of a chain → (the chain, weakly; the identity of its leaf).
type Entries = HashMap<usize, (Weak<Chain>, Identity)>;

fn cache() -> &'static Mutex<Entries> {
    static ENTRIES: OnceLock<Mutex<Entries>> = OnceLock::new();
    ENTRIES.get_or_init(Mutex::default)
}

/// The identity named by the leaf of `chain`.
///
/// # Errors
///
/// [`IdentityError::NoIdentityInCertificate`] for an empty chain, or why the
/// leaf names no identity. Failures are not cached (they are rare and the
/// call is refused anyway).
pub(crate) fn of_connection(chain: &Arc<Chain>) -> Result<Identity, IdentityError> {
    let address = Arc::as_ptr(chain) as usize;
    let entries = cache()
        .lock()
        // Every critical section is a single map operation: a panic cannot
        // leave the map half-updated, so a poisoned lock is safe to use.
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((weak, identity)) = entries.get(&address)
        && weak.upgrade().is_some_and(|live| Arc::ptr_eq(&live, chain))
    {
        return Ok(identity.clone());
    }
    drop(entries);
    let leaf = chain
        .first()
        .ok_or(IdentityError::NoIdentityInCertificate)?;
    let identity = Identity::from_certificate_der(leaf.as_ref())?;
    let mut entries = cache()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if entries.len() >= SWEEP_AT {
        entries.retain(|_, (weak, _)| weak.strong_count() > 0);
    }
    entries.insert(address, (Arc::downgrade(chain), identity.clone()));
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair, SanType};

    use super::*;

    fn chain(identity: &str) -> Arc<Chain> {
        let key = KeyPair::generate().expect("key generation");
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![SanType::URI(identity.try_into().expect("ia5"))];
        let cert = params.self_signed(&key).expect("self-signed cert");
        Arc::new(vec![cert.der().clone().into_owned()])
    }

    #[test]
    fn each_chain_keeps_its_own_identity() {
        let a = chain("spiffe://test/a");
        let b = chain("spiffe://test/b");
        for _ in 0..3 {
            assert_eq!(of_connection(&a).expect("a").as_str(), "spiffe://test/a");
            assert_eq!(of_connection(&b).expect("b").as_str(), "spiffe://test/b");
        }
    }

    #[test]
    fn a_new_chain_at_a_reused_address_is_parsed_again() {
        // Connections come and go; whatever the allocator does with
        // addresses, every chain must get its own leaf's identity.
        for round in 0..200 {
            let name = format!("spiffe://test/conn-{round}");
            let c = chain(&name);
            assert_eq!(of_connection(&c).expect("identity").as_str(), name);
        }
    }

    #[test]
    fn an_empty_chain_names_no_identity() {
        assert_eq!(
            of_connection(&Arc::new(Vec::new())).err(),
            Some(IdentityError::NoIdentityInCertificate)
        );
    }
}
