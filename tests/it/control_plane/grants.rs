//! Grants: exactly the granted operations, until revoked.

use super::*;

// ---------------------------------------------------------------------------
// Grants
// ---------------------------------------------------------------------------

#[tokio::test]
async fn grants_allow_exactly_the_granted_operations_until_revoked() {
    let (server, mut admin, mut billing) = server_with_billing_key().await;
    let mut shipping = server.client(SHIPPING).await;
    let sealed = billing
        .encrypt(KEY, b"for shipping", &[("order", "7")])
        .await
        .expect("encrypt");

    let info = into_inner(
        admin
            .admin
            .create_grant(grant_req(KEY, SHIPPING, &ops(&[Operation::Decrypt])))
            .await,
    )
    .expect("grant decrypt");
    assert_eq!(
        info.grants,
        [proto::Grant {
            grantee: SHIPPING.into(),
            operations: ops(&[Operation::Decrypt]),
            ..Default::default()
        }]
    );
    assert_eq!(admin.key(KEY).await.expect("get").grants, info.grants);

    let opened = shipping
        .decrypt(KEY, &sealed.ciphertext, &[("order", "7")])
        .await
        .expect("grantee decrypts");
    assert_eq!(opened.plaintext, b"for shipping");
    assert_code(
        shipping.encrypt(KEY, b"x", &[]).await,
        Code::PermissionDenied,
    );
    assert_code(data_key(&mut shipping, KEY).await, Code::PermissionDenied);
    assert_code(shipping.key(KEY).await, Code::PermissionDenied);
    assert_code(shipping.rotate(KEY).await, Code::PermissionDenied);

    // Grants accumulate.
    let info = into_inner(
        admin
            .admin
            .create_grant(grant_req(KEY, SHIPPING, &ops(&[Operation::Encrypt])))
            .await,
    )
    .expect("grant encrypt");
    assert_eq!(info.grants.len(), 1);
    assert_eq!(info.grants[0].grantee, SHIPPING);
    let granted: BTreeSet<i32> = info.grants[0].operations.iter().copied().collect();
    assert_eq!(
        granted,
        BTreeSet::from([Operation::Encrypt as i32, Operation::Decrypt as i32])
    );
    let own = shipping
        .encrypt(KEY, b"from shipping", &[])
        .await
        .expect("grantee encrypts");
    assert_eq!(
        billing
            .decrypt(KEY, &own.ciphertext, &[])
            .await
            .expect("owner decrypts")
            .plaintext,
        b"from shipping"
    );

    // Revoking one operation leaves the other.
    let info = into_inner(
        admin
            .admin
            .revoke_grant(grant_req(KEY, SHIPPING, &ops(&[Operation::Decrypt])))
            .await,
    )
    .expect("revoke decrypt");
    assert_eq!(info.grants[0].operations, ops(&[Operation::Encrypt]));
    assert_code(
        shipping
            .decrypt(KEY, &sealed.ciphertext, &[("order", "7")])
            .await,
        Code::PermissionDenied,
    );
    assert!(shipping.encrypt(KEY, b"x", &[]).await.is_ok());

    // Empty operations remove the whole grant.
    let info = into_inner(
        admin
            .admin
            .revoke_grant(grant_req(KEY, SHIPPING, &[]))
            .await,
    )
    .expect("revoke all");
    assert!(info.grants.is_empty());
    assert!(admin.key(KEY).await.expect("get").grants.is_empty());
    assert_code(
        shipping.encrypt(KEY, b"x", &[]).await,
        Code::PermissionDenied,
    );
    // The owner is unaffected throughout.
    assert!(
        billing
            .decrypt(KEY, &sealed.ciphertext, &[("order", "7")])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn each_single_operation_grant_allows_exactly_that_operation() {
    let (server, mut admin, mut billing) = server_with_billing_key().await;
    let mut shipping = server.client(SHIPPING).await;
    let all = [
        Operation::Encrypt,
        Operation::Decrypt,
        Operation::Reencrypt,
        Operation::GenerateDataKey,
    ];
    for granted in all {
        let key = format!("billing/only-{}", granted as i32);
        admin.create_key(&key, BILLING).await;
        let sealed = billing.encrypt(&key, b"x", &[]).await.expect("encrypt");
        let info = into_inner(
            admin
                .admin
                .create_grant(grant_req(&key, SHIPPING, &ops(&[granted])))
                .await,
        )
        .expect("grant");
        assert_eq!(info.grants[0].operations, ops(&[granted]));
        for tried in all {
            let outcome = match tried {
                Operation::Encrypt => shipping.encrypt(&key, b"y", &[]).await.map(drop),
                Operation::Decrypt => shipping
                    .decrypt(&key, &sealed.ciphertext, &[])
                    .await
                    .map(drop),
                Operation::Reencrypt => re_encrypt(&mut shipping, &key, &sealed.ciphertext)
                    .await
                    .map(drop),
                Operation::GenerateDataKey => data_key(&mut shipping, &key).await.map(drop),
                // MAC grants are tried on a MAC key (blind_index.rs).
                Operation::Mac | Operation::VerifyMac | Operation::Unspecified => unreachable!(),
            };
            if tried == granted {
                assert!(outcome.is_ok(), "{granted:?} grant, {tried:?}: {outcome:?}");
            } else {
                assert_code(outcome, Code::PermissionDenied);
            }
        }
    }
}

#[tokio::test]
async fn grant_requests_with_unknown_or_no_operations_are_invalid_argument() {
    let (_server, mut admin, _billing) = server_with_billing_key().await;
    let unspecified = Operation::Unspecified as i32;
    let encrypt = Operation::Encrypt as i32;
    for bad in [
        vec![unspecified],
        vec![99],
        vec![encrypt, 99],
        vec![-1],
        vec![encrypt, unspecified],
    ] {
        assert_code(
            into_inner(
                admin
                    .admin
                    .create_grant(grant_req(KEY, SHIPPING, &bad))
                    .await,
            ),
            Code::InvalidArgument,
        );
        assert_code(
            into_inner(
                admin
                    .admin
                    .revoke_grant(grant_req(KEY, SHIPPING, &bad))
                    .await,
            ),
            Code::InvalidArgument,
        );
    }
    let status = assert_code(
        into_inner(
            admin
                .admin
                .create_grant(grant_req(KEY, SHIPPING, &[]))
                .await,
        ),
        Code::InvalidArgument,
    );
    assert!(status.message().contains("operation"), "{status:?}");
    assert_code(
        into_inner(
            admin
                .admin
                .create_grant(grant_req(KEY, "", &[encrypt]))
                .await,
        ),
        Code::InvalidArgument,
    );
    assert!(admin.key(KEY).await.expect("get").grants.is_empty());
}
