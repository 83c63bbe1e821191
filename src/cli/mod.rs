//! The `tresor` command line.
//!
//! Server side: `serve`, `dev`, `master-key generate`, `certs`. Client side
//! (the control plane and a data plane for scripts): `key`, `grant`, `seal`,
//! `unseal`, `status`, `health`, `encrypt`, `decrypt`, `reencrypt`, `datakey`,
//! and the policy files' `plan`, `apply`, `export`; they read
//! `--addr/--ca/--cert/--key` or `TRESOR_ADDR/TRESOR_CA/TRESOR_CERT/TRESOR_KEY`.
//!
//! Exit codes: 0 success; 1 the server refused (or a local operation
//! failed); 2 usage error; 3 cannot connect or TLS failure. `tresor plan`
//! exits 2 when it has changes to apply, and 1 on any error.

mod alias;
mod audit;
mod backup;
mod bench;
mod certs;
mod confirm;
mod connection;
mod data;
mod dev;
mod env;
mod envelope;
mod failure;
mod health;
mod keys;
mod keystore;
mod mac;
mod master_key;
mod output;
mod policy;
mod reencrypt;
mod role;
mod unseal;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::{ServeArgs, Settings};
use crate::server::Server;

pub use failure::{CliError, EXIT_CONNECT, EXIT_REFUSED, EXIT_USAGE};
pub use output::OutputFormat;

