//! The echo baseline's process: `tresor echo-serve` (hidden) serves the
//! bench echo service in its own process, with its own runtime, as tresor
//! does; [`EchoProcess`] is how `tresor bench --compare-echo` starts it and
//! stops it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cli::failure::CliError;
use crate::config::{TlsFileArgs, TlsMaterial};

/// What `echo-serve` prints on stdout once it listens, before the address.
const READY: &str = "echo listening on ";
/// How long the echo process may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it may take to stop after its stdin closes.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Flags of the hidden `tresor echo-serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct EchoServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The files tresor serves with.
    #[command(flatten)]
    pub tls: TlsFileArgs,
}

/// The certificate files of the echo server, as `tresor bench` names them.
#[derive(Debug, Clone)]
pub struct EchoTls<'a> {
    /// `--echo-tls-cert`.
    pub cert: &'a Path,
    /// `--echo-tls-key`.
    pub key: &'a Path,
    /// `--echo-client-ca`.
    pub client_ca: &'a Path,
}

/// Runs `tresor echo-serve`: prints `echo listening on ADDR` and serves
/// until stdin closes (the bench exited) or SIGTERM/Ctrl-C.
pub fn serve(args: EchoServeArgs) -> Result<(), CliError> {
    let tls = args
        .tls
        .read()
        .map_err(|e| CliError::usage(e.to_string()))?;
    crate::cli::runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| CliError::refused(format!("cannot listen on {}: {e}", args.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::refused(e.to_string()))?;
        crate::cli::print(&format!("{READY}{addr}\n"))?;
        let shutdown = async {
            tokio::select! {
                () = stdin_closed() => {},
                () = crate::cli::shutdown_signal() => {},
            }
        };
        crate::server::echo::serve(listener, &tls, shutdown)
            .await
            .map_err(|e| CliError::refused(format!("echo server: {e}")))
    })
}

/// Completes when stdin reaches its end or fails. Reads on a plain thread
/// so that a read still blocked at exit does not hold the runtime.
async fn stdin_closed() {
    let (closed, wait) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed.send(());
    });
    let _ = wait.await;
}

/// A running `tresor echo-serve` child. Dropping it kills the child.
#[derive(Debug)]
pub struct EchoProcess {
    child: tokio::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl EchoProcess {
    /// Starts the echo server on `listen` with these files (checked here
    /// first, so errors name the `--echo-*` flags) and waits until it
    /// listens.
    pub async fn start(tls: &EchoTls<'_>, listen: SocketAddr) -> Result<Self, CliError> {
        TlsMaterial::read(
            ("--echo-tls-cert", tls.cert),
            ("--echo-tls-key", tls.key),
            ("--echo-client-ca", tls.client_ca),
        )
        .map_err(|e| {
            CliError::usage(format!(
                "{e}\nhint: --compare-echo serves the echo with the certificate, key and client CA tresor serves with (default: the `tresor dev` files in .tresor-dev/)"
            ))
        })?;
        let exe = std::env::current_exe()
            .map_err(|e| CliError::refused(format!("cannot find the tresor binary: {e}")))?;
        let mut child = tokio::process::Command::new(exe)
            .arg("echo-serve")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--tls-cert")
            .arg(tls.cert)
            .arg("--tls-key")
            .arg(tls.key)
            .arg("--client-ca")
            .arg(tls.client_ca)
            .env(
                "TRESOR_LOG",
                std::env::var("TRESOR_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| CliError::refused(format!("cannot start the echo server: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| CliError::refused("the echo server has no stdout"))?;
        let mut line = String::new();
        let read =
            tokio::time::timeout(START_TIMEOUT, BufReader::new(stdout).read_line(&mut line)).await;
        let addr = match read {
            Ok(Ok(_)) => line
                .trim()
                .strip_prefix(READY)
                .and_then(|addr| addr.parse::<SocketAddr>().ok()),
            Ok(Err(_)) | Err(_) => None,
        };
        match addr {
            Some(addr) => Ok(Self { child, addr }),
            None => Err(CliError::refused(format!(
                "the echo server did not start (its error, if any, is above); it said {:?}",
                line.trim()
            ))),
        }
    }

    /// Closes its stdin so it drains and exits; kills it if it does not
    /// within a few seconds.
    pub async fn stop(mut self) {
        drop(self.child.stdin.take());
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
