//! The PostgreSQL keystore against a real PostgreSQL started here: the
//! shared conformance suite, concurrent rotations, and two tresor replicas
//! on one database.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::postgres::Postgres;
use tonic_health::ServingStatus;
use tresor::model::KeyVersion;
use tresor::store::{KeyStore, PostgresKeyStore, RoleStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_key_store_conforms() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.fresh_database().await;
    let store = PostgresKeyStore::connect(&url, "replica-a")
        .await
        .expect("connect");
    tresor::store::conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.fresh_database().await;
    let connects = (0..6).map(|i| {
        let url = url.clone();
        tokio::spawn(async move { PostgresKeyStore::connect(&url, &format!("r{i}")).await })
    });
    for task in connects {
        task.await.expect("join").expect("connect and migrate");
    }
    let store = PostgresKeyStore::connect(&url, "again")
        .await
        .expect("connect");
    assert_eq!(store.key_count().await.expect("count"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_on_postgres_run_the_shared_deadlock_check() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.fresh_database().await;
    let stores: Vec<Arc<dyn KeyStore>> = vec![
        Arc::new(PostgresKeyStore::connect(&url, "a").await.expect("a")),
        Arc::new(PostgresKeyStore::connect(&url, "b").await.expect("b")),
    ];
    tresor::store::conformance::concurrent_rotations_on_one_key(&stores, 40).await;
}

/// A database of schema version 2 (before the owner column and the
/// aliases table) with keys in it is migrated at connect to version 4:
/// every key's owner is filled in and indexed, and aliases get their table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_2_database_gets_the_owner_index() {
    use tresor::identity::Identity;
    use tresor::model::KeyMetadata;
    use tresor::store::conformance;
    let Some(pg) = Postgres::start() else { return };
    let url = pg.fresh_database().await;
    let owners = [
        Identity::parse("spiffe://test/alice").expect("identity"),
        Identity::parse("spiffe://test/bob").expect("identity"),
    ];
    {
        let store = PostgresKeyStore::connect(&url, "old")
            .await
            .expect("connect");
        conformance::ensure_root(&store).await;
        for i in 0..30u32 {
            let metadata = KeyMetadata {
                owner: owners[(i % 2) as usize].clone(),
                ..conformance::metadata(&format!("old/key-{i:02}"))
            };
            let first = conformance::first_version(7);
            store.create_key(&metadata, &first).await.expect("create");
        }
    }
    // Back to what version 2 wrote: no owner column, no index.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("raw connect");
    let driver = tokio::spawn(connection);
    client
        .batch_execute(
            "ALTER TABLE tresor_keys DROP COLUMN owner; DROP TABLE tresor_aliases; DROP TABLE tresor_role_bindings; UPDATE tresor_schema SET version = 2;",
        )
        .await
        .expect("downgrade");
    let store = PostgresKeyStore::connect(&url, "new")
        .await
        .expect("migrate");
    let version: i32 = client
        .query_one("SELECT version FROM tresor_schema", &[])
        .await
        .expect("version")
        .get(0);
    assert_eq!(
        version, 5,
        "migrated through the owner index, the aliases and the role bindings tables"
    );
    assert!(
        store
            .role_bindings()
            .await
            .expect("role bindings")
            .is_empty(),
        "the role bindings table is there, empty"
    );
    let alices = store
        .list_owned_keys(&owners[0], "old/", None, 100)
        .await
        .expect("list");
    let ids: Vec<String> = alices.iter().map(|k| k.id.to_string()).collect();
    let expected: Vec<String> = (0..30)
        .step_by(2)
        .map(|i| format!("old/key-{i:02}"))
        .collect();
    assert_eq!(ids, expected);
    let unfilled: i64 = client
        .query_one("SELECT count(*) FROM tresor_keys WHERE owner IS NULL", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(unfilled, 0);
    driver.abort();
}

use common::cli::Tresor;
use common::{
    ADMIN, BILLING, Fixture, Replica, assert_code, assert_round_trip, proto, wait_for_health,
};

/// Polls `check` until it yields a value, failing if that takes longer than
/// the documented freshness bound (with slack for a loaded machine).
async fn within_bound<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < tresor::service::METADATA_TTL * 4,
            "a change did not reach the other replica within the bound"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A pattern grant revoked on replica A stops working on replica B within
/// the propagation bound, and a new conditional grant made on A starts
/// working on B within it too (issue 22).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_revoked_on_one_replica_stops_on_the_other_within_the_bound() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.fresh_database().await;
    let fixture = Fixture::new();
    let (a, b) = fixture.two_replicas(&url).await;
    let mut admin_a = fixture.client_at(a.addr, ADMIN).await;
    admin_a.create_key("shared", BILLING).await;
    let pod = "spiffe://test.tresor/ns/prod/sa/reports";
    let pod_b = fixture.client_at(b.addr, pod).await;
    let pattern = proto::GrantRequest {
        key_id: "shared".into(),
        grantee: "spiffe://test.tresor/ns/prod/*".into(),
        operations: vec![proto::Operation::Encrypt as i32],
        context_subset: common::ctx(&[("tenant", "42")]),
        ..Default::default()
    };
    admin_a
        .admin
        .create_grant(pattern.clone())
        .await
        .expect("grant on a");
    within_bound(|| {
        let mut pod_b = pod_b.clone();
        async move {
            pod_b
                .encrypt("shared", b"x", &[("tenant", "42")])
                .await
                .ok()
        }
    })
    .await;
    admin_a
        .admin
        .revoke_grant(proto::GrantRequest {
            operations: vec![],
            context_subset: Default::default(),
            ..pattern
        })
        .await
        .expect("revoke on a");
    within_bound(|| {
        let mut pod_b = pod_b.clone();
        async move {
            let refused = pod_b.encrypt("shared", b"x", &[("tenant", "42")]).await;
            matches!(refused, Err(s) if s.code() == tonic::Code::PermissionDenied).then_some(())
        }
    })
    .await;
    drop((admin_a, pod_b));
    a.stop().await;
    b.stop().await;
}

/// A role bound on replica A holds on replica B within the propagation
/// bound, and stops there within it once removed on A (issue 22).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_removed_on_one_replica_stops_on_the_other_within_the_bound() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.fresh_database().await;
    let fixture = Fixture::new();
    let (a, b) = fixture.two_replicas(&url).await;
    let root_a = fixture.sdk_at(a.addr, ADMIN).await;
    let officer = "spiffe://test.tresor/ns/security/sa/oncall";
    let officer_b = fixture.sdk_at(b.addr, officer).await;
    root_a
        .add_role_binding("security-officer", "spiffe://test.tresor/ns/security/*")
        .await
        .expect("bind on a");
    within_bound(|| async { officer_b.create_backup().await.ok() }).await;
    root_a
        .remove_role_binding("security-officer", "spiffe://test.tresor/ns/security/*")
        .await
        .expect("remove on a");
    within_bound(|| async {
        matches!(
            officer_b.create_backup().await,
            Err(tresor_client::ClientError::PermissionDenied(_))
        )
        .then_some(())
    })
    .await;
    drop((root_a, officer_b));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_serve_the_same_keys_and_see_each_others_changes() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.fresh_database().await;
    let fixture = Fixture::new();
    let (a, b) = fixture.two_replicas(&url).await;
    let mut admin_a = fixture.client_at(a.addr, ADMIN).await;
    let mut admin_b = fixture.client_at(b.addr, ADMIN).await;
    let mut billing_a = fixture.client_at(a.addr, BILLING).await;
    let mut billing_b = fixture.client_at(b.addr, BILLING).await;

    admin_a.create_key("shared", BILLING).await;
    let v1 = billing_b
        .encrypt("shared", b"one", &[])
        .await
        .expect("encrypt on b");
    assert_eq!(v1.key_version, 1);
    // Rotate on A, encrypt on B: B uses the new version within the bound
    // (METADATA_TTL; notifications usually make it milliseconds).
    admin_a.rotate("shared").await.expect("rotate on a");
    let v2 = within_bound(|| {
        let mut billing_b = billing_b.clone();
        async move {
            let out = billing_b
                .encrypt("shared", b"two", &[])
                .await
                .expect("encrypt on b");
            (out.key_version == 2).then_some(out)
        }
    })
    .await;
    for client in [&mut billing_a, &mut billing_b] {
        client
            .assert_decrypts("shared", &v1.ciphertext, &[], b"one")
            .await;
        client
            .assert_decrypts("shared", &v2.ciphertext, &[], b"two")
            .await;
    }
    // Disable on A: B refuses.
    admin_a
        .admin
        .disable_key(proto::KeyRequest {
            key_id: "shared".into(),
        })
        .await
        .expect("disable");
    within_bound(|| {
        let mut billing_b = billing_b.clone();
        async move {
            let refused = billing_b.encrypt("shared", b"x", &[]).await;
            refused
                .err()
                .filter(|status| status.code() == tonic::Code::FailedPrecondition)
        }
    })
    .await;
    admin_b
        .admin
        .enable_key(proto::KeyRequest {
            key_id: "shared".into(),
        })
        .await
        .expect("enable on b");
    within_bound(|| {
        let mut billing_a = billing_a.clone();
        async move { billing_a.encrypt("shared", b"x", &[]).await.ok() }
    })
    .await;
    // Seal is per replica.
    admin_a.seal().await;
    assert_code(
        billing_a.encrypt("shared", b"x", &[]).await,
        tonic::Code::Unavailable,
    );
    assert!(
        billing_b.encrypt("shared", b"x", &[]).await.is_ok(),
        "b stays unsealed"
    );
    admin_a.unseal().await;

    // A root-key rotation on A: B keeps decrypting and loads the new root
    // key when it meets a DEK wrapped under it.
    admin_a
        .admin
        .rotate_root_key(proto::RotateRootKeyRequest {})
        .await
        .expect("rotate root on a");
    admin_a.create_key("after-root-rotation", BILLING).await;
    assert_round_trip(
        &mut billing_a,
        &mut billing_b,
        "after-root-rotation",
        b"fresh",
    )
    .await;
    drop((admin_a, admin_b, billing_a, billing_b));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_clients_hammer_two_replicas_with_rotations_in_between() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.fresh_database().await;
    let fixture = Arc::new(Fixture::new());
    let (a, b) = fixture.two_replicas(&url).await;
    let mut admin = fixture.client_at(a.addr, ADMIN).await;
    for k in 0..4 {
        admin.create_key(&format!("hot/{k}"), BILLING).await;
    }
    let mut tasks = Vec::new();
    for client in 0..8 {
        let fixture = fixture.clone();
        let addr = if client % 2 == 0 { a.addr } else { b.addr };
        tasks.push(tokio::spawn(async move {
            let mut billing = fixture.client_at(addr, BILLING).await;
            let mut made = Vec::new();
            for i in 0..25 {
                let key = format!("hot/{}", (client + i) % 4);
                let plaintext = format!("{client}/{i}");
                let out = billing
                    .encrypt(&key, plaintext.as_bytes(), &[("c", "x")])
                    .await
                    .expect("encrypt");
                made.push((key.clone(), plaintext, out.ciphertext));
                if i % 6 == 5 {
                    billing.rotate(&key).await.expect("rotate");
                }
            }
            made
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client"));
    }
    let mut billing_a = fixture.client_at(a.addr, BILLING).await;
    let mut billing_b = fixture.client_at(b.addr, BILLING).await;
    for (key, plaintext, ciphertext) in &all {
        // Every ciphertext decrypts on both replicas.
        for client in [&mut billing_a, &mut billing_b] {
            client
                .assert_decrypts(key, ciphertext, &[("c", "x")], plaintext.as_bytes())
                .await;
        }
    }
    for k in 0..4 {
        let info = admin.key(&format!("hot/{k}")).await.expect("key");
        let versions: Vec<u32> = info.versions.iter().map(|v| v.version).collect();
        let expected: Vec<u32> = (1..=info.primary_version).collect();
        assert_eq!(versions, expected, "consecutive versions");
    }
    drop((admin, billing_a, billing_b));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_crash_under_load_loses_nothing_and_replicas_fail_closed_then_recover() {
    let Some(pg) = Postgres::start() else { return };
    if !pg.is_local() {
        eprintln!(
            "skipping: the database is external (TRESOR_TEST_POSTGRES_URL), it cannot be stopped here"
        );
        return;
    }
    let url = pg.fresh_database().await;
    let fixture = Arc::new(Fixture::new());
    let (a, b) = fixture.two_replicas(&url).await;
    let mut admin = fixture.client_at(a.addr, ADMIN).await;
    admin.create_key("load", BILLING).await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let fixture = fixture.clone();
        let stop = stop.clone();
        let addr = if worker % 2 == 0 { a.addr } else { b.addr };
        workers.push(tokio::spawn(async move {
            let mut billing = fixture.client_at(addr, BILLING).await;
            let mut acknowledged = Vec::new();
            let mut max_rotation = 0;
            let mut refusals = Vec::new();
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let plaintext = format!("{worker}/{i}");
                match billing.encrypt("load", plaintext.as_bytes(), &[]).await {
                    Ok(out) => acknowledged.push((plaintext, out.ciphertext)),
                    Err(status) => refusals.push(status.code()),
                }
                // Rotations stop short of the 100 versions a key may have
                // (--max-key-versions): a fast run would otherwise reach
                // the cap and be refused with FAILED_PRECONDITION.
                if i.is_multiple_of(10) && max_rotation < 90 {
                    match billing.rotate("load").await {
                        Ok(info) => max_rotation = max_rotation.max(info.primary_version),
                        Err(status) => refusals.push(status.code()),
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            (acknowledged, max_rotation, refusals)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    pg.crash();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // While the database is down, the replicas fail closed, and their
    // health says so.
    let mut probe = fixture.client_at(b.addr, BILLING).await;
    assert_code(
        probe.encrypt("load", b"x", &[]).await,
        tonic::Code::Unavailable,
    );
    // The data plane's health probe runs every 2 s and waits at most 2 s.
    let (every, within) = (Duration::from_millis(200), Duration::from_secs(15));
    let crypto = "tresor.v1.Crypto";
    wait_for_health(&probe, crypto, ServingStatus::NotServing, every, within).await;
    pg.restart();
    wait_for_health(&probe, crypto, ServingStatus::Serving, every, within).await;
    // And recover by themselves.
    let started = std::time::Instant::now();
    while probe.encrypt("load", b"x", &[]).await.is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no recovery"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);

    let mut acknowledged = Vec::new();
    let mut max_rotation = 0;
    for worker in workers {
        let (acked, rotated, refusals) = worker.await.expect("worker");
        for code in refusals {
            assert_eq!(
                code,
                tonic::Code::Unavailable,
                "outage errors are UNAVAILABLE"
            );
        }
        acknowledged.extend(acked);
        max_rotation = max_rotation.max(rotated);
    }
    // Reads are fresh within the documented bound.
    tokio::time::sleep(tresor::service::METADATA_TTL + std::time::Duration::from_millis(100)).await;
    let info = admin.key("load").await.expect("key after recovery");
    assert!(
        info.primary_version >= max_rotation,
        "an acknowledged rotation was lost: {} < {max_rotation}",
        info.primary_version
    );
    let mut billing_a = fixture.client_at(a.addr, BILLING).await;
    let mut billing_b = fixture.client_at(b.addr, BILLING).await;
    for (plaintext, ciphertext) in &acknowledged {
        for client in [&mut billing_a, &mut billing_b] {
            client
                .assert_decrypts("load", ciphertext, &[], plaintext.as_bytes())
                .await;
        }
    }
    drop((admin, probe, billing_a, billing_b));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_seals_every_replica_even_when_one_is_down() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.fresh_database().await;
    let fixture = Fixture::new();
    let (a, b) = fixture.two_replicas(&url).await;
    let mut admin_a = fixture.client_at(a.addr, ADMIN).await;
    let mut admin_b = fixture.client_at(b.addr, ADMIN).await;
    let admin = Tresor::at(&fixture, a.addr, ADMIN, fixture.dir.path());
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url_of = |port: u16| format!("https://localhost:{port}");
    let out = admin.run(&[
        "seal",
        "--yes",
        "--replica",
        &url_of(down),
        "--replica",
        &url_of(b.addr.port()),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one replica was unreachable: {stdout}"
    );
    assert!(
        stdout.contains(&format!("sealed  {}", url_of(a.addr.port()))),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("FAILED  {}", url_of(down))),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("sealed  {}", url_of(b.addr.port()))),
        "{stdout}"
    );
    for admin in [&mut admin_a, &mut admin_b] {
        let status = admin.status().await;
        assert!(status.sealed);
    }
    drop((admin_a, admin_b));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_move_a_keystore_from_sled_to_postgres_and_back() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.fresh_database().await;
    // A sled keystore with data.
    let server = common::TestServer::start().await;
    let mut admin = server.admin().await;
    let mut billing = server.client(BILLING).await;
    let mut sealed = Vec::new();
    for k in 0..5 {
        let key = format!("m/{k}");
        admin.create_key(&key, BILLING).await;
        billing.rotate(&key).await.expect("rotate");
        let out = billing
            .encrypt(&key, key.as_bytes(), &[])
            .await
            .expect("encrypt");
        sealed.push((key, out.ciphertext));
    }
    let sdk = server.fixture.sdk_at(server.addr, ADMIN).await;
    let from_sled = sdk.create_backup().await.expect("backup from sled");
    drop((admin, billing, sdk));
    let fixture = server.stop().await;

    // Restore into PostgreSQL with the binary, serve from it.
    let file = fixture.dir.path().join("sled.tbk");
    std::fs::write(&file, &from_sled).expect("write");
    let out = common::cli::command([
        "backup",
        "restore",
        file.to_str().expect("utf8"),
        "--store",
        &url,
    ])
    .arg("--master-key-file")
    .arg(fixture.master_key_file())
    .output()
    .expect("restore");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replica = Replica::start(fixture.postgres_settings(&url, "pg")).await;
    let mut billing = fixture.client_at(replica.addr, BILLING).await;
    for (key, ciphertext) in &sealed {
        billing
            .assert_decrypts(key, ciphertext, &[], key.as_bytes())
            .await;
    }
    // And back: a backup from PostgreSQL restored into a new sled keystore.
    let sdk = fixture.sdk_at(replica.addr, ADMIN).await;
    let from_pg = sdk.create_backup().await.expect("backup from pg");
    drop((billing, sdk));
    replica.stop().await;
    let master = tresor::master_key::MasterKeySpec::File(fixture.master_key_file())
        .open()
        .await
        .expect("master");
    let sled_dir = fixture.dir.path().join("back-to-sled");
    let target: Arc<dyn KeyStore> =
        Arc::new(tresor::store::SledKeyStore::open(&sled_dir).expect("sled"));
    let summary = tresor::service::restore_backup(&from_pg, master.as_ref(), target, false)
        .await
        .expect("restore into sled");
    assert_eq!(summary.keys, 5);
    assert_eq!(summary.versions, 10);
    let mut settings = fixture.settings(1 << 20);
    settings.store = tresor::config::StoreSpec::Sled(sled_dir);
    let server = common::TestServer::start_with_settings(fixture, settings).await;
    let mut billing = server.client(BILLING).await;
    for (key, ciphertext) in &sealed {
        billing
            .assert_decrypts(key, ciphertext, &[], key.as_bytes())
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_reach_a_tls_only_database_and_verify_its_certificate() {
    let db_ca = tresor::pki::CertificateAuthority::generate("database CA").expect("ca");
    let Some(pg) = Postgres::start_tls_only(&db_ca) else {
        return;
    };
    let url = format!("{}?sslmode=require", pg.fresh_database_via_socket().await);
    let fixture = Fixture::new();
    let mut settings = fixture.postgres_settings(&url, "tls");
    settings.store = tresor::config::StoreSpec::Postgres {
        url: url.clone(),
        replica: "tls".into(),
        ca_pem: Some(db_ca.cert_pem()),
    };
    let replica = Replica::start(settings).await;
    let mut admin = fixture.client_at(replica.addr, ADMIN).await;
    admin.create_key("over-tls", BILLING).await;
    let mut billing = fixture.client_at(replica.addr, BILLING).await;
    billing
        .round_trip("over-tls", b"x", &[])
        .await
        .expect("round trip over TLS");
    drop((admin, billing));
    replica.stop().await;

    // Without TLS the database refuses us; with another CA we refuse it.
    let plain = url.replace("sslmode=require", "sslmode=disable");
    assert!(PostgresKeyStore::connect(&plain, "plain").await.is_err());
    let stranger = tresor::pki::CertificateAuthority::generate("other CA").expect("ca");
    let wrong = tresor::store::DbTls::from_ca_pem(&stranger.cert_pem()).expect("tls");
    assert!(
        PostgresKeyStore::connect_with_tls(&url, "wrong-ca", wrong)
            .await
            .is_err()
    );
}

/// The security review's finding: a version destroyed through one replica
/// stayed unwrapped in the other replicas' DEK caches until LRU eviction.
/// The change notification now takes it out of every replica's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_version_leaves_every_replicas_memory() {
    use tresor::identity::Identity;
    use tresor::model::KeyId;
    use tresor_crypto::Context;

    let Some(pg) = Postgres::start() else { return };
    let url = pg.fresh_database().await;
    let fixture = Fixture::new();
    let a = tresor::server::Server::prepare(fixture.postgres_settings(&url, "a"))
        .await
        .expect("replica a");
    let b = tresor::server::Server::prepare(fixture.postgres_settings(&url, "b"))
        .await
        .expect("replica b");
    let (a, b) = (a.service().clone(), b.service().clone());
    let admin = Identity::parse(ADMIN).expect("admin");
    let billing = Identity::parse(BILLING).expect("billing");
    let id = KeyId::parse("destroyed/elsewhere").expect("key id");
    let context = Context::new();

    a.create_key(&admin, &id, &billing, "")
        .await
        .expect("create");
    let old = b
        .encrypt(&billing, &id, b"v1", &context)
        .await
        .expect("encrypt v1 on b");
    assert_eq!(b.cached_dek_count(), 1, "b holds version 1's DEK");
    a.rotate_key(&admin, &id).await.expect("rotate");
    a.set_min_decryption_version(&admin, &id, KeyVersion::new(2).expect("v2"))
        .await
        .expect("min version");
    a.destroy_key_version(&admin, &id, KeyVersion::FIRST)
        .await
        .expect("destroy v1");
    within_bound(|| {
        let b = b.clone();
        async move { (b.cached_dek_count() == 0).then_some(()) }
    })
    .await;
    assert!(
        b.decrypt(&billing, &id, &old.ciphertext, &context)
            .await
            .is_err(),
        "b refuses the destroyed version"
    );
}
