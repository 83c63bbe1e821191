//! The audit log end to end: the real server over mTLS writes a record for
//! every call, allowed or refused; `tresor audit verify` (the real binary)
//! passes an intact log and finds each kind of tampering at the right
//! record; a log that cannot be written refuses requests.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;

use common::{
    ADMIN, BILLING, Fixture, SHIPPING, TestServer, assert_code, audit_records as records,
    audit_verify as verify, proto,
};
use tonic::Code;

const KEY: &str = "billing/records";
const MARKER: &[u8] = b"PLAINTEXT-MARKER-7f3a";
const CONTEXT_SECRET: &str = "tenant-secret-4471";

fn audit_file(fixture: &Fixture) -> PathBuf {
    tresor::service::default_audit_file(&fixture.data_dir())
}

fn find<'a>(
    records: &'a [serde_json::Value],
    operation: &str,
    status: &str,
) -> &'a serde_json::Value {
    records
        .iter()
        .find(|r| r["operation"] == operation && r["status"] == status)
        .unwrap_or_else(|| panic!("no {operation} record with {status} in {records:#?}"))
}

#[tokio::test]
async fn allowed_and_refused_calls_are_recorded_without_secrets() {
    let (server, _admin, mut billing) = TestServer::with_billing_key(KEY).await;
    let mut request = tonic::Request::new(proto::EncryptRequest {
        key_id: KEY.into(),
        plaintext: MARKER.to_vec(),
        context: common::ctx(&[("tenant", CONTEXT_SECRET)]),
    });
    request
        .metadata_mut()
        .insert("x-request-id", "req-from-client-1".parse().expect("value"));
    let response = billing.crypto.encrypt(request).await.expect("encrypt");
    assert_eq!(
        response.metadata().get("x-request-id").expect("request id"),
        "req-from-client-1"
    );
    let ciphertext = response.into_inner().ciphertext;
    let mut shipping = server.client(SHIPPING).await;
    let denied = assert_code(
        shipping
            .decrypt(KEY, &ciphertext, &[("tenant", CONTEXT_SECRET)])
            .await,
        Code::PermissionDenied,
    );
    assert!(denied.metadata().get("x-request-id").is_some());
    assert_code(
        billing.encrypt("Not A Key!", b"x", &[]).await,
        Code::InvalidArgument,
    );
    let file = audit_file(&server.fixture);
    let fixture = server.stop().await;

    let all = records(&file);
    let encrypt = find(&all, "Encrypt", "OK");
    assert_eq!(encrypt["identity"], BILLING);
    assert_eq!(encrypt["key_id"], KEY);
    assert_eq!(encrypt["key_version"], 1);
    assert_eq!(encrypt["request_id"], "req-from-client-1");
    assert_eq!(encrypt["kind"], "request");
    assert!(
        encrypt["peer"]
            .as_str()
            .expect("peer")
            .starts_with("127.0.0.1:")
    );
    assert!(encrypt["latency_us"].as_u64().is_some());
    let digest = encrypt["context"]["tenant"]
        .as_str()
        .expect("context digest");
    assert!(digest.starts_with("hmac-sha256:"), "{digest}");
    let refused = find(&all, "Decrypt", "PERMISSION_DENIED");
    assert_eq!(refused["identity"], SHIPPING);
    assert_eq!(
        refused["context"]["tenant"], digest,
        "same value, same digest"
    );
    let invalid = find(&all, "Encrypt", "INVALID_ARGUMENT");
    assert_eq!(invalid["key_id"], "Not A Key!");
    let create = find(&all, "CreateKey", "OK");
    assert_eq!(create["identity"], ADMIN);
    assert!(
        all.iter().any(|r| r["kind"] == "checkpoint"),
        "final checkpoint"
    );

    let raw = std::fs::read(&file).expect("read");
    for secret in [MARKER, CONTEXT_SECRET.as_bytes()] {
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret),
            "a secret reached the audit log"
        );
    }
    let (code, out) = verify(&fixture, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit log intact"), "{out}");
}

