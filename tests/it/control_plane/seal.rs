//! Seal and unseal with health, GetStatus, and concurrent rotations.

use super::*;

// ---------------------------------------------------------------------------
// Seal / unseal
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_sealed_service_refuses_key_material_and_reports_not_serving() {
    let (_server, mut admin, mut billing) = server_with_billing_key().await;
    let old = billing
        .encrypt(KEY, b"sealed away", &[])
        .await
        .expect("encrypt");
    wait_for_health(&admin, "tresor.v1.Crypto", ServingStatus::Serving).await;
    wait_for_health(&admin, "", ServingStatus::Serving).await;

    let sealed = into_inner(admin.admin.seal(proto::SealRequest {}).await).expect("seal");
    assert!(sealed.sealed);
    assert!(status(&mut admin).await.expect("status").sealed);

    let un = Code::Unavailable;
    for status in [
        assert_code(billing.encrypt(KEY, b"x", &[]).await, un),
        assert_code(billing.decrypt(KEY, &old.ciphertext, &[]).await, un),
        assert_code(data_key(&mut billing, KEY).await, un),
        assert_code(re_encrypt(&mut billing, KEY, &old.ciphertext).await, un),
        assert_code(
            into_inner(
                admin
                    .admin
                    .create_key(proto::CreateKeyRequest {
                        key_id: "billing/while-sealed".into(),
                        owner: BILLING.into(),
                        description: String::new(),
                        ..Default::default()
                    })
                    .await,
            ),
            un,
        ),
        assert_code(admin.rotate(KEY).await, un),
        assert_code(billing.rotate(KEY).await, un),
    ] {
        assert!(status.message().contains("sealed"), "{status:?}");
    }
    // A service identity cannot unseal.
    assert_code(
        into_inner(billing.admin.unseal(proto::UnsealRequest::default()).await),
        Code::PermissionDenied,
    );
    wait_for_health(&admin, "tresor.v1.Crypto", ServingStatus::NotServing).await;
    wait_for_health(&admin, "", ServingStatus::NotServing).await;

    let unsealed =
        into_inner(admin.admin.unseal(proto::UnsealRequest::default()).await).expect("unseal");
    assert!(!unsealed.sealed);
    assert!(!status(&mut admin).await.expect("status").sealed);
    wait_for_health(&admin, "tresor.v1.Crypto", ServingStatus::Serving).await;
    wait_for_health(&admin, "", ServingStatus::Serving).await;

    let opened = billing
        .decrypt(KEY, &old.ciphertext, &[])
        .await
        .expect("decrypts after unseal");
    assert_eq!(opened.plaintext, b"sealed away");
    assert_eq!(admin.rotate(KEY).await.expect("rotate").primary_version, 2);
    assert_code(admin.key("billing/while-sealed").await, Code::NotFound);
}

#[tokio::test]
async fn seal_and_unseal_are_idempotent() {
    let (_server, mut admin, mut billing) = server_with_billing_key().await;
    let old = billing.encrypt(KEY, b"twice", &[]).await.expect("encrypt");
    for _ in 0..2 {
        let sealed = into_inner(admin.admin.seal(proto::SealRequest {}).await).expect("seal");
        assert!(sealed.sealed);
    }
    assert_code(
        billing.decrypt(KEY, &old.ciphertext, &[]).await,
        Code::Unavailable,
    );
    for _ in 0..2 {
        let unsealed =
            into_inner(admin.admin.unseal(proto::UnsealRequest::default()).await).expect("unseal");
        assert!(!unsealed.sealed);
    }
    assert_eq!(
        billing
            .decrypt(KEY, &old.ciphertext, &[])
            .await
            .expect("decrypt")
            .plaintext,
        b"twice"
    );
    wait_for_health(&admin, "tresor.v1.Crypto", ServingStatus::Serving).await;
}

#[tokio::test]
async fn get_status_counts_keys_and_reports_the_server_version() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let status0 = status(&mut admin).await.expect("status");
    assert!(!status0.sealed);
    assert_eq!(status0.key_count, 0);
    assert!(!status0.server_version.is_empty());
    assert_eq!(status0.server_version, env!("CARGO_PKG_VERSION"));
    for i in 0..3 {
        admin.create_key(&format!("k/{i}"), BILLING).await;
    }
    admin.rotate("k/0").await.expect("rotate");
    assert_eq!(
        status(&mut admin).await.expect("status").key_count,
        3,
        "versions are not keys"
    );
    // Sealed, the count is still reported.
    let sealed = into_inner(admin.admin.seal(proto::SealRequest {}).await).expect("seal");
    assert_eq!(sealed.key_count, 3);
    assert_eq!(sealed.server_version, status0.server_version);
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_are_atomic_and_each_version_is_usable() {
    let (_server, mut admin, billing) = server_with_billing_key().await;
    let mut tasks = Vec::new();
    for i in 0..20u32 {
        let mut client = billing.clone();
        tasks.push(tokio::spawn(async move {
            let rotated = client.rotate(KEY).await.expect("rotate");
            let sealed = client
                .encrypt(KEY, format!("task {i}").as_bytes(), &[])
                .await
                .expect("encrypt");
            (i, rotated.primary_version, sealed)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }

    let returned: BTreeSet<u32> = results.iter().map(|(_, v, _)| *v).collect();
    assert_eq!(
        returned,
        (2..=21).collect::<BTreeSet<u32>>(),
        "each rotation made its own version"
    );
    let info = admin.key(KEY).await.expect("get");
    assert_eq!(info.primary_version, 21);
    let versions: Vec<u32> = info.versions.iter().map(|v| v.version).collect();
    assert_eq!(versions, (1..=21).collect::<Vec<u32>>());

    let mut billing = billing;
    for (i, version, sealed) in &results {
        assert!(sealed.key_version >= *version);
        let opened = billing
            .decrypt(KEY, &sealed.ciphertext, &[])
            .await
            .expect("decrypt");
        assert_eq!(opened.plaintext, format!("task {i}").as_bytes());
        assert_eq!(opened.key_version, sealed.key_version);
    }
    let last = billing.encrypt(KEY, b"last", &[]).await.expect("encrypt");
    assert_eq!(last.key_version, 21);
    assert_eq!(
        billing
            .decrypt(KEY, &last.ciphertext, &[])
            .await
            .expect("decrypt")
            .key_version,
        21
    );
    assert_eq!(
        admin
            .rotate(KEY)
            .await
            .expect("rotate after")
            .primary_version,
        22
    );
}
