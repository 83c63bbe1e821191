//! Root-key rotation over the API: progress in GetStatus, and a crash in the
//! middle of the background re-wrap (the debug-build crash hook) that the
//! next start resumes from its cursor.

use crate::common;

use std::time::{Duration, Instant};

use common::{ADMIN, BILLING, Fixture, ServeProcess, proto};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_the_rewrap_resumes_at_the_next_start() {
    let fixture = Fixture::new();
    let mut flags = fixture.serve_flags();
    flags.extend(["--rewrap-batch-size".to_owned(), "5".to_owned()]);
    let ca = fixture.ca.cert_pem();
    let admin_cert = fixture.ca.issue_client(ADMIN).expect("cert");
    let billing_cert = fixture.ca.issue_client(BILLING).expect("cert");

    // A crash hook armed for the first re-wrap batch.
    let process =
        ServeProcess::start_with(&flags, &[("TRESOR_CRASH_AT", "root-rotate:after-batch")]);
    let mut admin = common::connect(process.addr, &ca, Some(&admin_cert))
        .await
        .expect("admin");
    let mut billing = common::connect(process.addr, &ca, Some(&billing_cert))
        .await
        .expect("billing");
    let mut sealed = Vec::new();
    for k in 0..30 {
        let id = format!("k/{k:02}");
        admin.create_key(&id, BILLING).await;
        let out = billing
            .encrypt(&id, id.as_bytes(), &[])
            .await
            .expect("encrypt");
        sealed.push((id, out.ciphertext));
    }
    assert_eq!(admin.status().await.root_key_generation, 1);
    // The RPC may or may not answer before the background task aborts the
    // process after its first batch.
    let _ = admin
        .admin
        .rotate_root_key(proto::RotateRootKeyRequest {})
        .await;
    let mut process = process;
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = process.child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the crash hook never fired"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!exit.success(), "aborted mid-rotation");
    drop((admin, billing));

    // Restart: the rotation is still recorded and resumes by itself.
    let process = ServeProcess::start(&fixture);
    let mut admin = common::connect(process.addr, &ca, Some(&admin_cert))
        .await
        .expect("admin");
    let mut billing = common::connect(process.addr, &ca, Some(&billing_cert))
        .await
        .expect("billing");
    let started = Instant::now();
    let done = loop {
        let now = admin.status().await;
        if !now.root_rotation_in_progress {
            break now;
        }
        // Serving goes on while the re-wrap runs.
        let (id, ciphertext) = &sealed[0];
        billing
            .decrypt(id, ciphertext, &[])
            .await
            .expect("decrypt during rotation");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "rotation did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done.root_key_generation, 2);
    for (id, ciphertext) in &sealed {
        let opened = billing.decrypt(id, ciphertext, &[]).await.expect("decrypt");
        assert_eq!(opened.plaintext, id.as_bytes());
    }
    // A second rotation while none runs is accepted; a third while it runs
    // may be refused with FAILED_PRECONDITION, never anything else.
    let second = admin
        .admin
        .rotate_root_key(proto::RotateRootKeyRequest {})
        .await
        .expect("rotate again")
        .into_inner();
    assert_eq!(second.root_key_generation, 3);
    if let Err(status) = admin
        .admin
        .rotate_root_key(proto::RotateRootKeyRequest {})
        .await
    {
        assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    }
    let billing_denied = billing
        .admin
        .rotate_root_key(proto::RotateRootKeyRequest {})
        .await;
    common::assert_code(billing_denied, tonic::Code::PermissionDenied);
    process.kill_9();
}