/// tresor: envelope-encryption key management over gRPC with mTLS.
#[derive(Debug, Parser)]
#[command(name = "tresor", version, about, long_about = None)]
pub struct Cli {
    /// Output style of client commands.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// Log lines on stderr: pretty for people, json (one object per line)
    /// for log pipelines. TRESOR_LOG sets the level (default info).
    #[arg(long, global = true, value_enum, env = "TRESOR_LOG_FORMAT", default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Connection settings of client commands.
    #[command(flatten)]
    pub connection: connection::ConnectionArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage keys: create, rotate, show, list, disable, enable, deletion.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Let other identities use a key.
    #[command(subcommand)]
    Grant(keys::GrantCommand),
    /// Name keys with aliases that can be repointed: create, update,
    /// delete, list.
    #[command(subcommand)]
    Alias(alias::AliasCommand),
    /// Control-plane roles kept in the keystore: add, remove, list.
    #[command(subcommand)]
    Role(role::RoleCommand),
    /// Show what `tresor apply` would change to make the server match a
    /// policy file; exit 0 without changes, 2 with changes, 1 on an error.
    ///
    /// Destructive changes (revocations, alias deletions, disabling keys,
    /// removing role bindings) are listed as "not applied without
    /// --prune" and count only with --prune. docs/POLICY.md has the file's
    /// format.
    ///
    /// Example: tresor plan -f tresor.yaml
    Plan(policy::PlanArgs),
    /// Make the server match a policy file, through the same calls any
    /// admin would make; idempotent.
    ///
    /// Stops at the first change the server refuses and reports each
    /// change as applied, failed or not attempted; run it again once the
    /// cause is fixed. Destructive changes need --prune (and --yes without
    /// a terminal).
    ///
    /// Example: tresor apply -f tresor.yaml
    Apply(policy::ApplyArgs),
    /// Write the server's keys, grants, aliases and role bindings as a
    /// policy file (metadata only, never key material).
    ///
    /// Example: tresor export -o tresor.yaml
    Export(policy::ExportArgs),
    /// Emergency switch: drop all key material from the server's memory.
    ///
    /// Example: tresor seal --yes
    Seal {
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
        /// Also seal this replica (repeatable): seal is per replica, so list
        /// every replica of a shared keystore. All are tried even if one
        /// fails.
        #[arg(long = "replica", value_name = "URL")]
        replicas: Vec<String>,
    },
    /// Approve unsealing after a seal; the server reloads the root key once
    /// enough approvers have (one by default).
    ///
    /// Example: tresor unseal --token-file /media/offline/unseal.token
    Unseal(unseal::UnsealArgs),
    /// Create an out-of-band unseal token and its verifier.
    #[command(subcommand)]
    UnsealToken(unseal::UnsealTokenCommand),
    /// Show whether the server is sealed, its key count and version.
    ///
    /// Example: tresor status
    Status,
    /// Ask the gRPC health service; exit 0 only when SERVING (the
    /// container's HEALTHCHECK).
    ///
    /// The whole server (the default) is NOT_SERVING while sealed or while
    /// its keystore does not answer; `--service tresor.v1.Admin` stays
    /// SERVING while sealed. Any client certificate from the server's
    /// client CA will do; it needs no grants.
    ///
    /// Example: tresor health --timeout 3s
    Health(health::HealthArgs),
    /// Seal and open payloads of any size as stream envelopes (one data
    /// key per stream, constant memory).
    #[command(subcommand)]
    Envelope(envelope::EnvelopeCommand),
    /// Env files whose values are tresor ciphertexts: encrypt, decrypt,
    /// set, rotate, edit.
    #[command(subcommand)]
    Env(env::EnvCommand),
    /// Run a command with the tresor:v1: values of env files and of the
    /// environment decrypted into its environment only (the process is
    /// replaced: exit status and signals are the command's). Nothing runs
    /// unless every value decrypts.
    ///
    /// Example: tresor exec --env-file .env.tresor -- ./server --port 8080
    Exec(env::ExecArgs),
    /// Encrypt a file or stdin under a key.
    ///
    /// Example: tresor encrypt billing/customer-records --context tenant=42 --in card.txt --out card.enc
    Encrypt(data::DataArgs),
    /// Decrypt a ciphertext made by `tresor encrypt` (same key and context).
    ///
    /// Example: tresor decrypt billing/customer-records --context tenant=42 --in card.enc
    Decrypt(data::DecryptArgs),
    /// Re-encrypt a ciphertext under its key's primary version, or move it
    /// to another key, without the plaintext leaving tresor.
    ///
    /// Example: tresor reencrypt billing/old --context tenant=42 --in card.enc --to billing/new --to-context tenant=42 --out card.v2
    Reencrypt(reencrypt::ReEncryptArgs),
    /// Get a fresh data key for local encryption, in clear and wrapped.
    ///
    /// Example: tresor datakey billing/customer-records --context file=invoice.pdf
    Datakey(data::DataKeyArgs),
    /// Compute a blind-index token of a message under a MAC key.
    ///
    /// The message is read from --in (or stdin) byte for byte.
    ///
    /// Example: tresor mac crm/email-index --context table=users --in email.txt --all-versions
    Mac(mac::MacArgs),
    /// Check a token from `tresor mac`; exit 0 when it verifies, 1 when not.
    ///
    /// Example: tresor verify-mac crm/email-index --context table=users --in email.txt --mac VFJTIQAAAAE...
    VerifyMac(mac::VerifyMacArgs),
    /// Run the server.
    ///
    /// Example: tresor serve --data-dir /var/lib/tresor --master-key-file /etc/tresor/master.key --tls-cert server/cert.pem --tls-key server/key.pem --client-ca ca/ca.pem --admin spiffe://example.org/admin
    Serve(Box<ServeArgs>),
    /// Run a ready-to-call development server with generated certificates,
    /// master key and keystore.
    ///
    /// Example: tresor dev
    Dev(dev::DevArgs),
    /// Rotate the root key (re-wraps every DEK in the background).
    #[command(subcommand)]
    RootKey(keys::RootKeyCommand),
    /// Load-test running servers, optionally beside a bare gRPC echo.
    ///
    /// Example: tresor bench --key-id billing/customer-records --concurrency 64 --duration 10s --compare-echo
    Bench(bench::BenchArgs),
    /// Serve the bench echo service (started by `tresor bench
    /// --compare-echo`).
    ///
    /// Example: tresor echo-serve --tls-cert server/cert.pem --tls-key server/key.pem --client-ca ca/ca.pem
    #[command(hide = true)]
    EchoServe(bench::EchoServeArgs),
    /// Back up the keystore, verify a backup, restore one.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Verify the tamper-evident audit log offline.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Erase removed key material from the keystore's files.
    #[command(subcommand)]
    Keystore(keystore::KeystoreCommand),
    /// Create a master key file, or rotate the master key.
    #[command(subcommand)]
    MasterKey(master_key::MasterKeyCommand),
    /// Issue certificates for real deployments.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Print a shell completion script.
    ///
    /// Example: tresor completions bash > /etc/bash_completion.d/tresor
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.format(&mut Cli::command()).exit(),
    };
    cli.connection.prefer_the_command_line(&matches);
    let exporting = match &cli.command {
        Command::Serve(args) => args.otlp_endpoint.as_deref().map(crate::telemetry::start),
        _ => None,
    };
    let (exporting, export_layer) = match exporting.transpose() {
        Ok(Some((exporting, layer))) => (Some(exporting), Some(layer)),
        Ok(None) => (None, None),
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(failure::EXIT_USAGE);
        }
    };
    init_logging(cli.log_format, export_layer);
    let outcome = run(cli);
    if let Some(exporting) = exporting {
        exporting.shutdown();
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if !err.message.is_empty() {
                eprintln!("error: {}", err.message);
            }
            ExitCode::from(err.exit)
        }
    }
}

