//! Tests of control-plane metering (issue 18, item 5): a non-admin listing
//! served by the owner index, the control-plane rate limit, the cap on
//! versions per key, and `/metrics` (cached key count, connection cap).

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::tests::{ADMIN, ManualClock, OWNER, ident, key_id, open_service};
use crate::anomaly::Rate;
use crate::error::{Error, Precondition};
use crate::model::{KeyVersion, Rpc};

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock(AtomicI64::new(1_000_000)))
}

#[tokio::test]
async fn a_non_admin_listing_reads_no_other_owners_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, store) = open_service(dir.path(), clock()).await;
    let (admin, owner, other) = (ident(ADMIN), ident(OWNER), ident("spiffe://unit/other"));
    for raw in ["a/1", "z/2"] {
        service
            .create_key(&admin, &key_id(raw), &owner, "")
            .await
            .expect("create");
    }
    service
        .create_key(&admin, &key_id("m/theirs"), &other, "")
        .await
        .expect("create");
    // A record no listing could decode, between the owner's keys: a scan
    // of the keystore reads it, the owner index never names it.
    store.put_raw_record("m/unreadable", b"not a key record");
    let page = service
        .list_keys(&owner, "", 0, None)
        .await
        .expect("the owner's listing reads only the owner's keys");
    let ids: Vec<&str> = page.keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["a/1", "z/2"]);
    assert!(
        service.list_keys(&admin, "", 0, None).await.is_err(),
        "an admin's listing scans every record, the unreadable one too"
    );
}

#[tokio::test]
async fn non_admins_are_rate_limited_on_the_control_plane_and_admins_never() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (admin, owner) = (ident(ADMIN), ident(OWNER));
    let mut options = super::tests::options();
    options.guard.control_plane_rate = Some(Rate(5));
    let master_path = dir.path().join("master.key");
    crate::master_key::FileMasterKey::generate(&master_path).expect("master key");
    let master = Arc::new(crate::master_key::FileMasterKey::open(&master_path).expect("open"));
    let store = Arc::new(crate::store::SledKeyStore::open(&dir.path().join("data")).expect("sled"));
    let service = super::Service::open_with_clock(store, master, options, clock())
        .await
        .expect("open");
    let mut admitted = 0;
    for _ in 0..50 {
        admitted += usize::from(service.admit(&owner, Rpc::ListKeys, 1).await.is_ok());
    }
    assert_eq!(admitted, 5);
    assert!(matches!(
        service.admit(&owner, Rpc::RotateKey, 1).await,
        Err(Error::RateLimited(_))
    ));
    for _ in 0..50 {
        assert!(
            service.admit(&admin, Rpc::Seal, 1).await.is_ok(),
            "admins are not limited"
        );
    }
    assert!(
        service.admit(&owner, Rpc::Encrypt, 1).await.is_ok(),
        "the data plane has its own limits"
    );
}

#[tokio::test]
async fn rotate_key_stops_at_the_version_cap_until_old_versions_are_destroyed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master_path = dir.path().join("master.key");
    crate::master_key::FileMasterKey::generate(&master_path).expect("master key");
    let master = Arc::new(crate::master_key::FileMasterKey::open(&master_path).expect("open"));
    let store = Arc::new(crate::store::SledKeyStore::open(&dir.path().join("data")).expect("sled"));
    let mut options = super::tests::options();
    options.lifecycle.max_versions_per_key = 3;
    let service = super::Service::open_with_clock(store, master, options, clock())
        .await
        .expect("open");
    let (admin, owner, id) = (ident(ADMIN), ident(OWNER), key_id("capped"));
    service
        .create_key(&admin, &id, &owner, "")
        .await
        .expect("create");
    for _ in 0..2 {
        service.rotate_key(&owner, &id).await.expect("rotate");
    }
    let refused = service.rotate_key(&owner, &id).await;
    assert!(
        matches!(
            refused,
            Err(Error::FailedPrecondition(Precondition::TooManyVersions {
                max: 3
            }))
        ),
        "{refused:?}"
    );
    assert!(service.rotate_key(&admin, &id).await.is_err(), "admins too");
    service
        .set_min_decryption_version(&admin, &id, KeyVersion::new(2).expect("v2"))
        .await
        .expect("raise");
    service
        .destroy_key_version(&admin, &id, KeyVersion::FIRST)
        .await
        .expect("destroy");
    let key = service.rotate_key(&owner, &id).await.expect("room again");
    assert_eq!(key.primary_version.get(), 4);
}

fn keys_gauge(text: &str) -> String {
    text.lines()
        .find(|line| line.starts_with("tresor_keys "))
        .unwrap_or_else(|| panic!("no tresor_keys in {text}"))
        .to_owned()
}

#[tokio::test]
async fn a_scrape_reuses_the_key_count_instead_of_counting_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, _store) = open_service(dir.path(), clock()).await;
    let (admin, owner) = (ident(ADMIN), ident(OWNER));
    service
        .create_key(&admin, &key_id("one"), &owner, "")
        .await
        .expect("create");
    assert_eq!(keys_gauge(&service.render_metrics().await), "tresor_keys 1");
    service
        .create_key(&admin, &key_id("two"), &owner, "")
        .await
        .expect("create");
    assert_eq!(
        keys_gauge(&service.render_metrics().await),
        "tresor_keys 1",
        "counted again within KEY_COUNT_TTL"
    );
}

#[tokio::test]
async fn metrics_serve_a_bounded_number_of_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, _store) = open_service(dir.path(), clock()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(crate::server::ops_http::serve_metrics(
        listener,
        Arc::new(service),
    ));
    let mut idle = Vec::new();
    for _ in 0..crate::server::ops_http::MAX_METRICS_CONNECTIONS {
        idle.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut late = tokio::net::TcpStream::connect(addr).await.expect("connect");
    late.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let waited = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        late.read_to_end(&mut answer),
    )
    .await;
    assert!(
        waited.is_err(),
        "a connection beyond the cap was served: {}",
        String::from_utf8_lossy(&answer)
    );
    // One slot frees: the waiting connection is served.
    drop(idle.pop());
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        late.read_to_end(&mut answer),
    )
    .await
    .expect("served once a slot is free")
    .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.abort();
}

#[tokio::test]
async fn a_key_left_due_for_rotation_over_an_hour_counts_as_overdue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let (service, _store) = open_service(dir.path(), clock.clone()).await;
    let admin = ident(ADMIN);
    let id = key_id("k/rotated");
    service
        .create_key(&admin, &id, &ident(OWNER), "")
        .await
        .expect("create");
    let hour = crate::model::RotationPeriod::from_secs(3600).expect("period");
    service
        .set_rotation_period(&admin, &id, Some(hour))
        .await
        .expect("period");
    let overdue = |text: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix("tresor_keys_rotation_overdue "))
            .map(str::to_owned)
    };
    // Due, but not for long: the lifecycle check has time to rotate it.
    clock
        .0
        .fetch_add(3600 + 60, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        overdue(&service.render_metrics().await).as_deref(),
        Some("0")
    );
    // No rotation ran (this service has no lifecycle task): over an hour late.
    clock.0.fetch_add(
        super::ROTATION_OVERDUE_AFTER,
        std::sync::atomic::Ordering::SeqCst,
    );
    assert_eq!(
        overdue(&service.render_metrics().await).as_deref(),
        Some("1")
    );
}
