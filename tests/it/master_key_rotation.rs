//! Master-key rotation with local key files: offline (`tresor master-key
//! rotate --data-dir`), online (the RotateMasterKey RPC), and crash safety
//! at every step (the debug-build crash hook `TRESOR_CRASH_AT`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{BILLING, Fixture, TestServer, assert_code, copy_dir};
use tresor::master_key::{FileMasterKey, MasterKeySpec, RotationTargets};
use tresor::server::Server;

const KEY: &str = "billing/records";

/// Creates a keystore with one key and returns it stopped, with a
/// ciphertext that must keep decrypting.
async fn keystore_with_data() -> (Fixture, Vec<u8>) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key(KEY, BILLING).await;
    admin.rotate(KEY).await.expect("rotate");
    let mut billing = server.client(BILLING).await;
    let sealed = billing
        .encrypt(KEY, b"survives rotation", &[("t", "1")])
        .await
        .expect("encrypt")
        .ciphertext;
    drop((admin, billing));
    (server.stop().await, sealed)
}

fn new_master(fixture: &Fixture, name: &str) -> PathBuf {
    let path = fixture.dir.path().join(name);
    FileMasterKey::generate(&path).expect("new master key");
    path
}

/// `tresor master-key rotate` offline, crashing at `crash_at` if given
/// (and never because the test's environment says so).
fn rotate_offline(data_dir: &Path, from: &Path, to: &Path, crash_at: Option<&str>) -> Output {
    let mut command = common::cli::command([
        "master-key",
        "rotate",
        "--data-dir",
        data_dir.to_str().expect("utf8"),
        "--from-master-key-file",
        from.to_str().expect("utf8"),
        "--to-master-key-file",
        to.to_str().expect("utf8"),
    ]);
    match crash_at {
        Some(point) => command.env("TRESOR_CRASH_AT", point),
        None => command.env_remove("TRESOR_CRASH_AT"),
    };
    common::cli::run(&mut command)
}

