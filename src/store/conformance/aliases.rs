//! Conformance: aliases (create, replace, delete, list by prefix with
//! paging), and that they go into snapshots and come back with a restore.

use crate::error::StoreError;
use crate::model::{Alias, AliasName, KeyId};
use crate::store::KeyStore;

fn alias(name: &str, key: &str, at: i64) -> Alias {
    Alias {
        name: AliasName::parse(name).expect("valid alias"),
        key_id: KeyId::parse(key).expect("valid key id"),
        created_at: at,
        updated_at: at,
        // Opaque to the store: kept byte for byte.
        tag: Some(vec![0x5a; 32]),
    }
}

fn names(aliases: &[Alias]) -> Vec<&str> {
    aliases.iter().map(|a| a.name.as_str()).collect()
}

/// Aliases are created once, replaced, deleted and listed in name order.
pub async fn aliases_are_kept_listed_and_restored(store: &dyn KeyStore) {
    let pay = alias("alias/pay", "k/pay-1", 10);
    assert_eq!(store.alias(&pay.name).await.expect("read"), None);
    store.create_alias(&pay).await.expect("create");
    assert_eq!(
        store.alias(&pay.name).await.expect("read"),
        Some(pay.clone())
    );
    assert!(matches!(
        store.create_alias(&alias("alias/pay", "k/other", 11)).await,
        Err(StoreError::AlreadyExists)
    ));
    let moved = Alias {
        key_id: KeyId::parse("k/pay-2").expect("id"),
        updated_at: 12,
        ..pay.clone()
    };
    store.replace_alias(&moved).await.expect("replace");
    assert_eq!(
        store.alias(&pay.name).await.expect("read"),
        Some(moved.clone())
    );
    assert!(matches!(
        store.replace_alias(&alias("alias/none", "k/x", 1)).await,
        Err(StoreError::NotFound)
    ));

    for name in [
        "alias/pay/eu",
        "alias/pay/us",
        "alias/pay-old",
        "alias/shop",
    ] {
        store
            .create_alias(&alias(name, "k/x", 1))
            .await
            .expect("create");
    }
    let all = store.list_aliases("alias/", None, 100).await.expect("list");
    assert_eq!(
        names(&all),
        [
            "alias/pay",
            "alias/pay-old",
            "alias/pay/eu",
            "alias/pay/us",
            "alias/shop"
        ]
    );
    let prefixed = store
        .list_aliases("alias/pay/", None, 100)
        .await
        .expect("list");
    assert_eq!(names(&prefixed), ["alias/pay/eu", "alias/pay/us"]);
    let first = store.list_aliases("alias/", None, 2).await.expect("page");
    assert_eq!(names(&first), ["alias/pay", "alias/pay-old"]);
    let next = store
        .list_aliases("alias/", Some(&first[1].name), 2)
        .await
        .expect("page");
    assert_eq!(names(&next), ["alias/pay/eu", "alias/pay/us"]);

    let snapshot = store.snapshot().await.expect("snapshot");
    assert_eq!(names(&snapshot.aliases), names(&all));
    store
        .delete_alias(&AliasName::parse("alias/shop").expect("alias"))
        .await
        .expect("delete");
    assert!(matches!(
        store
            .delete_alias(&AliasName::parse("alias/shop").expect("alias"))
            .await,
        Err(StoreError::NotFound)
    ));
    store.restore(&snapshot, true).await.expect("restore");
    let restored = store.list_aliases("", None, 100).await.expect("list");
    assert_eq!(
        restored, snapshot.aliases,
        "a restore brings every alias back"
    );
    // A restore replaces aliases too: one made after the snapshot goes.
    store
        .create_alias(&alias("alias/late", "k/x", 2))
        .await
        .expect("create");
    store.restore(&snapshot, true).await.expect("restore");
    assert_eq!(
        store
            .alias(&AliasName::parse("alias/late").expect("alias"))
            .await
            .expect("read"),
        None
    );
}
