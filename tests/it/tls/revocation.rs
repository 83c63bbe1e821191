//! Revocation lists (`--client-crl`) and the trust-domain allowlist
//! (`--trust-domain`) with files: refused client certificates are refused
//! at the handshake, and both follow the files like the rest.

use super::*;

use common::{BILLING, SHIPPING};

/// A list of `revoked` certificates from `fixture`'s CA, PEM.
fn revocation_list(fixture: &Fixture, revoked: &[&CertifiedKey], number: u64) -> String {
    let serials: Vec<Vec<u8>> = revoked
        .iter()
        .map(|cert| serial_bytes_of_pem(&cert.cert_pem))
        .collect();
    fixture
        .ca
        .revocation_list(&serials, number, Duration::from_secs(3600))
        .expect("CRL")
}

#[tokio::test]
async fn a_revoked_client_certificate_is_refused_at_the_handshake_and_crl_updates_apply() {
    let fixture = Fixture::new();
    let revoked_first = fixture.ca.issue_client(BILLING).expect("cert");
    let revoked_later = fixture.ca.issue_client(BILLING).expect("cert");
    let never_revoked = fixture.ca.issue_client(SHIPPING).expect("cert");
    let first_list = revocation_list(&fixture, &[&revoked_first], 1);
    let (server, files) = server_watching(
        fixture,
        Watched {
            crls: vec![first_list.into_bytes()],
            ..Watched::default()
        },
    )
    .await;
    let (addr, root) = (server.addr, server.fixture.ca.cert_pem());
    assert!(!handshake_accepted(addr, &root, &revoked_first).await);
    assert!(handshake_accepted(addr, &root, &revoked_later).await);
    assert!(handshake_accepted(addr, &root, &never_revoked).await);

    // The next list adds a serial; this time it is written as DER.
    let second_list = revocation_list(&server.fixture, &[&revoked_first, &revoked_later], 2);
    let der =
        rustls::pki_types::CertificateRevocationListDer::from_pem_slice(second_list.as_bytes())
            .expect("CRL PEM");
    std::fs::write(&files.crls[0], der.as_ref()).expect("write CRL");
    until_audited(&server, "tls_reloaded", 1).await;
    assert!(!handshake_accepted(addr, &root, &revoked_later).await);
    assert!(!handshake_accepted(addr, &root, &revoked_first).await);
    assert!(handshake_accepted(addr, &root, &never_revoked).await);

    // A list that does not parse is refused; the last good one stays.
    std::fs::write(&files.crls[0], b"not a revocation list").expect("garbage");
    let refused = until_audited(&server, "tls_reload_refused", 1).await;
    assert!(
        refused[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("--client-crl")),
        "{refused:#?}"
    );
    assert!(!handshake_accepted(addr, &root, &revoked_later).await);
    assert!(handshake_accepted(addr, &root, &never_revoked).await);
}

#[tokio::test]
async fn the_trust_domain_allowlist_refuses_other_domains_even_when_the_ca_verifies_them() {
    let fixture = Fixture::new();
    let root = fixture.ca.cert_pem();
    let member = fixture.ca.issue_client(BILLING).expect("cert");
    let foreign = fixture
        .ca
        .issue_client("spiffe://other.test/billing")
        .expect("cert");
    let not_spiffe = fixture
        .ca
        .issue_client("billing.example.org")
        .expect("cert");
    let (server, _files) = server_watching(
        fixture,
        Watched {
            trust_domains: vec!["test.tresor"],
            ..Watched::default()
        },
    )
    .await;
    assert!(handshake_accepted(server.addr, &root, &member).await);
    assert!(
        !handshake_accepted(server.addr, &root, &foreign).await,
        "a SPIFFE id of another trust domain"
    );
    assert!(
        !handshake_accepted(server.addr, &root, &not_spiffe).await,
        "a certificate without a SPIFFE id"
    );
    let (_admin, mut billing) = server.billing_key(KEY).await;
    round_trip_works(&mut billing).await;

    // Without the allowlist the same CA lets both in.
    let (open, _files) = server_watching_its_files().await;
    let root = open.fixture.ca.cert_pem();
    let foreign = open
        .fixture
        .ca
        .issue_client("spiffe://other.test/billing")
        .expect("cert");
    assert!(handshake_accepted(open.addr, &root, &foreign).await);
}

#[test]
fn a_bad_trust_domain_or_an_unreadable_crl_is_refused_before_binding() {
    let fixture = Fixture::new();
    for (extra, flag) in [
        (vec!["--trust-domain", "Not A Domain"], "--trust-domain"),
        (vec!["--client-crl", "/nonexistent/crl.pem"], "--client-crl"),
    ] {
        let mut flags = fixture.serve_flags();
        flags.extend(extra.iter().map(|s| (*s).to_owned()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let out = common::cli::tresor(&flags);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag), "{stderr}");
    }
}

#[tokio::test]
async fn an_expired_client_certificate_cannot_resume_a_session_it_opened_while_valid() {
    let (server, _files) = server_watching_its_files().await;
    let root = server.fixture.ca.cert_pem();
    let short_lived = server
        .fixture
        .ca
        .issue_client_with_validity(
            BILLING,
            tresor::pki::Validity::from_now(Duration::from_secs(2)),
        )
        .expect("cert");
    // One client configuration throughout, as a long-lived client keeps:
    // rustls clients store the sessions servers offer, to resume them.
    let client = connector(&root, &short_lived);
    assert!(handshake_accepted_with(server.addr, &client).await);
    let expiry = not_after_of_pem(&short_lived.cert_pem);
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        <= u64::try_from(expiry).expect("expiry")
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A resumed session would skip the certificate: the server offers
    // none, so the expired certificate is verified, and refused.
    assert!(!handshake_accepted_with(server.addr, &client).await);
}
