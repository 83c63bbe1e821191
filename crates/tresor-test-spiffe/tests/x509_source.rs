//! The maintained `spiffe` crate's `X509Source`, an independent Workload API
//! client, against the server: it syncs, follows SVID rotation, CA rollover
//! and federation. Waits are bounded by `common::BOUND` only to fail
//! instead of hanging; no assertion depends on timing.

mod common;

use std::error::Error;

use common::{BOUND, SPIFFE_ID, TRUST_DOMAIN, parse, serial_of, start};
use spiffe::{TrustDomain, X509Source};
use tresor_test_spiffe::TrustDomainCa;
use x509_parser::extensions::GeneralName;

type TestResult = Result<(), Box<dyn Error>>;

/// An `X509Source` on `endpoint`, synced (bounded, so a server that never
/// answers fails the test instead of hanging it).
async fn source(endpoint: String) -> Result<X509Source, Box<dyn Error>> {
    Ok(X509Source::builder()
        .endpoint(endpoint)
        .initial_sync_timeout(BOUND)
        .build()
        .await?)
}

/// Waits until `check` holds for `source`. Subscribes before the first
/// check, so a change between the check and the wait is not missed.
async fn wait_until(source: &X509Source, what: &str, check: impl Fn(&X509Source) -> bool) {
    let mut updates = source.updated();
    tokio::time::timeout(BOUND, updates.wait_for(|_| check(source)))
        .await
        .unwrap_or_else(|_| panic!("{what}: not seen within {BOUND:?}"))
        .expect("the source is open");
}

/// The DER authorities of `trust_domain`'s bundle, as the source holds it.
fn authorities(source: &X509Source, trust_domain: &str) -> Vec<Vec<u8>> {
    let td = TrustDomain::new(trust_domain).expect("a trust domain");
    source
        .bundle_set()
        .expect("the source is open")
        .get(&td)
        .map(|bundle| {
            bundle
                .authorities()
                .iter()
                .map(|c| c.as_bytes().to_vec())
                .collect()
        })
        .unwrap_or_default()
}

fn leaf_serial(source: &X509Source) -> String {
    serial_of(source.svid().expect("an SVID").leaf().as_bytes())
}

#[tokio::test]
async fn source_syncs_the_svid_and_its_bundle() -> TestResult {
    let dir = tempfile::tempdir()?;
    let api = start(dir.path()).await;
    let source = source(api.endpoint()).await?;

    let svid = source.svid()?;
    assert_eq!(svid.spiffe_id().to_string(), SPIFFE_ID);
    assert_eq!(
        svid.cert_chain().len(),
        1,
        "the leaf alone, no intermediates"
    );
    assert_eq!(svid.private_key().as_bytes(), api.svid().key_der());
    let leaf = parse(svid.leaf().as_bytes());
    assert_eq!(leaf.raw_serial_as_string(), api.serial_hex());
    let sans = leaf.subject_alternative_name()?.expect("SANs").value;
    assert!(sans.general_names.contains(&GeneralName::URI(SPIFFE_ID)));
    assert!(
        sans.general_names
            .contains(&GeneralName::DNSName("localhost"))
    );
    assert!(
        sans.general_names
            .contains(&GeneralName::IPAddress(&[127, 0, 0, 1]))
    );

    let bundle = authorities(&source, TRUST_DOMAIN);
    assert_eq!(bundle.len(), 1);
    assert_eq!(leaf.issuer().as_raw(), parse(&bundle[0]).subject().as_raw());
    assert!(api.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));

    source.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn source_follows_every_rotation() -> TestResult {
    let dir = tempfile::tempdir()?;
    let api = start(dir.path()).await;
    let source = source(api.endpoint()).await?;
    let first = leaf_serial(&source);

    let mut seen = vec![first];
    for _ in 0..3 {
        let serial = api.rotate();
        assert_eq!(serial, api.serial_hex());
        wait_until(&source, "the rotated SVID", |s| leaf_serial(s) == serial).await;
        assert_eq!(
            source.svid()?.private_key().as_bytes(),
            api.svid().key_der()
        );
        assert!(!seen.contains(&serial), "a fresh serial every rotation");
        seen.push(serial);
    }

    source.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn source_sees_a_ca_rollover_from_overlap_to_retirement() -> TestResult {
    let dir = tempfile::tempdir()?;
    let api = start(dir.path()).await;
    let source = source(api.endpoint()).await?;
    let old_ca = authorities(&source, TRUST_DOMAIN).remove(0);

    let new_ca_pem = api.roll_ca();
    wait_until(&source, "old + new CA in the bundle", |s| {
        authorities(s, TRUST_DOMAIN).len() == 2
    })
    .await;
    let bundle = authorities(&source, TRUST_DOMAIN);
    assert!(bundle.contains(&old_ca));
    let new_ca = bundle.into_iter().find(|c| *c != old_ca).expect("a new CA");
    assert_eq!(api.ca_pem().matches("BEGIN CERTIFICATE").count(), 2);
    assert!(api.ca_pem().ends_with(&new_ca_pem));

    // Until it rotates, the SVID is still the old CA's; after, the new one's.
    let issuer_of = |s: &X509Source| {
        let svid = s.svid().expect("an SVID");
        parse(svid.leaf().as_bytes()).issuer().as_raw().to_vec()
    };
    assert_eq!(issuer_of(&source), parse(&old_ca).subject().as_raw());
    let serial = api.rotate();
    wait_until(&source, "an SVID from the new CA", |s| {
        leaf_serial(s) == serial
    })
    .await;
    assert_eq!(issuer_of(&source), parse(&new_ca).subject().as_raw());

    api.retire_old_cas();
    wait_until(&source, "the old CA retired", |s| {
        authorities(s, TRUST_DOMAIN) == [new_ca.clone()]
    })
    .await;

    source.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn source_sees_federated_bundles_come_and_go() -> TestResult {
    let dir = tempfile::tempdir()?;
    let api = start(dir.path()).await;
    let source = source(api.endpoint()).await?;
    let other = TrustDomainCa::new("other.test");
    assert!(authorities(&source, "other.test").is_empty());

    api.federate_with(&other);
    wait_until(&source, "the federated bundle", |s| {
        authorities(s, "other.test") == [other.cert_der().to_vec()]
    })
    .await;
    assert_eq!(authorities(&source, TRUST_DOMAIN).len(), 1);

    api.remove_federated_bundle("spiffe://other.test");
    wait_until(&source, "the federation removed", |s| {
        authorities(s, "other.test").is_empty()
    })
    .await;

    source.shutdown().await;
    Ok(())
}
