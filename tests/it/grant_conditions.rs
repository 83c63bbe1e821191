//! Conditional grants (issue 22, grants): context constraints with AWS
//! semantics, SPIFFE-ID path patterns, and expiry, through the real server;
//! a denial reads the same whichever condition failed.

use crate::common;

use common::proto::{self, Operation};
use common::{BILLING, SHIPPING, TestServer, assert_code, ctx};
use tonic::Code;

const KEY: &str = "billing/records";
const POD_A: &str = "spiffe://test.tresor/ns/prod/sa/reports";
const POD_B: &str = "spiffe://test.tresor/ns/prod/sa/exports";
const OTHER_NS: &str = "spiffe://test.tresor/ns/production/sa/reports";

fn grant(grantee: &str, operation: Operation) -> proto::GrantRequest {
    proto::GrantRequest {
        key_id: KEY.into(),
        grantee: grantee.into(),
        operations: vec![operation as i32],
        ..Default::default()
    }
}

async fn create(
    admin: &mut common::Clients,
    request: proto::GrantRequest,
) -> Result<proto::KeyInfo, tonic::Status> {
    admin
        .admin
        .create_grant(request)
        .await
        .map(tonic::Response::into_inner)
}

/// A ciphertext of KEY (owned by BILLING) under `context`.
async fn sealed(billing: &mut common::Clients, context: &[(&str, &str)]) -> Vec<u8> {
    billing
        .encrypt(KEY, b"row", context)
        .await
        .expect("encrypt")
        .ciphertext
}

#[tokio::test]
async fn context_constraints_allow_only_matching_requests_and_deny_alike() {
    let (server, mut admin, mut billing) = TestServer::with_billing_key(KEY).await;
    let tenant_42 = sealed(&mut billing, &[("tenant", "42")]).await;
    let tenant_42_more = sealed(&mut billing, &[("tenant", "42"), ("table", "invoices")]).await;
    let tenant_43 = sealed(&mut billing, &[("tenant", "43")]).await;
    let mut shipping = server.client(SHIPPING).await;
    let subset = proto::GrantRequest {
        context_subset: ctx(&[("tenant", "42")]),
        ..grant(SHIPPING, Operation::Decrypt)
    };
    let info = create(&mut admin, subset).await.expect("grant");
    assert_eq!(info.grants[0].context_subset, ctx(&[("tenant", "42")]));
    shipping
        .assert_decrypts(KEY, &tenant_42, &[("tenant", "42")], b"row")
        .await;
    shipping
        .assert_decrypts(
            KEY,
            &tenant_42_more,
            &[("tenant", "42"), ("table", "invoices")],
            b"row",
        )
        .await;
    let refused = assert_code(
        shipping.decrypt(KEY, &tenant_43, &[("tenant", "43")]).await,
        Code::PermissionDenied,
    );
    // The same refusal as for an operation never granted: no oracle.
    let never = assert_code(
        shipping.encrypt(KEY, b"x", &[("tenant", "42")]).await,
        Code::PermissionDenied,
    );
    assert_eq!(refused.message(), never.message());

    // context_equals: exactly that map.
    let mut pod = server.client(POD_A).await;
    let equals = proto::GrantRequest {
        context_equals: ctx(&[("tenant", "42")]),
        ..grant(POD_A, Operation::Decrypt)
    };
    create(&mut admin, equals).await.expect("grant");
    pod.assert_decrypts(KEY, &tenant_42, &[("tenant", "42")], b"row")
        .await;
    assert_code(
        pod.decrypt(
            KEY,
            &tenant_42_more,
            &[("tenant", "42"), ("table", "invoices")],
        )
        .await,
        Code::PermissionDenied,
    );
    let both = proto::GrantRequest {
        context_equals: ctx(&[("a", "b")]),
        context_subset: ctx(&[("a", "b")]),
        ..grant(SHIPPING, Operation::Decrypt)
    };
    assert_code(create(&mut admin, both).await, Code::InvalidArgument);
}