/// A server where the admin created KEY for billing and billing made
/// `encrypts` encryptions; with the admin's and billing's clients.
async fn serving_with_history(encrypts: usize) -> (TestServer, common::Clients, common::Clients) {
    let (server, admin, mut billing) = TestServer::with_billing_key(KEY).await;
    for n in 0..encrypts {
        billing
            .encrypt(KEY, format!("m{n}").as_bytes(), &[])
            .await
            .expect("encrypt");
    }
    (server, admin, billing)
}

/// Serves, makes a few calls, stops (final checkpoint): an audit log of
/// about a dozen records to tamper with.
async fn audited_history() -> Fixture {
    let (server, _, _) = serving_with_history(6).await;
    server.stop().await
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").expect("write");
}

#[tokio::test]
async fn audit_verify_finds_every_kind_of_tampering() {
    let fixture = audited_history().await;
    let file = audit_file(&fixture);
    let original = lines(&file);
    assert!(original.len() >= 10, "{original:#?}");
    let (code, out) = verify(&fixture, &[]);
    assert_eq!(code, 0, "{out}");

    // Line i holds record i + 1.
    let cases: Vec<(&str, Vec<String>, u64)> = vec![
        (
            "edited byte",
            {
                let mut l = original.clone();
                l[5] = l[5].replacen("Encrypt", "Encrypu", 1);
                l
            },
            6,
        ),
        (
            "removed line",
            {
                let mut l = original.clone();
                l.remove(4);
                l
            },
            5,
        ),
        (
            "swapped lines",
            {
                let mut l = original.clone();
                l.swap(6, 7);
                l
            },
            7,
        ),
        (
            "inserted forged line",
            {
                let mut l = original.clone();
                let forged = l[3].replacen("\"operation\":\"", "\"operation\":\"Forged", 1);
                assert_ne!(forged, l[3]);
                l.insert(3, forged);
                l
            },
            4,
        ),
        (
            "truncated tail",
            original[..original.len() - 3].to_vec(),
            original.len() as u64 - 2,
        ),
    ];
    for (what, edited, record) in cases {
        write_lines(&file, &edited);
        let (code, out) = verify(&fixture, &[]);
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains("NOT intact"), "{what}: {out}");
        assert!(
            out.contains(&format!(": record {record}: ")),
            "{what}: expected record {record}: {out}"
        );
    }
    write_lines(&file, &original);
    let (code, out) = verify(&fixture, std::slice::from_ref(&file));
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn a_record_that_cannot_be_written_refuses_the_request() {
    let (server, disk_full) = TestServer::start_with_failing_audit().await;
    let (mut admin, mut billing) = server.billing_key(KEY).await;
    billing.encrypt(KEY, b"before", &[]).await.expect("encrypt");

    disk_full.store(true, Ordering::SeqCst);
    let refused = assert_code(
        billing.encrypt(KEY, b"during", &[]).await,
        Code::Unavailable,
    );
    assert!(refused.message().contains("audit"), "{refused:?}");
    assert_code(admin.key(KEY).await, Code::Unavailable);

    disk_full.store(false, Ordering::SeqCst);
    billing
        .encrypt(KEY, b"after", &[])
        .await
        .expect("encrypt again");
    let fixture = server.stop().await;
    let (code, out) = verify(&fixture, &[]);
    assert_eq!(code, 0, "{out}");
}

/// The security review's finding: control-plane changes were applied
/// before their audit record, so a failed write left a change that no
/// record shows. Now an intent record comes first, and a call whose intent
/// cannot be written changes nothing.
#[tokio::test]
async fn a_control_plane_change_is_never_made_without_a_record() {
    let (server, disk_full) = TestServer::start_with_failing_audit().await;
    let mut admin = server.admin().await;
    admin.create_key(KEY, BILLING).await;

    disk_full.store(true, Ordering::SeqCst);
    let unrecorded = admin
        .admin
        .create_key(proto::CreateKeyRequest {
            key_id: "unrecorded".into(),
            owner: BILLING.into(),
            ..Default::default()
        })
        .await;
    assert_code(unrecorded, Code::Unavailable);
    assert_code(admin.rotate(KEY).await, Code::Unavailable);
    disk_full.store(false, Ordering::SeqCst);
    assert_code(admin.key("unrecorded").await, Code::NotFound);
    assert_eq!(admin.key(KEY).await.expect("key").primary_version, 1);

    admin.rotate(KEY).await.expect("rotate");
    let file = audit_file(&server.fixture);
    let fixture = server.stop().await;
    let all = records(&file);
    let intent = all
        .iter()
        .position(|r| r["kind"] == "intent" && r["operation"] == "RotateKey")
        .expect("an intent record");
    let outcome = all
        .iter()
        .position(|r| {
            r["kind"] == "request" && r["operation"] == "RotateKey" && r["status"] == "OK"
        })
        .expect("the outcome record");
    assert!(intent < outcome, "the intent comes first");
    assert_eq!(all[intent]["request_id"], all[outcome]["request_id"]);
    assert_eq!(all[intent]["key_id"], KEY);
    let (code, out) = verify(&fixture, &[]);
    assert_eq!(code, 0, "{out}");
}