/// Format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, with the request's span (request id,
    /// operation) as fields.
    Json,
}

fn init_logging(format: LogFormat, export: Option<crate::telemetry::ExportLayer>) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRESOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let lines = if format == LogFormat::Json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed()
    };
    // The trace exporter (`serve --otlp-endpoint`) sees the spans of traced
    // calls only.
    let _ = tracing_subscriber::registry()
        .with(export.map(|layer| layer.with_filter(crate::telemetry::ExportFilter)))
        .with(lines.with_filter(filter))
        .try_init();
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::refused(format!("cannot write stdout: {e}")))
}

fn run(cli: Cli) -> Result<(), CliError> {
    let Cli {
        output: format,
        connection,
        command,
        ..
    } = cli;
    match command {
        Command::Serve(args) => {
            let settings = Settings::try_from(*args).map_err(|e| CliError::usage(e.to_string()))?;
            Ok(runtime()?.block_on(serve(settings))?)
        }
        Command::Dev(args) => Ok(dev::run(args)?),
        Command::Bench(args) => {
            print(&runtime()?.block_on(bench::run(args, &connection, format))?)
        }
        Command::EchoServe(args) => bench::echo_serve(args),
        Command::MasterKey(command) => print(&master_key::run(command, &connection, format)?),
        Command::Backup(command) => print(&backup::run(command, &connection, format)?),
        Command::Audit(command) => print(&audit::run(command, &connection, format)?),
        Command::Keystore(command) => print(&keystore::run(command, format)?),
        Command::Certs(command) => print(&certs::run(command, format)?),
        Command::UnsealToken(command) => print(&unseal::run_token(command, format)?),
        Command::Completions { shell } => {
            let mut buffer = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tresor", &mut buffer);
            print(&String::from_utf8_lossy(&buffer))
        }
        Command::Health(args) => runtime()?.block_on(health::run(args, &connection, format)),
        Command::Plan(args) => runtime()?.block_on(policy::run_plan(args, &connection, format)),
        Command::Apply(args) => runtime()?.block_on(policy::run_apply(args, &connection, format)),
        Command::Export(args) => runtime()?.block_on(policy::run_export(args, &connection, format)),
        Command::Exec(args) => {
            let child = runtime()?.block_on(async {
                let conn = connection.connect().await?;
                env::exec::prepare(&args, &conn.client).await
            })?;
            Err(env::exec::replace_process(&args.command, child))
        }
        Command::Seal { yes, replicas } if !replicas.is_empty() => {
            runtime()?.block_on(keys::seal_replicas(&connection, replicas, yes, format))
        }
        client_command => runtime()?.block_on(async move {
            let conn = connection.connect().await?;
            match client_command {
                Command::Key(command) => print(&keys::run_key(command, &conn, format).await?),
                Command::Grant(command) => print(&keys::run_grant(command, &conn, format).await?),
                Command::Alias(command) => print(&alias::run_alias(command, &conn, format).await?),
                Command::Role(command) => print(&role::run_role(command, &conn, format).await?),
                Command::Env(command) => print(&env::run_env(command, &conn).await?),
                Command::Envelope(command) => envelope::run_envelope(command, &conn).await,
                Command::Seal { yes, .. } => {
                    print(&keys::run_seal(keys::SealAction::Seal { yes }, &conn, format).await?)
                }
                Command::Unseal(args) => {
                    print(&keys::run_seal(keys::SealAction::Unseal(args), &conn, format).await?)
                }
                Command::RootKey(command) => {
                    print(&keys::run_root_key(command, &conn, format).await?)
                }
                Command::Status => {
                    print(&keys::run_seal(keys::SealAction::Status, &conn, format).await?)
                }
                Command::Encrypt(args) => data::encrypt(args, &conn, format).await,
                Command::Decrypt(args) => data::decrypt(args, &conn, format).await,
                Command::Datakey(args) => print(&data::datakey(args, &conn, format).await?),
                Command::Reencrypt(args) => reencrypt::reencrypt(args, &conn, format).await,
                Command::Mac(args) => print(&mac::mac(args, &conn, format).await?),
                Command::VerifyMac(args) => print(&mac::verify_mac(args, &conn, format).await?),
                _ => Err(CliError::usage("not a client command")),
            }
        }),
    }
}

