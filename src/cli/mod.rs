//! The `tresor` command line: `serve`, `dev`, `master-key generate` and
//! `certs`. Errors say what to do next; exit codes are 0 (success),
//! 1 (the operation failed), 2 (usage error).

mod certs;
mod dev;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{ServeArgs, Settings};
use crate::master_key::FileMasterKey;
use crate::server::Server;

/// Exit code when an operation fails.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for usage errors (clap uses it too).
pub const EXIT_USAGE: u8 = 2;

/// tresor: envelope-encryption key management over gRPC with mTLS.
#[derive(Debug, Parser)]
#[command(name = "tresor", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    ///
    /// Example: tresor serve --data-dir /var/lib/tresor --master-key-file /etc/tresor/master.key --tls-cert server/cert.pem --tls-key server/key.pem --client-ca ca/ca.pem --admin spiffe://example.org/admin
    Serve(ServeArgs),
    /// Run a ready-to-call development server with generated certificates,
    /// master key and keystore.
    ///
    /// Example: tresor dev
    Dev(dev::DevArgs),
    /// Manage the local master key file.
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
    /// Issue certificates for real deployments.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
}

/// `tresor master-key ...`
#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Create a new random 32-byte master key file with mode 0600.
    ///
    /// Example: tresor master-key generate --out /etc/tresor/master.key
    Generate {
        /// Where to write it (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRESOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings::try_from(args).map_err(|e| e.to_string())?;
            runtime()?.block_on(serve(settings))
        }
        Command::Dev(args) => dev::run(args),
        Command::MasterKey(MasterKeyCommand::Generate { out }) => {
            FileMasterKey::generate(&out).map_err(|e| e.to_string())?;
            println!("wrote a new master key to {} (mode 0600)", out.display());
            Ok(())
        }
        Command::Certs(command) => certs::run(command),
    }
}

/// Prepares the server, then [`bind_and_serve`].
async fn serve(settings: Settings) -> Result<(), String> {
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
    on_ready(addr);
    server
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}