/// Every record that could not be written is counted in
/// `tresor_audit_write_failures_total`, the metric the
/// TresorAuditWritesFailing alert watches.
#[tokio::test]
async fn failed_audit_writes_are_counted_in_a_metric() {
    // A free port for the metrics listener (bound, read, released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let (server, disk_full, metrics) =
        TestServer::start_with_failing_audit_and_metrics(Some(port)).await;
    let metrics = metrics.expect("metrics address");
    let (_admin, mut billing) = server.billing_key(KEY).await;
    billing.encrypt(KEY, b"x", &[]).await.expect("encrypt");
    let before = common::metrics::scrape(metrics).await;
    assert_eq!(
        common::metrics::metric(&before, "tresor_audit_write_failures_total"),
        0.0
    );
    disk_full.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        assert_code(billing.encrypt(KEY, b"x", &[]).await, Code::Unavailable);
    }
    disk_full.store(false, Ordering::SeqCst);
    billing
        .encrypt(KEY, b"x", &[])
        .await
        .expect("encrypt again");
    let after = common::metrics::scrape(metrics).await;
    assert_eq!(
        common::metrics::metric(&after, "tresor_audit_write_failures_total"),
        3.0
    );
    server.stop().await;
}

#[tokio::test]
async fn a_server_started_sealed_still_records_calls() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.seal().await;
    let fixture = server.stop().await;
    let server = TestServer::start_with(fixture, tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES).await;
    let mut billing = server.client(BILLING).await;
    assert_code(billing.encrypt(KEY, b"x", &[]).await, Code::Unavailable);
    let mut admin = server.admin().await;
    admin.unseal().await;
    let file = audit_file(&server.fixture);
    let fixture = server.stop().await;
    let all = records(&file);
    find(&all, "Encrypt", "UNAVAILABLE");
    find(&all, "Unseal", "OK");
    find(&all, "Seal", "OK");
    let (code, out) = verify(&fixture, &[]);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seal_on_signal_is_audited() {
    let fixture = Fixture::new();
    let server = common::ServeProcess::start(&fixture);
    let mut admin = fixture.client_at(server.addr, ADMIN).await;
    admin.create_key(KEY, BILLING).await;
    let pid = server.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-USR1", &pid])
        .status()
        .expect("kill -USR1");
    assert!(sent.success());
    let mut sealed = false;
    for _ in 0..100 {
        let status = admin.status().await;
        if status.sealed {
            sealed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(sealed, "SIGUSR1 did not seal the server");
    let mut billing = fixture.client_at(server.addr, BILLING).await;
    assert_code(billing.encrypt(KEY, b"x", &[]).await, Code::Unavailable);
    // Waiting for the process blocks this thread; the clients' connections
    // close on the runtime's other worker.
    assert!(server.terminate().success());
    let all = records(&audit_file(&fixture));
    let event = all
        .iter()
        .find(|r| r["operation"] == "sealed")
        .expect("seal event recorded");
    assert_eq!(event["kind"], "event");
    assert!(
        event["detail"]
            .as_str()
            .expect("detail")
            .contains("SIGUSR1")
    );
    find(&all, "Encrypt", "UNAVAILABLE");
    let (code, out) = verify(&fixture, &[]);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn the_running_server_checks_its_own_log_and_finds_an_edit() {
    let (server, mut admin, mut billing) = serving_with_history(5).await;
    let report = admin
        .admin
        .verify_audit_log(proto::VerifyAuditLogRequest {})
        .await
        .expect("check")
        .into_inner();
    assert!(report.intact, "{report:?}");
    assert_eq!(report.first_record, 1);
    assert!(report.records >= 9, "{report:?}");
    assert_eq!(report.records, report.last_record);
    assert_code(
        billing
            .admin
            .verify_audit_log(proto::VerifyAuditLogRequest {})
            .await,
        Code::PermissionDenied,
    );

    // Edit one earlier record in place (same length) while serving.
    let file = audit_file(&server.fixture);
    let mut lines = lines(&file);
    let target = lines
        .iter()
        .position(|l| l.contains("\"operation\":\"Encrypt\""))
        .expect("an Encrypt record");
    lines[target] = lines[target].replacen("\"OK\"", "\"NO\"", 1);
    write_lines(&file, &lines);
    let report = admin
        .admin
        .verify_audit_log(proto::VerifyAuditLogRequest {})
        .await
        .expect("check")
        .into_inner();
    assert!(!report.intact);
    assert!(
        report
            .problem
            .contains(&format!(": record {}: ", target + 1)),
        "{}",
        report.problem
    );
}

/// `tresor serve` (the real binary) on the fixture, with `extra` flags,
/// until it exits by itself: (exit code, stderr). One still serving after
/// 30 s is killed: (-1, "still serving").
fn serve_until_exit(fixture: &Fixture, extra: &[&str]) -> (i32, String) {
    let mut flags = fixture.serve_flags();
    flags.extend(extra.iter().map(|flag| (*flag).to_owned()));
    let stderr_path = fixture.data_dir().with_file_name("serve-stderr.log");
    let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
    let mut child = common::cli::command(&flags)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("run tresor serve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code().unwrap_or(-1);
        }
        if std::time::Instant::now() > deadline {
            child.kill().expect("kill");
            child.wait().expect("reap");
            return (-1, "still serving after 30 s".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    (
        code,
        std::fs::read_to_string(&stderr_path).expect("read stderr"),
    )
}

/// Issue 18, item 3: a log cut short, or deleted, while the server was
/// stopped was continued at the next start and went unnoticed (the next
/// checkpoint overwrote the keystore's). Now the server refuses to start;
/// with `--accept-audit-gap` it starts, a gap record notes the loss, and
/// `tresor audit verify` reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_cut_short_or_deleted_while_stopped_stops_the_next_start() {
    let fixture = audited_history().await;
    let file = audit_file(&fixture);
    let original = lines(&file);
    let kept = original.len() - 4;

    for (what, damage) in [
        ("truncated", Some(original[..kept].to_vec())),
        ("deleted", None),
    ] {
        match &damage {
            Some(cut) => write_lines(&file, cut),
            None => std::fs::remove_file(&file).expect("remove"),
        }
        let (code, stderr) = serve_until_exit(&fixture, &[]);
        assert_ne!(code, 0, "{what}: started anyway\n{stderr}");
        assert!(
            stderr.contains("audit log cannot be continued")
                && stderr.contains("--accept-audit-gap"),
            "{what}: {stderr}"
        );
        let left = if damage.is_some() { kept } else { 0 };
        assert_eq!(
            std::fs::read_to_string(&file).map_or(0, |text| text.lines().count()),
            left,
            "{what}: the refused start wrote to the log"
        );
        write_lines(&file, &original);
    }

    write_lines(&file, &original[..kept]);
    let mut flags = fixture.serve_flags();
    flags.push("--accept-audit-gap".into());
    let server = common::ServeProcess::start_with(&flags, &[]);
    let mut billing = fixture.client_at(server.addr, BILLING).await;
    billing.encrypt(KEY, b"after", &[]).await.expect("encrypt");
    assert!(server.terminate().success());

    let all = records(&file);
    let gap = all
        .iter()
        .find(|r| r["kind"] == "gap")
        .expect("a gap record");
    assert_eq!(gap["operation"], "audit_gap");
    assert_eq!(gap["seq"], original.len() as u64 + 1);
    assert!(
        gap["detail"]
            .as_str()
            .expect("detail")
            .contains(&format!("ends at record {kept}")),
        "{gap}"
    );
    let (code, out) = verify(&fixture, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "ACCEPTED GAP: records {}–{} are missing",
            kept + 1,
            original.len()
        )),
        "{out}"
    );
    // The gap is behind the keystore's checkpoint now: a plain start works.
    let server = common::ServeProcess::start(&fixture);
    assert!(server.terminate().success());
}

/// Issue 18, item 3: the periodic and on-demand checkpoints overwrote the
/// keystore's unconditionally. Now it only moves forward: a log rolled back
/// to an earlier state (an old copy of the files) is refused at start.
#[tokio::test]
async fn a_log_rolled_back_to_an_older_copy_is_refused() {
    let (server, _, mut billing) = serving_with_history(2).await;
    let file = audit_file(&server.fixture);
    let old_copy = std::fs::read(&file).expect("read");
    billing.encrypt(KEY, b"later", &[]).await.expect("encrypt");
    let fixture = server.stop().await;
    std::fs::write(&file, &old_copy).expect("roll back");
    let (code, stderr) = serve_until_exit(&fixture, &[]);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("audit log cannot be continued"), "{stderr}");
}

/// Issue 18, item 3: `tresor audit verify` only knew the sled keystore's
/// checkpoint. With `--store` it checks each replica's log against that
/// replica's checkpoint in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_verify_checks_each_replica_log_against_postgres() {
    let Some(pg) = common::postgres::Postgres::start() else {
        return;
    };
    let url = pg.fresh_database().await;
    let fixture = Fixture::new();
    let (a, b) = fixture.two_replicas(&url).await;
    let mut admin = fixture.client_at(a.addr, ADMIN).await;
    admin.create_key(KEY, BILLING).await;
    let mut billing = fixture.client_at(b.addr, BILLING).await;
    billing.encrypt(KEY, b"on b", &[]).await.expect("encrypt");
    a.stop().await;
    b.stop().await;

    let log_of = |replica: &str| {
        fixture
            .postgres_settings(&url, replica)
            .service
            .audit
            .expect("audit")
            .options
            .path
    };
    let verify_replica = |replica: &str| {
        let out = common::cli::command([
            "audit",
            "verify",
            "--store",
            &url,
            "--replica-name",
            replica,
        ])
        .arg("--audit-file")
        .arg(log_of(replica))
        .arg("--master-key-file")
        .arg(fixture.master_key_file())
        .output()
        .expect("run tresor");
        common::cli::code_and_text(&out)
    };
    for replica in ["a", "b"] {
        let (code, out) = verify_replica(replica);
        assert_eq!(code, 0, "{replica}: {out}");
        assert!(out.contains("checkpoint at record"), "{replica}: {out}");
        assert!(out.contains("matches"), "{replica}: {out}");
    }
    let cut = lines(&log_of("b"));
    write_lines(&log_of("b"), &cut[..cut.len() - 2]);
    let (code, out) = verify_replica("b");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cut short"), "{out}");
    let (code, out) = verify_replica("a");
    assert_eq!(code, 0, "a is untouched: {out}");
}

