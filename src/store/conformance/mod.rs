//! The conformance suite every [`KeyStore`] implementation must pass. Each
//! backend's tests call [`run_all`] with a fresh, empty store (the sled
//! tests below, `tests/it/postgres.rs` for PostgreSQL). Public only so that
//! integration tests can run it; it panics on the first violation.

mod aliases;
mod owner_index;
mod roles;

use std::collections::BTreeMap;

use super::{KeyStore, KeyUpdate, RewrapCursor, RootWrapping, StoredRoot, StoredVersion};
use crate::error::{Error, StoreError};
use crate::identity::Identity;
use crate::model::{KeyId, KeyMetadata, KeyState, KeyVersion, VersionInfo};

fn id(raw: &str) -> KeyId {
    KeyId::parse(raw).expect("valid test key id")
}

/// Metadata of an enabled key `raw` with one version, owned by
/// `spiffe://test/owner`.
pub fn metadata(raw: &str) -> KeyMetadata {
    KeyMetadata {
        id: id(raw),
        owner: Identity::parse("spiffe://test/owner").expect("valid identity"),
        description: format!("key {raw}"),
        state: KeyState::Enabled,
        primary_version: KeyVersion::FIRST,
        min_decryption_version: KeyVersion::FIRST,
        versions: vec![VersionInfo::new(KeyVersion::FIRST, 1_700_000_000)],
        created_at: 1_700_000_000,
        grants: BTreeMap::new(),
        rotation_period: None,
        // Not the defaults, so every store is seen to keep them.
        conditional_grants: vec![crate::model::ConditionalGrant {
            grantee: crate::model::Grantee::PathPrefix("spiffe://test/ns/prod/".into()),
            operations: [crate::model::Operation::Decrypt].into_iter().collect(),
            constraint: crate::model::ContextConstraint::Subset(BTreeMap::from([(
                "tenant".to_owned(),
                "42".to_owned(),
            )])),
            expires_at: Some(1_900_000_000),
        }],
        purpose: crate::model::KeyPurpose::Deterministic,
        labels: crate::model::Labels::parse([("team", "conformance"), ("env", "test")])
            .expect("valid labels"),
        // Opaque to the store: kept byte for byte.
        tag: Some(vec![0x7a; 32]),
    }
}

/// Initialises a root record (generation 1) if the store has none, as the
/// service does before creating keys.
pub async fn ensure_root(store: &dyn KeyStore) {
    if store.root().await.expect("root").is_none() {
        store.init_root(test_root()).await.expect("init root");
    }
}

/// The root record [`ensure_root`] writes (generation 1, a dummy wrapping).
pub(crate) fn test_root() -> StoredRoot {
    StoredRoot {
        keystore_id: "conformance".into(),
        current: RootWrapping {
            master_key: "file:/test".into(),
            wrapped_root_key: vec![1; 60],
        },
        pending: None,
        generation: 1,
        retiring: None,
        audit_key: None,
        metadata_key: None,
    }
}

/// A first version whose wrapped DEK is 40 bytes of `tag`, under root
/// generation 1.
pub fn first_version(tag: u8) -> StoredVersion {
    StoredVersion {
        version: KeyVersion::FIRST,
        wrapped_dek: vec![tag; 40],
        root_generation: 1,
    }
}

/// Runs every conformance check against `store`, which must be empty.
pub async fn run_all(store: &dyn KeyStore) {
    root_is_initialised_once(store).await;
    seal_state_is_remembered(store).await;
    audit_marks_are_kept_per_log(store).await;
    dek_under_a_stale_root_generation_is_refused(store).await;
    create_get_and_duplicate(store).await;
    rotation_adds_versions_atomically(store).await;
    rejected_update_changes_nothing(store).await;
    listing_pages_by_prefix(store).await;
    rewrapping_walks_versions_in_order_and_skips_changed_ones(store).await;
    deletion_schedule_and_delete(store).await;
    destroying_a_version_erases_its_dek(store).await;
    rotation_schedule_follows_the_metadata(store).await;
    usage_counts_add_up_and_go_with_their_key(store).await;
    // Last: they restore the store from its own snapshot.
    owner_index::listing_by_owner_reads_one_owners_keys(store).await;
    aliases::aliases_are_kept_listed_and_restored(store).await;
    roles::role_bindings_are_kept_listed_and_restored(store).await;
}

