//! Conformance: role bindings (add once, remove, list in store-key
//! order), and that they go into snapshots and come back with a restore.

use crate::error::StoreError;
use crate::identity::Identity;
use crate::model::{Grantee, Role, RoleBinding};
use crate::store::KeyStore;

fn binding(role: Role, grantee: &str) -> RoleBinding {
    RoleBinding {
        role,
        grantee: Grantee::parse(grantee).expect("valid grantee"),
        created_at: 10,
        created_by: Identity::parse("spiffe://conformance.test/admin").expect("id"),
        // Opaque to the store: kept byte for byte.
        tag: Some(vec![0x6b; 32]),
    }
}

/// Role bindings are added once, listed in store-key order, removed, and
/// restored with a snapshot.
pub async fn role_bindings_are_kept_listed_and_restored(store: &dyn KeyStore) {
    assert!(store.role_bindings().await.expect("list").is_empty());
    let officer = binding(Role::SecurityOfficer, "spiffe://conformance.test/ns/sec/*");
    let admin = binding(Role::Admin, "spiffe://conformance.test/ops");
    let auditor = binding(Role::Auditor, "spiffe://conformance.test/ops");
    for each in [&officer, &admin, &auditor] {
        store.add_role_binding(each).await.expect("add");
    }
    assert!(matches!(
        store.add_role_binding(&admin).await,
        Err(StoreError::AlreadyExists)
    ));
    let all = store.role_bindings().await.expect("list");
    assert_eq!(
        all,
        [admin.clone(), auditor.clone(), officer.clone()],
        "store-key order: role name, then grantee; records kept byte for byte"
    );

    let snapshot = store.snapshot().await.expect("snapshot");
    assert_eq!(snapshot.role_bindings, all);
    store
        .remove_role_binding(Role::Auditor, &auditor.grantee)
        .await
        .expect("remove");
    assert!(matches!(
        store
            .remove_role_binding(Role::Auditor, &auditor.grantee)
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .add_role_binding(&binding(Role::Auditor, "spiffe://conformance.test/late"))
        .await
        .expect("add");
    store.restore(&snapshot, true).await.expect("restore");
    assert_eq!(
        store.role_bindings().await.expect("list"),
        all,
        "a restore brings every binding back and drops later ones"
    );
}