/// A context of `pairs` tiny pairs (`k0`..: empty values).
fn tiny_pairs(pairs: usize) -> std::collections::HashMap<String, String> {
    (0..pairs)
        .map(|n| (format!("k{n}"), String::new()))
        .collect()
}

/// Issue 18, item 2: the audit subject of a call (every context value
/// HMAC'd) was built before admission and validation, so a request of many
/// tiny context pairs cost one HMAC per pair and wrote a record of tens of
/// megabytes, even when refused; the fail-closed log then took the whole
/// service down once the disk filled. Now the context is checked first:
/// over the limits, the call is refused and recorded with one digest.
#[tokio::test]
async fn an_oversized_context_is_refused_first_and_recorded_small() {
    const PAIRS: usize = 20_000;
    const BURST: usize = 8;
    /// Bytes a refused oversized call may add to the log.
    const PER_REQUEST: u64 = 2048;
    let (server, _admin, mut billing) = TestServer::with_billing_key(KEY).await;
    let mut shipping = server.client(SHIPPING).await;
    let file = audit_file(&server.fixture);
    let huge = tiny_pairs(PAIRS);

    // Refused as INVALID_ARGUMENT before the permission check: a caller
    // without access to the key gets the same answer.
    let before = std::fs::metadata(&file).expect("audit file").len();
    for n in 0..BURST {
        let client = if n % 2 == 0 {
            &mut billing
        } else {
            &mut shipping
        };
        let refused = assert_code(
            client
                .crypto
                .encrypt(proto::EncryptRequest {
                    key_id: KEY.into(),
                    plaintext: b"x".to_vec(),
                    context: huge.clone(),
                })
                .await,
            Code::InvalidArgument,
        );
        assert!(refused.message().contains("context"), "{refused:?}");
        assert!(refused.message().len() < 200, "{refused:?}");
    }
    let grown = std::fs::metadata(&file).expect("audit file").len() - before;
    assert!(
        grown <= PER_REQUEST * BURST as u64,
        "{BURST} refused calls grew the log by {grown} bytes"
    );

    // The limits: 64 pairs and 16 KiB pass, one more of either does not.
    billing
        .crypto
        .encrypt(proto::EncryptRequest {
            key_id: KEY.into(),
            plaintext: b"x".to_vec(),
            context: tiny_pairs(64),
        })
        .await
        .expect("64 pairs");
    let limit = tresor::service::MAX_CONTEXT_BYTES;
    for (context, allowed) in [
        (tiny_pairs(65), false),
        (common::ctx(&[("big", &"v".repeat(limit - 3))]), true),
        (common::ctx(&[("big", &"v".repeat(limit - 2))]), false),
    ] {
        let result = billing
            .crypto
            .decrypt(proto::DecryptRequest {
                key_id: KEY.into(),
                ciphertext: b"not a ciphertext".to_vec(),
                context,
            })
            .await;
        // Within the limits, the (bad) ciphertext is what is refused.
        let refused = assert_code(result, Code::InvalidArgument);
        assert_eq!(
            refused.message().contains("context is too large"),
            !allowed,
            "{refused:?}"
        );
    }
    let fixture = server.stop().await;

    let raw = std::fs::read_to_string(&file).expect("read");
    assert!(
        raw.lines()
            .all(|line| line.len() <= tresor::audit::record::MAX_LINE_BYTES),
        "a line over the cap"
    );
    let all = records(&file);
    let oversized: Vec<_> = all
        .iter()
        .filter(|r| r["operation"] == "Encrypt" && r["status"] == "INVALID_ARGUMENT")
        .collect();
    assert_eq!(oversized.len(), BURST);
    let digest = &oversized[0]["context_oversized"]["digest"];
    for record in &oversized {
        assert_eq!(record["context_oversized"]["pairs"], PAIRS as u64);
        assert!(record.get("context").is_none(), "{record}");
        assert_eq!(
            &record["context_oversized"]["digest"], digest,
            "same context"
        );
    }
    assert!(
        digest.as_str().expect("digest").starts_with("hmac-sha256:"),
        "{digest}"
    );
    assert_eq!(
        oversized
            .iter()
            .filter(|r| r["identity"] == SHIPPING)
            .count(),
        BURST / 2
    );
    let (code, out) = verify(&fixture, &[]);
    assert_eq!(code, 0, "{out}");
}