async fn audit_marks_are_kept_per_log(store: &dyn KeyStore) {
    assert_eq!(store.audit_mark("replica-a").await.expect("mark"), None);
    let first = super::AuditMark {
        sequence: 41,
        record_hash: vec![7; 32],
    };
    let later = super::AuditMark {
        sequence: 97,
        record_hash: vec![9; 32],
    };
    store
        .set_audit_mark("replica-a", &first)
        .await
        .expect("set");
    store
        .set_audit_mark("replica-b", &later)
        .await
        .expect("set");
    assert_eq!(
        store.audit_mark("replica-a").await.expect("mark"),
        Some(first.clone())
    );
    store
        .set_audit_mark("replica-a", &later)
        .await
        .expect("set");
    assert_eq!(
        store.audit_mark("replica-a").await.expect("mark"),
        Some(later.clone())
    );
    assert_eq!(
        store.audit_mark("replica-b").await.expect("mark"),
        Some(later.clone())
    );
    // A checkpoint only moves forward: the same one again is a no-op, an
    // older one or another record at the same place is refused.
    store
        .set_audit_mark("replica-a", &later)
        .await
        .expect("the same checkpoint again");
    for behind in [
        first,
        super::AuditMark {
            sequence: 97,
            record_hash: vec![8; 32],
        },
    ] {
        assert!(matches!(
            store.set_audit_mark("replica-a", &behind).await,
            Err(StoreError::AuditMarkBehind {
                stored: 97,
                offered
            }) if offered == behind.sequence
        ));
    }
    assert_eq!(
        store.audit_mark("replica-a").await.expect("mark"),
        Some(later)
    );
}

async fn root_is_initialised_once(store: &dyn KeyStore) {
    assert_eq!(store.root().await.expect("root"), None);
    let first = StoredRoot {
        keystore_id: "ks-1".into(),
        current: RootWrapping {
            master_key: "file:/a".into(),
            wrapped_root_key: vec![1; 60],
        },
        pending: None,
        generation: 1,
        retiring: None,
        audit_key: Some(vec![3; 70]),
        metadata_key: Some(vec![4; 70]),
    };
    let second = StoredRoot {
        keystore_id: "ks-2".into(),
        ..first.clone()
    };
    assert_eq!(store.init_root(first.clone()).await.expect("init"), first);
    assert_eq!(
        store.init_root(second.clone()).await.expect("init again"),
        first
    );
    assert_eq!(store.root().await.expect("root"), Some(first.clone()));
    // Compare and swap: applies against the stored value only.
    let rotating = StoredRoot {
        pending: Some(RootWrapping {
            master_key: "aws-kms:k".into(),
            wrapped_root_key: vec![2; 80],
        }),
        ..first.clone()
    };
    assert!(matches!(
        store.replace_root(&second, &rotating).await,
        Err(StoreError::Conflict)
    ));
    store.replace_root(&first, &rotating).await.expect("swap");
    assert_eq!(store.root().await.expect("root"), Some(rotating.clone()));
    store
        .replace_root(&rotating, &first)
        .await
        .expect("swap back");
    assert_eq!(store.root().await.expect("root"), Some(first));
}

