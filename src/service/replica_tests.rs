//! Two replicas over one keystore, one of whose cached metadata is behind
//! the other's writes (as between PostgreSQL replicas until the change
//! notification arrives; sled sends none, so here it lasts the cache's
//! freshness bound).

use tresor_crypto::Context;

use super::Service;
use super::tests::{ADMIN, OWNER, ident, key_id, master_and_store, options};

#[tokio::test]
async fn a_ciphertext_under_a_version_another_replica_just_rotated_in_decrypts() {
    let dir = tempfile::tempdir().expect("dir");
    let (master, store) = master_and_store(dir.path());
    let replica_a = Service::open(store.clone(), master.clone(), options())
        .await
        .expect("open a");
    let replica_b = Service::open(store, master, options())
        .await
        .expect("open b");
    let (admin, owner, id) = (ident(ADMIN), ident(OWNER), key_id("shared"));
    let context = Context::new();
    replica_a
        .create_key(&admin, &id, &owner, "")
        .await
        .expect("create");
    // Replica b reads the key (version 1) and keeps its metadata.
    let old = replica_b
        .encrypt(&owner, &id, b"before", &context)
        .await
        .expect("encrypt on b");
    // Replica a rotates it and encrypts under version 2 at once.
    replica_a.rotate_key(&owner, &id).await.expect("rotate");
    let new = replica_a
        .encrypt(&owner, &id, b"after", &context)
        .await
        .expect("encrypt on a");
    assert_eq!(new.key_version.get(), 2);
    // Replica b, its metadata still at version 1, opens both.
    let opened = replica_b
        .decrypt(&owner, &id, &new.ciphertext, &context)
        .await
        .expect("a version another replica rotated in decrypts");
    assert_eq!(opened.plaintext.expose(), b"after");
    let opened = replica_b
        .decrypt(&owner, &id, &old.ciphertext, &context)
        .await
        .expect("the old version too");
    assert_eq!(opened.plaintext.expose(), b"before");
    // A version no replica has made is still an invalid ciphertext.
    let mut forged = new.ciphertext.clone();
    // The header's key version: bytes 4..8, big-endian (format.rs).
    forged[4..8].copy_from_slice(&9u32.to_be_bytes());
    assert!(matches!(
        replica_b.decrypt(&owner, &id, &forged, &context).await,
        Err(crate::error::Error::InvalidCiphertext(_))
    ));
}
