//! The SDK's retries against a real server over mTLS: calls the server
//! could not serve for a moment succeed once it can, and a call that
//! changes state each time it runs is never sent twice when the server may
//! already have made the change.

use crate::common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{ADMIN, BILLING, TestServer, ctx};
use tresor_client::{Client, ClientError, RetryPolicy};

const KEY: &str = "billing/records";

/// Patient enough to outlast the pauses below, quick between attempts.
fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 200,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    }
}

/// The admin's SDK client, and the owning service's with [`patient`]
/// retries, after the admin created [`KEY`] for it.
async fn admin_and_patient_owner(server: &TestServer) -> (Client, Client) {
    let admin = server.fixture.sdk_at(server.addr, ADMIN).await;
    let billing = server
        .fixture
        .sdk_at(server.addr, BILLING)
        .await
        .with_retry_policy(patient());
    admin.create_key(KEY, BILLING, "").await.expect("create");
    (admin, billing)
}

fn records_of<'a>(
    records: &'a [serde_json::Value],
    operation: &'a str,
) -> impl Iterator<Item = &'a serde_json::Value> + 'a {
    records.iter().filter(move |r| r["operation"] == operation)
}

#[tokio::test]
async fn calls_made_while_sealed_succeed_once_unsealed() {
    let server = TestServer::start().await;
    let (admin, billing) = admin_and_patient_owner(&server).await;
    admin.seal().await.expect("seal");

    // Without retries the refusal comes back at once, typed.
    let refused = billing
        .clone()
        .with_retry_policy(RetryPolicy::none())
        .encrypt(KEY, b"now", &ctx(&[("tenant", "1")]))
        .await;
    assert!(matches!(refused, Err(ClientError::Sealed)), "{refused:?}");

    // An Encrypt (safe to repeat) and a RotateKey (not safe, but a sealed
    // server did nothing) both wait out the seal.
    let encrypt = tokio::spawn({
        let billing = billing.clone();
        async move {
            billing
                .encrypt(KEY, b"later", &ctx(&[("tenant", "1")]))
                .await
        }
    });
    let rotate = tokio::spawn({
        let billing = billing.clone();
        async move { billing.rotate_key(KEY).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!encrypt.is_finished() && !rotate.is_finished());
    admin.unseal().await.expect("unseal");

    let rotated = rotate.await.expect("task").expect("rotate after unseal");
    let sealed = encrypt.await.expect("task").expect("encrypt after unseal");
    assert!(
        (1..=2).contains(&sealed.key_version),
        "{}",
        sealed.key_version
    );
    assert_eq!(rotated.versions.len(), 2, "rotated exactly once");
    let opened = billing
        .decrypt(KEY, &sealed.ciphertext, &ctx(&[("tenant", "1")]))
        .await
        .expect("decrypt");
    assert_eq!(opened.plaintext, b"later");

    // The server saw the refused attempts: the retries were real calls.
    let file = tresor::service::default_audit_file(&server.fixture.data_dir());
    let _files = server.stop().await;
    let records = common::audit_records(&file);
    let statuses = |operation| {
        records_of(&records, operation)
            .map(|r| r["status"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    for operation in ["Encrypt", "RotateKey"] {
        let seen = statuses(operation);
        let ok = seen.iter().filter(|s| *s == "OK").count();
        let refused = seen.iter().filter(|s| *s == "UNAVAILABLE").count();
        assert!(ok >= 1 && refused >= 2, "{operation}: {seen:?}");
    }
    assert_eq!(
        statuses("RotateKey").iter().filter(|s| *s == "OK").count(),
        1
    );
}

#[tokio::test]
async fn a_change_refused_after_it_was_made_is_not_repeated() {
    let (server, disk_full) = TestServer::start_with_failing_audit().await;
    let (_admin, billing) = admin_and_patient_owner(&server).await;

    // The audit log cannot take records: RotateKey is refused because its
    // intent record cannot be written (tresor fails closed, before any
    // change). The SDK must not send it again, though it retries 200 times
    // for safe calls: a repeat once the log is back would rotate.
    disk_full.store(true, Ordering::SeqCst);
    let refused = billing.rotate_key(KEY).await;
    assert!(
        matches!(&refused, Err(ClientError::Unavailable(m)) if m.contains("audit")),
        "{refused:?}"
    );

    // A safe call made meanwhile is retried until the log is back.
    let read = tokio::spawn({
        let billing = billing.clone();
        async move { billing.get_key(KEY).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!read.is_finished());
    disk_full.store(false, Ordering::SeqCst);
    let key = read
        .await
        .expect("task")
        .expect("get_key once the log is back");

    // No rotation happened: the one attempt changed nothing, and it was
    // not repeated.
    assert_eq!(key.versions.len(), 1, "{key:?}");
    server.stop().await;
}
