//! Unseal after a seal needs more than one admin certificate when so
//! configured: a quorum of distinct approvers within a window, and an
//! optional out-of-band token. Real servers on ephemeral ports over mTLS,
//! the audit file read back, and the `tresor` binary end to end.

use crate::common;

use std::collections::BTreeSet;
use std::process::Output;
use std::time::Duration;

use common::cli::Tresor;
use common::{ADMIN, BILLING, Fixture, ServeProcess, TestServer, proto};
use tonic::Code;
use tresor::identity::Identity;
use tresor::service::{UnsealPolicy, UnsealTokenVerifier};

/// Unseal approvers that are not admins.
const ALICE: &str = "spiffe://test.tresor/alice";
const BOB: &str = "spiffe://test.tresor/bob";
const KEY: &str = "billing/records";

fn policy(quorum: u32, window: Duration, token: Option<&str>) -> UnsealPolicy {
    UnsealPolicy {
        quorum,
        approvers: Some(BTreeSet::from([
            Identity::parse(ALICE).expect("id"),
            Identity::parse(BOB).expect("id"),
        ])),
        window,
        token: token.map(UnsealTokenVerifier::of_token),
    }
}

async fn start(fixture: Fixture, unseal: UnsealPolicy) -> TestServer {
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    settings.service.unseal = unseal;
    TestServer::start_with_settings(fixture, settings).await
}

async fn unseal(client: &mut common::Clients, token: &str) -> Result<proto::SealStatus, Code> {
    client
        .admin
        .unseal(proto::UnsealRequest {
            unseal_token: token.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| status.code())
}

async fn seal(client: &mut common::Clients) {
    let status = client.seal().await;
    assert!(status.sealed);
}

/// The Unseal records of the audit log: (identity, status, detail).
fn unseal_records(fixture: &Fixture) -> Vec<(String, String, String)> {
    let text =
        std::fs::read_to_string(fixture.data_dir().join("audit/audit.jsonl")).expect("audit file");
    text.lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("json"))
        .filter(|r| r["operation"] == "Unseal" && r["kind"] == "request")
        .map(|r| {
            let field = |name: &str| r[name].as_str().unwrap_or_default().to_owned();
            (field("identity"), field("status"), field("detail"))
        })
        .collect()
}

