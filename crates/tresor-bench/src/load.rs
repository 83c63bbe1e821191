//! The closed loop: `concurrency` workers, spread round-robin over the
//! connections, each keeping one request in flight; a warm-up, then a
//! measured window whose latencies go into an HdrHistogram.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::EchoClient;
use crate::error::BenchError;
use crate::mix::{Draw, Mix, Op};
use tresor_client::{Client, ClientError};
use tresor_proto::v1 as proto;

/// Highest latency the histograms hold, in microseconds (one minute).
const MAX_LATENCY_US: u64 = 60_000_000;

/// A ciphertext made during set-up, for Decrypt and DecryptBatch.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// Index of its key in [`Workload::keys`].
    pub key: usize,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
}

/// What every worker sends; the same for tresor and the echo.
#[derive(Debug)]
pub struct Workload {
    /// Key ids requests are spread over.
    pub keys: Vec<String>,
    /// Plaintext of Encrypt.
    pub payload: Vec<u8>,
    /// Ciphertexts for Decrypt and DecryptBatch (empty when the mix has
    /// neither).
    pub pool: Vec<Sealed>,
    /// Operations and their weights.
    pub mix: Mix,
    /// Items of one EncryptBatch or DecryptBatch.
    pub batch_size: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// Encryption context of every request.
    pub context: HashMap<String, String>,
}

/// One item of a request: its key id and its bytes (the plaintext to
/// encrypt, the ciphertext to decrypt, or none for a data key). A single
/// call has one item, a batch `batch_size`.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// The key id.
    pub key: &'a str,
    /// The bytes.
    pub data: &'a [u8],
}

impl Workload {
    fn key(&self, index: usize) -> &str {
        self.keys.get(index).map_or("", String::as_str)
    }

    /// The items of the next request of kind `op`: each encrypt item under
    /// a key drawn at random; decrypt items from consecutive pool entries
    /// after a random one (wrapping around, so a batch larger than the pool
    /// repeats ciphertexts).
    fn items(&self, op: Op, draw: &mut Draw) -> Result<Vec<Item<'_>>, ClientError> {
        let count = op.items(self.batch_size);
        let mut items = Vec::with_capacity(count);
        match op {
            Op::Encrypt | Op::EncryptBatch | Op::Mac | Op::MacBatch => {
                for _ in 0..count {
                    let key = self.key(draw.below(self.keys.len()));
                    items.push(Item {
                        key,
                        data: &self.payload,
                    });
                }
            }
            Op::GenerateDataKey => items.push(Item {
                key: self.key(draw.below(self.keys.len())),
                data: &[],
            }),
            Op::Decrypt | Op::DecryptBatch => {
                if self.pool.is_empty() {
                    return Err(ClientError::Config("no ciphertexts to decrypt".into()));
                }
                let start = draw.below(self.pool.len());
                for sealed in self.pool.iter().cycle().skip(start).take(count) {
                    items.push(Item {
                        key: self.key(sealed.key),
                        data: &sealed.ciphertext,
                    });
                }
            }
        }
        Ok(items)
    }
}

/// Opens a new connection to tresor (TCP, TLS handshake, HTTP/2).
pub type Connect = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<Client, ClientError>> + Send>>
        + Send
        + Sync,
>;

/// The connections of one side of a comparison.
#[derive(Clone)]
pub enum Target {
    /// tresor servers, one client per connection.
    Tresor(Vec<Client>),
    /// tresor, a new connection for every request (its latency includes
    /// the TCP connection and the TLS handshake): what a handshake costs.
    TresorNewConnections(Connect),
    /// The echo server, one client per connection.
    Echo(Vec<EchoClient>),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tresor(clients) => write!(f, "Tresor({} connections)", clients.len()),
            Target::TresorNewConnections(_) => f.write_str("TresorNewConnections"),
            Target::Echo(clients) => write!(f, "Echo({} connections)", clients.len()),
        }
    }
}

impl Target {
    /// The connection of worker `worker`.
    fn connection(&self, worker: usize) -> Option<Connection> {
        let pick = |n: usize| (n > 0).then_some(worker % n);
        Some(match self {
            Target::Tresor(clients) => {
                Connection::Tresor(Box::new(clients[pick(clients.len())?].clone()))
            }
            Target::TresorNewConnections(connect) => Connection::New(connect.clone()),
            Target::Echo(clients) => {
                Connection::Echo(Box::new(clients[pick(clients.len())?].clone()))
            }
        })
    }
}

enum Connection {
    Tresor(Box<Client>),
    New(Connect),
    Echo(Box<EchoClient>),
}

/// How long to load before and while measuring.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Unmeasured warm-up.
    pub warmup: Duration,
    /// Measured window.
    pub measured: Duration,
}