/// Issue 18, item 2, in a batch: an item whose context is over the limits
/// is refused on its own and recorded with one digest.
#[tokio::test]
async fn a_batch_item_with_an_oversized_context_is_refused_and_recorded_small() {
    let (server, _admin, mut billing) = TestServer::with_billing_key(KEY).await;
    let item = |context| proto::EncryptRequest {
        key_id: KEY.into(),
        plaintext: b"x".to_vec(),
        context,
    };
    let results = billing
        .crypto
        .encrypt_batch(proto::EncryptBatchRequest {
            items: vec![
                item(common::ctx(&[("tenant", "7")])),
                item(tiny_pairs(5_000)),
            ],
        })
        .await
        .expect("batch")
        .into_inner()
        .results;
    use proto::encrypt_item_result::Result as Item;
    assert!(matches!(results[0].result, Some(Item::Encrypted(_))));
    let Some(Item::Error(error)) = &results[1].result else {
        panic!("the oversized item was not refused: {:?}", results[1]);
    };
    assert_eq!(error.code, Code::InvalidArgument as i32, "{error:?}");
    let file = audit_file(&server.fixture);
    let _fixture = server.stop().await;
    let all = records(&file);
    let batch = find(&all, "EncryptBatch", "OK");
    let items = batch["results"].as_array().expect("results");
    assert!(items[0]["context"]["tenant"].is_string());
    assert_eq!(items[1]["context_oversized"]["pairs"], 5_000);
    assert!(items[1].get("context").is_none());
    assert_eq!(items[1]["status"], "INVALID_ARGUMENT");
}

