//! The `tresor` binary: `master-key generate`, `certs`, `serve` refusing bad
//! configuration before it binds, and `tresor dev` end to end.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::cli::{command, tresor};
use tresor::pki::CertifiedKey;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn master_key_generate_writes_32_private_bytes_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("master.key");
    let p = path.to_str().expect("utf8");
    let out = tresor(&["master-key", "generate", "--out", p]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&path).expect("read").len(), 32);
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    let before = std::fs::read(&path).expect("read");
    let again = tresor(&["master-key", "generate", "--out", p]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("master.key"), "{}", stderr(&again));
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "must not overwrite"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = tresor(&["serve", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    let out = tresor(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[cfg(unix)]
#[test]
fn serve_refuses_a_master_key_readable_by_others_and_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let fixture = common::Fixture::new();
    std::fs::set_permissions(
        fixture.master_key_file(),
        std::fs::Permissions::from_mode(0o640),
    )
    .expect("chmod");
    let flags = fixture.serve_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let out = tresor(&flags);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains("must not be accessible by group or others"),
        "{message}"
    );
    assert!(message.contains("chmod 600"), "{message}");
    assert!(
        !fixture.data_dir().exists(),
        "refused before touching the keystore"
    );
}

#[test]
fn serve_names_the_fix_for_a_missing_master_key() {
    let fixture = common::Fixture::new();
    std::fs::remove_file(fixture.master_key_file()).expect("remove");
    let flags = fixture.serve_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let out = tresor(&flags);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a configuration error is a usage error"
    );
    assert!(
        stderr(&out).contains("tresor master-key generate"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_refuses_a_wrong_master_key_for_an_existing_keystore() {
    let fixture = common::Fixture::new();
    let flags = fixture.serve_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    // First start initialises the keystore; stop it at once.
    let mut child = command(&flags)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr_pipe = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr_pipe).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.contains("listening"))));
    child.kill().expect("kill");
    child.wait().expect("wait");
    std::fs::remove_file(fixture.master_key_file()).expect("remove");
    tresor::master_key::FileMasterKey::generate(&fixture.master_key_file()).expect("new key");
    let out = tresor(&flags);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not unwrap"), "{}", stderr(&out));
}

#[test]
fn certs_commands_issue_a_working_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = |name: &str| dir.path().join(name).display().to_string();
    let ok = |out: Output| assert!(out.status.success(), "{}", stderr(&out));
    ok(tresor(&["certs", "ca", "--out", &d("ca")]));
    ok(tresor(&[
        "certs",
        "issue",
        "--ca",
        &d("ca"),
        "--identity",
        "spiffe://example.org/billing",
        "--out",
        &d("billing"),
    ]));
    ok(tresor(&[
        "certs",
        "server",
        "--ca",
        &d("ca"),
        "--dns",
        "localhost",
        "--ip",
        "127.0.0.1",
        "--out",
        &d("server"),
    ]));
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir.path().join("ca/ca.key")), 0o600);
        assert_eq!(mode(&dir.path().join("billing/key.pem")), 0o600);
    }
    let pem = std::fs::read_to_string(dir.path().join("billing/cert.pem")).expect("read");
    let der = x509_der(&pem);
    assert_eq!(
        tresor::identity::Identity::from_certificate_der(&der)
            .expect("identity")
            .as_str(),
        "spiffe://example.org/billing"
    );
    let json = tresor(&["--output", "json", "certs", "ca", "--out", &d("ca2")]);
    assert!(json.status.success(), "{}", stderr(&json));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(doc["files"][1], d("ca2/ca.key"));
    let json = tresor(&[
        "--output",
        "json",
        "master-key",
        "generate",
        "--out",
        &d("mk"),
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(doc["file"], d("mk"));
    let again = tresor(&["certs", "ca", "--out", &d("ca")]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    let missing = tresor(&["certs", "server", "--ca", &d("ca"), "--out", &d("s2")]);
    assert_eq!(missing.status.code(), Some(1));
}

fn x509_der(pem: &str) -> Vec<u8> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
    parsed.contents
}

/// Runs `tresor dev` on an ephemeral port and reads the address it prints.
fn start_dev(dir: &Path) -> (std::process::Child, u16) {
    let mut child = command([
        "dev",
        "--dir",
        dir.to_str().expect("utf8"),
        "--listen",
        "127.0.0.1:0",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn tresor dev");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        let done = line.contains("tresor.v1.Crypto/Encrypt");
        printed.push(line);
        if done {
            break;
        }
    }
    let text = printed.join("\n");
    for export in ["TRESOR_ADDR=", "TRESOR_CA=", "TRESOR_CERT=", "TRESOR_KEY="] {
        assert!(text.contains(&format!("export {export}")), "{text}");
    }
    let port = text
        .lines()
        .find_map(|l| l.strip_prefix("export TRESOR_ADDR=https://localhost:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in:\n{text}"));
    (child, port)
}

#[tokio::test]
async fn dev_serves_the_example_key_to_billing_and_reuses_its_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev_dir = dir.path().join("dev");
    let read = |rel: &str| std::fs::read_to_string(dev_dir.join(rel)).expect("read dev file");
    let mut ciphertext = Vec::new();
    for run in 0..2 {
        let (mut child, port) = start_dev(&dev_dir);
        let billing = CertifiedKey {
            cert_pem: read("billing/cert.pem"),
            key_pem: read("billing/key.pem").into(),
        };
        let addr = format!("127.0.0.1:{port}").parse().expect("addr");
        let mut clients = common::connect(addr, &read("ca/ca.pem"), Some(&billing))
            .await
            .expect("connect as billing");
        if run == 0 {
            ciphertext = clients
                .encrypt("billing/customer-records", b"hello", &[("tenant", "42")])
                .await
                .expect("encrypt")
                .ciphertext;
        }
        let opened = clients
            .decrypt("billing/customer-records", &ciphertext, &[("tenant", "42")])
            .await
            .expect("decrypt");
        assert_eq!(opened.plaintext, b"hello");
        child.kill().expect("kill");
        child.wait().expect("wait");
    }
}
