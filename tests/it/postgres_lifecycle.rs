//! Key lifecycle automation on the PostgreSQL keystore, with a real
//! PostgreSQL started here: of two replicas, exactly one rotates each due
//! key; a destroyed version's bytes leave the database files after
//! `tresor keystore compact`.

use crate::common;

use common::postgres::Postgres;
use common::{
    ADMIN, BILLING, Fixture, Replica, eventually, found_in_files, manual_lifecycle, proto,
};
use tresor::store::{KeyStore, PostgresKeyStore};

const KEYS: usize = 12;
const HOUR: u64 = 3600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_replicas_exactly_one_rotates_each_due_key() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.fresh_database().await;
    let fixture = Fixture::new();
    let mut settings_a = fixture.postgres_settings(&url, "a");
    let clock = manual_lifecycle(&mut settings_a);
    let mut settings_b = fixture.postgres_settings(&url, "b");
    settings_b.service.lifecycle = settings_a.service.lifecycle.clone();
    let a = Replica::start(settings_a).await;
    let b = Replica::start(settings_b).await;
    let mut admin = fixture.client_at(a.addr, ADMIN).await;
    for n in 0..KEYS {
        admin
            .admin
            .create_key(proto::CreateKeyRequest {
                key_id: format!("race/{n}"),
                owner: BILLING.into(),
                description: String::new(),
                rotation_period_seconds: HOUR,
                ..Default::default()
            })
            .await
            .expect("create");
    }
    // Both replicas look every 100 ms; the clock jumps for both at once.
    for round in 2..=3u32 {
        clock.advance(HOUR as i64);
        for n in 0..KEYS {
            let key = format!("race/{n}");
            eventually("the rotation", || {
                let mut admin = admin.clone();
                let key = key.clone();
                async move { (admin.key(&key).await.ok()?.primary_version == round).then_some(()) }
            })
            .await;
        }
    }
    // More passes of both replicas at the same time add nothing.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for n in 0..KEYS {
        let info = admin.key(&format!("race/{n}")).await.expect("get");
        assert_eq!(info.primary_version, 3, "race/{n}");
        assert_eq!(info.versions.len(), 3);
    }
    drop(admin);
    a.stop().await;
    b.stop().await;
    let mut per_replica = [0usize; 2];
    let mut per_key = std::collections::BTreeMap::<String, usize>::new();
    for (index, replica) in ["a", "b"].into_iter().enumerate() {
        let file = fixture
            .dir
            .path()
            .join(format!("audit-{replica}"))
            .join("audit.jsonl");
        for record in common::audit_records(&file) {
            if record["operation"] == "key_rotated_automatically" {
                per_replica[index] += 1;
                *per_key
                    .entry(record["key_id"].as_str().unwrap_or_default().to_owned())
                    .or_default() += 1;
            }
        }
    }
    assert_eq!(per_key.len(), KEYS);
    assert!(
        per_key.values().all(|count| *count == 2),
        "each key rotated once per period, by one replica: {per_key:?}"
    );
    println!("automatic rotations by replica a and b: {per_replica:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_version_leaves_the_database_files_after_compaction() {
    let Some(pg) = Postgres::start() else { return };
    let Some(data) = pg.data_dir() else {
        eprintln!("skipping: the database files of an outside server cannot be read");
        return;
    };
    let url = pg.fresh_database().await;
    let fixture = Fixture::new();
    let replica = Replica::start(fixture.postgres_settings(&url, "a")).await;
    let mut admin = fixture.client_at(replica.addr, ADMIN).await;
    let mut billing = fixture.client_at(replica.addr, BILLING).await;
    admin.create_key("erase/pg", BILLING).await;
    admin.create_key("erase/pg-kept", BILLING).await;
    admin.rotate("erase/pg").await.expect("rotate");
    let new = billing
        .encrypt("erase/pg", b"kept", &[])
        .await
        .expect("encrypt");

    let probe = PostgresKeyStore::connect(&url, "probe")
        .await
        .expect("probe");
    let first_dek = |key_id: &'static str| {
        let probe = probe.clone();
        async move {
            let key = tresor::model::KeyId::parse(key_id).expect("id");
            probe
                .version(&key, tresor::model::KeyVersion::FIRST)
                .await
                .expect("read")
                .map(|stored| stored.wrapped_dek)
        }
    };
    let doomed = first_dek("erase/pg").await.expect("v1");
    let kept = first_dek("erase/pg-kept").await.expect("kept");
    // The table files are PostgreSQL's `base/` directory; the write-ahead
    // log (`pg_wal/`) keeps removed rows until it recycles its segments,
    // as SECURITY.md says.
    let base = data.join("base");
    pg.checkpoint().await;
    assert!(
        found_in_files(&base, &doomed),
        "the search sees the DEK first"
    );

    admin.set_min_version("erase/pg", 2).await;
    admin.destroy_version("erase/pg", 1).await.expect("destroy");
    assert_eq!(first_dek("erase/pg").await, None);

    // Online: the replica keeps serving while the tables are rewritten.
    let compact = common::cli::command(["keystore", "compact", "--store", &url])
        .output()
        .expect("run tresor keystore compact");
    assert!(
        compact.status.success(),
        "{}",
        String::from_utf8_lossy(&compact.stderr)
    );
    pg.checkpoint().await;
    assert!(
        !found_in_files(&base, &doomed),
        "the destroyed DEK is in no table file"
    );
    assert!(found_in_files(&base, &kept));
    // It still decrypts after compaction.
    billing
        .assert_decrypts("erase/pg", &new.ciphertext, &[], b"kept")
        .await;
    drop((admin, billing));
    replica.stop().await;
}