/// A key whose deletion window ended is not destroyed while its
/// `key_destroyed` record cannot be written: it stays pending (unusable)
/// until a pass can record the destruction first.
#[tokio::test]
async fn a_key_is_not_destroyed_without_its_record() {
    let fixture = common::Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    let clock = common::manual_lifecycle(&mut settings);
    let disk_full = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(audit) = &mut settings.service.audit {
        audit.options.fail_writes = Some(disk_full.clone());
    }
    let server = TestServer::start_with_settings(fixture, settings).await;
    let mut admin = server.admin().await;
    admin.create_key(KEY, BILLING).await;
    admin
        .admin
        .schedule_key_deletion(proto::ScheduleKeyDeletionRequest {
            key_id: KEY.into(),
            pending_days: 7,
        })
        .await
        .expect("schedule");

    disk_full.store(true, Ordering::SeqCst);
    clock.advance(7 * 86_400 + 1);
    // Several lifecycle passes (every 100 ms) run with the log failing. A
    // pass that destroyed the key then would leave no record ever: the
    // key would be gone and the count below 0.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    disk_full.store(false, Ordering::SeqCst);

    // GetKey says NOT_FOUND as soon as the window ends; the key count
    // drops when the key is really gone.
    common::eventually("the destruction, once recorded", || {
        let mut admin = admin.clone();
        async move {
            let status = admin.admin.get_status(proto::StatusRequest {}).await.ok()?;
            (status.into_inner().key_count == 0).then_some(())
        }
    })
    .await;
    let file = audit_file(&server.fixture);
    let _fixture = server.stop().await;
    let destroyed = records(&file)
        .into_iter()
        .filter(|r| r["operation"] == "key_destroyed" && r["key_id"] == KEY)
        .count();
    assert_eq!(destroyed, 1);
}

