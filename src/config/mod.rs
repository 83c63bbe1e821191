//! Server configuration: raw flags ([`ServeArgs`]) turned into validated
//! [`Settings`] by `TryFrom`. Every check that can fail happens here, before
//! any port is bound.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use crate::audit::AuditOptions;
use crate::identity::Identity;
use crate::master_key::MasterKeySpec;
use crate::service::{
    AuditSettings, DEFAULT_DEK_CACHE_CAPACITY, DEFAULT_MAX_BATCH_ITEMS,
    DEFAULT_MAX_ENCRYPTIONS_PER_VERSION, DEFAULT_REWRAP_BATCH, LifecycleOptions, ServiceOptions,
};

mod fuzz;
mod store;
mod tls;
mod transport;
mod unseal;

pub use fuzz::fuzz_serve_args;
pub use store::{STORE_ENV, offline_store_spec};
pub use tls::{
    MIN_TLS_RELOAD_INTERVAL, SPIFFE_ENDPOINT_ENV, ServeTlsArgs, TlsFileArgs, TlsFiles, TlsMaterial,
    TlsReload, TlsSettings, TlsSource,
};
pub use transport::{
    DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADER_LIST_BYTES,
    TransportArgs, TransportLimits,
};
pub use unseal::UnsealArgs;

/// Default limit on plaintext size: 4 MiB.
pub use crate::service::DEFAULT_MAX_PLAINTEXT_BYTES;
/// Hard ceiling on `--max-plaintext-bytes`: 64 MiB.
pub const MAX_PLAINTEXT_CEILING: usize = 64 * 1024 * 1024;
/// Hard ceiling on `--max-batch-items`.
pub const MAX_BATCH_ITEMS_CEILING: usize = 100_000;
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7443";

