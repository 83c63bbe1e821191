//! `tresor bench`: a closed-loop load generator against running servers.
//!
//! `--concurrency` workers keep one request each in flight, spread over
//! `--connections` connections to each server, for `--duration` after a
//! `--warmup`; requests follow `--mix` over `--keys` keys, a batch
//! operation carrying `--batch-size` items. It prints requests/s, items/s,
//! bytes/s and latency percentiles (HdrHistogram), or one JSON document
//! with `--json`.
//!
//! With `--compare-echo` it also starts a bare echo server in its own
//! process (`tresor echo-serve`, same transport and certificates as
//! tresor) and measures both in alternating rounds, so machine drift
//! cancels out; the headline is the median per-round ratio tresor / echo.
//!
//! Modules: [`mix`] parses the operation mix, [`load`] runs the closed
//! loop, [`echo`] runs the echo process, [`report`] prints.

mod echo;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use echo::{EchoServeArgs, serve as echo_serve};

use self::echo::{EchoProcess, EchoTls};
use super::connection::{Connection, ConnectionArgs};
use super::failure::CliError;
use super::output::{self, OutputFormat};
use crate::config::MAX_BATCH_ITEMS_CEILING;
use tresor_bench::load::{self, Item, Phase, Sealed, Stats, Target, Workload};
use tresor_bench::mix::{Mix, Op};
use tresor_bench::report::{Comparison, Round, Setup, Side, Single};
use tresor_client::{ClientError, RetryPolicy};
use tresor_proto::v1 as proto;

/// Ciphertexts encrypted during set-up for Decrypt and DecryptBatch, at
/// least (a larger batch repeats them).
const MIN_POOL: usize = 16;
/// Most ciphertexts made for decrypts, and most keys set-up probes: with a
/// million keys, touching each one first would take minutes (and warm every
/// cache the run means to measure cold). Beyond this, decrypts use the keys
/// of the pool and set-up probes the first and last keys; a key missing
/// later shows as errors in the report.
const MAX_PROBED: usize = 1024;
/// Default of `--batch-size`.
const DEFAULT_BATCH_SIZE: usize = 100;

/// Flags of `tresor bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The one key to use (the client certificate must own it or hold a
    /// grant). Or use --key-prefix with --keys.
    #[arg(long, value_name = "ID", conflicts_with = "key_prefix")]
    pub key_id: Option<String>,
    /// Spread requests over the keys PREFIX-0 .. PREFIX-(N-1) (N is
    /// --keys).
    #[arg(long, value_name = "PREFIX")]
    pub key_prefix: Option<String>,
    /// Number of keys, with --key-prefix.
    #[arg(long, default_value_t = 1, value_name = "N", requires = "key_prefix")]
    pub keys: usize,
    /// Create the keys that are missing, owned by the caller (needs an
    /// admin certificate).
    #[arg(long)]
    pub create_keys: bool,
    /// Encryption context pair of every request (repeatable), for
    /// example to meet a grant's context constraint.
    #[arg(long = "context", value_name = "K=V", value_parser = super::data::parse_pair)]
    pub context: Vec<(String, String)>,
    /// Also send load to this server (repeatable); --addr is always used.
    #[arg(long = "target", value_name = "URL")]
    pub targets: Vec<String>,
    /// Connections to each server; workers are spread over them.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub connections: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub concurrency: usize,
    /// Plaintext size in bytes (encrypt and decrypt).
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    pub payload: usize,
    /// Operations and their weights: encrypt, decrypt, generate-data-key,
    /// encrypt-batch, decrypt-batch.
    #[arg(long, default_value = "encrypt=1", value_name = "OP=WEIGHT,...", value_parser = Mix::parse)]
    pub mix: Mix,
    /// Items of one encrypt-batch or decrypt-batch request (at most the
    /// server's --max-batch-items, default 1000).
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE, value_name = "N", value_parser = batch_size)]
    pub batch_size: usize,
    /// Measured time (per side and round with --compare-echo), for example
    /// 10s.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub duration: String,
    /// Unmeasured warm-up before each measured window.
    #[arg(long, default_value = "2s", value_name = "DURATION")]
    pub warmup: String,
    /// Open a new connection for every request (TCP and TLS handshake
    /// included in its latency) instead of keeping --connections open:
    /// what a handshake costs. Use with --concurrency 1 for the cost of
    /// one.
    #[arg(long, conflicts_with_all = ["compare_echo", "targets"])]
    pub new_connections: bool,
    /// Also start a bare echo server with the same transport and
    /// certificates, and measure tresor and it in alternating rounds.
    #[arg(long)]
    pub compare_echo: bool,
    /// Rounds of --compare-echo (each runs both sides, the order
    /// alternating).
    #[arg(long, default_value_t = 4, value_name = "N", requires = "compare_echo")]
    pub rounds: usize,
    /// Server certificate (PEM) the echo serves with: tresor's.
    #[arg(
        long,
        default_value = ".tresor-dev/server/cert.pem",
        value_name = "FILE"
    )]
    pub echo_tls_cert: PathBuf,
    /// Private key (PEM) of that certificate.
    #[arg(
        long,
        default_value = ".tresor-dev/server/key.pem",
        value_name = "FILE"
    )]
    pub echo_tls_key: PathBuf,
    /// CA (PEM) whose client certificates the echo accepts: tresor's
    /// --client-ca.
    #[arg(long, default_value = ".tresor-dev/ca/ca.pem", value_name = "FILE")]
    pub echo_client_ca: PathBuf,
    /// Address the echo listens on.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub echo_listen: SocketAddr,
    /// Print one JSON document (same as --output json).
    #[arg(long)]
    pub json: bool,
}