#[tokio::test]
async fn a_quorum_of_two_needs_two_distinct_approvers() {
    let server = start(Fixture::new(), policy(2, Duration::from_secs(900), None)).await;
    let mut admin = server.admin().await;
    let mut billing = server.client(BILLING).await;
    let mut alice = server.client(ALICE).await;
    let mut bob = server.client(BOB).await;
    admin.create_key(KEY, BILLING).await;
    let sealed = billing.encrypt(KEY, b"before", &[]).await.expect("encrypt");
    seal(&mut admin).await;

    // The first approver: still sealed, progress 1/2.
    let first = unseal(&mut alice, "").await.expect("first approval");
    assert!(first.sealed, "one approval of two must not unseal");
    assert_eq!((first.unseal_approvals, first.unseal_quorum), (1, 2));
    assert_eq!(first.unseal_approved_by, [ALICE]);
    assert!((1..=900).contains(&first.unseal_window_remaining_seconds));
    assert_eq!(
        billing
            .encrypt(KEY, b"x", &[])
            .await
            .map_err(|s| s.code())
            .err(),
        Some(Code::Unavailable)
    );

    // The same approver again does not count twice.
    let again = unseal(&mut alice, "").await.expect("repeat approval");
    assert!(again.sealed);
    assert_eq!(again.unseal_approvals, 1);

    // An admin that is not an approver is refused (a stolen admin
    // certificate alone cannot unseal), and so is a service.
    assert_eq!(
        unseal(&mut admin, "").await.err(),
        Some(Code::PermissionDenied)
    );
    assert_eq!(
        unseal(&mut billing, "").await.err(),
        Some(Code::PermissionDenied)
    );
    assert_eq!(
        billing
            .admin
            .get_status(proto::StatusRequest {})
            .await
            .map_err(|s| s.code())
            .err(),
        Some(Code::PermissionDenied)
    );

    // The progress shows in the status, to admins and approvers.
    let status = admin.status().await;
    assert!(status.sealed);
    assert_eq!((status.unseal_approvals, status.unseal_quorum), (1, 2));
    assert_eq!(status.unseal_approved_by, [ALICE]);
    assert_eq!(bob.status().await.unseal_approvals, 1);

    // The second approver unseals.
    let done = unseal(&mut bob, "").await.expect("second approval");
    assert!(!done.sealed);
    assert_eq!(done.unseal_approvals, 0, "the round is closed");
    let opened = billing
        .decrypt(KEY, &sealed.ciphertext, &[])
        .await
        .expect("decrypts after the quorum");
    assert_eq!(opened.plaintext, b"before");
    assert!(!unseal(&mut alice, "").await.expect("idempotent").sealed);

    // Each call is audited with the progress.
    let records = unseal_records(&server.fixture);
    let expected: [(&str, &str, &str); 6] = [
        (ALICE, "OK", "approval 1 of 2; still sealed; round ends in "),
        (
            ALICE,
            "OK",
            "already approved in this round (not counted twice): 1 of 2",
        ),
        (ADMIN, "PERMISSION_DENIED", "not an unseal approver"),
        (BILLING, "PERMISSION_DENIED", "not an unseal approver"),
        (BOB, "OK", "approval 2 of 2: unsealed"),
        (ALICE, "OK", "not sealed: nothing to approve"),
    ];
    assert_eq!(records.len(), expected.len(), "{records:#?}");
    for ((identity, status, detail), (want_id, want_status, want_detail)) in
        records.iter().zip(expected)
    {
        assert_eq!((identity.as_str(), status.as_str()), (want_id, want_status));
        assert!(
            detail.starts_with(want_detail),
            "{detail:?} vs {want_detail:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn approvals_expire_with_the_window_and_with_a_new_seal() {
    let window = Duration::from_secs(1);
    let server = start(Fixture::new(), policy(2, window, None)).await;
    let mut admin = server.admin().await;
    let mut alice = server.client(ALICE).await;
    let mut bob = server.client(BOB).await;
    seal(&mut admin).await;

    assert_eq!(
        unseal(&mut alice, "")
            .await
            .expect("alice")
            .unseal_approvals,
        1
    );
    tokio::time::sleep(window + Duration::from_millis(300)).await;
    let status = admin.status().await;
    assert_eq!(
        (
            status.unseal_approvals,
            status.unseal_window_remaining_seconds
        ),
        (0, 0),
        "an expired round shows no approvals"
    );
    // Bob's approval opens a new round: Alice's expired one does not count.
    let late = unseal(&mut bob, "").await.expect("bob");
    assert!(late.sealed, "an expired approval must not count");
    assert_eq!(late.unseal_approved_by, [BOB]);

    // A Seal during a round discards it.
    seal(&mut admin).await;
    assert_eq!(admin.status().await.unseal_approvals, 0);
    assert!(unseal(&mut alice, "").await.expect("alice").sealed);
    assert!(!unseal(&mut bob, "").await.expect("bob").sealed);
    server.stop().await;
}

#[tokio::test]
async fn a_restart_comes_up_sealed_and_forgets_approvals() {
    let unseal_policy = policy(2, Duration::from_secs(900), None);
    let server = start(Fixture::new(), unseal_policy.clone()).await;
    let mut admin = server.admin().await;
    seal(&mut admin).await;
    let mut alice = server.client(ALICE).await;
    assert!(unseal(&mut alice, "").await.expect("alice").sealed);
    let fixture = server.stop().await;

    let server = start(fixture, unseal_policy).await;
    let mut admin = server.admin().await;
    let status = admin.status().await;
    assert!(status.sealed);
    assert_eq!(
        status.unseal_approvals, 0,
        "approvals do not survive a restart"
    );
    let mut bob = server.client(BOB).await;
    assert!(unseal(&mut bob, "").await.expect("bob").sealed);
    let mut alice = server.client(ALICE).await;
    assert!(!unseal(&mut alice, "").await.expect("alice").sealed);
    server.stop().await;
}

#[tokio::test]
async fn with_a_token_file_every_approval_needs_the_token() {
    const TOKEN: &str =
        "tresor-unseal-token-v1:5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f";
    let fixture = Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    // The default approvers (the admins), one approval, and the token.
    settings.service.unseal.token = Some(UnsealTokenVerifier::of_token(TOKEN));
    let server = TestServer::start_with_settings(fixture, settings).await;
    let mut admin = server.admin().await;
    seal(&mut admin).await;
    assert!(admin.status().await.unseal_token_required);

    assert_eq!(
        unseal(&mut admin, "").await.err(),
        Some(Code::PermissionDenied)
    );
    let wrong = TOKEN.replace("5f0c", "5f0d");
    assert_eq!(
        unseal(&mut admin, &wrong).await.err(),
        Some(Code::PermissionDenied)
    );
    assert!(admin.status().await.sealed);
    assert!(
        !unseal(&mut admin, TOKEN)
            .await
            .expect("with the token")
            .sealed
    );

    let records = unseal_records(&server.fixture);
    let details: Vec<&str> = records.iter().map(|(_, _, d)| d.as_str()).collect();
    assert_eq!(
        details,
        [
            "the unseal token is missing or wrong",
            "the unseal token is missing or wrong",
            "approval 1 of 1: unsealed"
        ]
    );
    let log = std::fs::read_to_string(server.fixture.data_dir().join("audit/audit.jsonl"))
        .expect("audit");
    assert!(!log.contains(&TOKEN[23..]) && !log.contains(&wrong[23..]));
    server.stop().await;
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_cli_makes_a_token_the_server_checks_and_unseal_sends_it() {
    let fixture = Fixture::new();
    let token = fixture.dir.path().join("offline/unseal.token");
    let verifier = fixture.dir.path().join("unseal.verifier");
    std::fs::create_dir_all(token.parent().expect("dir")).expect("mkdir");
    let made = common::cli::command(["unseal-token", "generate", "--out"])
        .arg(&token)
        .arg("--verifier-out")
        .arg(&verifier)
        .output()
        .expect("run tresor");
    assert!(made.status.success(), "{made:?}");
    let token_text = std::fs::read_to_string(&token).expect("token");
    assert!(
        !std::fs::read_to_string(&verifier)
            .expect("verifier")
            .contains(token_text.trim())
    );

    let mut flags = fixture.serve_flags();
    flags.extend(["--unseal-token-file".into(), verifier.display().to_string()]);
    let server = ServeProcess::start_with(&flags, &[]);
    let admin = Tresor::at(&fixture, server.addr, ADMIN, fixture.dir.path());
    let run = |args: &[&str]| admin.run(args);
    assert!(run(&["seal", "--yes"]).status.success());
    let refused = run(&["unseal"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let status = stdout(&run(&["status"]));
    assert!(status.contains("Sealed:          true"), "{status}");
    assert!(
        status.contains("Unseal:          1 approval + token"),
        "{status}"
    );
    let token_arg = token.display().to_string();
    let unsealed = run(&["unseal", "--token-file", &token_arg]);
    assert!(
        stdout(&unsealed).starts_with("server unsealed\nSealed:          false"),
        "{unsealed:?}"
    );
    assert!(
        !server
            .log_lines()
            .iter()
            .any(|l| l.contains(token_text.trim())),
        "the token must not reach the server log"
    );
    assert!(server.terminate().success());
}

#[tokio::test]
async fn a_seal_on_anomaly_is_undone_only_by_the_quorum() {
    let fixture = Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    settings.service.unseal = policy(2, Duration::from_secs(900), None);
    settings.service.guard.anomaly.denials = 3;
    settings.service.guard.seal_denial_identities = 1;
    settings
        .service
        .guard
        .seal_on
        .insert(tresor::anomaly::AlertKind::DenialSpike);
    let server = TestServer::start_with_settings(fixture, settings).await;
    let mut admin = server.admin().await;
    admin.create_key(KEY, BILLING).await;
    let mut shipping = server.client(common::SHIPPING).await;
    for _ in 0..4 {
        assert!(shipping.encrypt(KEY, b"x", &[]).await.is_err());
    }
    assert!(admin.status().await.sealed, "the denial spike seals");

    assert_eq!(
        unseal(&mut admin, "").await.err(),
        Some(Code::PermissionDenied)
    );
    let mut alice = server.client(ALICE).await;
    assert!(unseal(&mut alice, "").await.expect("alice").sealed);
    let mut bob = server.client(BOB).await;
    assert!(!unseal(&mut bob, "").await.expect("bob").sealed);
    server.stop().await;
}
