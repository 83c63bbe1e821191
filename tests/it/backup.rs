//! Backups: taken while serving, verified and restored offline with the
//! real binary, tamper detection, and scheduled backups.

use crate::common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::cli::{text, tresor};
use common::{ADMIN, BILLING, Fixture, TestServer};
use tresor_client::Client;

/// `tresor backup verify FILE --master-key-file MASTER`.
fn verify(file: &Path, master: &Path) -> Output {
    tresor(&[
        "backup",
        "verify",
        file.to_str().expect("utf8"),
        "--master-key-file",
        master.to_str().expect("utf8"),
    ])
}

/// `tresor backup restore FILE --data-dir DATA --master-key-file MASTER`
/// with `extra` flags after them.
fn restore(file: &Path, data_dir: &Path, master: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "backup",
        "restore",
        file.to_str().expect("utf8"),
        "--data-dir",
        data_dir.to_str().expect("utf8"),
        "--master-key-file",
        master.to_str().expect("utf8"),
    ];
    args.extend_from_slice(extra);
    tresor(&args)
}

async fn sdk_client(server: &TestServer, identity: &str) -> Client {
    server.fixture.sdk_at(server.addr, identity).await
}

/// Starts a server on a restored keystore and checks every ciphertext.
async fn decrypts_everything(
    fixture: Fixture,
    data_dir: &Path,
    sealed: &[(String, Vec<u8>, Vec<u8>)],
) -> Fixture {
    let mut settings = fixture.settings(1 << 20);
    settings.store = tresor::config::StoreSpec::Sled(data_dir.to_owned());
    let server = TestServer::start_with_settings(fixture, settings).await;
    let mut billing = server.client(BILLING).await;
    for (key, plaintext, ciphertext) in sealed {
        let opened = billing
            .decrypt(key, ciphertext, &[])
            .await
            .expect("decrypt after restore");
        assert_eq!(&opened.plaintext, plaintext);
    }
    drop(billing);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_and_decrypts_everything() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let mut billing = server.client(BILLING).await;
    let mut sealed = Vec::new();
    for k in 0..10 {
        let key = format!("b/{k}");
        admin.create_key(&key, BILLING).await;
        for v in 0..3 {
            let plaintext = format!("{key} v{v}").into_bytes();
            let out = billing
                .encrypt(&key, &plaintext, &[])
                .await
                .expect("encrypt");
            sealed.push((key.clone(), plaintext, out.ciphertext));
            billing.rotate(&key).await.expect("rotate");
        }
    }
    // Writes keep going while the backup is taken.
    let writer = {
        let mut admin = server.admin().await;
        tokio::spawn(async move {
            for i in 0..30 {
                admin.create_key(&format!("during/{i}"), BILLING).await;
            }
        })
    };
    let sdk = sdk_client(&server, ADMIN).await;
    let backup = sdk.create_backup().await.expect("backup while serving");
    writer.await.expect("writer");
    assert!(
        sdk_client(&server, BILLING)
            .await
            .create_backup()
            .await
            .is_err(),
        "admins only"
    );
    drop((admin, billing, sdk));
    let fixture = server.stop().await;

    let dir = fixture.dir.path().to_owned();
    let file = dir.join("backup.tbk");
    std::fs::write(&file, &backup).expect("write backup");
    let mk = fixture.master_key_file();
    let out = verify(&file, &mk);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("backup is intact"),
        "{}",
        text(&out.stdout)
    );

    let restored = dir.join("restored");
    let out = restore(&file, &restored, &mk, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Not twice into the same keystore, unless told.
    let out = restore(&file, &restored, &mk, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not empty"),
        "{}",
        text(&out.stderr)
    );
    let out = restore(&file, &restored, &mk, &["--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    decrypts_everything(fixture, &restored, &sealed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_backup_or_a_wrong_master_key_is_refused() {
    let server = TestServer::start().await;
    server.admin().await.create_key("k", BILLING).await;
    let backup = sdk_client(&server, ADMIN)
        .await
        .create_backup()
        .await
        .expect("backup");
    let fixture = server.stop().await;
    let dir = fixture.dir.path();
    let mk = fixture.master_key_file();
    for index in [0, 15, backup.len() / 2, backup.len() - 1] {
        let mut altered = backup.clone();
        altered[index] ^= 0x01;
        let file = dir.join(format!("altered-{index}.tbk"));
        std::fs::write(&file, &altered).expect("write");
        let out = verify(&file, &mk);
        assert_eq!(out.status.code(), Some(1), "byte {index}");
        let message = text(&out.stderr);
        assert!(
            message.contains("integrity check failed")
                || message.contains("not a readable")
                || message.contains("does not unwrap")
                || message.contains("corrupt"),
            "byte {index}: {message}"
        );
    }
    let truncated = dir.join("truncated.tbk");
    std::fs::write(&truncated, &backup[..backup.len() - 10]).expect("write");
    let out = verify(&truncated, &mk);
    assert_eq!(out.status.code(), Some(1));

    let good = dir.join("good.tbk");
    std::fs::write(&good, &backup).expect("write");
    let other = dir.join("other.key");
    tresor::master_key::FileMasterKey::generate(&other).expect("key");
    let out = verify(&good, &other);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does not unwrap"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_are_written_checked_and_restorable() {
    let fixture = Fixture::new();
    let backup_dir = fixture.dir.path().join("backups");
    let mut settings = fixture.settings(1 << 20);
    settings.backups = Some(tresor::backup::schedule::BackupSchedule {
        dir: backup_dir.clone(),
        interval: Duration::from_millis(300),
        retain_days: 15,
    });
    let server = TestServer::start_with_settings(fixture, settings).await;
    let (admin, mut billing) = server.billing_key("scheduled").await;
    let sealed = billing
        .encrypt("scheduled", b"kept", &[])
        .await
        .expect("encrypt")
        .ciphertext;
    let started = Instant::now();
    let newest = loop {
        let backups = tresor::backup::schedule::list(&backup_dir).unwrap_or_default();
        // A backup made after the key existed.
        if let Some((_, path)) = backups.last()
            && backups.len() >= 3
        {
            break path.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no scheduled backups"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop((admin, billing));
    let fixture = server.stop().await;
    let restored = fixture.dir.path().join("from-schedule");
    let out = restore(&newest, &restored, &fixture.master_key_file(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&newest)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    decrypts_everything(
        fixture,
        &restored,
        &[("scheduled".into(), b"kept".to_vec(), sealed)],
    )
    .await;
}

/// The security review's finding: restoring an old backup over a keystore
/// silently brought back destroyed versions and revoked grants, and erased
/// the audit logs' checkpoints. Now the restore lists what comes back,
/// needs confirmation, and keeps the checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_over_a_keystore_lists_what_comes_back_and_keeps_audit_checkpoints() {
    use common::proto;
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key("k", BILLING).await;
    let grant = proto::GrantRequest {
        key_id: "k".into(),
        grantee: common::SHIPPING.into(),
        operations: vec![proto::Operation::Decrypt as i32],
        ..Default::default()
    };
    admin
        .admin
        .create_grant(grant.clone())
        .await
        .expect("grant");
    let backup = sdk_client(&server, ADMIN)
        .await
        .create_backup()
        .await
        .expect("backup");
    // Since the backup: the grant revoked, version 1 destroyed.
    admin
        .admin
        .revoke_grant(proto::GrantRequest {
            operations: Vec::new(),
            ..grant
        })
        .await
        .expect("revoke");
    admin.rotate("k").await.expect("rotate");
    admin.set_min_version("k", 2).await;
    admin.destroy_version("k", 1).await.expect("destroy v1");
    drop(admin);
    let fixture = server.stop().await;
    let checkpoint = || async {
        let store = tresor::store::SledKeyStore::open(&fixture.data_dir()).expect("open keystore");
        tresor::store::KeyStore::audit_mark(&store, tresor::service::LOCAL_LOG)
            .await
            .expect("read checkpoint")
    };
    let before = checkpoint().await.expect("a checkpoint after a clean stop");

    let file = fixture.dir.path().join("old.tbk");
    std::fs::write(&file, &backup).expect("write backup");
    let data = fixture.data_dir();
    let mk = fixture.master_key_file();
    let refused = restore(&file, &data, &mk, &["--force"]);
    let stderr = text(&refused.stderr);
    assert!(!refused.status.success(), "restored without confirmation");
    assert!(
        stderr.contains("key k: version 1 comes back (destroyed since)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "the grant to {} of decrypt comes back",
            common::SHIPPING
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--yes"), "{stderr}");

    let out = restore(&file, &data, &mk, &["--force", "--yes", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        report["brought_back"].as_array().map(Vec::len),
        Some(3),
        "{report}"
    );
    assert_eq!(checkpoint().await, Some(before), "the checkpoint is kept");
}
