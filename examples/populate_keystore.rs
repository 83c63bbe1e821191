//! Fills a sled keystore with many keys for the scale benchmark
//! (`crates/tresor-bench/scripts/bench-scale.sh`): each key is created through the service like
//! `CreateKey` does (fresh DEK wrapped under the root key, durable write), so
//! the server later opens a keystore that looks exactly like a real one.
//!
//! `cargo run --release --example populate_keystore -- DATA_DIR MASTER_KEY_FILE COUNT OWNER PREFIX`
//!
//! Creates keys `PREFIX-0` .. `PREFIX-{COUNT-1}` owned by `OWNER` (the names
//! `tresor bench --key-prefix PREFIX --keys COUNT` uses), skipping ids that
//! exist, 32 at a time.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tresor::error::Error;
use tresor::identity::Identity;
use tresor::master_key::FileMasterKey;
use tresor::model::KeyId;
use tresor::service::{Service, ServiceOptions};
use tresor::store::SledKeyStore;

const IN_FLIGHT: usize = 32;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data_dir, master_key, count, owner, prefix] = args.as_slice() else {
        return Err("usage: populate_keystore DATA_DIR MASTER_KEY_FILE COUNT OWNER PREFIX".into());
    };
    let count: usize = count.parse()?;
    let master = Arc::new(FileMasterKey::open(&PathBuf::from(master_key))?);
    let store = Arc::new(SledKeyStore::open(&PathBuf::from(data_dir))?);
    let admin = Identity::parse("spiffe://tresor/populate")?;
    let owner = Identity::parse(owner)?;
    let options = ServiceOptions {
        max_plaintext_bytes: 1024,
        dek_cache_capacity: NonZeroUsize::new(16).ok_or("capacity")?,
        ..ServiceOptions::new(BTreeSet::from([admin.clone()]))
    };
    let service = Arc::new(Service::open(store, master, options).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (service, next, admin, owner, prefix) = (
            service.clone(),
            next.clone(),
            admin.clone(),
            owner.clone(),
            prefix.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, Error>(());
                }
                let id = KeyId::parse(&format!("{prefix}-{i}"))?;
                match service.create_key(&admin, &id, &owner, "").await {
                    Ok(_) | Err(Error::AlreadyExists) => {}
                    Err(e) => return Err(e),
                }
                if i % 100_000 == 0 && i > 0 {
                    eprintln!("{i} keys after {:.0} s", started.elapsed().as_secs_f64());
                }
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    println!(
        "{count} keys in {:.1} s ({:.0} keys/s)",
        started.elapsed().as_secs_f64(),
        count as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}