/// Parses `--batch-size`: a whole number from 1 to the largest
/// `--max-batch-items` a server accepts.
fn batch_size(raw: &str) -> Result<usize, String> {
    raw.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_BATCH_ITEMS_CEILING).contains(n))
        .ok_or_else(|| {
            format!(
                "{raw:?} is not a whole number from 1 to {MAX_BATCH_ITEMS_CEILING} (items per batch call; a server takes at most its --max-batch-items, default 1000)"
            )
        })
}

fn duration(flag: &str, raw: &str) -> Result<Duration, CliError> {
    humantime::parse_duration(raw).map_err(|e| CliError::usage(format!("{flag} {raw:?}: {e}")))
}

/// The key ids the flags name.
fn key_ids(args: &BenchArgs) -> Result<Vec<String>, CliError> {
    if args.keys == 0 {
        return Err(CliError::usage("--keys must be at least 1"));
    }
    match (&args.key_id, &args.key_prefix) {
        (Some(_), _) if args.keys != 1 => Err(CliError::usage(
            "--keys counts keys named by --key-prefix; with --key-id there is one key",
        )),
        (Some(id), _) => Ok(vec![id.clone()]),
        (None, Some(prefix)) => Ok((0..args.keys).map(|i| format!("{prefix}-{i}")).collect()),
        (None, None) => Err(CliError::usage(
            "no key: give --key-id ID, or --key-prefix PREFIX with --keys N",
        )),
    }
}