/// `--audit-stdout`: every record of the file also reaches stdout, the same
/// lines, and nothing secret is on stdout either (issue 26).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_stdout_copies_every_record_of_the_file() {
    let fixture = Fixture::new();
    let mut flags = fixture.serve_flags();
    flags.push("--audit-stdout".into());
    let copy_path = fixture.dir.path().join("stdout.jsonl");
    let copy = std::fs::File::create(&copy_path).expect("stdout file");
    let server = common::ServeProcess::start_with_stdout(&flags, &[], copy.into());
    let mut admin = fixture.client_at(server.addr, ADMIN).await;
    admin.create_key(KEY, BILLING).await;
    let mut billing = fixture.client_at(server.addr, BILLING).await;
    billing
        .encrypt(KEY, MARKER, &[("tenant", CONTEXT_SECRET)])
        .await
        .expect("encrypt");
    let mut shipping = fixture.client_at(server.addr, SHIPPING).await;
    assert_code(
        shipping.encrypt(KEY, MARKER, &[]).await,
        Code::PermissionDenied,
    );
    assert!(server.terminate().success());

    let file = std::fs::read_to_string(audit_file(&fixture)).expect("audit file");
    let stdout = std::fs::read_to_string(&copy_path).expect("stdout copy");
    assert_eq!(stdout, file, "the copy holds the file's lines, in order");
    assert!(
        stdout
            .lines()
            .any(|line| line.contains("\"operation\":\"Encrypt\""))
    );
    let marker = String::from_utf8_lossy(MARKER);
    assert!(!stdout.contains(marker.as_ref()) && !stdout.contains(CONTEXT_SECRET));
    let (code, out) = verify(&fixture, &[]);
    assert_eq!(code, 0, "the file is still the verified record: {out}");
}
