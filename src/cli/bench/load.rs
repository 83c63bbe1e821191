//! The closed loop: `concurrency` workers, spread round-robin over the
//! connections, each keeping one request in flight; a warm-up, then a
//! measured window whose latencies go into an HdrHistogram.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::mix::{Draw, Mix, Op};
use crate::cli::failure::CliError;
use crate::client::{Client, ClientError, EchoClient};

/// Highest latency the histograms hold, in microseconds (one minute).
const MAX_LATENCY_US: u64 = 60_000_000;

/// A ciphertext made during set-up, for Decrypt.
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
    /// Ciphertexts for Decrypt (empty when the mix has no decrypt).
    pub pool: Vec<Sealed>,
    /// Operations and their weights.
    pub mix: Mix,
    /// Requests in flight.
    pub concurrency: usize,
    /// Encryption context of every request.
    pub context: HashMap<String, String>,
}

/// The connections of one side of a comparison.
#[derive(Debug, Clone)]
pub enum Target {
    /// tresor servers, one client per connection.
    Tresor(Vec<Client>),
    /// The echo server, one client per connection.
    Echo(Vec<EchoClient>),
}

impl Target {
    fn connections(&self) -> usize {
        match self {
            Target::Tresor(clients) => clients.len(),
            Target::Echo(clients) => clients.len(),
        }
    }

    /// The connection of worker `worker`.
    fn connection(&self, worker: usize) -> Option<Connection> {
        let n = self.connections();
        if n == 0 {
            return None;
        }
        Some(match self {
            Target::Tresor(clients) => Connection::Tresor(clients[worker % n].clone()),
            Target::Echo(clients) => Connection::Echo(clients[worker % n].clone()),
        })
    }
}

enum Connection {
    Tresor(Client),
    Echo(EchoClient),
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
    pub fn new() -> Result<Self, CliError> {
        Ok(Self {
            seconds: 0.0,
            requests: 0,
            errors: 0,
            bytes: 0,
            operations: BTreeMap::new(),
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .map_err(|e| CliError::refused(format!("latency histogram: {e}")))?,
            first_error: None,
        })
    }

    /// Adds `other`'s requests, errors and latencies; times add up too.
    pub fn merge(&mut self, other: &Stats) -> Result<(), CliError> {
        self.seconds += other.seconds;
        self.requests += other.requests;
        self.errors += other.errors;
        self.bytes += other.bytes;
        for (op, n) in &other.operations {
            *self.operations.entry(*op).or_default() += n;
        }
        self.latency
            .add(&other.latency)
            .map_err(|e| CliError::refused(format!("latency histogram: {e}")))?;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        Ok(())
    }

    fn record(&mut self, op: Op, payload: usize, started: Instant) {
        self.requests += 1;
        self.bytes += op.plaintext_bytes(payload) as u64;
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
) -> Result<Stats, CliError> {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::with_capacity(workload.concurrency);
    for worker in 0..workload.concurrency {
        let connection = target
            .connection(worker)
            .ok_or_else(|| CliError::usage("no connection to send load on"))?;
        let (workload, measuring, stop) = (workload.clone(), measuring.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut stats = Stats::new()?;
            let mut draw = Draw::new(worker as u64);
            while !stop.load(Ordering::Relaxed) {
                let op = workload.mix.pick(draw.next());
                let started = Instant::now();
                let outcome = call(&connection, &workload, op, &mut draw).await;
                if measuring.load(Ordering::Relaxed) {
                    match outcome {
                        Ok(()) => stats.record(op, workload.payload.len(), started),
                        Err(error) => stats.fail(error),
                    }
                }
            }
            Ok::<_, CliError>(stats)
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
            .map_err(|e| CliError::refused(format!("a load worker failed: {e}")))??;
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
    let (key, data): (usize, &[u8]) = match op {
        Op::Encrypt => (draw.below(workload.keys.len()), &workload.payload),
        Op::GenerateDataKey => (draw.below(workload.keys.len()), &[]),
        Op::Decrypt => match workload.pool.get(draw.below(workload.pool.len())) {
            Some(sealed) => (sealed.key, &sealed.ciphertext),
            None => return Err(ClientError::Config("no ciphertexts to decrypt".into())),
        },
    };
    let key_id = workload.keys.get(key).map_or("", String::as_str);
    match connection {
        Connection::Tresor(client) => {
            call_tresor(client, op, key_id, data, &workload.context).await
        }
        Connection::Echo(client) => call_echo(client, key_id, data, &workload.context).await,
    }
}

/// One tresor request: `data` is the plaintext (Encrypt), the ciphertext
/// (Decrypt) or empty (GenerateDataKey).
pub async fn call_tresor(
    client: &Client,
    op: Op,
    key_id: &str,
    data: &[u8],
    context: &HashMap<String, String>,
) -> Result<(), ClientError> {
    match op {
        Op::Encrypt => client.encrypt(key_id, data, context).await.map(drop),
        Op::Decrypt => client.decrypt(key_id, data, context).await.map(drop),
        Op::GenerateDataKey => client.generate_data_key(key_id, context).await.map(drop),
    }
}

/// The echo's counterpart of a tresor request: the same key id, bytes and
/// context in a message of the same shape, so the request is as large on
/// the wire; the reply carries the bytes back.
async fn call_echo(
    client: &EchoClient,
    key_id: &str,
    data: &[u8],
    context: &HashMap<String, String>,
) -> Result<(), ClientError> {
    client.echo(key_id, data, context).await.map(drop)
}
