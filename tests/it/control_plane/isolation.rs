//! Isolation between services, and key listings.

use super::*;

// ---------------------------------------------------------------------------
// Isolation between services
// ---------------------------------------------------------------------------

#[tokio::test]
async fn another_service_cannot_use_or_read_a_foreign_key_and_learns_nothing_about_existence() {
    let (server, mut admin, mut billing) = server_with_billing_key().await;
    let mut shipping = server.client(SHIPPING).await;
    let sealed = billing
        .encrypt(KEY, b"invoice", &[])
        .await
        .expect("encrypt");
    let ct = sealed.ciphertext.clone();

    // Each call on BILLING's key and on a key that does not exist.
    let mut outcomes: Vec<(&str, tonic::Status, tonic::Status)> = Vec::new();
    macro_rules! both {
        ($name:expr, |$id:ident| $call:expr) => {{
            let existing = {
                let $id = KEY;
                $call
            };
            let missing = {
                let $id = MISSING;
                $call
            };
            outcomes.push((
                $name,
                assert_code(existing, Code::PermissionDenied),
                assert_code(missing, Code::PermissionDenied),
            ));
        }};
    }
    both!("Encrypt", |id| shipping.encrypt(id, b"x", &[]).await);
    both!("Decrypt", |id| shipping.decrypt(id, &ct, &[]).await);
    both!("ReEncrypt", |id| re_encrypt(&mut shipping, id, &ct).await);
    both!("GenerateDataKey", |id| data_key(&mut shipping, id).await);
    both!("GetKey", |id| shipping.key(id).await);
    both!("RotateKey", |id| shipping.rotate(id).await);
    for (name, existing, missing) in &outcomes {
        assert_eq!(existing.code(), missing.code(), "{name}: codes differ");
        assert_eq!(
            existing.message(),
            missing.message(),
            "{name}: messages differ"
        );
        assert!(!existing.message().contains(KEY), "{name}: {existing:?}");
    }

    // A disabled foreign key looks the same too (no state oracle).
    admin
        .admin
        .disable_key(key_req(KEY))
        .await
        .expect("disable");
    let disabled = assert_code(
        shipping.encrypt(KEY, b"x", &[]).await,
        Code::PermissionDenied,
    );
    assert_eq!(disabled.message(), outcomes[0].2.message());

    // The key is untouched and still BILLING's alone.
    let info = admin.key(KEY).await.expect("get");
    assert_eq!(info.primary_version, 1);
    assert!(info.grants.is_empty());
}

#[tokio::test]
async fn list_keys_as_a_service_shows_only_its_own_keys() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key("billing/a", BILLING).await;
    admin.create_key("shared/b", BILLING).await;
    admin.create_key("shipping/a", SHIPPING).await;
    admin.create_key("shared/a", SHIPPING).await;
    admin.create_key("admin/own", ADMIN).await;
    // A grant does not make a key listable.
    admin
        .admin
        .create_grant(grant_req(
            "shipping/a",
            BILLING,
            &ops(&[Operation::Decrypt]),
        ))
        .await
        .expect("grant");
    let mut billing = server.client(BILLING).await;
    let mut shipping = server.client(SHIPPING).await;

    let ids = |page: proto::ListKeysResponse| -> Vec<String> {
        page.keys.into_iter().map(|k| k.key_id).collect()
    };
    let page = list(&mut billing, "", 0, "").await.expect("list");
    assert!(page.next_page_token.is_empty());
    assert!(page.keys.iter().all(|k| k.owner == BILLING));
    assert_eq!(ids(page), ["billing/a", "shared/b"]);
    assert_eq!(
        ids(list(&mut shipping, "", 0, "").await.expect("list")),
        ["shared/a", "shipping/a"]
    );
    assert_eq!(
        ids(list(&mut shipping, "shared/", 0, "").await.expect("list")),
        ["shared/a"]
    );
    // Paging over interleaved foreign keys still yields exactly the own keys.
    assert_eq!(
        list_pages(&mut billing, "", 1).await.concat(),
        ["billing/a", "shared/b"]
    );
    assert_eq!(
        ids(list(&mut admin, "", 0, "").await.expect("list")),
        [
            "admin/own",
            "billing/a",
            "shared/a",
            "shared/b",
            "shipping/a"
        ]
    );
}

#[tokio::test]
async fn admin_list_keys_filters_by_prefix_and_pages_in_id_order() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    // Created out of order, with neighbours just outside the prefix.
    let wanted = ["app/c", "app/a", "app/e", "app/b", "app/d"];
    for id in wanted {
        admin.create_key(id, BILLING).await;
    }
    for id in ["ap", "apo/z", "apq/a", "zzz"] {
        admin.create_key(id, SHIPPING).await;
    }

    let pages = list_pages(&mut admin, "app/", 2).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1], "{pages:?}");
    let all: Vec<String> = pages.concat();
    let mut expected: Vec<String> = wanted.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(all, expected, "every key exactly once, in id order");

    // An exact multiple of the page size: the last full page has no token,
    // so no empty trailing page is served.
    let sizes: Vec<usize> = list_pages(&mut admin, "app/", 5)
        .await
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(sizes, [5]);
    let sizes: Vec<usize> = list_pages(&mut admin, "", 3)
        .await
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(sizes, [3, 3, 3]);

    let everything = list_pages(&mut admin, "", 2).await.concat();
    assert_eq!(
        everything,
        [
            "ap", "apo/z", "app/a", "app/b", "app/c", "app/d", "app/e", "apq/a", "zzz"
        ]
    );
    let one_page = list(&mut admin, "", 0, "")
        .await
        .expect("default page size");
    assert_eq!(one_page.keys.len(), 9);
    assert!(one_page.next_page_token.is_empty());
    assert!(
        list(&mut admin, "nothing/", 2, "")
            .await
            .expect("list")
            .keys
            .is_empty()
    );
}

#[tokio::test]
async fn a_bad_page_token_is_invalid_argument() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key("app/a", BILLING).await;
    let mut billing = server.client(BILLING).await;
    let not_a_key_id = hex::encode("has space");
    let leading_slash = hex::encode("/abs");
    for token in [
        "zz",
        "not a token",
        "abc",
        "ff00",
        not_a_key_id.as_str(),
        leading_slash.as_str(),
    ] {
        let status = assert_code(list(&mut admin, "", 2, token).await, Code::InvalidArgument);
        assert!(status.message().contains("page_token"), "{status:?}");
        assert_code(
            list(&mut billing, "", 2, token).await,
            Code::InvalidArgument,
        );
    }
}
