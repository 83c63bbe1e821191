//! Items per second of single calls against batch calls: a closed loop of
//! `CONCURRENCY` workers over one SDK connection, each keeping one call in
//! flight for `SECONDS` after a one-second warm-up. Prints one JSON line.
//! Used by `scripts/bench-batch.sh`.
//!
//! ```text
//! TRESOR_ADDR=https://localhost:7443 TRESOR_CA=ca.pem TRESOR_CERT=cert.pem TRESOR_KEY=key.pem \
//!   cargo run --release --example bench_batch -- KEY_ID encrypt|decrypt BATCH SECONDS CONCURRENCY PAYLOAD
//! ```
//! BATCH 0 means single calls (Encrypt/Decrypt); N > 0 means batches of N
//! items (EncryptBatch/DecryptBatch), every item with its own context.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tresor::client::Client;
use tresor::proto;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Counts of the measured period.
#[derive(Default)]
struct Counts {
    calls: AtomicU64,
    items: AtomicU64,
    errors: AtomicU64,
}

fn env(name: &str) -> Result<String, Failure> {
    std::env::var(name).map_err(|_| format!("set {name}").into())
}

fn arg<T: std::str::FromStr>(args: &[String], index: usize, name: &str) -> Result<T, Failure> {
    args.get(index)
        .and_then(|raw| raw.parse().ok())
        .ok_or_else(|| format!("argument {index} ({name}) missing or invalid").into())
}

fn context(n: usize) -> HashMap<String, String> {
    HashMap::from([("row".to_owned(), n.to_string())])
}

/// One call: single (batch 0) or a batch; returns the items that succeeded
/// and the items that failed.
async fn call(
    client: &Client,
    key_id: &str,
    decrypt: bool,
    batch: usize,
    payload: &[u8],
    sealed: &[Vec<u8>],
) -> (u64, u64) {
    let ok = |good: usize, all: usize| (good as u64, (all - good) as u64);
    match (decrypt, batch) {
        (false, 0) => ok(
            usize::from(client.encrypt(key_id, payload, &context(0)).await.is_ok()),
            1,
        ),
        (true, 0) => ok(
            usize::from(
                client
                    .decrypt(key_id, &sealed[0], &context(0))
                    .await
                    .is_ok(),
            ),
            1,
        ),
        (false, n) => {
            let items = (0..n)
                .map(|i| proto::EncryptRequest {
                    key_id: key_id.to_owned(),
                    plaintext: payload.to_vec(),
                    context: context(i),
                })
                .collect();
            match client.encrypt_batch(items).await {
                Ok(results) => ok(results.iter().filter(|r| r.is_ok()).count(), n),
                Err(_) => ok(0, n),
            }
        }
        (true, n) => {
            let items = (0..n)
                .map(|i| proto::DecryptRequest {
                    key_id: key_id.to_owned(),
                    ciphertext: sealed[i].clone(),
                    context: context(i),
                })
                .collect();
            match client.decrypt_batch(items).await {
                Ok(results) => ok(results.iter().filter(|r| r.is_ok()).count(), n),
                Err(_) => ok(0, n),
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let key_id: String = arg(&args, 1, "KEY_ID")?;
    let mode: String = arg(&args, 2, "encrypt|decrypt")?;
    let batch: usize = arg(&args, 3, "BATCH")?;
    let seconds: f64 = arg(&args, 4, "SECONDS")?;
    let concurrency: usize = arg(&args, 5, "CONCURRENCY")?;
    let payload_bytes: usize = arg(&args, 6, "PAYLOAD")?;
    let decrypt = match mode.as_str() {
        "encrypt" => false,
        "decrypt" => true,
        other => return Err(format!("mode {other:?}: encrypt or decrypt").into()),
    };
    let client = Client::builder()
        .endpoint(env("TRESOR_ADDR")?)
        .ca(std::fs::read_to_string(env("TRESOR_CA")?)?)
        .identity(
            std::fs::read_to_string(env("TRESOR_CERT")?)?,
            std::fs::read_to_string(env("TRESOR_KEY")?)?,
        )
        .build()
        .await?;
    let payload = vec![0x5a_u8; payload_bytes];
    // Ciphertexts to decrypt: item i under context i.
    let mut sealed = Vec::new();
    for i in 0..batch.max(1) {
        sealed.push(
            client
                .encrypt(&key_id, &payload, &context(i))
                .await?
                .ciphertext,
        );
    }
    let (payload, sealed, key_id) = (Arc::new(payload), Arc::new(sealed), Arc::new(key_id));
    let counts = Arc::new(Counts::default());
    let (measuring, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, payload, sealed, key_id) = (
                client.clone(),
                payload.clone(),
                sealed.clone(),
                key_id.clone(),
            );
            let (counts, measuring, stop) = (counts.clone(), measuring.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let (good, bad) =
                        call(&client, &key_id, decrypt, batch, &payload, &sealed).await;
                    if measuring.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                        counts.calls.fetch_add(1, Ordering::Relaxed);
                        counts.items.fetch_add(good, Ordering::Relaxed);
                        counts.errors.fetch_add(bad, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for worker in workers {
        worker.await?;
    }
    let items = counts.items.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "mode": mode,
            "batch": batch,
            "concurrency": concurrency,
            "payload_bytes": payload_bytes,
            "seconds": elapsed,
            "calls": counts.calls.load(Ordering::Relaxed),
            "items": items,
            "errors": counts.errors.load(Ordering::Relaxed),
            "items_per_second": items as f64 / elapsed,
        })
    );
    Ok(())
}
