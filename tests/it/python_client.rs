//! The Python example client (`examples/python/client.py`, on the Python SDK
//! in `clients/python`) against a real server over mTLS: a client in another
//! language must be able to create, use and rotate a key.
//!
//! Needs `python3` with `grpcio`, `protobuf` and `cryptography`, the SDK's
//! dependencies (CI installs them); the example imports the SDK from
//! `clients/python/src` when it is not installed. Outside CI, without them,
//! the test prints why and skips.

use crate::common;

use std::path::Path;

use common::{ADMIN, BILLING, TestServer};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python/client.py");
const KEY_ID: &str = "example/python-client";

/// Whether python3 can import the SDK's dependencies; fails under CI when not.
fn python_grpc_available() -> bool {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import grpc, google.protobuf, cryptography"])
        .output();
    if probe.as_ref().is_ok_and(|o| o.status.success()) {
        return true;
    }
    let reason = "python3 with the grpcio, protobuf and cryptography packages is not installed \
                  (python3 -m pip install ./clients/python)";
    assert!(std::env::var_os("CI").is_none(), "{reason}");
    eprintln!("skipping the Python example client: {reason}");
    false
}

/// Saves a client certificate for `identity` in `dir`/`name`/.
fn issue(server: &TestServer, dir: &Path, name: &str, identity: &str) {
    server
        .fixture
        .ca
        .issue_client(identity)
        .expect("client certificate")
        .save(&dir.join(name), false)
        .expect("save client certificate");
}

/// What client.py printed and whether it exited 0.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Issues the CA file and the admin's and billing's certificates, then runs
/// client.py against `server` as them, creating `KEY_ID`.
async fn run_client(server: &TestServer) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |p: &str| dir.path().join(p).display().to_string();
    std::fs::write(dir.path().join("ca.pem"), server.fixture.ca.cert_pem()).expect("write CA");
    issue(server, dir.path(), "admin", ADMIN);
    issue(server, dir.path(), "billing", BILLING);
    let output = tokio::process::Command::new("python3")
        .arg(CLIENT)
        .args(["--addr", &format!("localhost:{}", server.addr.port())])
        .args(["--ca", &path("ca.pem")])
        .args(["--admin-cert", &path("admin/cert.pem")])
        .args(["--admin-key", &path("admin/key.pem")])
        .args(["--service-cert", &path("billing/cert.pem")])
        .args(["--service-key", &path("billing/key.pem")])
        .args(["--owner", BILLING, "--key-id", KEY_ID])
        .output()
        .await
        .expect("run python3");
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn python_client_creates_uses_and_rotates_a_key() {
    if !python_grpc_available() {
        return;
    }
    let server = TestServer::start().await;
    let Run {
        success,
        stdout,
        stderr,
    } = run_client(&server).await;
    assert!(success, "client.py failed:\n{stdout}\n{stderr}");
    for line in [
        format!("step 1/8: create key {KEY_ID} as the admin ... ok (version 1, owner {BILLING})"),
        "step 2/8: encrypt with a context as the owning service ... ok (key version 1,".into(),
        "step 3/8: decrypt with the same context ... ok (key version 1, plaintext matches)".into(),
        "step 4/8: decrypt with another context is refused ... ok (INVALID_ARGUMENT".into(),
        "step 5/8: encrypt as the admin is refused ... ok (PERMISSION_DENIED".into(),
        "step 6/8: rotate the key as the admin ... ok (primary version 2".into(),
        "step 7/8: encrypt again as the owning service ... ok (key version 2,".into(),
        "step 8/8: decrypt the version-1 ciphertext ... ok (key version 1, plaintext matches)"
            .into(),
        "all 8 steps passed".into(),
    ] {
        assert!(stdout.contains(&line), "missing {line:?} in:\n{stdout}");
    }
    assert!(
        !format!("{stdout}{stderr}").contains("card 4111"),
        "a plaintext was printed"
    );

    // What the Python client did is what the Rust admin client sees.
    let key = server.admin().await.key(KEY_ID).await.expect("get key");
    assert_eq!(key.owner, BILLING);
    assert_eq!(key.primary_version, 2);
    let versions: Vec<u32> = key.versions.iter().map(|v| v.version).collect();
    assert_eq!(versions, [1, 2]);
    server.stop().await;
}

#[tokio::test]
async fn python_client_exits_non_zero_when_a_step_fails() {
    if !python_grpc_available() {
        return;
    }
    let server = TestServer::start().await;
    // The key exists already, so step 1 gets ALREADY_EXISTS.
    server.admin().await.create_key(KEY_ID, BILLING).await;
    let Run {
        success,
        stdout,
        stderr,
    } = run_client(&server).await;
    assert!(!success, "client.py passed with a failing step:\n{stdout}");
    assert!(
        stdout.contains(&format!(
            "step 1/8: create key {KEY_ID} as the admin ... FAILED: ALREADY_EXISTS"
        )),
        "{stdout}"
    );
    assert!(
        !stdout.contains("step 2/8"),
        "went on after a failure:\n{stdout}"
    );
    assert!(stderr.contains("FAILED: create key"), "{stderr}");
    server.stop().await;
}
