//! The server's TLS files reloaded while it serves (issue 20): new
//! handshakes get the new certificate, established connections keep
//! working, and a bad set (half written, expired, a key of another
//! certificate, garbage) is refused while the old set keeps serving. Real
//! server, real TLS; the served certificate is read from the handshake.

use super::*;

use std::time::SystemTime;

use common::metrics::{metric, scrape};
use common::{BILLING, ServeProcess};
use tresor::pki::Validity;

#[tokio::test]
async fn a_rotated_server_certificate_is_served_to_new_handshakes_while_old_connections_go_on() {
    let (server, files) = server_watching_its_files().await;
    let original = serial_of_pem(&server.fixture.server_cert.cert_pem);
    assert_eq!(served_serial(&server, ADMIN).await, original);
    let (_admin, mut established) = server.billing_key(KEY).await;
    round_trip_works(&mut established).await;

    for _ in 0..3 {
        rotate_certificate(&server, &files).await;
        round_trip_works(&mut established).await;
        round_trip_works(&mut server.client(BILLING).await).await;
    }
    let applied = until_audited(&server, "tls_reloaded", 3).await;
    assert!(
        applied
            .iter()
            .all(|r| r["detail"].as_str().is_some_and(|d| d.contains("expires"))),
        "{applied:#?}"
    );
}

#[tokio::test]
async fn a_bad_set_is_refused_and_the_old_one_keeps_serving() {
    let (server, files) = server_watching_its_files().await;
    server.admin().await.create_key(KEY, BILLING).await;
    let serving = serial_of_pem(&server.fixture.server_cert.cert_pem);
    let localhost = ["localhost".to_owned()];
    let loopback = ["127.0.0.1".parse().expect("ip")];
    let good_key = server.fixture.server_cert.key_pem.clone();

    // Each bad set, then the good one back; the served certificate never
    // changes and new connections keep working.
    let expired = server
        .fixture
        .ca
        .issue_server_with_validity(
            &localhost,
            &loopback,
            Validity::between(
                SystemTime::now() - Duration::from_secs(7200),
                SystemTime::now() - Duration::from_secs(3600),
            ),
        )
        .expect("expired cert");
    let not_yet_valid = server
        .fixture
        .ca
        .issue_server_with_validity(
            &localhost,
            &loopback,
            Validity::between(
                SystemTime::now() + Duration::from_secs(3600),
                SystemTime::now() + Duration::from_secs(7200),
            ),
        )
        .expect("future cert");
    let another = new_server_cert(&server.fixture.ca);
    // A certificate file caught half written.
    let half = &another.cert_pem[..another.cert_pem.len() / 2];
    let bad_sets: [(&str, &str, &str); 5] = [
        ("garbage", "not a certificate at all\n", good_key.as_str()),
        ("expired", &expired.cert_pem, &expired.key_pem),
        (
            "not yet valid",
            &not_yet_valid.cert_pem,
            &not_yet_valid.key_pem,
        ),
        ("another key", &another.cert_pem, good_key.as_str()),
        ("half written", half, &another.key_pem),
    ];
    for (refusals, (why, cert, key)) in bad_sets.into_iter().enumerate() {
        std::fs::write(&files.key, key).expect("key");
        std::fs::write(&files.cert, cert).expect("cert");
        until_audited(&server, "tls_reload_refused", refusals + 1).await;
        assert_eq!(served_serial(&server, ADMIN).await, serving, "{why}");
        round_trip_works(&mut server.client(BILLING).await).await;
    }
    let refused = audit_events(&server, "tls_reload_refused");
    let reasons: Vec<&str> = refused
        .iter()
        .filter_map(|r| r["detail"].as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("not valid now")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("--tls-cert")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("does not match")),
        "{reasons:?}"
    );
    let key_body: String = good_key
        .lines()
        .nth(1)
        .expect("key body")
        .chars()
        .take(32)
        .collect();
    assert!(
        reasons.iter().all(|r| !r.contains(&key_body)),
        "a reason shows the key"
    );

    // A good set is applied after all that.
    rotate_certificate(&server, &files).await;
}

