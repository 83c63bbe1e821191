//! Admin-only calls: service identities are denied every one, unknown keys
//! are NOT_FOUND to admins, bad requests are INVALID_ARGUMENT.

use super::*;

#[tokio::test]
async fn a_service_identity_is_denied_every_admin_only_call() {
    let (_server, mut admin, mut billing) = server_with_billing_key().await;
    let denied = Code::PermissionDenied;
    let create = |key_id: &str| proto::CreateKeyRequest {
        key_id: key_id.into(),
        owner: BILLING.into(),
        description: String::new(),
        ..Default::default()
    };
    assert_code(
        into_inner(billing.admin.create_key(create("billing/new")).await),
        denied,
    );
    for (call, outcome) in admin_only_calls_on(&mut billing, KEY).await {
        assert_eq!(outcome, Err(denied), "{call}");
    }
    assert_code(
        into_inner(billing.admin.seal(proto::SealRequest {}).await),
        denied,
    );
    assert_code(
        into_inner(billing.admin.unseal(proto::UnsealRequest::default()).await),
        denied,
    );
    assert_code(status(&mut billing).await, denied);
    // Not even ALREADY_EXISTS: a taken id looks like any other.
    assert_code(
        into_inner(billing.admin.create_key(create(KEY)).await),
        denied,
    );

    // Nothing changed.
    let info = admin.key(KEY).await.expect("get key");
    assert_eq!(info.state(), KeyState::Enabled);
    assert!(info.grants.is_empty());
    assert_eq!(info.deletion_at_unix, 0);
    let status = status(&mut admin).await.expect("status");
    assert!(!status.sealed);
    assert_eq!(status.key_count, 1);
    assert_code(admin.key("billing/new").await, Code::NotFound);
}

#[tokio::test]
async fn the_owner_may_rotate_and_read_its_own_key() {
    let (_server, _admin, mut billing) = server_with_billing_key().await;
    let info = billing.key(KEY).await.expect("owner may read");
    assert_eq!(info.key_id, KEY);
    assert_eq!(info.owner, BILLING);
    assert_eq!(info.description, "test");
    assert_eq!(info.state(), KeyState::Enabled);
    assert_eq!(info.primary_version, 1);
    assert_eq!(info.min_decryption_version, 1);
    assert!((now_unix() - info.created_at_unix).abs() < 60, "{info:?}");
    assert_eq!(info.versions.len(), 1);
    assert_eq!(info.versions[0].version, 1);
    assert_eq!(info.versions[0].created_at_unix, info.created_at_unix);
    let rotated = billing.rotate(KEY).await.expect("owner may rotate");
    assert_eq!(rotated.primary_version, 2);
    assert_eq!(billing.key(KEY).await.expect("read").primary_version, 2);
    let sealed = billing
        .encrypt(KEY, b"under v2", &[])
        .await
        .expect("encrypt");
    assert_eq!(sealed.key_version, 2);
}

#[tokio::test]
async fn create_key_with_a_taken_id_is_already_exists() {
    let (_server, mut admin, _billing) = server_with_billing_key().await;
    let status = assert_code(
        into_inner(
            admin
                .admin
                .create_key(proto::CreateKeyRequest {
                    key_id: KEY.into(),
                    owner: SHIPPING.into(),
                    description: "hijack".into(),
                    ..Default::default()
                })
                .await,
        ),
        Code::AlreadyExists,
    );
    assert!(status.message().contains("exists"), "{status:?}");
    let info = admin.key(KEY).await.expect("get");
    assert_eq!(info.owner, BILLING, "the existing key is untouched");
    assert_eq!(info.description, "test");
}

#[tokio::test]
async fn admin_calls_on_an_unknown_key_are_not_found() {
    let (_server, mut admin, _billing) = server_with_billing_key().await;
    let nf = Code::NotFound;
    assert_code(admin.key(MISSING).await, nf);
    assert_code(admin.rotate(MISSING).await, nf);
    for (call, outcome) in admin_only_calls_on(&mut admin, MISSING).await {
        assert_eq!(outcome, Err(nf), "{call}");
    }
    assert_eq!(status(&mut admin).await.expect("status").key_count, 1);
}