/// Flags of `tresor serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: String,
    /// Keystore directory (sled, one node); initialised on first start.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Shared keystore for several replicas: postgres://USER:PASSWORD@HOST:PORT/DB.
    /// A URL with a password belongs in --store-file or TRESOR_STORE: every
    /// user of the host can read a command line.
    #[arg(long, value_name = "URL", env = store::STORE_ENV, hide_env_values = true)]
    pub store: Option<String>,
    /// File holding the --store URL (password included), e.g. a mounted
    /// secret of mode 0400.
    #[arg(long, value_name = "FILE")]
    pub store_file: Option<PathBuf>,
    /// CA certificate(s) (PEM) of PostgreSQL's TLS certificate. With it,
    /// every connection uses TLS (sslmode=require or none in the URL);
    /// without it, the database must be on this machine.
    #[arg(long, value_name = "FILE")]
    pub store_ca: Option<PathBuf>,
    /// This replica's name for its seal mark in a shared keystore (default:
    /// the host name).
    #[arg(long, value_name = "NAME")]
    pub replica_name: Option<String>,
    /// Local master key file (32 bytes, mode 0600), from `tresor master-key generate`.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "master_key",
        required_unless_present = "master_key"
    )]
    pub master_key_file: Option<PathBuf>,
    /// Master key elsewhere: aws-kms:KEY_ID_OR_ARN_OR_ALIAS (or file:PATH).
    #[arg(long, value_name = "SPEC")]
    pub master_key: Option<String>,
    /// KMS-compatible endpoint for aws-kms master keys.
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub aws_endpoint: Option<String>,
    /// A master key that the online RotateMasterKey may move the root key
    /// to (repeatable): aws-kms:KEY (reached at --aws-endpoint) or
    /// file:/ABSOLUTE/PATH. Without any, the online rotation only re-wraps
    /// under the current master key; requests can never name an endpoint.
    #[arg(long = "allowed-master-key", value_name = "SPEC")]
    pub allowed_master_keys: Vec<String>,
    /// Server certificate and trust anchors: files or a SPIFFE Workload
    /// API, and the trust-domain allowlist.
    #[command(flatten)]
    pub tls: ServeTlsArgs,
    /// Connection, stream and time limits of the listener.
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Break-glass identity holding every control-plane role, also while
    /// sealed (repeatable), for example spiffe://example.org/admin; other
    /// roles come from `tresor role add`.
    #[arg(long = "admin", value_name = "IDENTITY")]
    pub admins: Vec<String>,
    /// Who may unseal, and what it takes.
    #[command(flatten)]
    pub unseal: UnsealArgs,
    /// Largest plaintext accepted; larger requests get INVALID_ARGUMENT.
    #[arg(long, default_value_t = DEFAULT_MAX_PLAINTEXT_BYTES, value_name = "N")]
    pub max_plaintext_bytes: usize,
    /// Most items in one EncryptBatch or DecryptBatch call; more get
    /// INVALID_ARGUMENT. The whole batch must also fit the message limit
    /// (about --max-plaintext-bytes).
    #[arg(long, default_value_t = DEFAULT_MAX_BATCH_ITEMS, value_name = "N")]
    pub max_batch_items: usize,
    /// Bound on unwrapped data keys kept in memory.
    #[arg(long, default_value_t = DEFAULT_DEK_CACHE_CAPACITY, value_name = "N")]
    pub dek_cache_capacity: usize,
    /// DEKs re-wrapped per store write during a root-key rotation.
    #[arg(long, default_value_t = DEFAULT_REWRAP_BATCH, value_name = "N")]
    pub rewrap_batch_size: usize,
    /// Write scheduled backups into this directory (off without it).
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Time between scheduled backups, for example 24h or 30m.
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub backup_interval: String,
    /// How often to look for keys due for automatic rotation or for
    /// destruction (their deletion window ended): they are handled at most
    /// this late. For example 1m.
    #[arg(long, default_value = "1m", value_name = "DURATION")]
    pub lifecycle_check_interval: String,
    /// Rotate a key once its primary version has encrypted this many
    /// messages (counted per version and kept in the keystore; exactly up to
    /// 65,536, above it in sampled quanta of N/65,536; at most 2^32).
    #[arg(long, default_value_t = DEFAULT_MAX_ENCRYPTIONS_PER_VERSION, value_name = "N")]
    pub max_encryptions_per_version: u64,
    /// Audit log file (default: DATA_DIR/audit/audit.jsonl; required with
    /// --store). Rotated files sit beside it.
    #[arg(long, value_name = "FILE", conflicts_with = "no_audit")]
    pub audit_file: Option<PathBuf>,
    /// Rotate the audit file once it reaches this many MiB.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub audit_max_file_mib: u64,
    /// Also write every audit record to stdout as JSON lines, for a
    /// cluster's log collector: a best-effort copy (dropped, and counted,
    /// when stdout does not keep up) without the file's tamper evidence,
    /// in addition to the hash-chained file, never instead of it.
    #[arg(long, conflicts_with = "no_audit")]
    pub audit_stdout: bool,
    /// Export traces over OTLP/gRPC to this collector (http://HOST:4317):
    /// one span per call and its keystore and audit steps, never
    /// plaintext, key material or context values. Off by default;
    /// OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG and
    /// OTEL_BSP_* apply (a full queue drops spans, counted in
    /// tresor_trace_spans_dropped_total).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Turn the audit log off (benchmarks only: every call then goes
    /// unrecorded).
    #[arg(long)]
    pub no_audit: bool,
    /// Start even though the audit log lost records the keystore's
    /// checkpoint proves written (cut short, or files removed): a `gap`
    /// record notes it, and `tresor audit verify` reports it. Only for an
    /// operator who knows why the records are gone; give it for one start.
    #[arg(long, conflicts_with = "no_audit")]
    pub accept_audit_gap: bool,
    /// Limit one identity's data-plane calls: IDENTITY=N/s (repeatable).
    #[arg(long = "rate-limit", value_name = "IDENTITY=N/s")]
    pub rate_limits: Vec<String>,
    /// Limit of identities without their own --rate-limit (default: none).
    #[arg(long, value_name = "N/s")]
    pub rate_limit_default: Option<String>,
    /// Limit the control-plane calls (ListKeys, GetKey, RotateKey, ...) of
    /// each identity holding no role; role holders are not limited.
    #[arg(long, default_value = "20/s", value_name = "N/s")]
    pub control_plane_rate_limit: String,
    /// Refuse RotateKey on a key holding this many versions that are not
    /// destroyed (destroy old versions to make room).
    #[arg(long, default_value_t = crate::service::DEFAULT_MAX_VERSIONS_PER_KEY, value_name = "N")]
    pub max_key_versions: u32,
    /// Time bucket of anomaly detection (baselines average 60 of them).
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub anomaly_bucket: String,
    /// Alert when an identity's decrypts in a bucket exceed this many times
    /// its baseline...
    #[arg(long, default_value_t = 10.0, value_name = "FACTOR")]
    pub anomaly_decrypt_factor: f64,
    /// ...and this many.
    #[arg(long, default_value_t = 600, value_name = "N")]
    pub anomaly_decrypt_floor: u64,
    /// Alert when an identity uses more than this many keys new to it in a
    /// bucket.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub anomaly_new_keys: u32,
    /// Alert when an identity gets more than this many permission denials
    /// in a bucket.
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub anomaly_denials: u32,
    /// Seal at once on this kind of alert: decrypt_spike, new_keys,
    /// denial_spike (repeatable).
    #[arg(long = "seal-on-anomaly", value_name = "KIND")]
    pub seal_on_anomaly: Vec<String>,
    /// With --seal-on-anomaly denial_spike: seal only when this many
    /// distinct identities raise a denial spike within one bucket (1 lets
    /// any single client certificate seal the service).
    #[arg(long, default_value_t = crate::service::DEFAULT_SEAL_DENIAL_IDENTITIES, value_name = "N")]
    pub seal_on_denial_identities: usize,
    /// POST each anomaly alert as JSON to this URL (http://HOST:PORT/PATH).
    #[arg(long, value_name = "URL")]
    pub alert_webhook: Option<String>,
    /// Serve Prometheus metrics over plain HTTP on this address (off
    /// without it; bind it to a private interface).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Remove scheduled backups older than this many days (never the newest).
    #[arg(long, default_value_t = crate::backup::schedule::DEFAULT_RETAIN_DAYS, value_name = "DAYS")]
    pub backup_retain_days: u32,
}

