//! The admin CLI end to end: the real `tresor` binary against a real server
//! started here, checking human output, JSON, exit codes and the failure
//! cases (wrong CA, missing certificate, sealed server, permission denied,
//! unknown key, bad flags), plus confirmation of destructive commands.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::cli::{Tresor, server_with_billing_key, text};
use common::{ADMIN, BILLING, SHIPPING, TestServer};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lifecycle_from_the_cli() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = Tresor::new(&server, ADMIN, dir.path());

    let created = admin.ok(&[
        "key",
        "create",
        "billing/records",
        "--owner",
        BILLING,
        "--description",
        "customer table",
    ]);
    assert_eq!(
        created,
        format!("created key billing/records (version 1, owner {BILLING})\n")
    );
    let json = admin.json(&["key", "create", "billing/invoices", "--owner", BILLING]);
    assert_eq!(json["key_id"], "billing/invoices");
    assert_eq!(json["state"], "enabled");
    assert_eq!(json["primary_version"], 1);
    assert_eq!(json["deletion_at"], Value::Null);

    let rotated = admin.ok(&["key", "rotate", "billing/records"]);
    assert_eq!(
        rotated,
        "rotated key billing/records: primary version is now 2\n"
    );

    let shown = admin.ok(&["key", "show", "billing/records"]);
    for line in [
        "Key:                     billing/records",
        &format!("Owner:                   {BILLING}"),
        "State:                   enabled",
        "Description:             customer table",
        "Primary version:         2",
        "Min decryption version:  1",
        "Deletion date:           -",
        "  VERSION  CREATED",
        "Grants:",
    ] {
        assert!(shown.contains(line), "missing {line:?} in:\n{shown}");
    }
    let json = admin.json(&["key", "show", "billing/records"]);
    assert_eq!(json["versions"].as_array().map(Vec::len), Some(2));
    assert!(
        json["versions"][1]["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    let listed = admin.ok(&["key", "list"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert!(lines[0].starts_with("KEY ID"), "{listed}");
    assert!(
        lines[1].starts_with("billing/invoices  enabled"),
        "{listed}"
    );
    assert!(
        lines[2].starts_with("billing/records   enabled  2"),
        "{listed}"
    );

    // Destructive commands need --yes without a terminal.
    let refusal = admin.fails(&["key", "disable", "billing/records"], 2);
    assert!(refusal.contains("pass --yes"), "{refusal}");
    assert_eq!(
        admin.json(&["key", "show", "billing/records"])["state"],
        "enabled"
    );
    assert_eq!(
        admin.ok(&["key", "disable", "billing/records", "--yes"]),
        "disabled key billing/records\n"
    );
    assert_eq!(
        admin.json(&["key", "show", "billing/records"])["state"],
        "disabled"
    );
    admin.ok(&["key", "enable", "billing/records"]);

    admin.fails(&["key", "set-min-version", "billing/records", "2"], 2);
    let json = admin.json(&["key", "set-min-version", "billing/records", "2", "--yes"]);
    assert_eq!(json["min_decryption_version"], 2);
    let err = admin.fails(
        &["key", "set-min-version", "billing/records", "9", "--yes"],
        1,
    );
    assert!(
        err.starts_with("error: invalid argument: version 9 does not exist"),
        "{err}"
    );

    admin.fails(
        &[
            "key",
            "schedule-deletion",
            "billing/invoices",
            "--days",
            "7",
        ],
        2,
    );
    let json = admin.json(&[
        "key",
        "schedule-deletion",
        "billing/invoices",
        "--days",
        "7",
        "--yes",
    ]);
    assert_eq!(json["state"], "pending_deletion");
    assert!(json["deletion_at"].as_str().is_some());
    let err = admin.fails(
        &[
            "key",
            "schedule-deletion",
            "billing/records",
            "--days",
            "3",
            "--yes",
        ],
        1,
    );
    assert!(
        err.contains("pending_days must be between 7 and 30"),
        "{err}"
    );
    let cancelled = admin.ok(&["key", "cancel-deletion", "billing/invoices"]);
    assert!(
        cancelled.contains("tresor key enable billing/invoices"),
        "{cancelled}"
    );
    assert_eq!(
        admin.json(&["key", "show", "billing/invoices"])["state"],
        "disabled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_list_follows_pages_and_filters_by_prefix() {
    let server = TestServer::start().await;
    let mut clients = server.admin().await;
    for i in 0..130 {
        clients.create_key(&format!("bulk/{i:03}"), BILLING).await;
    }
    clients.create_key("other/x", BILLING).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = Tresor::new(&server, ADMIN, dir.path());
    let json = admin.json(&["key", "list", "--prefix", "bulk/"]);
    let keys = json["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 130, "more than one page (100) is followed");
    assert_eq!(keys[0]["key_id"], "bulk/000");
    assert_eq!(keys[129]["key_id"], "bulk/129");
    assert_eq!(admin.ok(&["key", "list", "--prefix", "none/"]), "no keys\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_from_the_cli() {
    let (server, dir, admin, billing) = server_with_billing_key("billing/records").await;
    let shipping = Tresor::new(&server, SHIPPING, dir.path());
    assert_eq!(
        admin.ok(&["grant", "list", "billing/records"]),
        "no grants on billing/records\n"
    );
    let granted = admin.ok(&[
        "grant",
        "create",
        "billing/records",
        "--grantee",
        SHIPPING,
        "--ops",
        "decrypt,encrypt",
    ]);
    assert_eq!(
        granted,
        format!("granted decrypt,encrypt on billing/records to {SHIPPING}\n")
    );
    let listed = admin.ok(&["grant", "list", "billing/records"]);
    let header = format!("{:width$}  OPERATIONS", "GRANTEE", width = SHIPPING.len());
    assert_eq!(listed, format!("{header}\n{SHIPPING}  encrypt,decrypt\n"));
    let json = admin.json(&["grant", "list", "billing/records"]);
    assert_eq!(json["grants"][0]["grantee"], SHIPPING);
    assert_eq!(
        json["grants"][0]["operations"],
        serde_json::json!(["encrypt", "decrypt"])
    );

    let sealed = billing.run_with_stdin(&["encrypt", "billing/records", "--base64"], b"shared");
    assert!(sealed.status.success(), "{}", text(&sealed.stderr));
    let opened =
        shipping.run_with_stdin(&["decrypt", "billing/records", "--base64"], &sealed.stdout);
    assert!(opened.status.success(), "{}", text(&opened.stderr));
    assert_eq!(opened.stdout, b"shared");

    admin.ok(&[
        "grant",
        "revoke",
        "billing/records",
        "--grantee",
        SHIPPING,
        "--ops",
        "decrypt",
    ]);
    let denied =
        shipping.run_with_stdin(&["decrypt", "billing/records", "--base64"], &sealed.stdout);
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        text(&denied.stderr).starts_with("error: permission denied:"),
        "{}",
        text(&denied.stderr)
    );
    assert!(text(&denied.stderr).contains(&format!("as {SHIPPING}")));
    admin.ok(&["grant", "revoke", "billing/records", "--grantee", SHIPPING]);
    assert_eq!(
        admin.json(&["grant", "list", "billing/records"])["grants"],
        serde_json::json!([])
    );
    let bad = admin.fails(
        &[
            "grant",
            "create",
            "billing/records",
            "--grantee",
            SHIPPING,
            "--ops",
            "fly",
        ],
        2,
    );
    assert!(bad.contains("unknown operation"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_is_binary_safe_with_files_stdin_and_base64() {
    let (_server, dir, _admin, billing) = server_with_billing_key("billing/records").await;
    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let plain = dir.path().join("plain.bin");
    let sealed = dir.path().join("sealed.bin");
    let opened = dir.path().join("opened.bin");
    std::fs::write(&plain, &binary).expect("write");
    let p = |path: &Path| path.display().to_string();
    billing.ok(&[
        "encrypt",
        "billing/records",
        "-c",
        "tenant=42",
        "--in",
        &p(&plain),
        "--out",
        &p(&sealed),
    ]);
    billing.ok(&[
        "decrypt",
        "billing/records",
        "-c",
        "tenant=42",
        "--in",
        &p(&sealed),
        "--out",
        &p(&opened),
    ]);
    assert_eq!(std::fs::read(&opened).expect("read"), binary);

    // Raw bytes through pipes.
    let raw = billing.run_with_stdin(&["encrypt", "billing/records"], &binary);
    assert!(raw.status.success());
    let back = billing.run_with_stdin(&["decrypt", "billing/records"], &raw.stdout);
    assert_eq!(back.stdout, binary);

    // JSON documents carry base64.
    let json = billing.json(&["encrypt", "billing/records", "--in", &p(&plain)]);
    assert_eq!(json["key_version"], 1);
    let ciphertext = BASE64
        .decode(json["ciphertext"].as_str().expect("ciphertext"))
        .expect("b64");
    std::fs::write(dir.path().join("c.bin"), &ciphertext).expect("write");
    let json = billing.json(&[
        "decrypt",
        "billing/records",
        "--in",
        &p(&dir.path().join("c.bin")),
    ]);
    assert_eq!(
        BASE64
            .decode(json["plaintext"].as_str().expect("plaintext"))
            .expect("b64"),
        binary
    );

    // Wrong context: refused, exit 1, no plaintext printed.
    let wrong = billing.run_with_stdin(
        &["decrypt", "billing/records", "-c", "tenant=43"],
        &raw.stdout,
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(wrong.stdout.is_empty());
    assert!(text(&wrong.stderr).starts_with("error: invalid ciphertext: malformed, tampered with"));

    // Data keys: the wrapped key decrypts to the plaintext key.
    let json = billing.json(&["datakey", "billing/records", "-c", "file=a"]);
    let key = BASE64
        .decode(json["plaintext_key"].as_str().expect("key"))
        .expect("b64");
    assert_eq!(key.len(), 32);
    let wrapped = json["wrapped_key"].as_str().expect("wrapped").to_owned();
    // `tresor decrypt --data-key` of a base64 wrapped key of context file=a.
    let unwrap = |wrapped: &str| {
        billing.run_with_stdin(
            &[
                "decrypt",
                "billing/records",
                "-c",
                "file=a",
                "--base64",
                "--data-key",
            ],
            wrapped.as_bytes(),
        )
    };
    let unwrapped = unwrap(&wrapped);
    assert_eq!(unwrapped.stdout, key);
    // Plain decrypt does not open a wrapped data key, and says what does.
    let refused = billing.run_with_stdin(
        &["decrypt", "billing/records", "-c", "file=a", "--base64"],
        wrapped.as_bytes(),
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
    assert!(
        text(&refused.stderr).contains("--data-key"),
        "{}",
        text(&refused.stderr)
    );
    let human = billing.ok(&["datakey", "billing/records"]);
    assert!(
        human.starts_with("key_id:         billing/records\nkey_version:    1\nplaintext_key:  "),
        "{human}"
    );
    // A 16-byte key provisioned without its plaintext opens to 16 bytes.
    let provisioned = billing.json(&[
        "datakey",
        "billing/records",
        "-c",
        "file=a",
        "--bytes",
        "16",
        "--without-plaintext",
    ]);
    assert!(provisioned.get("plaintext_key").is_none(), "{provisioned}");
    let unwrapped = unwrap(provisioned["wrapped_key"].as_str().expect("wrapped key"));
    assert_eq!(unwrapped.stdout.len(), 16, "{}", text(&unwrapped.stderr));
    assert!(
        !billing
            .ok(&["datakey", "billing/records", "--without-plaintext"])
            .contains("plaintext_key")
    );
    billing.fails(&["datakey", "billing/records", "--bytes", "24"], 2);

    let bad = billing.fails(&["encrypt", "billing/records", "-c", "no-equals"], 2);
    assert!(bad.contains("is not KEY=VALUE"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seal_unseal_and_status_from_the_cli() {
    let (server, _dir, admin, billing) = server_with_billing_key("billing/records").await;
    let status = admin.ok(&["status"]);
    assert!(
        status.starts_with("Sealed:          false\nKeys:            1\nServer version:  "),
        "{status}"
    );
    let json = admin.json(&["status"]);
    assert_eq!(json["sealed"], false);
    assert_eq!(json["key_count"], 1);
    assert_eq!(json["server_version"], env!("CARGO_PKG_VERSION"));
    // The certificate new handshakes get: the fixture's server certificate.
    let served = &server.fixture.server_cert.cert_pem;
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(served.as_bytes()).expect("pem");
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("x509");
    let serial = cert.raw_serial_as_string();
    assert_eq!(json["server_certificate"]["serial"], serial.as_str());
    assert_eq!(
        json["server_certificate"]["expires_unix"],
        cert.validity().not_after.timestamp()
    );
    assert_eq!(json["server_certificate"]["subject"], "CN=localhost");
    assert!(
        status.contains(&format!(
            "Certificate:     CN=localhost (serial {serial}), expires "
        )),
        "{status}"
    );

    admin.fails(&["seal"], 2);
    assert!(
        admin
            .ok(&["seal", "--yes"])
            .starts_with("server sealed\nSealed:          true")
    );
    let sealed = billing.run_with_stdin(&["encrypt", "billing/records", "--base64"], b"x");
    assert_eq!(sealed.status.code(), Some(1));
    assert!(
        text(&sealed.stderr).contains("server is sealed"),
        "{}",
        text(&sealed.stderr)
    );
    assert_eq!(admin.json(&["status"])["sealed"], true);
    assert!(
        admin
            .ok(&["unseal"])
            .starts_with("server unsealed\nSealed:          false")
    );
    let works = billing.run_with_stdin(&["encrypt", "billing/records", "--base64"], b"x");
    assert!(works.status.success());
    let denied = billing.fails(&["status"], 1);
    assert!(denied.starts_with("error: permission denied:"), "{denied}");

    // The audit log of all this, checked by the running server.
    let check = admin.ok(&["audit", "check"]);
    assert!(check.starts_with("audit log intact: "), "{check}");
    let json = admin.json(&["audit", "check"]);
    assert_eq!(json["intact"], true);
    assert_eq!(json["first_record"], 1);
    billing.fails(&["audit", "check"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_exit_1_with_plain_words() {
    let (server, dir, admin, billing) = server_with_billing_key("billing/records").await;
    let shipping = Tresor::new(&server, SHIPPING, dir.path());

    let err = admin.fails(&["key", "show", "billing/nope"], 1);
    assert_eq!(
        err,
        format!("error: not found: no key with this id (key billing/nope, as {ADMIN})\n")
    );
    let err = admin.fails(&["key", "create", "billing/records", "--owner", BILLING], 1);
    assert!(err.starts_with("error: already exists:"), "{err}");
    let err = shipping.fails(&["key", "show", "billing/records"], 1);
    assert!(err.starts_with("error: permission denied:"), "{err}");
    let missing = shipping.fails(&["key", "show", "billing/nope"], 1);
    assert_eq!(
        err.replace("billing/records", "K"),
        missing.replace("billing/nope", "K"),
        "no existence oracle"
    );
    let err = billing.fails(&["key", "create", "billing/mine", "--owner", BILLING], 1);
    assert!(err.starts_with("error: permission denied:"), "{err}");
    let err = admin.fails(&["key", "create", "bad id", "--owner", BILLING], 1);
    assert!(
        err.starts_with("error: invalid argument: key_id may contain only"),
        "{err}"
    );
    admin.ok(&["key", "disable", "billing/records", "--yes"]);
    let out = billing.run_with_stdin(&["encrypt", "billing/records"], b"x");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: key is disabled; an admin can enable it")
            && err.contains("(key billing/records, as "),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = Tresor::new(&server, ADMIN, dir.path());
    admin.fails(&["key", "create", "x"], 2); // --owner missing
    admin.fails(&["key", "frobnicate"], 2);
    admin.fails(&["key", "set-min-version", "x", "not-a-number", "--yes"], 2);
    admin.fails(&["--output", "yaml", "status"], 2);
    let err = admin.clone().without("TRESOR_ADDR").fails(&["status"], 2);
    assert!(err.contains("TRESOR_ADDR"), "{err}");
    let err = admin.clone().without("TRESOR_KEY").fails(&["status"], 2);
    assert!(err.contains("--cert given without --key"), "{err}");
    let err = admin
        .clone()
        .with("TRESOR_CA", "/does/not/exist.pem")
        .fails(&["status"], 2);
    assert!(err.contains("/does/not/exist.pem"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_exit_3_with_a_hint() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = Tresor::new(&server, ADMIN, dir.path());

    // Wrong CA: trust a CA that did not issue the server certificate.
    let other = tresor::pki::CertificateAuthority::generate("other CA").expect("CA");
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, other.cert_pem()).expect("write");
    let err = admin
        .clone()
        .with("TRESOR_CA", other_ca.to_str().expect("utf8"))
        .fails(&["status"], 3);
    assert!(
        err.contains("hint: the server's certificate is not signed by the CA"),
        "{err}"
    );

    // Missing client certificate.
    let err = admin
        .clone()
        .without("TRESOR_CERT")
        .without("TRESOR_KEY")
        .fails(&["status"], 3);
    assert!(
        err.contains("hint: the server requires a client certificate"),
        "{err}"
    );

    // A client certificate from another CA.
    let foreign = other.issue_client(ADMIN).expect("cert");
    foreign
        .save(&dir.path().join("foreign"), true)
        .expect("save");
    let err = admin
        .clone()
        .with_cert(&dir.path().join("foreign"))
        .fails(&["status"], 3);
    assert!(
        err.contains("hint: the server refused the client certificate"),
        "{err}"
    );

    // An expired client certificate.
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(86_400);
    let expired = server
        .fixture
        .ca
        .issue_client_with_validity(
            ADMIN,
            tresor::pki::Validity::between(now - 30 * day, now - day),
        )
        .expect("cert");
    expired
        .save(&dir.path().join("expired"), true)
        .expect("save");
    let err = admin
        .clone()
        .with_cert(&dir.path().join("expired"))
        .fails(&["status"], 3);
    assert!(err.contains("expired"), "{err}");
    assert!(err.contains("hint: a certificate has expired"), "{err}");

    // Nothing listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let err = admin
        .clone()
        .with("TRESOR_ADDR", &format!("https://localhost:{closed}"))
        .fails(&["status"], 3);
    assert!(err.contains("hint: is the server running"), "{err}");
}

#[test]
fn completions_are_generated_for_common_shells() {
    for shell in ["bash", "zsh", "fish"] {
        let out = common::cli::tresor(&["completions", shell]);
        assert!(out.status.success());
        let script = text(&out.stdout);
        assert!(
            script.contains("tresor") && script.contains("schedule-deletion"),
            "{shell}"
        );
    }
}

/// Drives one interactive confirmation through a pseudo-terminal made by
/// util-linux `script`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_user_confirms_a_destructive_command() {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs util-linux `script` for the pseudo-terminal test"
        );
        eprintln!("skipping: util-linux `script` is not installed (needed for a pseudo-terminal)");
        return;
    }
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = Tresor::new(&server, ADMIN, dir.path());
    admin.ok(&["key", "create", "billing/records", "--owner", BILLING]);
    let bin = env!("CARGO_BIN_EXE_tresor");
    for (answer, expect_state) in [("no\n", "enabled"), ("yes\n", "disabled")] {
        let mut child = Command::new("script")
            .args([
                "-qec",
                &format!("{bin} key disable billing/records"),
                "/dev/null",
            ])
            .envs(admin.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn script");
        // Give the prompt time to appear, then answer like a person.
        std::thread::sleep(std::time::Duration::from_millis(500));
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(answer.as_bytes())
            .expect("answer");
        let out = child.wait_with_output().expect("wait");
        let transcript = text(&out.stdout);
        assert!(
            transcript.contains("Disable key billing/records"),
            "{transcript}"
        );
        assert!(
            transcript.contains("Type 'yes' to continue"),
            "{transcript}"
        );
        assert_eq!(
            admin.json(&["key", "show", "billing/records"])["state"],
            expect_state,
            "{transcript}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_tool_reports_throughput_and_latency() {
    let (_server, _dir, _admin, billing) = server_with_billing_key("billing/bench").await;
    let report = billing.json(&[
        "bench",
        "--key-id",
        "billing/bench",
        "--concurrency",
        "4",
        "--payload",
        "256",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
    ]);
    assert!(
        report["requests"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );
    assert_eq!(report["errors"], 0);
    assert_eq!(report["payload_bytes"], 256);
    let p50 = report["latency_us"]["p50"].as_u64().expect("p50");
    let max = report["latency_us"]["max"].as_u64().expect("max");
    assert!(p50 > 0 && p50 <= max, "{report}");
    let human = billing.ok(&[
        "bench",
        "--key-id",
        "billing/bench",
        "--duration",
        "300ms",
        "--warmup",
        "0s",
    ]);
    assert!(human.contains("req/s") && human.contains("p99"), "{human}");
}