/// What one or more measured windows saw.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Measured time.
    pub seconds: f64,
    /// Successful requests.
    pub requests: u64,
    /// Items of successful requests: the batch size for a batch, 1 for a
    /// single call.
    pub items: u64,
    /// Failed requests.
    pub errors: u64,
    /// Plaintext bytes handled by successful requests.
    pub bytes: u64,
    /// Successful requests by operation.
    pub operations: BTreeMap<Op, u64>,
    /// Latency of successful requests, microseconds.
    pub latency: Histogram<u64>,
    /// The first failure seen, to show why errors happened.
    pub first_error: Option<String>,
}

impl Stats {
    /// Nothing measured yet.
    pub fn new() -> Result<Self, BenchError> {
        Ok(Self {
            seconds: 0.0,
            requests: 0,
            items: 0,
            errors: 0,
            bytes: 0,
            operations: BTreeMap::new(),
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .map_err(|e| BenchError::Histogram(e.to_string()))?,
            first_error: None,
        })
    }

    /// Adds `other`'s requests, errors and latencies; times add up too.
    pub fn merge(&mut self, other: &Stats) -> Result<(), BenchError> {
        self.seconds += other.seconds;
        self.requests += other.requests;
        self.items += other.items;
        self.errors += other.errors;
        self.bytes += other.bytes;
        for (op, n) in &other.operations {
            *self.operations.entry(*op).or_default() += n;
        }
        self.latency
            .add(&other.latency)
            .map_err(|e| BenchError::Histogram(e.to_string()))?;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        Ok(())
    }

    fn record(&mut self, op: Op, workload: &Workload, started: Instant) {
        self.requests += 1;
        self.items += op.items(workload.batch_size) as u64;
        self.bytes += op.plaintext_bytes(workload.payload.len(), workload.batch_size) as u64;
        *self.operations.entry(op).or_default() += 1;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.latency
            .saturating_record(micros.clamp(1, MAX_LATENCY_US));
    }

    fn fail(&mut self, error: ClientError) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error.to_string());
        }
    }
}

/// Runs the workload against `target`: warm-up, then the measured window.
pub async fn run(
    target: &Target,
    workload: &Arc<Workload>,
    phase: Phase,
) -> Result<Stats, BenchError> {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::with_capacity(workload.concurrency);
    for worker in 0..workload.concurrency {
        let connection = target.connection(worker).ok_or(BenchError::NoConnection)?;
        let (workload, measuring, stop) = (workload.clone(), measuring.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut stats = Stats::new()?;
            let mut draw = Draw::new(worker as u64);
            while !stop.load(Ordering::Relaxed) {
                let op = workload.mix.pick(draw.next_u64());
                let started = Instant::now();
                let outcome = call(&connection, &workload, op, &mut draw).await;
                if measuring.load(Ordering::Relaxed) {
                    match outcome {
                        Ok(()) => stats.record(op, &workload, started),
                        Err(error) => stats.fail(error),
                    }
                }
            }
            Ok::<_, BenchError>(stats)
        }));
    }
    tokio::time::sleep(phase.warmup).await;
    measuring.store(true, Ordering::SeqCst);
    let started = Instant::now();
    tokio::time::sleep(phase.measured).await;
    measuring.store(false, Ordering::SeqCst);
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let mut total = Stats::new()?;
    for worker in workers {
        let stats = worker
            .await
            .map_err(|e| BenchError::Worker(e.to_string()))??;
        total.merge(&stats)?;
    }
    total.seconds = seconds;
    Ok(total)
}

/// Sends one request of kind `op`.
async fn call(
    connection: &Connection,
    workload: &Workload,
    op: Op,
    draw: &mut Draw,
) -> Result<(), ClientError> {
    let items = workload.items(op, draw)?;
    match connection {
        Connection::Tresor(client) => call_tresor(client, op, &items, &workload.context).await,
        Connection::New(connect) => {
            let client = connect().await?;
            call_tresor(&client, op, &items, &workload.context).await
        }
        Connection::Echo(client) => call_echo(client, &items, &workload.context).await,
    }
}

