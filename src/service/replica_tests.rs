//! Two replicas over one keystore, one of whose cached metadata is behind
//! the other's writes (as between PostgreSQL replicas until the change
//! notification arrives; sled sends none, so here it lasts the cache's
//! freshness bound).

use tresor_crypto::{Context, MacLength};

use super::Service;
use super::admin::NewKey;
use super::tests::{ADMIN, OWNER, ident, key_id, master_and_store, options};
use crate::model::KeyPurpose;

/// Two services over one new sled keystore in `dir`.
async fn two_replicas(dir: &std::path::Path) -> (Service, Service) {
    let (master, store) = master_and_store(dir);
    let replica_a = Service::open(store.clone(), master.clone(), options())
        .await
        .expect("open a");
    let replica_b = Service::open(store, master, options())
        .await
        .expect("open b");
    (replica_a, replica_b)
}

#[tokio::test]
async fn a_ciphertext_under_a_version_another_replica_just_rotated_in_decrypts() {
    let dir = tempfile::tempdir().expect("dir");
    let (replica_a, replica_b) = two_replicas(dir.path()).await;
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

#[tokio::test]
async fn a_mac_token_under_a_version_another_replica_just_rotated_in_verifies() {
    let dir = tempfile::tempdir().expect("dir");
    let (replica_a, replica_b) = two_replicas(dir.path()).await;
    let (admin, owner, id) = (ident(ADMIN), ident(OWNER), key_id("index"));
    let (context, length) = (Context::new(), MacLength::FULL);
    let spec = NewKey {
        purpose: KeyPurpose::Mac,
        ..NewKey::owned_by(owner.clone())
    };
    replica_a
        .create_key_as(&admin, &id, spec)
        .await
        .expect("create");
    // Replica b reads the key (version 1) and keeps its metadata.
    replica_b
        .mac(&owner, &id, b"alice", &context, length)
        .await
        .expect("mac on b");
    replica_a.rotate_key(&owner, &id).await.expect("rotate");
    let token = replica_a
        .mac(&owner, &id, b"alice", &context, length)
        .await
        .expect("mac on a");
    assert_eq!(token.key_version.get(), 2);
    let verdict = replica_b
        .verify_mac(&owner, &id, b"alice", &token.mac, &context, length)
        .await
        .expect("verify on b");
    assert_eq!(verdict.valid_version, Some(token.key_version));
}