/// Where the keystore lives.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// The embedded sled store in a directory (one node).
    Sled(PathBuf),
    /// PostgreSQL, shared by replicas.
    Postgres {
        /// Connection URL (may hold a password: never printed).
        url: String,
        /// This replica's name.
        replica: String,
        /// CA certificates (PEM) for TLS to the database, if any.
        ca_pem: Option<String>,
    },
}

impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sled(dir) => write!(f, "Sled({})", dir.display()),
            Self::Postgres { replica, .. } => write!(f, "Postgres(replica {replica})"),
        }
    }
}

fn default_replica_name(files: &dyn ConfigFiles) -> String {
    files
        .read_to_string(Path::new("/etc/hostname"))
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "tresor".to_owned())
}

/// Validated server settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the keystore is.
    pub store: StoreSpec,
    /// The master key.
    pub master_key: MasterKeySpec,
    /// Where the listener's certificate and trust anchors come from.
    pub tls: TlsSettings,
    /// Connection, stream and time limits of the listener.
    pub transport: TransportLimits,
    /// Service-layer settings.
    pub service: ServiceOptions,
    /// Scheduled backups, if any.
    pub backups: Option<crate::backup::schedule::BackupSchedule>,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Where to POST anomaly alerts, if anywhere.
    pub alert_webhook: Option<WebhookUrl>,
}

/// An `http://HOST:PORT/PATH` alert webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    /// `HOST:PORT` to connect to.
    pub authority: String,
    /// The request path (with query).
    pub path: String,
}

impl std::str::FromStr for WebhookUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let uri: http::Uri = text
            .parse()
            .map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "{text:?}: only http:// webhooks are supported (send them to a local relay such as Alertmanager)"
            ));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{text:?} names no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        Ok(Self {
            authority: format!("{}:{port}", authority.host()),
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// A configuration error, naming the flag and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct ConfigError {
    /// The flag concerned.
    pub flag: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn config_error(flag: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        flag,
        message: message.into(),
    }
}

/// What configuration reads from the file system: the host's
/// ([`HostFiles`]), or a stand-in when fuzzing.
trait ConfigFiles {
    /// The whole file at `path`, as text.
    fn read_to_string(&self, path: &Path) -> std::io::Result<String>;
    /// Whether `path` names a regular file.
    fn is_file(&self, path: &Path) -> bool;
    /// The whole file at `path`, as bytes.
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.read_to_string(path).map(String::into_bytes)
    }
}

/// The host's file system.
struct HostFiles;

impl ConfigFiles for HostFiles {
    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

fn read_pem(
    files: &dyn ConfigFiles,
    flag: &'static str,
    path: &Path,
    marker: &str,
) -> Result<String, ConfigError> {
    let text = files
        .read_to_string(path)
        .map_err(|e| config_error(flag, format!("cannot read {}: {e}", path.display())))?;
    if !text.contains(marker) {
        return Err(config_error(
            flag,
            format!("{} holds no PEM block ({marker})", path.display()),
        ));
    }
    Ok(text)
}

/// Parses a `humantime` interval flag that must be at least one second.
fn interval_of_at_least_1s(
    flag: &'static str,
    text: &str,
    example: &str,
) -> Result<std::time::Duration, ConfigError> {
    interval_of_at_least(flag, text, example, std::time::Duration::from_secs(1))
}

/// Parses a `humantime` interval flag that must be at least `floor`.
fn interval_of_at_least(
    flag: &'static str,
    text: &str,
    example: &str,
    floor: std::time::Duration,
) -> Result<std::time::Duration, ConfigError> {
    let interval = humantime::parse_duration(text)
        .map_err(|e| config_error(flag, format!("{text:?}: {e} (for example {example})")))?;
    if interval < floor {
        return Err(config_error(
            flag,
            format!(
                "must be at least {} (for example {example})",
                humantime::format_duration(floor)
            ),
        ));
    }
    Ok(interval)
}

impl TryFrom<ServeArgs> for Settings {
    type Error = ConfigError;

