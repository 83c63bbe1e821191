//! Connection settings of the client commands, from flags or environment:
//! `--addr`/`TRESOR_ADDR`, `--ca`/`TRESOR_CA`, `--cert`/`TRESOR_CERT`,
//! `--key`/`TRESOR_KEY` (what `tresor dev` prints as `export` lines), or,
//! instead of the three files, `--spiffe-endpoint`/`TRESOR_SPIFFE_ENDPOINT`
//! (a SPIFFE Workload API that gives the client its X.509-SVID and the
//! trust bundles).

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::failure::CliError;
use crate::identity::Identity;
use tresor_bench::EchoClient;
use tresor_client::{Client, ClientBuilder};

/// Where the server is and how to prove who we are.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectionArgs {
    /// Server address, https://HOST:PORT.
    #[arg(
        long,
        env = "TRESOR_ADDR",
        global = true,
        hide_env_values = true,
        value_name = "URL"
    )]
    pub addr: Option<String>,
    /// CA certificate (PEM) that issued the server certificate.
    #[arg(
        long,
        env = "TRESOR_CA",
        global = true,
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(
        long,
        env = "TRESOR_CERT",
        global = true,
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(
        long,
        env = "TRESOR_KEY",
        global = true,
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub key: Option<PathBuf>,
    /// SPIFFE Workload API (unix:///run/spire/agent.sock) to take the
    /// client's X.509-SVID and the trust bundles from, instead of --ca,
    /// --cert and --key.
    #[arg(
        long,
        env = "TRESOR_SPIFFE_ENDPOINT",
        global = true,
        hide_env_values = true,
        value_name = "URI"
    )]
    pub spiffe_endpoint: Option<String>,
    /// With --spiffe-endpoint, the SPIFFE id tresor's certificate must
    /// carry (spiffe://example.org/tresor). Without it, any workload of the
    /// trust domain that answers at --addr is taken for tresor.
    #[arg(
        long,
        env = "TRESOR_SERVER_SPIFFE_ID",
        global = true,
        hide_env_values = true,
        value_name = "SPIFFE_ID"
    )]
    pub server_spiffe_id: Option<String>,
}

/// Whether the value of argument `id` was given on the command line.
fn on_command_line(matches: &clap::ArgMatches, id: &str) -> bool {
    matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
}

fn read(flag: &str, path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("{flag} {}: {e}", path.display())))
}

/// An open connection and the identity its certificate names.
#[derive(Debug)]
pub struct Connection {
    /// The client.
    pub client: Client,
    /// Our identity as the server will see it, if a certificate was given.
    pub identity: Option<Identity>,
}

impl ConnectionArgs {
    /// Lets a flag beat the environment when the two name different ways
    /// to connect: `--spiffe-endpoint` on the command line drops
    /// TRESOR_CA, TRESOR_CERT and TRESOR_KEY from the environment (an image
    /// that sets them for its own health check can still be probed over
    /// the Workload API: Kubernetes cannot unset an image's variables), and
    /// `--ca`/`--cert`/`--key` drop TRESOR_SPIFFE_ENDPOINT. Both ways given
    /// the same way stay an error.
    pub fn prefer_the_command_line(&mut self, matches: &clap::ArgMatches) {
        let files_given = ["ca", "cert", "key"]
            .iter()
            .any(|id| on_command_line(matches, id));
        let spiffe_given = on_command_line(matches, "spiffe_endpoint");
        if spiffe_given && !files_given {
            (self.ca, self.cert, self.key) = (None, None, None);
        } else if files_given && !spiffe_given {
            self.spiffe_endpoint = None;
        }
    }

    /// Connects with these settings.
    pub async fn connect(&self) -> Result<Connection, CliError> {
        let (builder, identity) = self.builder()?;
        let client = builder.build().await?;
        Ok(Connection { client, identity })
    }

    /// Connects to the bench echo server with these settings (`tresor bench
    /// --compare-echo`), exactly as [`ConnectionArgs::connect`] connects to
    /// tresor.
    pub async fn echo_client(&self) -> Result<EchoClient, CliError> {
        let (builder, _) = self.builder()?;
        Ok(EchoClient::connect(builder).await?)
    }

    /// Opens a new connection with these settings at each call (the files
    /// are read once, here), without retries: `tresor bench
    /// --new-connections`.
    pub fn connector(&self) -> Result<tresor_bench::Connect, CliError> {
        let files = self.read_files()?;
        Ok(std::sync::Arc::new(move || {
            let mut builder = Client::builder()
                .endpoint(files.addr.clone())
                .ca(files.ca_pem.clone());
            if let Some((cert_pem, key_pem)) = &files.client {
                builder = builder.identity(cert_pem.clone(), key_pem.clone());
            }
            Box::pin(async move {
                let client = builder.build().await?;
                Ok(client.with_retry_policy(tresor_client::RetryPolicy::none()))
            })
        }))
    }

