//! Key states: disable and enable, the minimum decryption version,
//! deletion scheduling and cancelling.

use super::*;

// ---------------------------------------------------------------------------
// Disable / enable
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_disabled_key_refuses_the_data_plane_until_enabled() {
    let (_server, mut admin, mut billing) = server_with_billing_key().await;
    let old = billing.encrypt(KEY, b"before", &[]).await.expect("encrypt");

    let info = into_inner(admin.admin.disable_key(key_req(KEY)).await).expect("disable");
    assert_eq!(info.state(), KeyState::Disabled);
    assert_eq!(
        billing.key(KEY).await.expect("get").state(),
        KeyState::Disabled
    );
    for status in [
        assert_code(
            billing.encrypt(KEY, b"x", &[]).await,
            Code::FailedPrecondition,
        ),
        assert_code(
            billing.decrypt(KEY, &old.ciphertext, &[]).await,
            Code::FailedPrecondition,
        ),
        assert_code(
            re_encrypt(&mut billing, KEY, &old.ciphertext).await,
            Code::FailedPrecondition,
        ),
        assert_code(data_key(&mut billing, KEY).await, Code::FailedPrecondition),
    ] {
        assert!(status.message().contains("disabled"), "{status:?}");
    }
    // Disabling again is idempotent; a disabled key may still rotate.
    assert!(admin.admin.disable_key(key_req(KEY)).await.is_ok());
    assert_eq!(admin.rotate(KEY).await.expect("rotate").primary_version, 2);

    let info = into_inner(admin.admin.enable_key(key_req(KEY)).await).expect("enable");
    assert_eq!(info.state(), KeyState::Enabled);
    let opened = billing
        .decrypt(KEY, &old.ciphertext, &[])
        .await
        .expect("old decrypts");
    assert_eq!(opened.plaintext, b"before");
    let new = billing
        .encrypt(KEY, b"after", &[])
        .await
        .expect("encrypt again");
    assert_eq!(
        billing
            .decrypt(KEY, &new.ciphertext, &[])
            .await
            .expect("decrypt")
            .plaintext,
        b"after"
    );
}

// ---------------------------------------------------------------------------
// Minimum decryption version
// ---------------------------------------------------------------------------

#[tokio::test]
async fn minimum_decryption_version_refuses_older_ciphertexts() {
    let (_server, mut admin, mut billing) = server_with_billing_key().await;
    let mut ciphertexts = Vec::new();
    for version in 1..=3u32 {
        if version > 1 {
            billing.rotate(KEY).await.expect("rotate");
        }
        let out = billing
            .encrypt(KEY, format!("v{version}").as_bytes(), &[])
            .await
            .expect("encrypt");
        assert_eq!(out.key_version, version);
        ciphertexts.push(out.ciphertext);
    }

    let info = set_min_version(&mut admin, KEY, 2)
        .await
        .expect("set min 2");
    assert_eq!(info.min_decryption_version, 2);
    let status = assert_code(
        billing.decrypt(KEY, &ciphertexts[0], &[]).await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains("minimum decryption version"),
        "{status:?}"
    );
    assert_code(
        re_encrypt(&mut billing, KEY, &ciphertexts[0]).await,
        Code::FailedPrecondition,
    );
    for (index, ct) in ciphertexts.iter().enumerate().skip(1) {
        let opened = billing.decrypt(KEY, ct, &[]).await.expect("v2/v3 decrypt");
        assert_eq!(opened.plaintext, format!("v{}", index + 1).as_bytes());
    }

    for bad in [0, 4, u32::MAX] {
        assert_code(
            set_min_version(&mut admin, KEY, bad).await,
            Code::InvalidArgument,
        );
    }
    assert_eq!(admin.key(KEY).await.expect("get").min_decryption_version, 2);

    let info = set_min_version(&mut admin, KEY, 1)
        .await
        .expect("lower to 1");
    assert_eq!(info.min_decryption_version, 1);
    let opened = billing
        .decrypt(KEY, &ciphertexts[0], &[])
        .await
        .expect("v1 decrypts again");
    assert_eq!(opened.plaintext, b"v1");
}

// ---------------------------------------------------------------------------
// Deletion scheduling
// ---------------------------------------------------------------------------