async fn dek_under_a_stale_root_generation_is_refused(store: &dyn KeyStore) {
    let stale = StoredVersion {
        root_generation: 7,
        ..first_version(1)
    };
    assert!(matches!(
        store.create_key(&metadata("stale/gen"), &stale).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.key(&id("stale/gen")).await.expect("get"), None);
}

async fn seal_state_is_remembered(store: &dyn KeyStore) {
    assert!(!store.sealed().await.expect("sealed"));
    store.set_sealed(true).await.expect("seal");
    store.set_sealed(true).await.expect("seal twice");
    assert!(store.sealed().await.expect("sealed"));
    store.set_sealed(false).await.expect("unseal");
    assert!(!store.sealed().await.expect("sealed"));
}

async fn create_get_and_duplicate(store: &dyn KeyStore) {
    let meta = metadata("conf/a");
    store
        .create_key(&meta, &first_version(7))
        .await
        .expect("create");
    assert_eq!(store.key(&meta.id).await.expect("get"), Some(meta.clone()));
    assert!(matches!(
        store.create_key(&meta, &first_version(8)).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store
            .version(&meta.id, KeyVersion::FIRST)
            .await
            .expect("version"),
        Some(first_version(7)),
        "a refused duplicate must not overwrite the first version"
    );
    assert_eq!(store.key(&id("conf/missing")).await.expect("get"), None);
}

async fn rotation_adds_versions_atomically(store: &dyn KeyStore) {
    let key = id("conf/a");
    let rotated = store
        .update_key(&key, &|current| {
            let mut next = current.clone();
            let version = next.primary_version.next()?;
            next.primary_version = version;
            next.versions.push(VersionInfo::new(version, 1_700_000_100));
            Ok(KeyUpdate {
                metadata: next,
                destroy_version: None,
                new_version: Some(StoredVersion {
                    version,
                    wrapped_dek: vec![9; 40],
                    root_generation: 1,
                }),
            })
        })
        .await
        .expect("rotate");
    assert_eq!(rotated.primary_version.get(), 2);
    assert_eq!(store.key(&key).await.expect("get"), Some(rotated));
    let v2 = KeyVersion::new(2).expect("v2");
    assert_eq!(
        store
            .version(&key, v2)
            .await
            .expect("v2")
            .map(|v| v.wrapped_dek),
        Some(vec![9; 40])
    );
    assert!(matches!(
        store
            .update_key(&id("conf/missing"), &|m| Ok(KeyUpdate::metadata(m.clone())))
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn rejected_update_changes_nothing(store: &dyn KeyStore) {
    let key = id("conf/a");
    let before = store.key(&key).await.expect("get");
    let outcome = store
        .update_key(&key, &|_| Err(Error::PermissionDenied))
        .await;
    assert!(
        matches!(outcome, Err(StoreError::Rejected(e)) if matches!(*e, Error::PermissionDenied))
    );
    assert_eq!(store.key(&key).await.expect("get"), before);
}

async fn listing_pages_by_prefix(store: &dyn KeyStore) {
    for name in ["list/b", "list/a", "list/c", "other/x"] {
        store
            .create_key(&metadata(name), &first_version(1))
            .await
            .expect("create");
    }
    let page = store.list_keys("list/", None, 2).await.expect("list");
    let names: Vec<_> = page.iter().map(|m| m.id.to_string()).collect();
    assert_eq!(names, ["list/a", "list/b"]);
    let rest = store
        .list_keys("list/", Some(&page[1].id), 10)
        .await
        .expect("list");
    let names: Vec<_> = rest.iter().map(|m| m.id.to_string()).collect();
    assert_eq!(names, ["list/c"]);
    let all = store.list_keys("", None, 100).await.expect("list all");
    assert_eq!(all.len(), 5);
    assert_eq!(store.key_count().await.expect("count"), 5);
}

async fn rewrapping_walks_versions_in_order_and_skips_changed_ones(store: &dyn KeyStore) {
    // Keys so far: conf/a (v1, v2), list/a, list/b, list/c, other/x.
    let all = store.versions_after(None, 100).await.expect("versions");
    let order: Vec<(String, u32)> = all
        .iter()
        .map(|(id, v)| (id.to_string(), v.version.get()))
        .collect();
    assert_eq!(
        order,
        [
            ("conf/a".to_owned(), 1),
            ("conf/a".to_owned(), 2),
            ("list/a".to_owned(), 1),
            ("list/b".to_owned(), 1),
            ("list/c".to_owned(), 1),
            ("other/x".to_owned(), 1),
        ]
    );
    let cursor = RewrapCursor {
        key_id: all[1].0.clone(),
        version: all[1].1.version,
    };
    let rest = store.versions_after(Some(&cursor), 2).await.expect("page");
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0].0.as_str(), "list/a");
    assert_eq!(store.rewrap_cursor().await.expect("cursor"), None);

    let rewrapped = |(id, v): &(KeyId, StoredVersion)| {
        (
            id.clone(),
            v.clone(),
            StoredVersion {
                wrapped_dek: vec![0xee; 48],
                root_generation: 2,
                ..v.clone()
            },
        )
    };
    let mut batch: Vec<_> = all[..3].iter().map(rewrapped).collect();
    // One entry changed meanwhile: its expected value no longer matches.
    batch[2].1.wrapped_dek = vec![0; 1];
    let cursor = RewrapCursor {
        key_id: all[2].0.clone(),
        version: all[2].1.version,
    };
    assert_eq!(
        store
            .rewrap_versions(&batch, &cursor)
            .await
            .expect("rewrap"),
        2
    );
    assert_eq!(store.rewrap_cursor().await.expect("cursor"), Some(cursor));
    let after = store.versions_after(None, 100).await.expect("versions");
    assert_eq!(after[0].1.root_generation, 2);
    assert_eq!(after[1].1.wrapped_dek, vec![0xee; 48]);
    assert_eq!(after[2].1, all[2].1, "the changed entry was skipped");
    store.clear_rewrap_cursor().await.expect("clear");
    assert_eq!(store.rewrap_cursor().await.expect("cursor"), None);
}

async fn deletion_schedule_and_delete(store: &dyn KeyStore) {
    let key = id("list/b");
    store
        .update_key(&key, &|current| {
            let mut next = current.clone();
            next.state = KeyState::PendingDeletion { deletion_at: 2_000 };
            Ok(KeyUpdate::metadata(next))
        })
        .await
        .expect("schedule");
    assert!(store.due_deletions(1_999).await.expect("due").is_empty());
    assert_eq!(
        store.due_deletions(2_000).await.expect("due"),
        vec![key.clone()]
    );
    store.delete_key(&key).await.expect("delete");
    assert_eq!(store.key(&key).await.expect("get"), None);
    assert_eq!(
        store
            .version(&key, KeyVersion::FIRST)
            .await
            .expect("version"),
        None
    );
    assert!(
        store
            .due_deletions(i64::MAX - 1)
            .await
            .expect("due")
            .is_empty()
    );
    assert_eq!(store.key_count().await.expect("count"), 4);
    assert!(matches!(
        store.delete_key(&key).await,
        Err(StoreError::NotFound)
    ));
}

async fn destroying_a_version_erases_its_dek(store: &dyn KeyStore) {
    let key = id("destroy/a");
    store
        .create_key(&metadata("destroy/a"), &first_version(1))
        .await
        .expect("create");
    let second = KeyVersion::new(2).expect("version");
    store
        .update_key(&key, &|current| {
            let mut next = current.clone();
            next.primary_version = second;
            next.versions.push(VersionInfo::new(second, 1_700_000_100));
            Ok(KeyUpdate {
                metadata: next,
                new_version: Some(StoredVersion {
                    version: second,
                    wrapped_dek: vec![2; 40],
                    root_generation: 1,
                }),
                destroy_version: None,
            })
        })
        .await
        .expect("rotate");
    let destroyed = store
        .update_key(&key, &|current| {
            let mut next = current.clone();
            next.min_decryption_version = second;
            next.versions[0].destroyed_at = Some(1_700_000_200);
            Ok(KeyUpdate {
                metadata: next,
                new_version: None,
                destroy_version: Some(KeyVersion::FIRST),
            })
        })
        .await
        .expect("destroy");
    assert!(destroyed.is_destroyed(KeyVersion::FIRST));
    let stored = store.key(&key).await.expect("get").expect("key");
    assert_eq!(stored.versions[0].destroyed_at, Some(1_700_000_200));
    assert_eq!(
        store.version(&key, KeyVersion::FIRST).await.expect("v1"),
        None,
        "the destroyed DEK is gone"
    );
    assert!(store.version(&key, second).await.expect("v2").is_some());
    let everywhere = store.versions_after(None, usize::MAX).await.expect("all");
    assert!(
        !everywhere
            .iter()
            .any(|(k, v)| k == &key && v.version == KeyVersion::FIRST)
    );
    let snapshot = store.snapshot().await.expect("snapshot");
    assert!(
        !snapshot
            .versions
            .iter()
            .any(|(k, v)| k == &key && v.version == KeyVersion::FIRST),
        "a backup taken after destruction does not hold the DEK"
    );
}

async fn rotation_schedule_follows_the_metadata(store: &dyn KeyStore) {
    let hour = crate::model::RotationPeriod::from_secs(3600).expect("period");
    let created = 1_700_000_000;
    for name in ["sched/a", "sched/b", "sched/c"] {
        let mut meta = metadata(name);
        meta.rotation_period = Some(hour);
        if name == "sched/c" {
            meta.versions[0].created_at = created + 10;
        }
        store
            .create_key(&meta, &first_version(1))
            .await
            .expect("create");
    }
    let due_at = created + 3600;
    assert!(
        store
            .due_rotations(due_at - 1, 10)
            .await
            .expect("due")
            .is_empty()
    );
    assert_eq!(
        store.due_rotations(due_at + 10, 10).await.expect("due"),
        vec![id("sched/a"), id("sched/b"), id("sched/c")],
        "soonest first"
    );
    assert_eq!(
        store
            .due_rotations(due_at + 10, 2)
            .await
            .expect("due")
            .len(),
        2,
        "the limit holds"
    );
    // Disabling takes a key off the schedule; enabling puts it back.
    let set_state = |state: KeyState| {
        move |current: &KeyMetadata| {
            let mut next = current.clone();
            next.state = state;
            Ok(KeyUpdate::metadata(next))
        }
    };
    store
        .update_key(&id("sched/a"), &set_state(KeyState::Disabled))
        .await
        .expect("disable");
    assert_eq!(
        store.due_rotations(due_at, 10).await.expect("due"),
        vec![id("sched/b")]
    );
    store
        .update_key(&id("sched/a"), &set_state(KeyState::Enabled))
        .await
        .expect("enable");
    // A new primary version moves the next rotation one period on.
    store
        .update_key(&id("sched/b"), &|current| {
            let mut next = current.clone();
            let version = next.primary_version.next()?;
            next.primary_version = version;
            next.versions.push(VersionInfo::new(version, due_at));
            Ok(KeyUpdate {
                metadata: next,
                new_version: Some(StoredVersion {
                    version,
                    wrapped_dek: vec![4; 40],
                    root_generation: 1,
                }),
                destroy_version: None,
            })
        })
        .await
        .expect("rotate");
    assert_eq!(
        store.due_rotations(due_at, 10).await.expect("due"),
        vec![id("sched/a")]
    );
    assert_eq!(
        store.due_rotations(due_at + 3600, 10).await.expect("due"),
        vec![id("sched/a"), id("sched/c"), id("sched/b")]
    );
    // Clearing the period and deleting the key take it off the schedule.
    store
        .update_key(&id("sched/a"), &|current| {
            let mut next = current.clone();
            next.rotation_period = None;
            Ok(KeyUpdate::metadata(next))
        })
        .await
        .expect("clear");
    store.delete_key(&id("sched/c")).await.expect("delete");
    assert_eq!(
        store.due_rotations(i64::MAX - 1, 10).await.expect("due"),
        vec![id("sched/b")]
    );
    // A restore rebuilds the schedule from the keys, and keeps the audit
    // logs' checkpoints (they describe the log files, not the keys).
    let mark = super::AuditMark {
        sequence: 7,
        record_hash: vec![7; 32],
    };
    store
        .set_audit_mark("restore-survivor", &mark)
        .await
        .expect("set mark");
    let snapshot = store.snapshot().await.expect("snapshot");
    store.restore(&snapshot, true).await.expect("restore");
    assert_eq!(
        store.due_rotations(i64::MAX - 1, 10).await.expect("due"),
        vec![id("sched/b")]
    );
    assert_eq!(
        store.audit_mark("restore-survivor").await.expect("mark"),
        Some(mark)
    );
}

async fn usage_counts_add_up_and_go_with_their_key(store: &dyn KeyStore) {
    store
        .create_key(&metadata("usage/a"), &first_version(1))
        .await
        .expect("create");
    let (a, b) = (id("usage/a"), id("usage/b"));
    let v1 = KeyVersion::FIRST;
    let v2 = KeyVersion::new(2).expect("v2");
    assert_eq!(
        store
            .add_usage(&[(a.clone(), v1, 5), (a.clone(), v2, 1), (b.clone(), v1, 7)])
            .await
            .expect("add"),
        vec![5, 1, 7]
    );
    assert_eq!(
        store
            .add_usage(&[(a.clone(), v1, 3), (b.clone(), v1, 0)])
            .await
            .expect("add"),
        vec![8, 7]
    );
    store.delete_key(&a).await.expect("delete");
    assert_eq!(
        store.add_usage(&[(a.clone(), v1, 1)]).await.expect("add"),
        vec![1],
        "a deleted key's counts go with it"
    );
}

/// Concurrent rotations of one key through several handles on the same
/// store (several replicas): every rotation succeeds and the versions are
/// consecutive, with no gap and no duplicate.
pub async fn concurrent_rotations_on_one_key(
    stores: &[std::sync::Arc<dyn KeyStore>],
    per_store: usize,
) {
    let first = stores.first().expect("at least one store");
    ensure_root(first.as_ref()).await;
    first
        .create_key(&metadata("race"), &first_version(1))
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for store in stores {
        for _ in 0..per_store {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .update_key(&id("race"), &|current| {
                        let mut next = current.clone();
                        let version = next.primary_version.next()?;
                        next.primary_version = version;
                        next.versions.push(VersionInfo::new(version, 1));
                        Ok(KeyUpdate {
                            metadata: next,
                            destroy_version: None,
                            new_version: Some(StoredVersion {
                                version,
                                wrapped_dek: vec![5; 40],
                                root_generation: 1,
                            }),
                        })
                    })
                    .await
                    .expect("rotate")
                    .primary_version
                    .get()
            }));
        }
    }
    let mut returned = Vec::new();
    for task in tasks {
        returned.push(task.await.expect("task"));
    }
    returned.sort_unstable();
    let expected: Vec<u32> =
        (2..=u32::try_from(stores.len() * per_store + 1).expect("small")).collect();
    assert_eq!(
        returned, expected,
        "each rotation got its own consecutive version"
    );
    let key = first.key(&id("race")).await.expect("get").expect("key");
    assert_eq!(key.primary_version.get(), *expected.last().expect("some"));
    let versions: Vec<u32> = first
        .versions_after(None, 10_000)
        .await
        .expect("versions")
        .into_iter()
        .filter(|(key, _)| key.as_str() == "race")
        .map(|(_, v)| v.version.get())
        .collect();
    let all: Vec<u32> = (1..=*expected.last().expect("some")).collect();
    assert_eq!(
        versions, all,
        "stored versions have no gap and no duplicate"
    );
}