/// Runs the benchmark; returns the report text.
pub async fn run(
    args: BenchArgs,
    connection: &ConnectionArgs,
    format: OutputFormat,
) -> Result<String, CliError> {
    let format = if args.json {
        OutputFormat::Json
    } else {
        format
    };
    let phase = Phase {
        warmup: duration("--warmup", &args.warmup)?,
        measured: duration("--duration", &args.duration)?,
    };
    if phase.measured.is_zero() {
        return Err(CliError::usage("--duration must be longer than 0"));
    }
    for (flag, value) in [
        ("--concurrency", args.concurrency),
        ("--connections", args.connections),
        ("--rounds", args.rounds),
    ] {
        if value == 0 {
            return Err(CliError::usage(format!("{flag} must be at least 1")));
        }
    }
    let keys = key_ids(&args)?;
    let mut targets: Vec<String> = connection.addr.iter().cloned().collect();
    targets.extend(args.targets.iter().cloned());
    if targets.is_empty() {
        return Err(CliError::usage(
            "no server address: pass --addr https://HOST:PORT or set TRESOR_ADDR",
        ));
    }
    if args.compare_echo && targets.len() > 1 {
        return Err(CliError::usage(
            "--compare-echo measures one server: drop --target",
        ));
    }

    let mut clients = Vec::new();
    let mut first: Option<Connection> = None;
    for addr in &targets {
        for _ in 0..args.connections {
            let opened = with_addr(connection, addr).connect().await?;
            // A load test counts failures; it must not hide them by retrying.
            clients.push(opened.client.clone().with_retry_policy(RetryPolicy::none()));
            first.get_or_insert(opened);
        }
    }
    let first = first.ok_or_else(|| CliError::usage("no connection"))?;
    if args.create_keys {
        let purpose = if args.mix.ops().any(Op::needs_mac_keys) {
            proto::KeyPurpose::Mac
        } else {
            proto::KeyPurpose::EncryptDecrypt
        };
        create_keys(&first, &keys, purpose).await?;
    }
    let workload = Arc::new(set_up(&first, keys, &args).await?);
    let setup = Setup {
        targets,
        connections: if args.new_connections {
            0
        } else {
            args.connections
        },
        new_connection_per_request: args.new_connections,
        concurrency: args.concurrency,
        payload_bytes: args.payload,
        mix: args.mix.to_string(),
        batch_size: args.mix.ops().any(Op::is_batch).then_some(args.batch_size),
        keys: workload.keys.len(),
    };
    let tresor = if args.new_connections {
        Target::TresorNewConnections(connection.connector()?)
    } else {
        Target::Tresor(clients)
    };

    if !args.compare_echo {
        let stats = load::run(&tresor, &workload, phase).await?;
        let report = Single {
            setup,
            side: Side::from(&stats),
        };
        return Ok(match format {
            OutputFormat::Json => output::json(&report),
            OutputFormat::Human => report.human(),
        });
    }

    let echo_tls = EchoTls {
        cert: &args.echo_tls_cert,
        key: &args.echo_tls_key,
        client_ca: &args.echo_client_ca,
    };
    let process = EchoProcess::start(&echo_tls, args.echo_listen).await?;
    let echo_url = echo_url(&setup.targets[0], process.addr)?;
    let compared = compare(
        &tresor,
        &with_addr(connection, &echo_url),
        &workload,
        phase,
        &args,
    )
    .await;
    process.stop().await;
    let (tresor_total, echo_total, rounds) = compared?;
    let report = Comparison::new(
        setup,
        echo_url,
        Side::from(&tresor_total),
        Side::from(&echo_total),
        rounds,
    );
    Ok(match format {
        OutputFormat::Json => output::json(&report),
        OutputFormat::Human => report.human(output::table),
    })
}

/// The connection settings with another address.
fn with_addr(connection: &ConnectionArgs, addr: &str) -> ConnectionArgs {
    ConnectionArgs {
        addr: Some(addr.to_owned()),
        ..connection.clone()
    }
}

