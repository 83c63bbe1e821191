//! Key lifecycle automation against a real server over mTLS: automatic
//! rotation by period, destruction of single versions, and the proof that a
//! destroyed DEK's bytes leave the sled keystore's files after compaction.
//! (PostgreSQL: `tests/it/postgres.rs`.)

use crate::common;

use common::{
    ADMIN, BILLING, Clients, Fixture, TestServer, assert_code, audit_records, eventually,
    found_in_files, manual_lifecycle, proto,
};
use tonic::Code;
use tresor::store::KeyStore;

const HOUR: u64 = 3600;

async fn create_with_period(admin: &mut Clients, key_id: &str, period: u64) -> proto::KeyInfo {
    admin
        .admin
        .create_key(proto::CreateKeyRequest {
            key_id: key_id.into(),
            owner: BILLING.into(),
            description: String::new(),
            rotation_period_seconds: period,
            ..Default::default()
        })
        .await
        .expect("create key")
        .into_inner()
}

async fn versions(admin: &mut Clients, key_id: &str) -> u32 {
    admin.key(key_id).await.expect("get key").primary_version
}

fn audit_file(fixture: &Fixture) -> std::path::PathBuf {
    tresor::service::default_audit_file(&fixture.data_dir())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_by_themselves_once_per_period_and_only_while_enabled() {
    let fixture = Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    let clock = manual_lifecycle(&mut settings);
    let server = TestServer::start_with_settings(fixture, settings).await;
    let mut admin = server.admin().await;
    let mut billing = server.client(BILLING).await;

    let created = create_with_period(&mut admin, "auto/hourly", HOUR).await;
    assert_eq!(created.rotation_period_seconds, HOUR);
    assert_eq!(
        created.next_rotation_at_unix,
        created.created_at_unix + HOUR as i64
    );
    create_with_period(&mut admin, "auto/disabled", HOUR).await;
    admin
        .admin
        .disable_key(proto::KeyRequest {
            key_id: "auto/disabled".into(),
        })
        .await
        .expect("disable");
    admin.create_key("auto/manual", BILLING).await;
    let before = billing
        .encrypt("auto/hourly", b"old", &[])
        .await
        .expect("encrypt");

    // Nothing is due a second early.
    clock.advance(HOUR as i64 - 1);
    let hourly = eventually("a lifecycle pass", || {
        let mut admin = admin.clone();
        async move {
            // Wait until a pass has surely run at this time: the key is
            // read twice, several intervals apart.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            Some(versions(&mut admin, "auto/hourly").await)
        }
    })
    .await;
    assert_eq!(hourly, 1, "not due yet");

    clock.advance(1);
    eventually("the automatic rotation", || {
        let mut admin = admin.clone();
        async move { (versions(&mut admin, "auto/hourly").await == 2).then_some(()) }
    })
    .await;
    // Several more passes at the same time rotate nothing more.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let info = admin.key("auto/hourly").await.expect("get");
    assert_eq!(info.primary_version, 2, "one rotation per period");
    assert_eq!(
        info.next_rotation_at_unix,
        info.versions[1].created_at_unix + HOUR as i64
    );
    assert_eq!(versions(&mut admin, "auto/disabled").await, 1);
    assert_eq!(versions(&mut admin, "auto/manual").await, 1);
    let after = billing
        .encrypt("auto/hourly", b"new", &[])
        .await
        .expect("encrypt");
    assert_eq!(after.key_version, 2);
    // The old version still decrypts.
    billing
        .assert_decrypts("auto/hourly", &before.ciphertext, &[], b"old")
        .await;

    // Enabling a disabled key that is overdue rotates it at the next pass.
    admin
        .admin
        .enable_key(proto::KeyRequest {
            key_id: "auto/disabled".into(),
        })
        .await
        .expect("enable");
    eventually("the overdue rotation", || {
        let mut admin = admin.clone();
        async move { (versions(&mut admin, "auto/disabled").await == 2).then_some(()) }
    })
    .await;

    // A period set later counts from the primary version's creation.
    let set = admin
        .admin
        .set_rotation_period(proto::SetRotationPeriodRequest {
            key_id: "auto/manual".into(),
            rotation_period_seconds: 2 * HOUR,
        })
        .await
        .expect("set period")
        .into_inner();
    assert_eq!(
        set.next_rotation_at_unix,
        set.versions[0].created_at_unix + 2 * HOUR as i64
    );
    clock.advance(2 * HOUR as i64);
    eventually("the rotation of a key given a period later", || {
        let mut admin = admin.clone();
        async move { (versions(&mut admin, "auto/manual").await == 2).then_some(()) }
    })
    .await;
    // Turning it off stops it.
    let off = admin
        .admin
        .set_rotation_period(proto::SetRotationPeriodRequest {
            key_id: "auto/manual".into(),
            rotation_period_seconds: 0,
        })
        .await
        .expect("clear period")
        .into_inner();
    assert_eq!(
        (off.rotation_period_seconds, off.next_rotation_at_unix),
        (0, 0)
    );
    clock.advance(10 * HOUR as i64);
    eventually("the rotation of the hourly key", || {
        let mut admin = admin.clone();
        async move { (versions(&mut admin, "auto/hourly").await == 3).then_some(()) }
    })
    .await;
    assert_eq!(versions(&mut admin, "auto/manual").await, 2);

    // Bad periods and callers are refused.
    for period in [1, HOUR - 1, 11 * 365 * 86_400] {
        assert_code(
            admin
                .admin
                .set_rotation_period(proto::SetRotationPeriodRequest {
                    key_id: "auto/manual".into(),
                    rotation_period_seconds: period,
                })
                .await,
            Code::InvalidArgument,
        );
    }
    assert_code(
        billing
            .admin
            .set_rotation_period(proto::SetRotationPeriodRequest {
                key_id: "auto/hourly".into(),
                rotation_period_seconds: HOUR,
            })
            .await,
        Code::PermissionDenied,
    );

    // Every automatic rotation is audited as an event naming the key: as
    // many as each key has versions beyond the first.
    let mut expected = Vec::new();
    for key in ["auto/disabled", "auto/hourly", "auto/manual"] {
        for _ in 1..versions(&mut admin, key).await {
            expected.push(key.to_owned());
        }
    }
    let fixture = server.stop().await;
    let mut rotations: Vec<String> = audit_records(&audit_file(&fixture))
        .iter()
        .filter(|r| r["operation"] == "key_rotated_automatically")
        .map(|r| r["key_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    rotations.sort();
    assert_eq!(rotations, expected);
}

/// The wrapped DEK of `key_id` version `version`, read from the stopped
/// server's keystore.
async fn wrapped_dek(fixture: &Fixture, key_id: &str, version: u32) -> Option<Vec<u8>> {
    let store = tresor::store::SledKeyStore::open(&fixture.data_dir()).expect("open keystore");
    store
        .version(
            &tresor::model::KeyId::parse(key_id).expect("key id"),
            tresor::model::KeyVersion::new(version).expect("version"),
        )
        .await
        .expect("read version")
        .map(|stored| stored.wrapped_dek)
}

/// Runs `tresor keystore compact` (the real binary) on the stopped
/// server's keystore.
fn compact_offline(fixture: &Fixture) {
    let compact = common::cli::command(["keystore", "compact", "--data-dir"])
        .arg(fixture.data_dir())
        .output()
        .expect("run tresor keystore compact");
    assert!(
        compact.status.success(),
        "{}",
        String::from_utf8_lossy(&compact.stderr)
    );
    assert!(String::from_utf8_lossy(&compact.stdout).contains("compacted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_version_never_decrypts_again_and_compaction_erases_its_bytes() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let mut billing = server.client(BILLING).await;
    admin.create_key("erase/me", BILLING).await;
    let old = billing
        .encrypt("erase/me", b"old secret", &[])
        .await
        .expect("encrypt v1");
    admin.rotate("erase/me").await.expect("rotate");
    let new = billing
        .encrypt("erase/me", b"new secret", &[])
        .await
        .expect("encrypt v2");

    // Still decryptable: refused.
    assert_code(
        admin.destroy_version("erase/me", 1).await,
        Code::FailedPrecondition,
    );
    admin.set_min_version("erase/me", 2).await;
    assert_code(
        billing.destroy_version("erase/me", 1).await,
        Code::PermissionDenied,
    );
    assert_code(
        admin.destroy_version("erase/me", 2).await,
        Code::FailedPrecondition,
    );
    assert_code(
        admin.destroy_version("erase/me", 3).await,
        Code::InvalidArgument,
    );

    // Read the wrapped DEK's bytes while the server is stopped, and check
    // that the search finds them in the files.
    let fixture = server.stop().await;
    let doomed = wrapped_dek(&fixture, "erase/me", 1)
        .await
        .expect("v1 stored");
    let kept = wrapped_dek(&fixture, "erase/me", 2)
        .await
        .expect("v2 stored");
    assert!(found_in_files(&fixture.data_dir(), &doomed));
    let server = TestServer::start_with(fixture, tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES).await;
    let mut admin = server.admin().await;
    let mut billing = server.client(BILLING).await;
    // Make the DEK cached before destruction: destruction drops it.
    billing
        .decrypt("erase/me", &new.ciphertext, &[])
        .await
        .expect("decrypt v2");

    let info = admin
        .destroy_version("erase/me", 1)
        .await
        .expect("destroy v1");
    assert_ne!(info.versions[0].destroyed_at_unix, 0);
    assert_eq!(info.versions[1].destroyed_at_unix, 0);
    let refused = billing
        .decrypt("erase/me", &old.ciphertext, &[])
        .await
        .expect_err("a destroyed version decrypts nothing");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(refused.message(), "key version 1 was destroyed");
    assert_eq!(
        refused
            .metadata()
            .get(tresor_proto::REASON_HEADER)
            .and_then(|v| v.to_str().ok()),
        Some("KEY_VERSION_DESTROYED")
    );
    assert_code(
        admin.destroy_version("erase/me", 1).await,
        Code::FailedPrecondition,
    );
    assert_code(
        admin
            .admin
            .set_min_decryption_version(proto::SetMinDecryptionVersionRequest {
                key_id: "erase/me".into(),
                version: 1,
            })
            .await,
        Code::FailedPrecondition,
    );

    // Across a restart, and after an offline compaction, the version stays
    // destroyed, its bytes are gone, and the rest is intact.
    let fixture = server.stop().await;
    assert_eq!(wrapped_dek(&fixture, "erase/me", 1).await, None);
    compact_offline(&fixture);
    assert!(
        !found_in_files(&fixture.data_dir(), &doomed),
        "the destroyed DEK's wrapped bytes are in no keystore file"
    );
    assert!(found_in_files(&fixture.data_dir(), &kept));

    let server = TestServer::start_with(fixture, tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES).await;
    let mut billing = server.client(BILLING).await;
    // Version 2 still decrypts after compaction.
    billing
        .assert_decrypts("erase/me", &new.ciphertext, &[], b"new secret")
        .await;
    assert_code(
        billing.decrypt("erase/me", &old.ciphertext, &[]).await,
        Code::FailedPrecondition,
    );
    let fixture = server.stop().await;
    let (code, out) = common::audit_verify(&fixture, &[]);
    assert_eq!(code, 0, "the audit log survives compaction intact: {out}");
    let destroyed = audit_records(&audit_file(&fixture))
        .into_iter()
        .filter(|r| r["operation"] == "DestroyKeyVersion" && r["status"] == "OK")
        .count();
    assert_eq!(destroyed, 1);
    let _ = ADMIN;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_destroyed_when_its_window_ends_leaves_no_dek_behind() {
    let fixture = Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    let clock = manual_lifecycle(&mut settings);
    let server = TestServer::start_with_settings(fixture, settings).await;
    let mut admin = server.admin().await;
    admin.create_key("erase/whole", BILLING).await;
    admin.rotate("erase/whole").await.expect("rotate");
    admin.create_key("erase/kept", BILLING).await;
    admin
        .admin
        .schedule_key_deletion(proto::ScheduleKeyDeletionRequest {
            key_id: "erase/whole".into(),
            pending_days: 7,
        })
        .await
        .expect("schedule");
    let fixture = server.stop().await;
    let doomed = [
        wrapped_dek(&fixture, "erase/whole", 1).await.expect("v1"),
        wrapped_dek(&fixture, "erase/whole", 2).await.expect("v2"),
    ];
    let kept = wrapped_dek(&fixture, "erase/kept", 1).await.expect("kept");
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    settings.service.lifecycle.clock = tresor::service::SharedClock(clock.clone());
    settings.service.lifecycle.lifecycle_check_interval = std::time::Duration::from_millis(100);
    let server = TestServer::start_with_settings(fixture, settings).await;
    let mut admin = server.admin().await;

    clock.advance(7 * 86_400);
    eventually("the purge of the key", || {
        let mut admin = admin.clone();
        async move {
            let status = admin.admin.get_status(proto::StatusRequest {}).await.ok()?;
            (status.into_inner().key_count == 1).then_some(())
        }
    })
    .await;
    assert_code(admin.key("erase/whole").await, Code::NotFound);
    let fixture = server.stop().await;
    for version in [1, 2] {
        assert_eq!(wrapped_dek(&fixture, "erase/whole", version).await, None);
    }
    compact_offline(&fixture);
    for bytes in &doomed {
        assert!(!found_in_files(&fixture.data_dir(), bytes));
    }
    assert!(found_in_files(&fixture.data_dir(), &kept));
    let destroyed = audit_records(&audit_file(&fixture))
        .into_iter()
        .filter(|r| r["operation"] == "key_destroyed")
        .count();
    assert_eq!(destroyed, 1);
}

/// A server on `fixture` that rotates a key after `limit` encryptions.
async fn start_with_limit(fixture: Fixture, limit: u64) -> TestServer {
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    settings.service.lifecycle.max_encryptions_per_version = limit;
    TestServer::start_with_settings(fixture, settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_reached_the_encryption_limit_is_rotated_even_across_restarts() {
    const LIMIT: u64 = 10;
    let server = start_with_limit(Fixture::new(), LIMIT).await;
    let mut admin = server.admin().await;
    let mut billing = server.client(BILLING).await;
    admin.create_key("usage/busy", BILLING).await;
    admin.create_key("usage/quiet", BILLING).await;

    // Encrypt, GenerateDataKey and batch items all count.
    for _ in 0..4 {
        billing
            .encrypt("usage/busy", b"x", &[])
            .await
            .expect("encrypt");
    }
    billing
        .crypto
        .generate_data_key(proto::GenerateDataKeyRequest {
            key_id: "usage/busy".into(),
            ..Default::default()
        })
        .await
        .expect("data key");
    billing
        .encrypt("usage/quiet", b"x", &[])
        .await
        .expect("encrypt");
    // A graceful stop stores the counts: 5 so far.
    let fixture = server.stop().await;
    let server = start_with_limit(fixture, LIMIT).await;
    let mut admin = server.admin().await;
    let mut billing = server.client(BILLING).await;
    assert_eq!(versions(&mut admin, "usage/busy").await, 1);
    let items = (0..5)
        .map(|_| proto::EncryptRequest {
            key_id: "usage/busy".into(),
            plaintext: b"y".to_vec(),
            ..Default::default()
        })
        .collect();
    billing
        .crypto
        .encrypt_batch(proto::EncryptBatchRequest { items })
        .await
        .expect("batch");
    // 5 + 5 reached the limit: the key rotates within a flush interval.
    eventually("the rotation at the encryption limit", || {
        let mut admin = admin.clone();
        async move { (versions(&mut admin, "usage/busy").await == 2).then_some(()) }
    })
    .await;
    let after = billing
        .encrypt("usage/busy", b"z", &[])
        .await
        .expect("encrypt");
    assert_eq!(after.key_version, 2);
    assert_eq!(versions(&mut admin, "usage/quiet").await, 1);

    let fixture = server.stop().await;
    let rotations: Vec<_> = audit_records(&audit_file(&fixture))
        .into_iter()
        .filter(|r| r["operation"] == "key_rotated_automatically")
        .collect();
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0]["key_id"], "usage/busy");
    assert!(
        rotations[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("encryption limit"))
    );
    // The counts are in the keystore: 10 under version 1, 1 under 2.
    let store = tresor::store::SledKeyStore::open(&fixture.data_dir()).expect("open");
    let busy = tresor::model::KeyId::parse("usage/busy").expect("id");
    let counts = store
        .add_usage(&[
            (busy.clone(), tresor::model::KeyVersion::FIRST, 0),
            (busy, tresor::model::KeyVersion::new(2).expect("v2"), 0),
        ])
        .await
        .expect("read counts");
    assert_eq!(counts, vec![LIMIT, 1]);
}