#[tokio::test]
async fn schedule_deletion_window_defaults_to_thirty_days_and_must_be_seven_to_thirty() {
    let (_server, mut admin, _billing) = server_with_billing_key().await;
    admin.create_key("billing/week", BILLING).await;
    for bad in [1, 6, 31, 365] {
        let status = assert_code(
            schedule_deletion(&mut admin, KEY, bad).await,
            Code::InvalidArgument,
        );
        assert!(status.message().contains("pending_days"), "{status:?}");
    }
    assert_eq!(
        admin.key(KEY).await.expect("get").state(),
        KeyState::Enabled
    );

    let before = now_unix();
    let info = schedule_deletion(&mut admin, KEY, 0)
        .await
        .expect("default window");
    let after = now_unix();
    assert_eq!(info.state(), KeyState::PendingDeletion);
    assert!(
        (before + 30 * DAY - 2..=after + 30 * DAY + 2).contains(&info.deletion_at_unix),
        "deletion_at {} not ~30 days from {before}",
        info.deletion_at_unix
    );
    assert_eq!(
        admin.key(KEY).await.expect("get").deletion_at_unix,
        info.deletion_at_unix
    );
    // Already pending: a second schedule is refused.
    assert_code(
        schedule_deletion(&mut admin, KEY, 7).await,
        Code::FailedPrecondition,
    );

    let before = now_unix();
    let info = schedule_deletion(&mut admin, "billing/week", 7)
        .await
        .expect("seven days");
    let after = now_unix();
    assert_eq!(info.state(), KeyState::PendingDeletion);
    assert!((before + 7 * DAY - 2..=after + 7 * DAY + 2).contains(&info.deletion_at_unix));
    // A key pending deletion is still listed and counted.
    assert_eq!(
        list(&mut admin, "billing/", 0, "")
            .await
            .expect("list")
            .keys
            .len(),
        2
    );
    assert_eq!(status(&mut admin).await.expect("status").key_count, 2);
}

#[tokio::test]
async fn a_key_pending_deletion_is_unusable_and_cancel_brings_it_back_disabled() {
    let (_server, mut admin, mut billing) = server_with_billing_key().await;
    let old = billing
        .encrypt(KEY, b"keep me", &[])
        .await
        .expect("encrypt");
    schedule_deletion(&mut admin, KEY, 7)
        .await
        .expect("schedule");
    assert_eq!(
        billing.key(KEY).await.expect("owner reads").state(),
        KeyState::PendingDeletion
    );

    let fp = Code::FailedPrecondition;
    for status in [
        assert_code(billing.encrypt(KEY, b"x", &[]).await, fp),
        assert_code(billing.decrypt(KEY, &old.ciphertext, &[]).await, fp),
        assert_code(re_encrypt(&mut billing, KEY, &old.ciphertext).await, fp),
        assert_code(data_key(&mut billing, KEY).await, fp),
    ] {
        assert!(status.message().contains("pending deletion"), "{status:?}");
    }
    assert_code(billing.rotate(KEY).await, fp);
    assert_code(admin.rotate(KEY).await, fp);
    assert_code(into_inner(admin.admin.enable_key(key_req(KEY)).await), fp);
    assert_code(into_inner(admin.admin.disable_key(key_req(KEY)).await), fp);
    assert_code(set_min_version(&mut admin, KEY, 1).await, fp);
    assert_code(
        into_inner(
            admin
                .admin
                .create_grant(grant_req(KEY, SHIPPING, &ops(&[Operation::Decrypt])))
                .await,
        ),
        fp,
    );
    let info = admin.key(KEY).await.expect("get");
    assert_eq!(info.state(), KeyState::PendingDeletion);
    assert_eq!(info.primary_version, 1);

    let info = into_inner(admin.admin.cancel_key_deletion(key_req(KEY)).await).expect("cancel");
    assert_eq!(info.state(), KeyState::Disabled);
    assert_eq!(info.deletion_at_unix, 0);
    assert_code(
        into_inner(admin.admin.cancel_key_deletion(key_req(KEY)).await),
        fp,
    );
    let status = assert_code(billing.encrypt(KEY, b"x", &[]).await, fp);
    assert!(status.message().contains("disabled"), "{status:?}");

    let info = into_inner(admin.admin.enable_key(key_req(KEY)).await).expect("enable");
    assert_eq!(info.state(), KeyState::Enabled);
    let opened = billing
        .decrypt(KEY, &old.ciphertext, &[])
        .await
        .expect("old decrypts");
    assert_eq!(opened.plaintext, b"keep me");
    assert!(billing.encrypt(KEY, b"new", &[]).await.is_ok());
    assert_eq!(
        billing.rotate(KEY).await.expect("rotate").primary_version,
        2
    );
}