/// The echo's URL: tresor's host name (so the server certificate, which
/// is the same, matches it) with the echo's port.
fn echo_url(tresor: &str, echo: SocketAddr) -> Result<String, CliError> {
    let with_scheme = if tresor.contains("://") {
        tresor.to_owned()
    } else {
        format!("https://{tresor}")
    };
    let uri: http::Uri = with_scheme
        .parse()
        .map_err(|e| CliError::usage(format!("--addr {tresor:?}: {e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| CliError::usage(format!("--addr {tresor:?} names no host")))?;
    Ok(format!("https://{host}:{}", echo.port()))
}

/// Runs `--rounds` rounds, tresor first in even rounds and the echo first
/// in odd ones; returns each side's totals and the rounds.
async fn compare(
    tresor: &Target,
    echo_connection: &ConnectionArgs,
    workload: &Arc<Workload>,
    phase: Phase,
    args: &BenchArgs,
) -> Result<(Stats, Stats, Vec<Round>), CliError> {
    let mut echo_clients = Vec::new();
    for _ in 0..args.connections {
        echo_clients.push(echo_connection.echo_client().await?);
    }
    let echo = Target::Echo(echo_clients);
    let (mut tresor_total, mut echo_total) = (Stats::new()?, Stats::new()?);
    let mut rounds = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let tresor_first = round % 2 == 0;
        let (tresor_stats, echo_stats) = if tresor_first {
            let t = load::run(tresor, workload, phase).await?;
            (t, load::run(&echo, workload, phase).await?)
        } else {
            let e = load::run(&echo, workload, phase).await?;
            (load::run(tresor, workload, phase).await?, e)
        };
        rounds.push(Round::new(
            if tresor_first { "tresor" } else { "echo" },
            &Side::from(&tresor_stats),
            &Side::from(&echo_stats),
        ));
        tresor_total.merge(&tresor_stats)?;
        echo_total.merge(&echo_stats)?;
    }
    Ok((tresor_total, echo_total, rounds))
}

/// Creates the keys that do not exist, owned by the caller, of `purpose`.
async fn create_keys(
    connection: &Connection,
    keys: &[String],
    purpose: proto::KeyPurpose,
) -> Result<(), CliError> {
    let owner = connection.identity.as_ref().ok_or_else(|| {
        CliError::usage(
            "--create-keys needs a client certificate (--cert/--key) naming an identity",
        )
    })?;
    for key in keys {
        let request = proto::CreateKeyRequest {
            key_id: key.clone(),
            owner: owner.as_ref().to_owned(),
            description: "created by tresor bench".into(),
            purpose: purpose.into(),
            ..Default::default()
        };
        match connection.client.create_key_with(request).await {
            Ok(_) | Err(ClientError::AlreadyExists(_)) => {}
            Err(e @ ClientError::PermissionDenied(_)) => {
                let mut error = CliError::about_key(e, key, Some(owner));
                error.message.push_str(
                    "\nhint: --create-keys needs an admin certificate; or create the keys first with `tresor key create`",
                );
                return Err(error);
            }
            Err(e) => return Err(CliError::about_key(e, key, Some(owner))),
        }
    }
    Ok(())
}

/// Encrypts the ciphertexts Decrypt and DecryptBatch need and tries every
/// operation of the mix once on every key (a batch with `--batch-size`
/// items of that key), so that a missing key or grant, or a batch the
/// server refuses, fails here with a clear message instead of as errors in
/// the figures.
async fn set_up(
    connection: &Connection,
    keys: Vec<String>,
    args: &BenchArgs,
) -> Result<Workload, CliError> {
    let client = &connection.client;
    let fail = |e: ClientError, key: &str, op: Op| {
        let whole_batch_refused = op.is_batch()
            && matches!(
                e,
                ClientError::InvalidArgument(_) | ClientError::ResourceExhausted(_)
            );
        let mut error = CliError::about_key(e, key, connection.identity.as_ref());
        error.message.push_str(if whole_batch_refused {
            "\nhint: try a smaller --batch-size: a server takes at most its --max-batch-items (default 1000) per call, and a batch counts as its items against the caller's --rate-limit"
        } else {
            "\nhint: the keys must exist and the caller must own them or hold a grant (create them with `tresor key create`, or pass --create-keys as an admin)"
        });
        error
    };
    let payload = vec![0x5a_u8; args.payload];
    let context: HashMap<String, String> = args.context.iter().cloned().collect();
    let mut pool = Vec::new();
    if args.mix.contains(Op::Decrypt) || args.mix.contains(Op::DecryptBatch) {
        for i in 0..keys.len().clamp(MIN_POOL, MAX_PROBED) {
            let key = i % keys.len();
            let sealed = client
                .encrypt(&keys[key], &payload, &context)
                .await
                .map_err(|e| fail(e, &keys[key], Op::Encrypt))?;
            pool.push(Sealed {
                key,
                ciphertext: sealed.ciphertext,
            });
        }
    }
    let half = MAX_PROBED / 2;
    let probed = keys.iter().enumerate().filter(|(index, _)| {
        keys.len() <= MAX_PROBED || *index < half || *index >= keys.len() - half
    });
    for (index, key) in probed {
        for op in args.mix.ops() {
            let data: &[u8] = match op {
                Op::Encrypt | Op::EncryptBatch | Op::Mac | Op::MacBatch => &payload,
                // Decrypts use only keys with a ciphertext in the pool.
                Op::Decrypt | Op::DecryptBatch => {
                    match pool.iter().find(|sealed| sealed.key == index) {
                        Some(sealed) => &sealed.ciphertext,
                        None => continue,
                    }
                }
                Op::GenerateDataKey => &[],
            };
            let items = vec![Item { key, data }; op.items(args.batch_size)];
            load::call_tresor(client, op, &items, &context)
                .await
                .map_err(|e| fail(e, key, op))?;
        }
    }
    Ok(Workload {
        keys,
        payload,
        pool,
        mix: args.mix.clone(),
        batch_size: args.batch_size,
        concurrency: args.concurrency,
        context,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tresor bench ARGS` as clap parses it, or clap's message.
    fn parse(args: &[&str]) -> Result<BenchArgs, String> {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            bench: BenchArgs,
        }
        Wrapper::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map(|w| w.bench)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_echo_is_reached_by_tresors_host_name() {
        let echo: SocketAddr = "127.0.0.1:4242".parse().expect("addr");
        assert_eq!(
            echo_url("https://localhost:7443", echo).expect("url"),
            "https://localhost:4242"
        );
        assert_eq!(
            echo_url("127.0.0.1:7443", echo).expect("url"),
            "https://127.0.0.1:4242"
        );
        assert_eq!(
            echo_url("https://[::1]:7443", echo).expect("url"),
            "https://[::1]:4242"
        );
        assert!(echo_url("https://", echo).is_err());
    }

    #[test]
    fn keys_come_from_an_id_or_a_prefix_and_a_count() {
        let args = parse(&["--key-prefix", "load/k", "--keys", "3"]).expect("args");
        assert_eq!(
            key_ids(&args).expect("keys"),
            ["load/k-0", "load/k-1", "load/k-2"]
        );
        let args = parse(&["--key-id", "a/b"]).expect("args");
        assert_eq!(key_ids(&args).expect("keys"), ["a/b"]);
        let none = parse(&[]).expect("args");
        assert!(key_ids(&none).is_err_and(|e| e.exit == crate::cli::EXIT_USAGE));
        let zero = parse(&["--key-prefix", "p", "--keys", "0"]).expect("args");
        assert!(key_ids(&zero).is_err_and(|e| e.message.contains("--keys must be at least 1")));
        assert!(parse(&["--key-id", "a", "--key-prefix", "p"]).is_err());
        let both = parse(&["--key-id", "a", "--keys", "2"]).expect("args");
        assert!(
            key_ids(&both).is_err_and(|e| e.message.contains("with --key-id there is one key"))
        );
        assert!(parse(&["--key-id", "a", "--rounds", "2"]).is_err());
        assert!(
            parse(&["--key-id", "a", "--mix", "encrypt=1,batch=1"])
                .is_err_and(|e| e.contains("unknown operation \"batch\""))
        );
    }

    #[test]
    fn batch_size_defaults_to_100_and_is_bounded() {
        let args =
            parse(&["--key-id", "a", "--mix", "encrypt-batch=1,decrypt-batch=1"]).expect("args");
        assert_eq!(args.batch_size, 100);
        assert!(args.mix.contains(Op::EncryptBatch) && args.mix.contains(Op::DecryptBatch));
        let size = |raw: &str| parse(&["--key-id", "a", &format!("--batch-size={raw}")]);
        assert_eq!(size("1").expect("args").batch_size, 1);
        let most = MAX_BATCH_ITEMS_CEILING.to_string();
        assert_eq!(
            size(&most).expect("args").batch_size,
            MAX_BATCH_ITEMS_CEILING
        );
        let too_many = (MAX_BATCH_ITEMS_CEILING + 1).to_string();
        for bad in ["0", "-3", "ten", "", too_many.as_str()] {
            let error = size(bad).expect_err(bad);
            assert!(
                error.contains("--batch-size")
                    && error.contains("not a whole number from 1 to 100000"),
                "{bad}: {error}"
            );
        }
    }
}