#[tokio::test]
async fn sighup_reloads_at_once_with_the_watch_off_and_the_expiry_gauges_follow() {
    let fixture = Fixture::new();
    let mut flags = fixture.serve_flags();
    flags.extend(
        [
            "--tls-reload-interval",
            "off",
            "--metrics-listen",
            "127.0.0.1:0",
        ]
        .map(str::to_owned),
    );
    let serve = ServeProcess::start_with(&flags, &[]);
    let original = serial_of_pem(&fixture.server_cert.cert_pem);
    assert_eq!(
        served_serial_at(serve.addr, &fixture, ADMIN).await,
        original
    );
    let metrics_addr = serve.metrics_addr().await;
    let expiry = |samples: &std::collections::HashMap<String, f64>, cert: &str| {
        metric(
            samples,
            &format!("tresor_tls_certificate_expiry_timestamp_seconds{{cert=\"{cert}\"}}"),
        ) as i64
    };
    let samples = scrape(metrics_addr).await;
    assert_eq!(
        expiry(&samples, "server"),
        not_after_of_pem(&fixture.server_cert.cert_pem)
    );
    assert_eq!(
        expiry(&samples, "client_ca"),
        not_after_of_pem(&fixture.ca.cert_pem())
    );

    // The next certificate lives two minutes.
    let next = fixture
        .ca
        .issue_server_with_validity(
            &["localhost".to_owned()],
            &["127.0.0.1".parse().expect("ip")],
            Validity::from_now(Duration::from_secs(120)),
        )
        .expect("short-lived cert");
    next.save(&fixture.dir.path().join("server"), true)
        .expect("save");
    // The watch is off: nothing changes until the signal.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        served_serial_at(serve.addr, &fixture, ADMIN).await,
        original
    );

    let hup = std::process::Command::new("kill")
        .args(["-HUP", &serve.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    until_served_at(serve.addr, &fixture, &serial_of_pem(&next.cert_pem)).await;
    assert!(
        serve
            .log_lines()
            .iter()
            .any(|l| l.contains("TLS material reloaded")),
        "{:#?}",
        serve.log_lines()
    );
    let samples = scrape(metrics_addr).await;
    assert_eq!(expiry(&samples, "server"), not_after_of_pem(&next.cert_pem));
    assert_eq!(
        metric(&samples, "tresor_tls_reload_total{result=\"ok\"}"),
        1.0
    );
    assert_eq!(
        metric(&samples, "tresor_tls_reload_total{result=\"refused\"}"),
        0.0
    );
    serve.terminate();
}

#[test]
fn a_reload_interval_below_100ms_is_refused_before_binding() {
    let fixture = Fixture::new();
    let mut flags = fixture.serve_flags();
    flags.extend(["--tls-reload-interval".to_owned(), "10ms".to_owned()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let out = common::cli::tresor(&flags);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tls-reload-interval"), "{stderr}");
}

#[tokio::test]
async fn a_client_ca_roll_over_applies_to_new_connections_and_a_bundle_accepts_both() {
    let (server, files) = server_watching_its_files().await;
    server.admin().await.create_key(KEY, BILLING).await;
    let ca_file = &files.client_ca;
    let old_ca = &server.fixture.ca;
    let new_ca = tresor::pki::CertificateAuthority::generate("next CA").expect("CA");
    // Clients verify the server with the old CA either way: the server's
    // own certificate does not change here.
    let server_root = old_ca.cert_pem();
    let connects = |ca: &tresor::pki::CertificateAuthority| {
        let cert = ca.issue_client(BILLING).expect("client cert");
        let (addr, root) = (server.addr, server_root.clone());
        async move { encrypts_with(addr, &root, &cert).await }
    };
    assert!(connects(old_ca).await);
    assert!(!connects(&new_ca).await);

    // The overlap: both CAs in the bundle.
    std::fs::write(
        ca_file,
        format!("{}{}", old_ca.cert_pem(), new_ca.cert_pem()),
    )
    .expect("bundle");
    until_audited(&server, "tls_reloaded", 1).await;
    assert!(
        connects(old_ca).await,
        "the bundle still accepts the old CA"
    );
    assert!(connects(&new_ca).await, "the bundle accepts the new CA");

    // The old CA leaves.
    std::fs::write(ca_file, new_ca.cert_pem()).expect("new ca");
    until_audited(&server, "tls_reloaded", 2).await;
    assert!(
        !connects(old_ca).await,
        "the old CA is refused on new connections"
    );
    assert!(connects(&new_ca).await);

    // An empty bundle is refused: the new CA keeps being the one.
    std::fs::write(ca_file, "").expect("empty ca");
    until_audited(&server, "tls_reload_refused", 1).await;
    assert!(connects(&new_ca).await);
}
