//! Measures a root-key rotation over many keys: creates N keys (one version
//! each) in a fresh sled keystore through the service, rotates the root key
//! and times the background re-wrap until every DEK is under the new root
//! key, while a reader keeps decrypting.
//!
//! `cargo run --release --example root_rotation_bench -- 100000`

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tresor::identity::Identity;
use tresor::master_key::FileMasterKey;
use tresor::model::KeyId;
use tresor::service::{DEFAULT_REWRAP_BATCH, Service, ServiceOptions};
use tresor::store::{KeyStore, SledKeyStore};
use tresor_crypto::Context;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let master = Arc::new(FileMasterKey::generate(&dir.path().join("master.key"))?);
    let store = Arc::new(SledKeyStore::open(&dir.path().join("data"))?);
    let admin = Identity::parse("spiffe://bench/admin")?;
    let owner = Identity::parse("spiffe://bench/owner")?;
    let options = ServiceOptions {
        max_plaintext_bytes: 1024,
        ..ServiceOptions::new(BTreeSet::from([admin.clone()]))
    };
    let service = Arc::new(Service::open(store.clone(), master, options).await?);

    let started = Instant::now();
    for i in 0..keys {
        let id = KeyId::parse(&format!("bench/{i:07}"))?;
        service.create_key(&admin, &id, &owner, "").await?;
    }
    let created = started.elapsed();
    println!("created {keys} keys in {:.1} s", created.as_secs_f64());

    let probe = KeyId::parse("bench/0000000")?;
    let context = Context::new();
    let sealed = service.encrypt(&owner, &probe, b"probe", &context).await?;

    let started = Instant::now();
    service.rotate_root_key(&admin).await?;
    let mut decrypts = 0u64;
    loop {
        let status = service.status(&admin).await?;
        if status.root_rotation.is_none() {
            break;
        }
        service
            .decrypt(&owner, &probe, &sealed.ciphertext, &context)
            .await?;
        decrypts += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rotated = started.elapsed();
    let versions = store.versions_after(None, keys + 10).await?;
    let all_new = versions.iter().all(|(_, v)| v.root_generation == 2);
    println!(
        "root-key rotation re-wrapped {} DEKs in {:.1} s ({:.0} DEKs/s), batch {DEFAULT_REWRAP_BATCH}; {decrypts} decrypts served meanwhile; all under the new root key: {all_new}",
        versions.len(),
        rotated.as_secs_f64(),
        versions.len() as f64 / rotated.as_secs_f64()
    );
    Ok(())
}