#[tokio::test]
async fn create_key_with_a_bad_key_id_or_owner_is_invalid_argument() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let create = |key_id: String, owner: String| proto::CreateKeyRequest {
        key_id,
        owner,
        description: String::new(),
        ..Default::default()
    };
    let long_id = "k".repeat(129);
    for bad_id in [
        "",
        "/abs",
        "has space",
        long_id.as_str(),
        "semi;colon",
        "ünï",
    ] {
        let result = admin
            .admin
            .create_key(create(bad_id.into(), BILLING.into()))
            .await;
        assert_code(into_inner(result), Code::InvalidArgument);
    }
    let long_owner = "o".repeat(1025);
    for bad_owner in ["", "spiffe://test.tresor/new\nline", long_owner.as_str()] {
        let result = admin
            .admin
            .create_key(create("ok/id".into(), bad_owner.into()))
            .await;
        let status = assert_code(into_inner(result), Code::InvalidArgument);
        assert!(status.message().contains("owner"), "{status:?}");
    }
    let long_description = proto::CreateKeyRequest {
        key_id: "ok/id".into(),
        owner: BILLING.into(),
        description: "d".repeat(1025),
        ..Default::default()
    };
    let result = admin.admin.create_key(long_description).await;
    assert_code(into_inner(result), Code::InvalidArgument);
    for bad_id in ["", "/abs", "has space"] {
        assert_code(admin.key(bad_id).await, Code::InvalidArgument);
        assert_code(admin.rotate(bad_id).await, Code::InvalidArgument);
    }
    // The longest valid id is accepted, and nothing else was created.
    let longest = "k".repeat(128);
    admin.create_key(&longest, BILLING).await;
    assert_eq!(status(&mut admin).await.expect("status").key_count, 1);
}

#[tokio::test]
async fn admins_manage_keys_but_cannot_use_a_service_key() {
    let (_server, mut admin, mut billing) = server_with_billing_key().await;
    let sealed = billing
        .encrypt(KEY, b"billing only", &[])
        .await
        .expect("encrypt");
    let denied = Code::PermissionDenied;
    assert_code(admin.encrypt(KEY, b"x", &[]).await, denied);
    assert_code(admin.decrypt(KEY, &sealed.ciphertext, &[]).await, denied);
    assert_code(
        re_encrypt(&mut admin, KEY, &sealed.ciphertext).await,
        denied,
    );
    assert_code(data_key(&mut admin, KEY).await, denied);
    // ... while managing it is fine.
    assert!(admin.rotate(KEY).await.is_ok());
    assert!(admin.key(KEY).await.is_ok());
}

/// Makes, as `clients`, every admin-only call on `key_id` (each a harmless
/// change had it been allowed) and returns each call's name and outcome:
/// `Ok(())` or the status code. The one table the denied and not-found
/// tests share.
async fn admin_only_calls_on(
    clients: &mut Clients,
    key_id: &str,
) -> Vec<(&'static str, Result<(), Code>)> {
    fn code<T>(result: Result<T, tonic::Status>) -> Result<(), Code> {
        result.map(drop).map_err(|status| status.code())
    }
    let grant = || grant_req(key_id, SHIPPING, &ops(&[Operation::Decrypt]));
    vec![
        (
            "DisableKey",
            code(clients.admin.disable_key(key_req(key_id)).await),
        ),
        (
            "EnableKey",
            code(clients.admin.enable_key(key_req(key_id)).await),
        ),
        (
            "SetMinDecryptionVersion",
            code(set_min_version(clients, key_id, 1).await),
        ),
        (
            "ScheduleKeyDeletion",
            code(schedule_deletion(clients, key_id, 7).await),
        ),
        (
            "CancelKeyDeletion",
            code(clients.admin.cancel_key_deletion(key_req(key_id)).await),
        ),
        (
            "CreateGrant",
            code(clients.admin.create_grant(grant()).await),
        ),
        (
            "RevokeGrant",
            code(clients.admin.revoke_grant(grant()).await),
        ),
    ]
}