/// The stored encryption count of version 1 of `key_id`, read with SQL.
async fn stored_count(url: &str, key_id: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .query_opt(
            "SELECT encryptions FROM tresor_usage WHERE key_id = $1 AND version = 1",
            &[&key_id],
        )
        .await
        .expect("query")
        .map_or(0, |row| row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_counts_survive_kill_9_short_of_at_most_the_last_flush() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.fresh_database().await;
    let fixture = Fixture::new();
    // The real binary on PostgreSQL, so that it can be killed.
    let mut flags = fixture.serve_flags();
    let at = flags
        .iter()
        .position(|flag| flag == "--data-dir")
        .expect("--data-dir");
    let audit = fixture.dir.path().join("audit").join("audit.jsonl");
    flags.splice(
        at..at + 2,
        [
            "--store".to_owned(),
            url.clone(),
            "--audit-file".to_owned(),
            audit.display().to_string(),
            // Exact counts (a limit up to 65,536 is counted one by one;
            // above it, in sampled quanta).
            "--max-encryptions-per-version".to_owned(),
            "65536".to_owned(),
        ],
    );
    let server = common::ServeProcess::start_with(&flags, &[]);
    let mut admin = fixture.client_at(server.addr, ADMIN).await;
    let mut billing = fixture.client_at(server.addr, BILLING).await;
    admin.create_key("usage/crash", BILLING).await;
    for _ in 0..30 {
        billing
            .encrypt("usage/crash", b"x", &[])
            .await
            .expect("encrypt");
    }
    eventually("the counts reach the database", || {
        let url = url.clone();
        async move { (stored_count(&url, "usage/crash").await == 30).then_some(()) }
    })
    .await;
    for _ in 0..5 {
        billing
            .encrypt("usage/crash", b"x", &[])
            .await
            .expect("encrypt");
    }
    drop((admin, billing));
    server.kill_9();
    let after_crash = stored_count(&url, "usage/crash").await;
    assert!(
        (30..=35).contains(&after_crash),
        "stored counts survive a crash; only the unflushed ones (at most 5) may be lost: {after_crash}"
    );

    // A restarted server adds to the stored count.
    let server = common::ServeProcess::start_with(&flags, &[]);
    let mut billing = fixture.client_at(server.addr, BILLING).await;
    billing
        .encrypt("usage/crash", b"x", &[])
        .await
        .expect("encrypt after restart");
    drop(billing);
    assert!(server.terminate().success());
    assert_eq!(stored_count(&url, "usage/crash").await, after_crash + 1);
}
