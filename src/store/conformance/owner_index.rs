//! Conformance of the owner index: [`KeyStore::list_owned_keys`] lists
//! exactly one owner's keys, by prefix and page, and follows creation,
//! deletion and restore.

use super::{ensure_root, first_version, id, metadata};
use crate::identity::Identity;
use crate::model::KeyMetadata;
use crate::store::KeyStore;

fn owned_by(raw: &str, owner: &Identity) -> KeyMetadata {
    KeyMetadata {
        owner: owner.clone(),
        ..metadata(raw)
    }
}

fn ids(keys: &[KeyMetadata]) -> Vec<&str> {
    keys.iter().map(|k| k.id.as_str()).collect()
}

/// Runs the owner-index checks; leaves keys behind under `owners/`.
pub(super) async fn listing_by_owner_reads_one_owners_keys(store: &dyn KeyStore) {
    ensure_root(store).await;
    let alice = Identity::parse("spiffe://test/alice").expect("identity");
    let bob = Identity::parse("spiffe://test/alice-bob").expect("identity");
    for (raw, owner) in [
        ("owners/a/1", &alice),
        ("owners/a/2", &alice),
        ("owners/b/1", &bob),
        ("owners/a/3", &alice),
        ("owners/c/1", &alice),
        ("owners/b/2", &bob),
    ] {
        store
            .create_key(&owned_by(raw, owner), &first_version(1))
            .await
            .expect("create");
    }
    let all = store
        .list_owned_keys(&alice, "owners/", None, 100)
        .await
        .expect("list");
    assert_eq!(
        ids(&all),
        ["owners/a/1", "owners/a/2", "owners/a/3", "owners/c/1"]
    );
    assert!(all.iter().all(|k| k.owner == alice));
    let prefixed = store
        .list_owned_keys(&alice, "owners/a/", None, 100)
        .await
        .expect("list");
    assert_eq!(ids(&prefixed), ["owners/a/1", "owners/a/2", "owners/a/3"]);
    let page = store
        .list_owned_keys(&alice, "owners/", Some(&id("owners/a/2")), 2)
        .await
        .expect("page");
    assert_eq!(ids(&page), ["owners/a/3", "owners/c/1"]);
    assert!(
        store
            .list_owned_keys(&alice, "owners/b/", None, 100)
            .await
            .expect("list")
            .is_empty(),
        "another owner's keys are not listed"
    );
    assert!(
        store
            .list_owned_keys(
                &Identity::parse("spiffe://test/nobody").expect("identity"),
                "",
                None,
                100
            )
            .await
            .expect("list")
            .is_empty()
    );

    // Updates keep the entry; deletion removes it.
    store
        .update_key(&id("owners/a/1"), &|current| {
            Ok(crate::store::KeyUpdate::metadata(KeyMetadata {
                description: "changed".into(),
                ..current.clone()
            }))
        })
        .await
        .expect("update");
    store.delete_key(&id("owners/a/2")).await.expect("delete");
    let after = store
        .list_owned_keys(&alice, "owners/a/", None, 100)
        .await
        .expect("list");
    assert_eq!(ids(&after), ["owners/a/1", "owners/a/3"]);
    assert_eq!(after[0].description, "changed");

    // A restore rebuilds the index from the snapshot's keys.
    let snapshot = store.snapshot().await.expect("snapshot");
    store.restore(&snapshot, true).await.expect("restore");
    let restored = store
        .list_owned_keys(&alice, "owners/", None, 100)
        .await
        .expect("list");
    assert_eq!(ids(&restored), ["owners/a/1", "owners/a/3", "owners/c/1"]);
    let bobs = store
        .list_owned_keys(&bob, "", None, 100)
        .await
        .expect("list");
    assert_eq!(ids(&bobs), ["owners/b/1", "owners/b/2"]);
}