/// Starts the server on `data_dir` with `master`, checks the ciphertext
/// decrypts, stops it. Returns the start-up error, if any.
async fn opens_and_decrypts(
    fixture: &Fixture,
    data_dir: &Path,
    master: &Path,
    ciphertext: &[u8],
) -> Result<(), String> {
    let mut settings = fixture.settings_with(1 << 20, MasterKeySpec::File(master.to_owned()));
    settings.store = tresor::config::StoreSpec::Sled(data_dir.to_owned());
    let server = Server::prepare(settings).await.map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.serve(listener, async move {
        let _ = rx.await;
    }));
    let cert = fixture.ca.issue_client(BILLING).expect("cert");
    let mut billing = common::connect(addr, &fixture.ca.cert_pem(), Some(&cert))
        .await
        .expect("connect");
    let opened = billing
        .decrypt(KEY, ciphertext, &[("t", "1")])
        .await
        .expect("decrypt after rotation");
    assert_eq!(opened.plaintext, b"survives rotation");
    drop(billing);
    let _ = tx.send(());
    handle.await.expect("join").expect("serve");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_rotation_moves_the_keystore_to_the_new_master_key() {
    let (fixture, ciphertext) = keystore_with_data().await;
    let old = fixture.master_key_file();
    let new = new_master(&fixture, "new.key");
    let out = rotate_offline(&fixture.data_dir(), &old, &new, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("now wrapped by file:"));
    opens_and_decrypts(&fixture, &fixture.data_dir(), &new, &ciphertext)
        .await
        .expect("new master key opens the keystore");
    let refused = opens_and_decrypts(&fixture, &fixture.data_dir(), &old, &ciphertext).await;
    let message = refused.expect_err("the old master key no longer opens it");
    assert!(message.contains("does not unwrap"), "{message}");
    assert!(
        message.contains("new.key"),
        "names the master key in use: {message}"
    );

    // And back again.
    let out = rotate_offline(&fixture.data_dir(), &new, &old, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    opens_and_decrypts(&fixture, &fixture.data_dir(), &old, &ciphertext)
        .await
        .expect("old master key opens it again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_rotation_refuses_the_wrong_current_key_and_changes_nothing() {
    let (fixture, ciphertext) = keystore_with_data().await;
    let stranger = new_master(&fixture, "stranger.key");
    let new = new_master(&fixture, "new.key");
    let out = rotate_offline(&fixture.data_dir(), &stranger, &new, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not unwrap"));
    opens_and_decrypts(
        &fixture,
        &fixture.data_dir(),
        &fixture.master_key_file(),
        &ciphertext,
    )
    .await
    .expect("untouched: the original master key still opens it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_leaves_a_keystore_that_opens_with_the_old_or_the_new_key() {
    let (fixture, ciphertext) = keystore_with_data().await;
    let old = fixture.master_key_file();
    let new = new_master(&fixture, "new.key");
    let pristine = fixture.dir.path().join("pristine");
    copy_dir(&fixture.data_dir(), &pristine);

    for point in [
        "master-key-rotate:after-pending",
        "master-key-rotate:after-promote",
    ] {
        let crashed = fixture
            .dir
            .path()
            .join(format!("crashed-{}", point.replace(':', "-")));
        copy_dir(&pristine, &crashed);
        let out = rotate_offline(&crashed, &old, &new, Some(point));
        assert!(!out.status.success(), "the crash hook must fire at {point}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("aborting now"));

        // Each master key is tried on its own copy of the crashed keystore,
        // because opening finishes or discards the interrupted rotation.
        let with_old = fixture
            .dir
            .path()
            .join(format!("old-{}", point.replace(':', "-")));
        let with_new = fixture
            .dir
            .path()
            .join(format!("new-{}", point.replace(':', "-")));
        copy_dir(&crashed, &with_old);
        copy_dir(&crashed, &with_new);
        let old_result = opens_and_decrypts(&fixture, &with_old, &old, &ciphertext).await;
        let new_result = opens_and_decrypts(&fixture, &with_new, &new, &ciphertext).await;
        assert!(
            old_result.is_ok() || new_result.is_ok(),
            "{point}: neither key opens: {old_result:?} {new_result:?}"
        );
        match point {
            // Pending written, not promoted: both keys open it.
            "master-key-rotate:after-pending" => {
                assert!(old_result.is_ok(), "{point}: {old_result:?}");
                assert!(new_result.is_ok(), "{point}: {new_result:?}");
                // Opening with the new key completed the rotation.
                let again = opens_and_decrypts(&fixture, &with_new, &old, &ciphertext).await;
                assert!(again.is_err(), "rotation was completed by the new key");
                // Opening with the old key discarded it; the new key is out.
                let again = opens_and_decrypts(&fixture, &with_old, &new, &ciphertext).await;
                assert!(again.is_err(), "rotation was discarded by the old key");
            }
            // Promoted: the rotation is complete.
            _ => {
                assert!(new_result.is_ok(), "{point}: {new_result:?}");
                assert!(old_result.is_err(), "{point}: {old_result:?}");
            }
        }
    }
}

/// A server whose `--allowed-master-key` list holds one new key file,
/// returned with that file.
async fn server_allowing_one_new_master_key() -> (TestServer, PathBuf) {
    let fixture = Fixture::new();
    let allowed = new_master(&fixture, "online.key");
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    settings.service.master_key_targets =
        RotationTargets::new(&[format!("file:{}", allowed.display())], None).expect("targets");
    (
        TestServer::start_with_settings(fixture, settings).await,
        allowed,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_rotates_the_master_key_of_a_running_server() {
    let (server, new) = server_allowing_one_new_master_key().await;
    let (mut admin, mut billing) = server.billing_key(KEY).await;
    let ciphertext = billing
        .encrypt(KEY, b"survives rotation", &[("t", "1")])
        .await
        .expect("encrypt")
        .ciphertext;
    let spec = format!("file:{}", new.display());

    let denied = billing
        .admin
        .rotate_master_key(common::proto::RotateMasterKeyRequest {
            new_master_key: spec.clone(),
            aws_endpoint: String::new(),
        })
        .await;
    assert_code(denied, tonic::Code::PermissionDenied);
    let bad = admin
        .admin
        .rotate_master_key(common::proto::RotateMasterKeyRequest {
            new_master_key: "vault:nope".into(),
            aws_endpoint: String::new(),
        })
        .await;
    assert_code(bad, tonic::Code::InvalidArgument);

    let rotated = admin
        .admin
        .rotate_master_key(common::proto::RotateMasterKeyRequest {
            new_master_key: spec.clone(),
            aws_endpoint: String::new(),
        })
        .await
        .expect("rotate master key")
        .into_inner();
    assert_eq!(rotated.master_key, spec);
    let status = admin
        .admin
        .get_status(common::proto::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.master_key, spec);
    // Serving goes on; seal and unseal now use the new master key.
    admin.seal().await;
    admin.unseal().await;
    billing
        .decrypt(KEY, &ciphertext, &[("t", "1")])
        .await
        .expect("decrypt");
    drop((admin, billing));
    let fixture = server.stop().await;
    opens_and_decrypts(&fixture, &fixture.data_dir(), &new, &ciphertext)
        .await
        .expect("restart with the new master key");
}

/// The security review's finding: RotateMasterKey took the new master
/// key's location from the request, so one admin certificate could send
/// the root key to a KMS endpoint of its choosing, or probe the server's
/// files. Now only the server's allowlist counts: every other name is
/// refused before anything is opened, read or contacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cannot_choose_where_the_root_key_is_sent() {
    let (server, allowed) = server_allowing_one_new_master_key().await;
    let mut admin = server.admin().await;
    admin.create_key(KEY, BILLING).await;
    let ciphertext = server
        .client(BILLING)
        .await
        .encrypt(KEY, b"survives rotation", &[("t", "1")])
        .await
        .expect("encrypt")
        .ciphertext;
    let before = admin.status().await.master_key;
    // An endpoint the attacker controls: nothing may connect to it.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").expect("bind trap");
    trap.set_nonblocking(true).expect("nonblocking");
    let trap_url = format!("http://{}", trap.local_addr().expect("addr"));
    // A valid master key file that is simply not on the list.
    let unlisted = new_master(&server.fixture, "unlisted.key");

    let refusals = [
        (
            "aws-kms:alias/evil".to_owned(),
            trap_url.clone(),
            tonic::Code::InvalidArgument,
        ),
        (
            String::new(),
            trap_url.clone(),
            tonic::Code::InvalidArgument,
        ),
        (
            format!("file:{}", allowed.display()),
            trap_url.clone(),
            tonic::Code::InvalidArgument,
        ),
        (
            "aws-kms:alias/evil".to_owned(),
            String::new(),
            tonic::Code::FailedPrecondition,
        ),
        (
            format!("file:{}", unlisted.display()),
            String::new(),
            tonic::Code::FailedPrecondition,
        ),
        (
            "file:/etc/passwd".to_owned(),
            String::new(),
            tonic::Code::FailedPrecondition,
        ),
        (
            "file:/no/such/dir/key".to_owned(),
            String::new(),
            tonic::Code::FailedPrecondition,
        ),
    ];
    let mut messages = Vec::new();
    for (name, endpoint, code) in &refusals {
        let call = admin
            .admin
            .rotate_master_key(common::proto::RotateMasterKeyRequest {
                new_master_key: name.clone(),
                aws_endpoint: endpoint.clone(),
            });
        let result = tokio::time::timeout(std::time::Duration::from_secs(20), call)
            .await
            .unwrap_or_else(|_| {
                panic!("{name} at {endpoint:?}: the server reached out instead of refusing")
            });
        let status = result.expect_err(&format!("{name} at {endpoint:?} must be refused"));
        assert_eq!(status.code(), *code, "{name} at {endpoint:?}: {status:?}");
        messages.push(status.message().to_owned());
    }
    // The two file names get the same answer: whether a path exists, its
    // mode or its size is not for the caller to learn.
    assert_eq!(messages[5], messages[6]);
    for message in &messages {
        for fact in ["passwd", "mode", "bytes", "exist", "No such file"] {
            assert!(!message.contains(fact), "{message:?} tells about the host");
        }
    }
    match trap.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("something connected to the request's endpoint: {other:?}"),
    }
    assert_eq!(admin.status().await.master_key, before, "nothing changed");

    // The audit log names each target in full, with the endpoint asked for.
    let audit_file = server.fixture.data_dir().join("audit").join("audit.jsonl");
    let fixture = {
        drop(admin);
        server.stop().await
    };
    let rotations: Vec<_> = common::audit_records(&audit_file)
        .into_iter()
        .filter(|r| r["operation"] == "RotateMasterKey")
        .collect();
    // Each call's intent, written before anything is opened, names the
    // target in full too.
    let (intents, rotations): (Vec<_>, Vec<_>) =
        rotations.into_iter().partition(|r| r["kind"] == "intent");
    assert_eq!(intents.len(), refusals.len());
    assert_eq!(rotations.len(), refusals.len());
    for (record, (name, endpoint, _)) in rotations
        .iter()
        .chain(&intents)
        .zip(refusals.iter().cycle())
    {
        let detail = record["detail"].as_str().expect("detail");
        assert!(detail.contains(name.as_str()), "{detail}");
        assert!(detail.contains(endpoint.as_str()), "{detail}");
        assert_ne!(record["status"], "OK");
    }
    // The keystore still opens with the master key it started with.
    opens_and_decrypts(
        &fixture,
        &fixture.data_dir(),
        &fixture.master_key_file(),
        &ciphertext,
    )
    .await
    .expect("the original master key still opens the keystore");
}
