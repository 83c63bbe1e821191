//! A non-admin's ListKeys page over a sled keystore of 1,000,000 keys held
//! by 10,000 owners (100 keys each, spread over the whole id space), read
//! through the owner index (`list_owned_keys`, what the service calls for a
//! non-admin), beside the scan the service did before the index (every key
//! record in id order, filtered by owner). Run with
//! `cargo bench --bench list_keys`.
//!
//! The keystore is written once, by one `restore` of a snapshot (no wrapped
//! DEKs: listing reads only key records), into
//! `target/bench-data/list-keys-1m` and reused by later runs.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use tresor::identity::Identity;
use tresor::model::{KeyId, KeyMetadata, KeyState, KeyVersion, VersionInfo};
use tresor::store::{KeyStore, RootWrapping, SledKeyStore, Snapshot, StoredRoot};

const KEYS: u64 = 1_000_000;
const OWNERS: u64 = 10_000;
const PAGE: usize = 100;

fn owner(n: u64) -> Identity {
    Identity::parse(&format!("spiffe://bench/service-{n:05}")).expect("identity")
}

fn key(n: u64) -> KeyMetadata {
    KeyMetadata {
        id: KeyId::parse(&format!("app/key-{n:07}")).expect("key id"),
        owner: owner(n % OWNERS),
        description: String::new(),
        state: KeyState::Enabled,
        primary_version: KeyVersion::FIRST,
        min_decryption_version: KeyVersion::FIRST,
        versions: vec![VersionInfo::new(KeyVersion::FIRST, 1_700_000_000)],
        created_at: 1_700_000_000,
        grants: BTreeMap::new(),
        rotation_period: None,
        conditional_grants: Vec::new(),
        purpose: Default::default(),
        labels: Default::default(),
        tag: None,
    }
}

fn keystore_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/list-keys-1m")
}

async fn open_filled() -> SledKeyStore {
    let store = SledKeyStore::open(&keystore_dir()).expect("open keystore");
    if store.key_count().await.expect("count") == KEYS {
        return store;
    }
    let started = std::time::Instant::now();
    let snapshot = Snapshot {
        root: StoredRoot {
            keystore_id: "bench".into(),
            current: RootWrapping {
                master_key: "file:/bench".into(),
                wrapped_root_key: vec![1; 60],
            },
            pending: None,
            generation: 1,
            retiring: None,
            audit_key: None,
            metadata_key: None,
        },
        keys: (0..KEYS).map(key).collect(),
        versions: Vec::new(),
        aliases: Vec::new(),
        role_bindings: Vec::new(),
    };
    store.restore(&snapshot, true).await.expect("restore");
    eprintln!("wrote {KEYS} keys in {:?}", started.elapsed());
    store
}

fn list_keys(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = runtime.block_on(open_filled());
    let me = owner(4242);
    let mut group = c.benchmark_group("non-admin ListKeys, 1M keys");
    group.sample_size(10);
    group.bench_function("owner index, first page of 100", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let page = store
                    .list_owned_keys(&me, "", None, PAGE + 1)
                    .await
                    .expect("list");
                assert_eq!(page.len(), PAGE);
                black_box(page)
            })
        });
    });
    group.bench_function("owner index, prefix matching none", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let page = store
                    .list_owned_keys(&me, "other/", None, PAGE + 1)
                    .await
                    .expect("list");
                assert!(page.is_empty());
                black_box(page)
            })
        });
    });
    group.bench_function("full scan filtered by owner (before the index)", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut mine = Vec::new();
                let mut after: Option<KeyId> = None;
                loop {
                    let batch = store
                        .list_keys("", after.as_ref(), PAGE + 1)
                        .await
                        .expect("list");
                    let exhausted = batch.len() <= PAGE;
                    for key in batch {
                        after = Some(key.id.clone());
                        if key.owner == me {
                            mine.push(key);
                        }
                    }
                    if exhausted || mine.len() > PAGE {
                        break;
                    }
                }
                assert_eq!(mine.len(), PAGE);
                black_box(mine)
            })
        });
    });
    group.finish();
}

criterion_group!(benches, list_keys);
criterion_main!(benches);