#[cfg(test)]
mod sled {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sled_concurrent_rotations_are_consecutive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: std::sync::Arc<dyn KeyStore> =
            std::sync::Arc::new(crate::store::SledKeyStore::open(dir.path()).expect("open"));
        concurrent_rotations_on_one_key(&[store.clone(), store], 30).await;
    }

    #[tokio::test]
    async fn sled_key_store_conforms() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::SledKeyStore::open(dir.path()).expect("open sled");
        run_all(&store).await;
    }

    #[tokio::test]
    async fn sled_key_store_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = metadata("durable/a");
        {
            let store = crate::store::SledKeyStore::open(dir.path()).expect("open sled");
            ensure_root(&store).await;
            store
                .create_key(&meta, &first_version(3))
                .await
                .expect("create");
        }
        let store = crate::store::SledKeyStore::open(dir.path()).expect("reopen sled");
        assert_eq!(store.key(&meta.id).await.expect("get"), Some(meta));
    }

    /// Regression: sled 0.34's process-wide lock deadlocked concurrent
    /// transactions and flushes across keystores in one process. Many
    /// concurrent rotations on several stores must all finish. (The timeout
    /// only detects a hang; it measures nothing.)
    #[test]
    fn concurrent_writes_on_several_sled_stores_do_not_deadlock() {
        // The work runs on its own thread and runtime, so a deadlock inside sled
        // (which blocks runtime workers) still lets this thread report it.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(concurrent_rotations_on_several_stores());
            let _ = done.send(());
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("concurrent writes deadlocked (or panicked)");
    }

    async fn concurrent_rotations_on_several_stores() {
        let dirs: Vec<_> = (0..3)
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let stores: Vec<std::sync::Arc<crate::store::SledKeyStore>> = dirs
            .iter()
            .map(|dir| {
                std::sync::Arc::new(crate::store::SledKeyStore::open(dir.path()).expect("open"))
            })
            .collect();
        for store in &stores {
            ensure_root(store.as_ref()).await;
        }
        for store in &stores {
            store
                .create_key(&metadata("hot"), &first_version(1))
                .await
                .expect("create");
        }
        let mut tasks = Vec::new();
        for store in &stores {
            for _ in 0..40 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    store
                        .update_key(&id("hot"), &|current| {
                            let mut next = current.clone();
                            let version = next.primary_version.next()?;
                            next.primary_version = version;
                            Ok(KeyUpdate {
                                metadata: next,
                                destroy_version: None,
                                new_version: Some(StoredVersion {
                                    version,
                                    wrapped_dek: vec![3; 40],
                                    root_generation: 1,
                                }),
                            })
                        })
                        .await
                        .expect("rotate")
                }));
            }
        }
        for task in tasks {
            task.await.expect("task");
        }
        for store in &stores {
            let key = store.key(&id("hot")).await.expect("get").expect("key");
            assert_eq!(key.primary_version.get(), 41);
        }
    }
}
