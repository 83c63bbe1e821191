//! `tresor certs issue --ttl` and `tresor certs server --ttl`: short-lived
//! certificates for tests and demos of rotation (issue 20). The validity is
//! read back from the written certificate.

use crate::common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::cli::tresor;
use x509_parser::pem::parse_x509_pem;

/// `tresor certs issue` for `identity` into `dir/out`, from the CA in
/// `dir/ca`, with `extra` flags.
fn issue(dir: &Path, identity: &str, out: &str, extra: &[&str]) -> Output {
    let (ca, out) = (dir.join("ca"), dir.join(out));
    let mut args = vec!["certs", "issue", "--ca", ca.to_str().expect("utf8")];
    args.extend(["--identity", identity, "--out", out.to_str().expect("utf8")]);
    args.extend(extra);
    tresor(&args)
}

fn succeeds(args: &[&str]) {
    let out = tresor(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (not_before, not_after) of the certificate in `dir/cert.pem`, in Unix
/// seconds.
fn validity(dir: &Path) -> (i64, i64) {
    let pem = std::fs::read(dir.join("cert.pem")).expect("cert.pem");
    let (_, pem) = parse_x509_pem(&pem).expect("pem");
    let cert = pem.parse_x509().expect("x509");
    let validity = cert.validity();
    (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    )
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after epoch")
        .as_secs();
    i64::try_from(secs).expect("fits")
}

#[test]
fn ttl_sets_how_long_client_and_server_certificates_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = |name: &str| dir.path().join(name).display().to_string();
    succeeds(&["certs", "ca", "--out", &d("ca")]);

    let before = now();
    let out = issue(
        dir.path(),
        "spiffe://test/billing",
        "billing",
        &["--ttl", "2m"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (not_before, not_after) = validity(&dir.path().join("billing"));
    let after = now();
    assert!(
        (before + 120 - 1..=after + 120).contains(&not_after),
        "not_after {not_after} is not two minutes after {before}..{after}"
    );
    // Back-dated by at most the lifetime itself, so a 2-minute certificate
    // does not live for an hour and two minutes.
    assert!(not_before >= before - 120 - 1, "not_before {not_before}");
    assert!(
        not_before <= after,
        "not_before {not_before} is in the future"
    );

    succeeds(&[
        "certs",
        "server",
        "--ca",
        &d("ca"),
        "--dns",
        "localhost",
        "--out",
        &d("server"),
        "--ttl",
        "1h",
    ]);
    let (_, not_after) = validity(&dir.path().join("server"));
    assert!(
        (now() + 3600 - 5..=now() + 3600).contains(&not_after),
        "{not_after}"
    );

    // Without --ttl: one year, as before.
    let out = issue(dir.path(), "spiffe://test/shipping", "shipping", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, not_after) = validity(&dir.path().join("shipping"));
    let year = i64::try_from(Duration::from_secs(365 * 24 * 3600).as_secs()).expect("fits");
    assert!(
        (now() + year - 5..=now() + year).contains(&not_after),
        "{not_after}"
    );
}

#[test]
fn a_zero_or_unreadable_ttl_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = |name: &str| dir.path().join(name).display().to_string();
    succeeds(&["certs", "ca", "--out", &d("ca")]);
    for ttl in ["0s", "500ms", "soon", "-5m"] {
        let ttl_flag = format!("--ttl={ttl}");
        let out = issue(dir.path(), "spiffe://test/billing", "billing", &[&ttl_flag]);
        assert_eq!(out.status.code(), Some(2), "--ttl {ttl}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--ttl"), "--ttl {ttl}: {stderr}");
        assert!(
            !dir.path().join("billing").exists(),
            "--ttl {ttl} wrote files"
        );
    }
}

#[test]
fn certs_crl_lists_the_revoked_certificates_signed_by_the_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = |name: &str| dir.path().join(name).display().to_string();
    succeeds(&["certs", "ca", "--out", &d("ca")]);
    succeeds(&[
        "certs",
        "issue",
        "--ca",
        &d("ca"),
        "--identity",
        "spiffe://x/gone",
        "--out",
        &d("gone"),
    ]);
    succeeds(&[
        "certs",
        "crl",
        "--ca",
        &d("ca"),
        "--revoke",
        &d("gone/cert.pem"),
        "--out",
        &d("clients.crl"),
    ]);

    let pem = std::fs::read(dir.path().join("clients.crl")).expect("crl");
    let (_, pem) = parse_x509_pem(&pem).expect("pem");
    assert_eq!(pem.label, "X509 CRL");
    let (_, crl) = x509_parser::parse_x509_crl(&pem.contents).expect("CRL");
    let cert = std::fs::read(dir.path().join("gone/cert.pem")).expect("cert");
    let (_, cert) = parse_x509_pem(&cert).expect("pem");
    let cert = cert.parse_x509().expect("x509");
    let revoked: Vec<_> = crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial().to_vec())
        .collect();
    assert_eq!(revoked, vec![cert.raw_serial().to_vec()]);
    assert_eq!(crl.issuer(), cert.issuer());
    let next = crl.next_update().expect("next update").timestamp();
    assert!((next - now() - 7 * 86_400).abs() < 120, "due in 7 days");

    let missing = tresor(&[
        "certs",
        "crl",
        "--ca",
        &d("ca"),
        "--revoke",
        &d("nope.pem"),
        "--out",
        &d("x.crl"),
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--revoke"));
}
