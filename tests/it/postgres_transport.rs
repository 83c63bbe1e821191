//! The connection to PostgreSQL (issue 18, item 8): with `--store-ca` the
//! connection is TLS or nothing, even when the server (or a man in the
//! middle) answers that it has no TLS; a remote database without a CA is
//! refused before any port is bound; and the URL, password included, can
//! come from `--store-file` or `TRESOR_STORE` instead of the command line.

use crate::common;

use common::postgres::Postgres;
use common::{ADMIN, BILLING, Fixture, ServeProcess};
use tresor::store::{DbTls, PostgresKeyStore};

/// A password the test server never asks for (trust authentication), to
/// see where the URL shows up.
const PASSWORD: &str = "url-password-canary";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_means_tls_even_when_the_server_offers_none() {
    // A server without TLS answers the SSLRequest with 'N', exactly what a
    // man in the middle who wants the session in plaintext would send.
    let Some(pg) = Postgres::start() else { return };
    let url = pg.fresh_database().await;
    let db_ca = tresor::pki::CertificateAuthority::generate("database CA").expect("ca");
    let tls = DbTls::from_ca_pem(&db_ca.cert_pem()).expect("tls");
    for (url, says) in [
        (url.clone(), "TLS"),
        (format!("{url}?sslmode=prefer"), "sslmode=prefer allows"),
        (format!("{url}?sslmode=disable"), "sslmode=disable allows"),
    ] {
        let err = PostgresKeyStore::connect_with_tls(&url, "downgrade", tls.clone())
            .await
            .expect_err("a CA was given: no session in plaintext");
        assert!(err.to_string().contains(says), "{url}: {err}");
    }
    // Without a CA, the database on this machine is reachable in clear.
    PostgresKeyStore::connect(&url, "local")
        .await
        .expect("plaintext to a loopback database");
}

/// The serve flags of `fixture` with `--data-dir` replaced by `store`.
fn postgres_flags(fixture: &Fixture, store: &[String]) -> Vec<String> {
    let mut flags = fixture.serve_flags();
    let at = flags
        .iter()
        .position(|flag| flag == "--data-dir")
        .expect("--data-dir");
    let audit = fixture.dir.path().join("audit").join("audit.jsonl");
    let mut replacement = store.to_vec();
    replacement.extend(["--audit-file".to_owned(), audit.display().to_string()]);
    flags.splice(at..at + 2, replacement);
    flags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_the_store_url_from_a_file_or_the_environment() {
    let Some(pg) = Postgres::start() else { return };
    if !pg.is_local() {
        eprintln!("skipping: the URL with a password needs a cluster started by the test");
        return;
    }
    let url = pg.fresh_database().await.replacen(
        "postgres://tresor@",
        &format!("postgres://tresor:{PASSWORD}@"),
        1,
    );
    let fixture = Fixture::new();
    let file = fixture.dir.path().join("store-url");
    tresor::fs::write_private_file(&file, format!("{url}\n").as_bytes(), false).expect("write");

    let from_file = postgres_flags(
        &fixture,
        &["--store-file".into(), file.display().to_string()],
    );
    let from_env = postgres_flags(&fixture, &[]);
    for (flags, envs) in [
        (from_file, vec![]),
        (from_env, vec![("TRESOR_STORE", url.as_str())]),
    ] {
        let server = ServeProcess::start_with(&flags, &envs);
        let cmdline =
            std::fs::read(format!("/proc/{}/cmdline", server.child.id())).expect("cmdline");
        assert!(!String::from_utf8_lossy(&cmdline).contains(PASSWORD));
        let mut admin = fixture.client_at(server.addr, ADMIN).await;
        admin
            .create_key(&format!("k/{}", envs.len()), BILLING)
            .await;
        drop(admin);
        let log = server.log_lines().join("\n");
        assert!(server.terminate().success());
        assert!(!log.contains(PASSWORD), "{log}");
        assert!(!log.contains("holds a password"), "{log}");
    }
}

#[test]
fn serve_refuses_a_remote_database_without_a_ca_or_with_a_weak_sslmode() {
    let fixture = Fixture::new();
    let remote = "postgres://tresor@db.invalid/tresor".to_owned();
    let ca = fixture.dir.path().join("db-ca.pem");
    std::fs::write(&ca, fixture.ca.cert_pem()).expect("write ca");
    let ca = ca.display().to_string();
    for (store, says) in [
        (
            vec!["--store".to_owned(), remote.clone()],
            "db.invalid is not on this machine: give --store-ca FILE",
        ),
        (
            vec![
                "--store".to_owned(),
                format!("{remote}?sslmode=prefer"),
                "--store-ca".to_owned(),
                ca.clone(),
            ],
            "sslmode=prefer allows a connection in plaintext",
        ),
    ] {
        let out = common::cli::command(postgres_flags(&fixture, &store))
            .env_remove("TRESOR_STORE")
            .output()
            .expect("run tresor serve");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("listening"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_commands_take_the_same_store_flags_and_rules() {
    let tresor = |args: &[&str]| {
        common::cli::command(args)
            .env_remove("TRESOR_STORE")
            .output()
            .expect("run tresor")
    };
    let remote = tresor(&[
        "keystore",
        "compact",
        "--store",
        "postgres://t@db.invalid/t",
    ]);
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert_eq!(remote.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("db.invalid is not on this machine"),
        "{stderr}"
    );

    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("store-url");
    let url = pg.fresh_database().await;
    tresor::fs::write_private_file(&file, url.as_bytes(), false).expect("write");
    let out = tresor(&[
        "keystore",
        "compact",
        "--store-file",
        file.to_str().expect("utf8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