    fn try_from(args: ServeArgs) -> Result<Self, ConfigError> {
        let spiffe_env = std::env::var(SPIFFE_ENDPOINT_ENV).ok();
        Self::from_args(args, &HostFiles, spiffe_env)
    }
}

impl Settings {
    /// Validates `args`, reading the files they name from `files`;
    /// `spiffe_env` is the value of [`SPIFFE_ENDPOINT_ENV`].
    fn from_args(
        args: ServeArgs,
        files: &dyn ConfigFiles,
        spiffe_env: Option<String>,
    ) -> Result<Self, ConfigError> {
        let listen = args.listen.parse().map_err(|_| {
            config_error(
                "--listen",
                format!("{:?} is not an IP:PORT address", args.listen),
            )
        })?;
        if args.admins.is_empty() {
            tracing::warn!(
                "no --admin given: only role bindings kept in the keystore authorise the control plane, and only while unsealed"
            );
        }
        let admins = args
            .admins
            .iter()
            .map(|raw| Identity::parse(raw).map_err(|e| config_error("--admin", e.to_string())))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let unseal = unseal::unseal_policy(&args.unseal, &admins, files)?;
        if args.max_plaintext_bytes == 0 || args.max_plaintext_bytes > MAX_PLAINTEXT_CEILING {
            return Err(config_error(
                "--max-plaintext-bytes",
                format!("must be between 1 and {MAX_PLAINTEXT_CEILING}"),
            ));
        }
        if args.max_batch_items == 0 || args.max_batch_items > MAX_BATCH_ITEMS_CEILING {
            return Err(config_error(
                "--max-batch-items",
                format!("must be between 1 and {MAX_BATCH_ITEMS_CEILING}"),
            ));
        }
        let dek_cache_capacity = NonZeroUsize::new(args.dek_cache_capacity)
            .ok_or_else(|| config_error("--dek-cache-capacity", "must be at least 1"))?;
        let tls = TlsSettings::from_args(&args.tls, files, spiffe_env)?;
        let transport = TransportLimits::try_from(&args.transport)?;
        if args.audit_max_file_mib == 0 {
            return Err(config_error("--audit-max-file-mib", "must be at least 1"));
        }
        let audit_file = match (&args.audit_file, &args.data_dir) {
            _ if args.no_audit => None,
            (Some(file), _) => Some(file.clone()),
            (None, Some(dir)) => Some(crate::service::default_audit_file(dir)),
            (None, None) => {
                return Err(config_error(
                    "--audit-file",
                    "with --store, give each replica its own audit file (--audit-file /var/lib/tresor/audit.jsonl)",
                ));
            }
        };
        if args.no_audit {
            tracing::warn!("--no-audit: calls are not recorded in an audit log");
        }
        let store = store::StoreFlags {
            data_dir: args.data_dir.clone(),
            store: args.store,
            store_file: args.store_file.as_deref(),
            store_ca: args.store_ca.as_deref(),
            replica_name: args.replica_name,
        }
        .spec(files)?;
        let backup_interval =
            interval_of_at_least_1s("--backup-interval", &args.backup_interval, "24h")?;
        if !(1..=1 << 32).contains(&args.max_encryptions_per_version) {
            return Err(config_error(
                "--max-encryptions-per-version",
                "must be between 1 and 4294967296 (2^32)",
            ));
        }
        let lifecycle_check_interval = interval_of_at_least_1s(
            "--lifecycle-check-interval",
            &args.lifecycle_check_interval,
            "1m",
        )?;
        let backups = args
            .backup_dir
            .map(|dir| crate::backup::schedule::BackupSchedule {
                dir,
                interval: backup_interval,
                retain_days: args.backup_retain_days,
            });
        let master_key_targets = crate::master_key::RotationTargets::new(
            &args.allowed_master_keys,
            args.aws_endpoint.clone(),
        )
        .map_err(|e| config_error("--allowed-master-key", e.to_string()))?;
        let master_key = match (args.master_key_file, args.master_key) {
            (Some(path), None) => MasterKeySpec::File(path),
            (None, Some(spec)) => MasterKeySpec::parse(&spec, args.aws_endpoint)
                .map_err(|e| config_error("--master-key", e.to_string()))?,
            _ => {
                return Err(config_error(
                    "--master-key-file",
                    "give exactly one of --master-key-file FILE and --master-key aws-kms:KEY",
                ));
            }
        };
        if let MasterKeySpec::File(path) = &master_key
            && !files.is_file(path)
        {
            return Err(config_error(
                "--master-key-file",
                format!(
                    "{} does not exist; create one with: tresor master-key generate --out {}",
                    path.display(),
                    path.display()
                ),
            ));
        }
        let mut rate_limits = crate::anomaly::RateLimits::default();
        for spec in &args.rate_limits {
            rate_limits
                .add(spec)
                .map_err(|e| config_error("--rate-limit", e))?;
        }
        rate_limits.default = args
            .rate_limit_default
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: String| config_error("--rate-limit-default", e))?;
        let bucket = humantime::parse_duration(&args.anomaly_bucket).map_err(|e| {
            config_error(
                "--anomaly-bucket",
                format!("{:?}: {e}", args.anomaly_bucket),
            )
        })?;
        if bucket < std::time::Duration::from_millis(100) {
            return Err(config_error("--anomaly-bucket", "must be at least 100ms"));
        }
        if args.anomaly_decrypt_factor.is_nan() || args.anomaly_decrypt_factor < 1.0 {
            return Err(config_error(
                "--anomaly-decrypt-factor",
                "must be at least 1",
            ));
        }
        let seal_on = args
            .seal_on_anomaly
            .iter()
            .map(|kind| kind.parse())
            .collect::<Result<BTreeSet<_>, String>>()
            .map_err(|e| config_error("--seal-on-anomaly", e))?;
        if args.seal_on_denial_identities == 0 {
            return Err(config_error(
                "--seal-on-denial-identities",
                "must be at least 1",
            ));
        }
        let control_plane_rate = args
            .control_plane_rate_limit
            .parse()
            .map_err(|e: String| config_error("--control-plane-rate-limit", e))?;
        if args.max_key_versions == 0 {
            return Err(config_error("--max-key-versions", "must be at least 1"));
        }
        let guard = crate::service::GuardOptions {
            rate_limits,
            control_plane_rate: Some(control_plane_rate),
            anomaly: crate::anomaly::DetectorOptions {
                bucket,
                decrypt_factor: args.anomaly_decrypt_factor,
                decrypt_floor: args.anomaly_decrypt_floor,
                new_keys: args.anomaly_new_keys,
                denials: args.anomaly_denials,
                ..Default::default()
            },
            seal_on,
            seal_denial_identities: args.seal_on_denial_identities,
        };
        let metrics_listen = args
            .metrics_listen
            .as_deref()
            .map(|addr| {
                addr.parse().map_err(|_| {
                    config_error(
                        "--metrics-listen",
                        format!("{addr:?} is not an IP:PORT address"),
                    )
                })
            })
            .transpose()?;
        let alert_webhook = args
            .alert_webhook
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: String| config_error("--alert-webhook", e))?;
        let log_name = match &store {
            StoreSpec::Sled(_) => crate::service::LOCAL_LOG.to_owned(),
            StoreSpec::Postgres { replica, .. } => replica.clone(),
        };
        Ok(Self {
            listen,
            store,
            master_key,
            tls,
            transport,
            service: ServiceOptions {
                admins,
                unseal,
                max_plaintext_bytes: args.max_plaintext_bytes,
                max_batch_items: args.max_batch_items,
                dek_cache_capacity,
                rewrap_batch_size: args.rewrap_batch_size,
                audit: audit_file.map(|path| AuditSettings {
                    options: AuditOptions {
                        max_file_bytes: args.audit_max_file_mib.saturating_mul(1024 * 1024),
                        accept_gap: args.accept_audit_gap,
                        copy_to_stdout: args.audit_stdout,
                        ..AuditOptions::at(path)
                    },
                    log_name,
                }),
                guard,
                lifecycle: LifecycleOptions {
                    lifecycle_check_interval,
                    max_encryptions_per_version: args.max_encryptions_per_version,
                    max_versions_per_key: args.max_key_versions,
                    ..Default::default()
                },
                master_key_targets,
            },
            backups,
            metrics_listen,
            alert_webhook,
        })
    }
}

#[cfg(test)]
mod tests;