#[tokio::test]
async fn a_pattern_covers_every_identity_under_its_path_and_nothing_else() {
    let (server, mut admin, _billing) = TestServer::with_billing_key(KEY).await;
    let info = create(
        &mut admin,
        grant("spiffe://test.tresor/ns/prod/*", Operation::Encrypt),
    )
    .await
    .expect("grant");
    assert_eq!(info.grants[0].grantee, "spiffe://test.tresor/ns/prod/*");
    for pod in [POD_A, POD_B] {
        let mut client = server.client(pod).await;
        client
            .encrypt(KEY, b"x", &[])
            .await
            .expect("covered by the pattern");
    }
    for outside in [OTHER_NS, SHIPPING, "spiffe://test.tresor/ns/prod"] {
        let mut client = server.client(outside).await;
        assert_code(client.encrypt(KEY, b"x", &[]).await, Code::PermissionDenied);
    }
    for bad in [
        "spiffe://test.tresor/ns/*/sa",
        "spiffe://test.tresor/ns/prod*",
        "*",
    ] {
        assert_code(
            create(&mut admin, grant(bad, Operation::Encrypt)).await,
            Code::InvalidArgument,
        );
    }
    // Revoking the pattern ends it.
    admin
        .admin
        .revoke_grant(proto::GrantRequest {
            operations: vec![],
            ..grant("spiffe://test.tresor/ns/prod/*", Operation::Encrypt)
        })
        .await
        .expect("revoke");
    let mut client = server.client(POD_A).await;
    assert_code(client.encrypt(KEY, b"x", &[]).await, Code::PermissionDenied);
    let refused = admin
        .admin
        .revoke_grant(proto::GrantRequest {
            context_subset: ctx(&[("a", "b")]),
            ..grant(SHIPPING, Operation::Encrypt)
        })
        .await;
    assert_code(refused, Code::InvalidArgument);
}

#[tokio::test]
async fn an_expired_grant_allows_nothing() {
    let fixture = common::Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    let clock = common::manual_lifecycle(&mut settings);
    let server = TestServer::start_with_settings(fixture, settings).await;
    let (mut admin, _billing) = server.billing_key(KEY).await;
    let now = tresor::service::Clock::now(clock.as_ref());
    let past = proto::GrantRequest {
        expires_at_unix: now - 1,
        ..grant(SHIPPING, Operation::Encrypt)
    };
    assert_code(create(&mut admin, past).await, Code::InvalidArgument);
    let info = create(
        &mut admin,
        proto::GrantRequest {
            expires_at_unix: now + 3600,
            ..grant(SHIPPING, Operation::Encrypt)
        },
    )
    .await
    .expect("grant");
    assert_eq!(info.grants[0].expires_at_unix, now + 3600);
    let mut shipping = server.client(SHIPPING).await;
    shipping
        .encrypt(KEY, b"x", &[])
        .await
        .expect("before expiry");
    clock.advance(3600);
    assert_code(
        shipping.encrypt(KEY, b"x", &[]).await,
        Code::PermissionDenied,
    );
    // Shown as expired for the retention, then removed by the lifecycle
    // check and audited.
    let grants = admin.key(KEY).await.expect("key").grants;
    assert!(grants[0].expired, "{grants:?}");
    clock.advance(tresor::service::EXPIRED_GRANT_RETENTION + 1);
    common::eventually("the expired grant removed", || {
        let mut admin = admin.clone();
        async move { admin.key(KEY).await.ok()?.grants.is_empty().then_some(()) }
    })
    .await;
    drop((admin, shipping));
    let fixture = server.stop().await;
    let records = common::audit_records(&tresor::service::default_audit_file(&fixture.data_dir()));
    assert!(
        records
            .iter()
            .any(|r| r["operation"] == "expired_grant_removed" && r["key_id"] == KEY)
    );
}

