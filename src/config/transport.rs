//! Connection and HTTP/2 limits of the gRPC listener: the `tresor serve`
//! flags ([`TransportArgs`]) and their validated form ([`TransportLimits`]).

use std::num::NonZeroUsize;
use std::time::Duration;

use super::{ConfigError, config_error};

/// Default cap on open client connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Hard ceiling on `--max-connections` (each connection is a file
/// descriptor and a few KiB to a few tens of KiB of buffers).
pub const MAX_CONNECTIONS_CEILING: usize = 1_000_000;
/// Default HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (hyper's own default,
/// which tonic would otherwise replace with "unlimited").
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 200;
/// Hard ceiling on `--max-concurrent-streams`.
pub const MAX_CONCURRENT_STREAMS_CEILING: u32 = 10_000;
/// Default HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE: 16 KiB (hyper's default).
pub const DEFAULT_MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;
/// Smallest `--max-header-list-bytes`: room for a gRPC call's own headers.
pub const MIN_HEADER_LIST_BYTES: u32 = 4 * 1024;
/// Largest `--max-header-list-bytes`: 1 MiB.
pub const MAX_HEADER_LIST_CEILING: u32 = 1024 * 1024;

/// Flags of `tresor serve` that bound connections, streams and time.
#[derive(Debug, Clone, clap::Args)]
pub struct TransportArgs {
    /// Most client connections open at once; further clients wait in the
    /// kernel's accept queue until one closes.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: usize,
    /// A connection whose TLS handshake takes longer is dropped.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub tls_handshake_timeout: String,
    /// A connection that sends nothing for this long is dropped (live
    /// clients answer the keep-alive pings, so this must exceed
    /// --http2-keepalive-interval plus --http2-keepalive-timeout).
    #[arg(long, default_value = "2m", value_name = "DURATION")]
    pub idle_timeout: String,
    /// A call that takes longer is cancelled (CANCELLED).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub request_timeout: String,
    /// Most concurrent HTTP/2 streams (calls) per connection.
    #[arg(long, default_value_t = DEFAULT_MAX_CONCURRENT_STREAMS, value_name = "N")]
    pub max_concurrent_streams: u32,
    /// Largest HTTP/2 header list (all metadata of one call), in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_HEADER_LIST_BYTES, value_name = "BYTES")]
    pub max_header_list_bytes: u32,
    /// Time between HTTP/2 keep-alive pings on every connection.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub http2_keepalive_interval: String,
    /// A connection that does not answer a keep-alive ping within this is
    /// dropped.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub http2_keepalive_timeout: String,
}

/// Validated connection and HTTP/2 limits; [`Default`] holds the defaults
/// of the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportLimits {
    /// Most client connections open at once (accepting waits beyond it).
    pub max_connections: NonZeroUsize,
    /// Deadline of each connection's TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// A connection with nothing read for this long is closed.
    pub idle_timeout: Duration,
    /// Deadline of each call.
    pub request_timeout: Duration,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: u32,
    /// HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE.
    pub max_header_list_bytes: u32,
    /// Time between keep-alive pings.
    pub keepalive_interval: Duration,
    /// How long a keep-alive ping may go unanswered.
    pub keepalive_timeout: Duration,
}

impl Default for TransportLimits {
    fn default() -> Self {
        Self {
            max_connections: NonZeroUsize::new(DEFAULT_MAX_CONNECTIONS)
                .unwrap_or(NonZeroUsize::MIN),
            tls_handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            max_header_list_bytes: DEFAULT_MAX_HEADER_LIST_BYTES,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
        }
    }
}

/// Parses a duration flag and checks it lies in `min..=max`.
fn duration(
    flag: &'static str,
    text: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let value = humantime::parse_duration(text)
        .map_err(|e| config_error(flag, format!("{text:?}: {e} (for example 10s)")))?;
    if value < min || value > max {
        return Err(config_error(
            flag,
            format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(value)
}

/// Checks `value` lies in `min..=max`.
fn within<T: PartialOrd + std::fmt::Display>(
    flag: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    if value < min || value > max {
        return Err(config_error(
            flag,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(value)
}

impl TryFrom<&TransportArgs> for TransportLimits {
    type Error = ConfigError;

    fn try_from(args: &TransportArgs) -> Result<Self, ConfigError> {
        let millis = Duration::from_millis;
        let secs = Duration::from_secs;
        let max_connections = within(
            "--max-connections",
            args.max_connections,
            1,
            MAX_CONNECTIONS_CEILING,
        )?;
        let limits = Self {
            max_connections: NonZeroUsize::new(max_connections)
                .ok_or_else(|| config_error("--max-connections", "must be at least 1"))?,
            tls_handshake_timeout: duration(
                "--tls-handshake-timeout",
                &args.tls_handshake_timeout,
                millis(100),
                secs(300),
            )?,
            idle_timeout: duration("--idle-timeout", &args.idle_timeout, secs(1), secs(86_400))?,
            request_timeout: duration(
                "--request-timeout",
                &args.request_timeout,
                millis(100),
                secs(3600),
            )?,
            max_concurrent_streams: within(
                "--max-concurrent-streams",
                args.max_concurrent_streams,
                1,
                MAX_CONCURRENT_STREAMS_CEILING,
            )?,
            max_header_list_bytes: within(
                "--max-header-list-bytes",
                args.max_header_list_bytes,
                MIN_HEADER_LIST_BYTES,
                MAX_HEADER_LIST_CEILING,
            )?,
            keepalive_interval: duration(
                "--http2-keepalive-interval",
                &args.http2_keepalive_interval,
                secs(1),
                secs(3600),
            )?,
            keepalive_timeout: duration(
                "--http2-keepalive-timeout",
                &args.http2_keepalive_timeout,
                millis(100),
                secs(600),
            )?,
        };
        if limits.idle_timeout <= limits.keepalive_interval + limits.keepalive_timeout {
            return Err(config_error(
                "--idle-timeout",
                format!(
                    "must exceed --http2-keepalive-interval plus --http2-keepalive-timeout ({}), or live idle clients are dropped between pings",
                    humantime::format_duration(
                        limits.keepalive_interval + limits.keepalive_timeout
                    )
                ),
            ));
        }
        Ok(limits)
    }
}
