//! `tresor health`: asks the server's gRPC health service
//! (`grpc.health.v1.Health/Check`) over mTLS, with the connection flags of
//! every client command, and exits 0 only when the answer is SERVING. It is
//! the container's HEALTHCHECK: the distroless image has no shell or curl.
//!
//! What the server answers (`report_health` in `server.rs`): the whole
//! server (service `""`, the default) and `tresor.v1.Crypto` are
//! NOT_SERVING while sealed or while the keystore does not answer;
//! `tresor.v1.Admin` is NOT_SERVING only while the keystore does not
//! answer, so it stays SERVING while sealed (an admin must be able to
//! unseal).

use std::time::Duration;

use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity as TlsIdentity};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::connection::ConnectionArgs;
use super::failure::{CliError, EXIT_CONNECT, EXIT_REFUSED};
use super::output::{OutputFormat, json};
use tresor_client::{ClientError, ConnectHint};

/// Flags of `tresor health`.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// Service to ask about. Empty (the default) is the whole server:
    /// NOT_SERVING while sealed or while the keystore does not answer, as
    /// is tresor.v1.Crypto. tresor.v1.Admin is NOT_SERVING only while the
    /// keystore does not answer (it stays SERVING while sealed).
    #[arg(
        long,
        env = "TRESOR_HEALTH_SERVICE",
        value_name = "NAME",
        default_value = ""
    )]
    pub service: String,
    /// Give up after this long, connecting and answering together (e.g.
    /// 3s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "3s")]
    pub timeout: String,
    /// Check the server certificate against this name instead of the host
    /// in --addr: for a check over 127.0.0.1 in a container whose server
    /// certificate names only its public DNS name.
    #[arg(long, env = "TRESOR_HEALTH_SERVER_NAME", value_name = "NAME")]
    pub server_name: Option<String>,
}

/// The longest --timeout accepted: a health check that waits longer is
/// not a health check.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `tresor health`: prints the status and succeeds only when SERVING.
pub async fn run(
    args: HealthArgs,
    connection: &ConnectionArgs,
    format: OutputFormat,
) -> Result<(), CliError> {
    let timeout = humantime::parse_duration(&args.timeout)
        .map_err(|e| CliError::usage(format!("--timeout {:?}: {e}", args.timeout)))?;
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(CliError::usage(format!(
            "--timeout {:?}: give a duration above 0 and at most 5m",
            args.timeout
        )));
    }
    let addr = connection.addr()?;
    let asked = async {
        let (channel, had_client_cert) = if connection.spiffe_endpoint.is_some() {
            (spiffe_channel(connection, timeout).await?, true)
        } else {
            let files = connection.read_files()?;
            let had_client_cert = files.client.is_some();
            (files_channel(&args, files, timeout).await?, had_client_cert)
        };
        check(&args, channel, &addr, had_client_cert).await
    };
    let status = tokio::time::timeout(timeout, asked)
        .await
        .map_err(|_| CliError {
            exit: EXIT_CONNECT,
            message: format!(
                "no health answer from {addr} within {}\nhint: {}",
                humantime::format_duration(timeout),
                ConnectHint::Timeout.advice()
            ),
        })??;
    let name = status.as_str_name();
    let text = match format {
        OutputFormat::Human => format!("{name}\n"),
        OutputFormat::Json => json(&serde_json::json!({
            "service": args.service,
            "status": name,
        })),
    };
    super::print(&text)?;
    if status == ServingStatus::Serving {
        return Ok(());
    }
    let what = if args.service.is_empty() {
        "the server".to_owned()
    } else {
        format!("service {}", args.service)
    };
    let why = if args.service == "tresor.v1.Admin" {
        "its keystore does not answer; see the server log"
    } else {
        "it is sealed (`tresor unseal`) or its keystore does not answer; see `tresor status` and the server log"
    };
    Err(CliError {
        exit: EXIT_REFUSED,
        message: format!("{what} at {addr} is {name}: {why}"),
    })
}

/// A channel over the Workload API's SVID and bundles (`--spiffe-endpoint`),
/// the SDK's own transport.
async fn spiffe_channel(
    connection: &ConnectionArgs,
    timeout: Duration,
) -> Result<tonic::transport::Channel, CliError> {
    let (builder, _) = connection.builder()?;
    let raw = builder
        .timeout(timeout)
        .connect_timeout(timeout)
        .build_raw()
        .await?;
    Ok(raw.channel())
}

/// A channel with the CA, certificate and key files.
async fn files_channel(
    args: &HealthArgs,
    files: super::connection::ConnectionFiles,
    timeout: Duration,
) -> Result<tonic::transport::Channel, CliError> {
    let addr = files.addr;
    let had_client_cert = files.client.is_some();
    let url = if addr.contains("://") {
        addr.clone()
    } else {
        format!("https://{addr}")
    };
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&files.ca_pem));
    if let Some(name) = &args.server_name {
        tls = tls.domain_name(name.clone());
    }
    if let Some((cert, key)) = &files.client {
        tls = tls.identity(TlsIdentity::from_pem(cert, key.as_bytes()));
    }
    let endpoint = Endpoint::from_shared(url)
        .map_err(|e| CliError::usage(format!("invalid address {addr:?}: {e}")))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .tls_config(tls)
        .map_err(|e| {
            CliError::usage(format!(
                "TLS configuration: {}",
                crate::error::describe_chain(&e)
            ))
        })?;
    endpoint
        .connect()
        .await
        .map_err(|e| connect_error(&addr, crate::error::describe_chain(&e), had_client_cert))
}

/// Asks over `channel`; every failure is a [`CliError`] with its exit code.
async fn check(
    args: &HealthArgs,
    channel: tonic::transport::Channel,
    addr: &str,
    had_client_cert: bool,
) -> Result<ServingStatus, CliError> {
    let request = HealthCheckRequest {
        service: args.service.clone(),
    };
    match HealthClient::new(channel).check(request).await {
        Ok(answer) => {
            Ok(ServingStatus::try_from(answer.into_inner().status)
                .unwrap_or(ServingStatus::Unknown))
        }
        Err(status) if status.code() == Code::NotFound => Err(CliError::refused(format!(
            "the server at {addr} knows no service {:?}; ask about \"\" (the whole server), tresor.v1.Crypto or tresor.v1.Admin",
            args.service
        ))),
        Err(status) => match status.code() {
            // A refused client certificate surfaces here with TLS 1.3 (the
            // server's alert arrives after the handshake), as does a
            // connection the server dropped.
            Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded => {
                let detail = match std::error::Error::source(&status) {
                    Some(source) => {
                        format!(
                            "{}: {}",
                            status.message(),
                            crate::error::describe_chain(source)
                        )
                    }
                    None => status.message().to_owned(),
                };
                Err(connect_error(addr, detail, had_client_cert))
            }
            code => Err(CliError::refused(format!(
                "the health check at {addr} failed: {}: {}",
                tresor_client::code_words(code),
                status.message()
            ))),
        },
    }
}

/// A connection failure in the words every client command uses (exit 3).
fn connect_error(addr: &str, detail: String, had_client_cert: bool) -> CliError {
    CliError::from(ClientError::Connect {
        endpoint: addr.to_owned(),
        hint: ConnectHint::classify(&detail, had_client_cert),
        detail,
    })
}