/// Prepares the server, then [`bind_and_serve`].
async fn serve(settings: Settings) -> Result<(), String> {
    // Before any key is unwrapped (Server::prepare unwraps the root key).
    crate::server::hardening::harden_process(true);
    let listen = settings.listen;
    let server = Server::prepare(settings)
        .await
        .map_err(|e| format!("cannot start: {e}"))?;
    bind_and_serve(server, listen, |_| {}).await
}

/// Binds `listen`, calls `on_ready` with the bound address, and serves until
/// SIGTERM or Ctrl-C.
pub(crate) async fn bind_and_serve(
    server: Server,
    listen: std::net::SocketAddr,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e} (is another server running?)"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let shutdown = shutdown_signal();
    let seal_task = tokio::spawn(seal_on_signal(server.service().clone()));
    on_ready(addr);
    let served = server
        .serve(listener, shutdown)
        .await
        .map_err(|e| e.to_string());
    seal_task.abort();
    served
}

/// The host's emergency switch: `kill -USR1 <pid>` seals the server (no
/// certificate needed, only the right to signal the process). Audited.
/// The handler is registered before this returns the future (so before
/// the server reports ready), like [`shutdown_signal`].
fn seal_on_signal(
    service: std::sync::Arc<crate::service::Service>,
) -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1());
    async move {
        #[cfg(unix)]
        {
            let Ok(mut signal) = signal else {
                return;
            };
            while signal.recv().await.is_some() {
                service.seal_for("SIGUSR1 from the host").await;
            }
        }
        #[cfg(not(unix))]
        drop(service);
    }
}

/// Registers the shutdown signals (SIGTERM, Ctrl-C) at once and returns a
/// future that resolves on the first. Registering before the server
/// reports ready matters: a SIGTERM that arrived in between used to kill
/// the process outright instead of draining it (found by
/// tests/it/hardening.rs).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate()).and_then(|t| Ok((t, signal(SignalKind::interrupt())?)))
    };
    async move {
        #[cfg(unix)]
        match signals {
            Ok((mut terminate, mut interrupt)) => {
                tokio::select! {
                    _ = terminate.recv() => {},
                    _ = interrupt.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested; draining in-flight requests");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_help_with_an_example() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let name = format!("{path} {}", command.get_name());
            let has_children = command.get_subcommands().next().is_some();
            if !has_children && command.get_name() != "help" {
                let help = command
                    .get_long_about()
                    .or(command.get_about())
                    .map(ToString::to_string)
                    .unwrap_or_default();
                if !help.contains("Example: tresor") {
                    missing.push(name.clone());
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(
            missing.is_empty(),
            "commands without an example: {missing:?}"
        );
    }
}