/// One tresor request of kind `op` with `items` (one for a single call).
/// A batch counts as failed when any of its items failed: the first item
/// error is returned.
pub async fn call_tresor(
    client: &Client,
    op: Op,
    items: &[Item<'_>],
    context: &HashMap<String, String>,
) -> Result<(), ClientError> {
    let one = || {
        items
            .first()
            .ok_or_else(|| ClientError::Config("a request without an item".into()))
    };
    match op {
        Op::Encrypt => {
            let item = one()?;
            client.encrypt(item.key, item.data, context).await.map(drop)
        }
        Op::Decrypt => {
            let item = one()?;
            client.decrypt(item.key, item.data, context).await.map(drop)
        }
        Op::GenerateDataKey => client
            .generate_data_key(one()?.key, context)
            .await
            .map(drop),
        Op::EncryptBatch => {
            let requests = items
                .iter()
                .map(|item| proto::EncryptRequest {
                    key_id: item.key.to_owned(),
                    plaintext: item.data.to_vec(),
                    context: context.clone(),
                })
                .collect();
            first_item_error(client.encrypt_batch(requests).await?)
        }
        Op::DecryptBatch => {
            let requests = items
                .iter()
                .map(|item| proto::DecryptRequest {
                    key_id: item.key.to_owned(),
                    ciphertext: item.data.to_vec(),
                    context: context.clone(),
                })
                .collect();
            first_item_error(client.decrypt_batch(requests).await?)
        }
        Op::Mac => {
            let item = one()?;
            client
                .mac_request(tresor_client::mac_request(item.key, item.data, context, 0))
                .await
                .map(drop)
        }
        Op::MacBatch => {
            let requests = items
                .iter()
                .map(|item| tresor_client::mac_request(item.key, item.data, context, 0))
                .collect();
            first_item_error(client.mac_batch(requests).await?)
        }
    }
}

/// `Ok` when every item succeeded, else the first item's error.
fn first_item_error<T>(results: Vec<Result<T, ClientError>>) -> Result<(), ClientError> {
    results
        .into_iter()
        .find_map(Result::err)
        .map_or(Ok(()), Err)
}

/// The echo's counterpart of a tresor request: the same key id, bytes and
/// context in a message of the same shape, so the request is as large on
/// the wire; the reply carries the bytes back. A batch's items go as one
/// payload, their bytes joined, under the first item's key id.
async fn call_echo(
    client: &EchoClient,
    items: &[Item<'_>],
    context: &HashMap<String, String>,
) -> Result<(), ClientError> {
    let key = items.first().map_or("", |item| item.key);
    match items {
        [item] => client.echo(key, item.data, context).await.map(drop),
        _ => {
            let joined = items
                .iter()
                .map(|item| item.data)
                .collect::<Vec<_>>()
                .concat();
            client.echo(key, &joined, context).await.map(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(mix: &str, pool: usize) -> Workload {
        Workload {
            keys: vec!["k-0".into(), "k-1".into()],
            payload: vec![7; 4],
            pool: (0..pool)
                .map(|i| Sealed {
                    key: i % 2,
                    ciphertext: vec![i as u8],
                })
                .collect(),
            mix: Mix::parse(mix).expect("mix"),
            batch_size: 5,
            concurrency: 1,
            context: HashMap::new(),
        }
    }

    #[test]
    fn a_batch_has_batch_size_items_and_a_single_call_one() {
        let w = workload("encrypt,encrypt-batch,decrypt,decrypt-batch", 3);
        let mut draw = Draw::new(3);
        let encrypt = w.items(Op::EncryptBatch, &mut draw).expect("items");
        assert_eq!(encrypt.len(), 5);
        assert!(encrypt.iter().all(|item| item.data == [7; 4]));
        assert!(
            encrypt
                .iter()
                .all(|item| w.keys.iter().any(|k| k == item.key))
        );
        assert_eq!(w.items(Op::Encrypt, &mut draw).expect("items").len(), 1);
        let data_key = w.items(Op::GenerateDataKey, &mut draw).expect("items");
        assert!(data_key.len() == 1 && data_key[0].data.is_empty());

        // Decrypt items are consecutive pool entries, wrapping around, each
        // with the key it was sealed under.
        let decrypt = w.items(Op::DecryptBatch, &mut draw).expect("items");
        assert_eq!(decrypt.len(), 5);
        let first = usize::from(decrypt[0].data[0]);
        for (i, item) in decrypt.iter().enumerate() {
            let entry = (first + i) % 3;
            assert_eq!(item.data, [entry as u8]);
            assert_eq!(item.key, w.keys[entry % 2]);
        }
        assert_eq!(w.items(Op::Decrypt, &mut draw).expect("items").len(), 1);

        let empty = workload("decrypt-batch", 0);
        assert!(empty.items(Op::DecryptBatch, &mut draw).is_err());
    }

    #[test]
    fn a_batch_with_an_item_error_fails_with_it() {
        let ok: Vec<Result<(), ClientError>> = vec![Ok(()), Ok(())];
        assert!(first_item_error(ok).is_ok());
        let bad = vec![
            Ok(()),
            Err(ClientError::InvalidArgument("first".into())),
            Err(ClientError::InvalidArgument("second".into())),
        ];
        let error = first_item_error(bad).expect_err("an item failed");
        assert!(error.to_string().contains("first"), "{error}");
    }

    #[test]
    fn items_count_the_batch_and_bytes_every_item() {
        let w = workload("encrypt-batch,encrypt", 0);
        let mut stats = Stats::new().expect("stats");
        stats.record(Op::EncryptBatch, &w, Instant::now());
        stats.record(Op::Encrypt, &w, Instant::now());
        assert_eq!((stats.requests, stats.items, stats.bytes), (2, 6, 24));
        let mut total = Stats::new().expect("stats");
        total.merge(&stats).expect("merge");
        total.merge(&stats).expect("merge");
        assert_eq!((total.requests, total.items), (4, 12));
    }
}
