//! `tresor bench`: a closed-loop load generator against running servers.
//! Each of `--concurrency` workers keeps one Encrypt in flight, spread over
//! the given addresses (one connection per address), for `--duration` after
//! a warm-up; it prints requests/s, bytes/s and latency percentiles
//! (HdrHistogram), or one JSON document with `--output json`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::connection::ConnectionArgs;
use super::failure::CliError;
use super::output::{self, OutputFormat};

/// Flags of `tresor bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Key to encrypt under (the client certificate must own it or hold a
    /// grant).
    #[arg(long, value_name = "ID")]
    pub key_id: String,
    /// Also send load to this server (repeatable); --addr is always used.
    #[arg(long = "target", value_name = "URL")]
    pub targets: Vec<String>,
    /// Requests in flight.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub concurrency: usize,
    /// Plaintext size in bytes.
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    pub payload: usize,
    /// Measured time, for example 10s.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub duration: String,
    /// Unmeasured warm-up before it.
    #[arg(long, default_value = "2s", value_name = "DURATION")]
    pub warmup: String,
}

#[derive(Debug, serde::Serialize)]
struct BenchReport {
    targets: Vec<String>,
    concurrency: usize,
    payload_bytes: usize,
    seconds: f64,
    requests: u64,
    errors: u64,
    requests_per_second: f64,
    bytes_per_second: f64,
    latency_us: Latency,
}

#[derive(Debug, serde::Serialize)]
struct Latency {
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
}

fn duration(flag: &str, raw: &str) -> Result<Duration, CliError> {
    humantime::parse_duration(raw).map_err(|e| CliError::usage(format!("{flag} {raw:?}: {e}")))
}

/// Runs the benchmark; returns the report text.
pub async fn run(
    args: BenchArgs,
    connection: &ConnectionArgs,
    format: OutputFormat,
) -> Result<String, CliError> {
    let measured = duration("--duration", &args.duration)?;
    let warmup = duration("--warmup", &args.warmup)?;
    let mut targets: Vec<String> = connection.addr.iter().cloned().collect();
    targets.extend(args.targets.iter().cloned());
    let mut clients = Vec::new();
    for addr in &targets {
        let target = ConnectionArgs {
            addr: Some(addr.clone()),
            ..connection.clone()
        };
        clients.push(target.connect().await?.client);
    }
    if clients.is_empty() || args.concurrency == 0 {
        return Err(CliError::usage(
            "need --addr and a concurrency of at least 1",
        ));
    }
    let payload = Arc::new(vec![0x5a_u8; args.payload]);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..args.concurrency {
        let client = clients[worker % clients.len()].clone();
        let (payload, measuring, stop) = (payload.clone(), measuring.clone(), stop.clone());
        let key_id = args.key_id.clone();
        workers.push(tokio::spawn(async move {
            let mut histogram =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
            let context = std::collections::HashMap::new();
            let (mut ok, mut errors) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let result = client.encrypt(&key_id, &payload, &context).await;
                if measuring.load(Ordering::Relaxed) {
                    match result {
                        Ok(_) => {
                            ok += 1;
                            let micros =
                                u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                            let _ = histogram.record(micros.max(1));
                        }
                        Err(_) => errors += 1,
                    }
                }
            }
            Ok::<_, String>((histogram, ok, errors))
        }));
    }
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::SeqCst);
    let started = Instant::now();
    tokio::time::sleep(measured).await;
    measuring.store(false, Ordering::SeqCst);
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .map_err(|e| CliError::refused(e.to_string()))?;
    let (mut requests, mut errors) = (0u64, 0u64);
    for worker in workers {
        let (h, ok, err) = worker
            .await
            .map_err(|e| CliError::refused(e.to_string()))?
            .map_err(CliError::refused)?;
        histogram
            .add(&h)
            .map_err(|e| CliError::refused(e.to_string()))?;
        requests += ok;
        errors += err;
    }
    let report = BenchReport {
        targets,
        concurrency: args.concurrency,
        payload_bytes: args.payload,
        seconds,
        requests,
        errors,
        requests_per_second: requests as f64 / seconds,
        bytes_per_second: (requests as f64 * args.payload as f64) / seconds,
        latency_us: Latency {
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            max: histogram.max(),
        },
    };
    Ok(match format {
        OutputFormat::Json => output::json(&report),
        OutputFormat::Human => format!(
            "encrypt {} B x {} in flight over {} target(s), {:.1} s: {:.0} req/s, {:.1} MB/s, {} errors\nlatency p50 {} us, p90 {} us, p99 {} us, max {} us\n",
            report.payload_bytes,
            report.concurrency,
            report.targets.len(),
            report.seconds,
            report.requests_per_second,
            report.bytes_per_second / 1e6,
            report.errors,
            report.latency_us.p50,
            report.latency_us.p90,
            report.latency_us.p99,
            report.latency_us.max
        ),
    })
}