    /// A client builder from these settings, and the identity its
    /// certificate names.
    pub(super) fn builder(&self) -> Result<(ClientBuilder, Option<Identity>), CliError> {
        if let Some(endpoint) = &self.spiffe_endpoint {
            if self.ca.is_some() || self.cert.is_some() || self.key.is_some() {
                return Err(CliError::usage(
                    "--spiffe-endpoint (TRESOR_SPIFFE_ENDPOINT) replaces --ca, --cert and --key (TRESOR_CA, TRESOR_CERT, TRESOR_KEY): give one or the other",
                ));
            }
            let mut builder = Client::builder()
                .endpoint(self.addr()?)
                .spiffe(endpoint.clone());
            if let Some(server_id) = &self.server_spiffe_id {
                builder = builder.server_spiffe_id(server_id.clone());
            }
            return Ok((builder, None));
        }
        let files = self.read_files()?;
        let mut builder = Client::builder().endpoint(files.addr).ca(files.ca_pem);
        let mut identity = None;
        if let Some((cert_pem, key_pem)) = files.client {
            identity = identity_of(&cert_pem);
            builder = builder.identity(cert_pem, key_pem);
        }
        Ok((builder, identity))
    }

    /// The server address.
    pub(super) fn addr(&self) -> Result<String, CliError> {
        self.addr.clone().ok_or_else(|| {
            CliError::usage(
                "no server address: pass --addr https://HOST:PORT or set TRESOR_ADDR (`tresor dev` prints the export lines)",
            )
        })
    }

    /// The address and the PEM files these settings name, read and checked
    /// exactly as every client command does (a client certificate that is
    /// expired or not yet valid is refused here, with exit 3).
    pub(super) fn read_files(&self) -> Result<ConnectionFiles, CliError> {
        let addr = self.addr()?;
        let ca = self.ca.as_deref().ok_or_else(|| {
            CliError::usage(if self.spiffe_endpoint.is_some() {
                "this command needs --ca, --cert and --key files (--spiffe-endpoint serves the commands that call tresor's API)"
            } else {
                "no CA certificate: pass --ca FILE or set TRESOR_CA"
            })
        })?;
        let ca_pem = read("--ca", ca)?;
        let client = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let cert_pem = read("--cert", cert)?;
                check_validity(cert, &cert_pem)?;
                Some((cert_pem, Zeroizing::new(read("--key", key)?)))
            }
            (Some(_), None) => {
                return Err(CliError::usage(
                    "--cert given without --key (or TRESOR_KEY)",
                ));
            }
            (None, Some(_)) => {
                return Err(CliError::usage(
                    "--key given without --cert (or TRESOR_CERT)",
                ));
            }
            (None, None) => None,
        };
        Ok(ConnectionFiles {
            addr,
            ca_pem,
            client,
        })
    }
}

/// What [`ConnectionArgs::read_files`] read: for a command that opens its
/// own channel (`tresor health` talks to `grpc.health.v1.Health`, which the
/// SDK does not wrap).
pub(super) struct ConnectionFiles {
    /// The server address as given.
    pub addr: String,
    /// PEM of the CA that issued the server certificate.
    pub ca_pem: String,
    /// The client certificate and its private key (PEM), if given.
    pub client: Option<(String, Zeroizing<String>)>,
}

/// Refuses a client certificate that is expired or not yet valid before
/// connecting, so the user is told exactly that (exit 3) instead of a
/// generic handshake failure.
fn check_validity(path: &Path, cert_pem: &str) -> Result<(), CliError> {
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()) else {
        return Err(CliError::usage(format!(
            "--cert {}: not a PEM certificate",
            path.display()
        )));
    };
    let Ok(cert) = pem.parse_x509() else {
        return Err(CliError::usage(format!(
            "--cert {}: not an X.509 certificate",
            path.display()
        )));
    };
    let validity = cert.validity();
    if validity.is_valid() {
        return Ok(());
    }
    let (what, when) =
        if validity.time_to_expiration().is_none() && validity.not_after.timestamp() < now_unix() {
            ("expired", validity.not_after.timestamp())
        } else {
            (
                "is not valid yet; valid from",
                validity.not_before.timestamp(),
            )
        };
    Err(CliError {
        exit: super::failure::EXIT_CONNECT,
        message: format!(
            "client certificate {} {what} {}\nhint: a certificate has expired or is not yet valid: issue a new one with `tresor certs issue`",
            path.display(),
            super::output::timestamp(when)
        ),
    })
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn identity_of(cert_pem: &str) -> Option<Identity> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).ok()?;
    Identity::from_certificate_der(&pem.contents).ok()
}