#[tokio::test]
async fn conditional_grants_survive_a_restart_and_are_authenticated() {
    let (server, mut admin, _billing) = TestServer::with_billing_key(KEY).await;
    let request = proto::GrantRequest {
        context_subset: ctx(&[("tenant", "42")]),
        ..grant("spiffe://test.tresor/ns/prod/*", Operation::Encrypt)
    };
    create(&mut admin, request.clone()).await.expect("grant");
    // The same terms again add operations to one grant, not a second one.
    let again = proto::GrantRequest {
        operations: vec![Operation::Decrypt as i32],
        ..request
    };
    let info = create(&mut admin, again).await.expect("grant");
    assert_eq!(info.grants.len(), 1);
    assert_eq!(info.grants[0].operations.len(), 2);
    drop(admin);
    let fixture = server.stop().await;
    let server = TestServer::start_with(fixture, tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES).await;
    let mut pod = server.client(POD_A).await;
    pod.encrypt(KEY, b"x", &[("tenant", "42")])
        .await
        .expect("after restart");
    assert_code(pod.encrypt(KEY, b"x", &[]).await, Code::PermissionDenied);
    let _ = BILLING;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_grants_from_the_cli() {
    use common::cli::Tresor;
    let (server, _admin, _billing) = TestServer::with_billing_key(KEY).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = Tresor::new(&server, common::ADMIN, dir.path());
    let out = admin.ok(&[
        "grant",
        "create",
        KEY,
        "--grantee",
        "spiffe://test.tresor/ns/prod/*",
        "--ops",
        "decrypt",
        "--context-subset",
        "tenant=42",
        "--expires-in",
        "30d",
    ]);
    assert!(out.contains("spiffe://test.tresor/ns/prod/*"), "{out}");
    let shown = admin.ok(&["grant", "list", KEY]);
    assert!(shown.contains("CONDITIONS"), "{shown}");
    assert!(shown.contains("context has tenant=42; until "), "{shown}");
    let json = admin.json(&["key", "show", KEY]);
    assert_eq!(json["grants"][0]["context_subset"]["tenant"], "42");
    assert!(json["grants"][0]["expires_at"].is_string());
    admin.fails(
        &[
            "grant",
            "create",
            KEY,
            "--grantee",
            SHIPPING,
            "--ops",
            "decrypt",
            "--context-equals",
            "a=b",
            "--context-subset",
            "c=d",
        ],
        2,
    );
}

/// Separation of duties: an admin cannot give itself use of a key it does
/// not own, by a grant (exact or a pattern covering it) or by taking the
/// key's ownership; another admin can.
#[tokio::test]
async fn an_admin_cannot_grant_itself_a_key() {
    let (_server, mut admin, _billing) = TestServer::with_billing_key(KEY).await;
    let me = common::ADMIN;
    for grantee in [
        me.to_owned(),
        format!("{}/*", me.rsplit_once('/').expect("path").0),
    ] {
        let status = assert_code(
            create(&mut admin, grant(&grantee, Operation::Decrypt)).await,
            Code::PermissionDenied,
        );
        assert!(status.message().contains("another admin"), "{status:?}");
    }
    let refused = admin
        .admin
        .transfer_key_ownership(proto::TransferKeyOwnershipRequest {
            key_id: KEY.into(),
            new_owner: me.into(),
        })
        .await;
    assert_code(refused, Code::PermissionDenied);
    assert!(admin.key(KEY).await.expect("key").grants.is_empty());
}

#[tokio::test]
async fn ownership_moves_and_descriptions_change_by_admins_only() {
    let (server, mut admin, mut billing) = TestServer::with_billing_key(KEY).await;
    let sealed = billing
        .encrypt(KEY, b"row", &[])
        .await
        .expect("encrypt")
        .ciphertext;
    // The owner cannot give its key away or relabel it.
    let refused = billing
        .admin
        .transfer_key_ownership(proto::TransferKeyOwnershipRequest {
            key_id: KEY.into(),
            new_owner: SHIPPING.into(),
        })
        .await;
    assert_code(refused, Code::PermissionDenied);
    let info = admin
        .admin
        .transfer_key_ownership(proto::TransferKeyOwnershipRequest {
            key_id: KEY.into(),
            new_owner: SHIPPING.into(),
        })
        .await
        .expect("transfer")
        .into_inner();
    assert_eq!(info.owner, SHIPPING);
    let mut shipping = server.client(SHIPPING).await;
    shipping.assert_decrypts(KEY, &sealed, &[], b"row").await;
    assert_code(
        billing.encrypt(KEY, b"x", &[]).await,
        Code::PermissionDenied,
    );
    let invalid = admin
        .admin
        .transfer_key_ownership(proto::TransferKeyOwnershipRequest {
            key_id: KEY.into(),
            new_owner: "bad identity\n".into(),
        })
        .await;
    assert_code(invalid, Code::InvalidArgument);

    let info = admin
        .admin
        .update_key_description(proto::UpdateKeyDescriptionRequest {
            key_id: KEY.into(),
            description: "customer table, EU".into(),
        })
        .await
        .expect("describe")
        .into_inner();
    assert_eq!(info.description, "customer table, EU");
    let too_long = admin
        .admin
        .update_key_description(proto::UpdateKeyDescriptionRequest {
            key_id: KEY.into(),
            description: "x".repeat(1025),
        })
        .await;
    assert_code(too_long, Code::InvalidArgument);
    let by_owner = shipping
        .admin
        .update_key_description(proto::UpdateKeyDescriptionRequest {
            key_id: KEY.into(),
            description: "mine".into(),
        })
        .await;
    assert_code(by_owner, Code::PermissionDenied);
    // ListKeys follows the new owner (the owner index moved with it).
    let listed = shipping
        .admin
        .list_keys(proto::ListKeysRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.keys.len(), 1);
    let listed = billing
        .admin
        .list_keys(proto::ListKeysRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(listed.keys.is_empty());
}

/// Every allowed data-plane call's audit record names what allowed it:
/// the owner, a plain grant, or a conditional grant with its terms (the
/// constraint's keys, never its values).
#[tokio::test]
async fn audit_records_name_the_owner_or_grant_that_allowed_the_call() {
    let (server, mut admin, mut billing) = TestServer::with_billing_key(KEY).await;
    create(&mut admin, grant(SHIPPING, Operation::Encrypt))
        .await
        .expect("grant");
    let pattern = proto::GrantRequest {
        context_subset: ctx(&[("tenant", "secret-tenant-7")]),
        ..grant("spiffe://test.tresor/ns/prod/*", Operation::Encrypt)
    };
    create(&mut admin, pattern).await.expect("grant");
    billing.encrypt(KEY, b"x", &[]).await.expect("owner");
    let mut shipping = server.client(SHIPPING).await;
    shipping.encrypt(KEY, b"x", &[]).await.expect("plain grant");
    let mut pod = server.client(POD_A).await;
    pod.encrypt(KEY, b"x", &[("tenant", "secret-tenant-7")])
        .await
        .expect("pattern grant");
    pod.crypto
        .encrypt_batch(proto::EncryptBatchRequest {
            items: vec![proto::EncryptRequest {
                key_id: KEY.into(),
                plaintext: b"x".to_vec(),
                context: ctx(&[("tenant", "secret-tenant-7")]),
            }],
        })
        .await
        .expect("batch");
    drop((admin, billing, shipping, pod));
    let fixture = server.stop().await;
    let records = common::audit_records(&tresor::service::default_audit_file(&fixture.data_dir()));
    let allowed: Vec<&str> = records
        .iter()
        .filter(|r| r["operation"] == "Encrypt" || r["operation"] == "EncryptBatch")
        .map(|r| r["allowed_by"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        allowed,
        [
            "owner",
            &format!("grant to {SHIPPING}"),
            "grant to spiffe://test.tresor/ns/prod/* (context has tenant)",
            "grant to spiffe://test.tresor/ns/prod/* (context has tenant)",
        ]
    );
    assert!(
        !common::found_in_files(&fixture.data_dir().join("audit"), b"secret-tenant-7"),
        "a constraint value reached the audit log"
    );
}

/// A refused call's audit record names the grant that came closest, for
/// operators; the caller only gets the usual denial.
#[tokio::test]
async fn a_denials_record_names_the_closest_grant() {
    let (server, mut admin, mut billing) = TestServer::with_billing_key(KEY).await;
    let tenant_43 = sealed(&mut billing, &[("tenant", "43")]).await;
    let subset = proto::GrantRequest {
        context_subset: ctx(&[("tenant", "42")]),
        ..grant(SHIPPING, Operation::Decrypt)
    };
    create(&mut admin, subset).await.expect("grant");
    let mut shipping = server.client(SHIPPING).await;
    let refused = assert_code(
        shipping.decrypt(KEY, &tenant_43, &[("tenant", "43")]).await,
        Code::PermissionDenied,
    );
    assert!(!refused.message().contains("tenant"), "{refused:?}");
    let mut stranger = server.client(POD_A).await;
    assert_code(
        stranger.decrypt(KEY, &tenant_43, &[("tenant", "43")]).await,
        Code::PermissionDenied,
    );
    drop((admin, billing, shipping, stranger));
    let fixture = server.stop().await;
    let records = common::audit_records(&tresor::service::default_audit_file(&fixture.data_dir()));
    let denials: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["operation"] == "Decrypt" && r["status"] == "PERMISSION_DENIED")
        .collect();
    assert_eq!(denials.len(), 2);
    assert_eq!(
        denials[0]["closest_grant"],
        format!("grant to {SHIPPING} (context has tenant)")
    );
    assert!(denials[1].get("closest_grant").is_none(), "{}", denials[1]);
}
