//! Durability: a restart keeps everything; `kill -9` right after an OK
//! response loses nothing acknowledged.

use crate::common;

use std::time::{Duration, Instant};

use common::{ADMIN, BILLING, Fixture, ServeProcess, TestServer};

#[tokio::test]
async fn restart_keeps_every_key_version_and_state() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key("a", BILLING).await;
    admin.create_key("b", BILLING).await;
    let mut billing = server.client(BILLING).await;
    let mut sealed = Vec::new();
    for round in 0..3 {
        let out = billing
            .encrypt("a", format!("a{round}").as_bytes(), &[("r", "1")])
            .await
            .expect("encrypt");
        sealed.push(("a", format!("a{round}"), out.ciphertext));
        billing.rotate("a").await.expect("rotate");
    }
    let out = billing.encrypt("b", b"b0", &[]).await.expect("encrypt");
    sealed.push(("b", "b0".into(), out.ciphertext));
    admin
        .admin
        .disable_key(common::proto::KeyRequest { key_id: "b".into() })
        .await
        .expect("disable");
    drop((admin, billing));

    let fixture = server.stop().await;
    let server = TestServer::start_with(fixture, tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES).await;
    let mut admin = server.admin().await;
    let mut billing = server.client(BILLING).await;
    let a = admin.key("a").await.expect("key a");
    assert_eq!(a.primary_version, 4);
    let b = admin.key("b").await.expect("key b");
    assert_eq!(b.state, common::proto::KeyState::Disabled as i32);
    admin
        .admin
        .enable_key(common::proto::KeyRequest { key_id: "b".into() })
        .await
        .expect("enable");
    for (key, plaintext, ciphertext) in &sealed {
        let context: &[(&str, &str)] = if *key == "a" { &[("r", "1")] } else { &[] };
        let opened = billing
            .decrypt(key, ciphertext, context)
            .await
            .expect("decrypt");
        assert_eq!(opened.plaintext, plaintext.as_bytes());
    }
}

#[tokio::test]
async fn kill_9_right_after_rotate_loses_nothing_acknowledged() {
    let fixture = Fixture::new();
    let ca_pem = fixture.ca.cert_pem();
    let admin_cert = fixture.ca.issue_client(ADMIN).expect("cert");
    let billing_cert = fixture.ca.issue_client(BILLING).expect("cert");
    let mut acknowledged: Vec<(String, u32, Vec<u8>)> = Vec::new();
    let mut expected_primary = 0;
    for round in 0..4u32 {
        let process = ServeProcess::start(&fixture);
        let mut admin = common::connect(process.addr, &ca_pem, Some(&admin_cert))
            .await
            .expect("connect admin");
        let mut billing = common::connect(process.addr, &ca_pem, Some(&billing_cert))
            .await
            .expect("connect billing");
        // Everything acknowledged before the previous kill is still there.
        if round == 0 {
            admin.create_key("durable", BILLING).await;
            expected_primary = 1;
        }
        let info = admin.key("durable").await.expect("get key");
        assert_eq!(info.primary_version, expected_primary, "round {round}");
        for (plaintext, version, ciphertext) in &acknowledged {
            let opened = billing
                .decrypt("durable", ciphertext, &[])
                .await
                .expect("decrypt acknowledged ciphertext");
            assert_eq!(&opened.plaintext, plaintext.as_bytes());
            assert_eq!(opened.key_version, *version);
        }
        for _ in 0..3 {
            let info = billing.rotate("durable").await.expect("rotate");
            expected_primary = info.primary_version;
            let plaintext = format!("after v{expected_primary}");
            let out = billing
                .encrypt("durable", plaintext.as_bytes(), &[])
                .await
                .expect("encrypt");
            acknowledged.push((plaintext, out.key_version, out.ciphertext));
        }
        let info = billing.rotate("durable").await.expect("final rotate");
        expected_primary = info.primary_version;
        // SIGKILL the instant the OK arrives.
        let started = Instant::now();
        process.kill_9();
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let process = ServeProcess::start(&fixture);
    let mut admin = common::connect(process.addr, &ca_pem, Some(&admin_cert))
        .await
        .expect("connect");
    assert_eq!(
        admin.key("durable").await.expect("get").primary_version,
        expected_primary
    );
    process.kill_9();

    // Every acknowledged call is in the audit log, and the log, resumed
    // after each kill, still verifies as one chain.
    let audit = std::fs::read_to_string(tresor::service::default_audit_file(&fixture.data_dir()))
        .expect("audit file");
    let rotations = audit
        .lines()
        .filter(|l| l.contains("\"operation\":\"RotateKey\"") && l.contains("\"status\":\"OK\""))
        .count();
    assert_eq!(rotations, 16, "4 rounds of 4 acknowledged rotations");
    let verified = common::cli::command(["audit", "verify", "--data-dir"])
        .arg(fixture.data_dir())
        .arg("--master-key-file")
        .arg(fixture.master_key_file())
        .output()
        .expect("run tresor audit verify");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}
