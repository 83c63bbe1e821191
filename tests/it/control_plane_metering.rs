//! Control-plane metering over real mTLS (issue 18, item 5): a non-admin's
//! ListKeys lists its own keys (from the owner index), non-admins'
//! control-plane calls are rate limited while admins' never are, and
//! RotateKey stops at the per-key version cap until old versions are
//! destroyed.

use crate::common;

use common::{ADMIN, BILLING, Fixture, SHIPPING, TestServer, assert_code, proto};
use tonic::Code;

fn list_req(prefix: &str, page_size: u32, page_token: &str) -> proto::ListKeysRequest {
    proto::ListKeysRequest {
        prefix: prefix.into(),
        page_size,
        page_token: page_token.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_non_admin_lists_its_own_keys_page_by_page() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    for i in 0..5 {
        admin.create_key(&format!("app/billing-{i}"), BILLING).await;
        admin
            .create_key(&format!("app/shipping-{i}"), SHIPPING)
            .await;
    }
    let mut billing = server.client(BILLING).await;
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = billing
            .admin
            .list_keys(list_req("app/", 2, &token))
            .await
            .expect("list")
            .into_inner();
        listed.extend(page.keys.into_iter().map(|k| k.key_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<String> = (0..5).map(|i| format!("app/billing-{i}")).collect();
    assert_eq!(listed, expected);
    let none = billing
        .admin
        .list_keys(list_req("app/shipping", 0, ""))
        .await
        .expect("list")
        .into_inner();
    assert!(none.keys.is_empty(), "{none:?}");
}

#[tokio::test]
async fn non_admin_control_plane_calls_are_rate_limited_admin_calls_never() {
    let fixture = Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    settings.service.guard.control_plane_rate = Some(tresor::anomaly::Rate(5));
    let server = TestServer::start_with_settings(fixture, settings).await;
    let (mut admin, mut billing) = server.billing_key("billing/k").await;
    let mut limited = None;
    let mut answered = 0;
    for _ in 0..30 {
        match billing.key("billing/k").await {
            Ok(_) => answered += 1,
            Err(status) => {
                limited = Some(status);
                break;
            }
        }
    }
    let status = limited.expect("30 GetKey calls in a burst, none refused");
    assert!(answered <= 5, "{answered} calls answered above 5/s");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status
            .metadata()
            .get("x-tresor-reason")
            .and_then(|v| v.to_str().ok()),
        Some("RATE_LIMITED")
    );
    assert!(!status.message().contains("billing/k"), "{status:?}");
    // RotateKey and ListKeys share the budget.
    assert_code(billing.rotate("billing/k").await, Code::ResourceExhausted);
    // The data plane is not charged for it, and admins are never limited.
    billing
        .encrypt("billing/k", b"still served", &[])
        .await
        .expect("data plane");
    for _ in 0..30 {
        admin
            .key("billing/k")
            .await
            .expect("admins are not limited");
    }
    // A second later the budget is back.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    billing.key("billing/k").await.expect("after the window");
    let _ = ADMIN;
}

#[tokio::test]
async fn rotate_key_is_refused_at_the_version_cap_until_old_versions_go() {
    let fixture = Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    settings.service.lifecycle.max_versions_per_key = 3;
    let server = TestServer::start_with_settings(fixture, settings).await;
    let (mut admin, mut billing) = server.billing_key("billing/capped").await;
    billing.rotate("billing/capped").await.expect("v2");
    billing.rotate("billing/capped").await.expect("v3");
    let refused = assert_code(
        billing.rotate("billing/capped").await,
        Code::FailedPrecondition,
    );
    assert!(
        refused.message().contains("destroy old versions"),
        "{refused:?}"
    );
    assert_code(
        admin.rotate("billing/capped").await,
        Code::FailedPrecondition,
    );
    assert_eq!(
        billing
            .key("billing/capped")
            .await
            .expect("get")
            .primary_version,
        3,
        "the refused rotations changed nothing"
    );
    admin.set_min_version("billing/capped", 2).await;
    admin
        .destroy_version("billing/capped", 1)
        .await
        .expect("destroy v1");
    let key = billing.rotate("billing/capped").await.expect("room again");
    assert_eq!(key.primary_version, 4);
}
