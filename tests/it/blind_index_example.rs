//! `examples/blind_index.rs` (issue 21) against a real server: encrypted
//! rows with a blind index in sled, a MAC key rotation, and every row
//! still found by email through MacAllVersions.

use crate::common;

use std::path::PathBuf;

use common::cli::{Tresor, text};
use common::proto::KeyPurpose;
use common::{BILLING, TestServer};

/// The example binary `cargo test` built beside this test binary.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target profile dir");
    let path = dir.join("examples").join("blind_index");
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples first; run `cargo build --example blind_index`",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blind_index_example_finds_every_row_after_a_rotation() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key("crm/records", BILLING).await;
    crate::key_purposes::create(&mut admin, "crm/email-index", BILLING, KeyPurpose::Mac, &[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let billing = Tresor::new(&server, BILLING, dir.path());
    let out = std::process::Command::new(example())
        .arg(dir.path().join("users-db"))
        .envs(billing.env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run the example");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("rotated crm/email-index: primary version 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "found all 40 rows by email through the blind index (20 written before the rotation)"
        ),
        "{stdout}"
    );
    assert_eq!(
        admin
            .key("crm/email-index")
            .await
            .expect("key")
            .primary_version,
        2
    );
}
