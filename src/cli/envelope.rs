//! `tresor envelope seal|open`: the SDK's stream envelope (docs/FORMAT.md
//! §10) from the command line, for payloads of any size in constant
//! memory; also the Rust side of the cross-language conformance driver
//! (clients/conformance/).
//!
//! Opening writes each chunk once it is authenticated, so a failure leaves
//! a prefix behind: with `--out`, the plaintext goes to a private
//! temporary file next to it that is renamed only when the whole stream
//! authenticated, and removed otherwise. On stdout, a non-zero exit means:
//! discard what was written.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use tokio::io::{AsyncRead, AsyncWrite};
use tresor_client::{ChunkSize, StreamError};

use super::connection::Connection;
use super::data::{context, parse_pair};
use super::failure::CliError;

/// `tresor envelope ...`
#[derive(Debug, Subcommand)]
pub enum EnvelopeCommand {
    /// Seal a file or stdin as one stream under a fresh data key of KEY
    /// (one GenerateDataKey call; the payload never leaves this machine).
    ///
    /// Example: tresor envelope seal billing/exports --context export=2026-12 --in export.csv --out export.csv.tre
    Seal {
        /// The key whose data key seals the stream.
        #[arg(value_name = "KEY")]
        key_id: String,
        /// Encryption context (repeatable); opening needs the same.
        #[arg(long = "context", short = 'c', value_name = "K=V", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        /// Plaintext bytes per chunk: a power of two from 1024 to 16777216.
        #[arg(long, default_value_t = 65536, value_name = "BYTES")]
        chunk_size: u32,
        /// Input file (default stdin).
        #[arg(long = "in", value_name = "FILE")]
        input: Option<PathBuf>,
        /// Output file, written 0600 (default stdout).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Open a stream sealed under one of the --key-id keys (any other is
    /// refused before tresor is asked). With --out, the plaintext appears
    /// only once the whole stream authenticated; on stdout, discard the
    /// output when the exit status is not 0.
    ///
    /// Example: tresor envelope open --key-id billing/exports --context export=2026-12 --in export.csv.tre --out export.csv
    Open {
        /// A key the stream may have been sealed under (repeatable).
        #[arg(long = "key-id", required = true, value_name = "KEY")]
        key_ids: Vec<String>,
        /// The sealing context.
        #[arg(long = "context", short = 'c', value_name = "K=V", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        /// Also open version 1 streams (sealed before stream version 2):
        /// only for data from a writer you trust; re-seal them.
        #[arg(long)]
        accept_legacy: bool,
        /// Input file (default stdin).
        #[arg(long = "in", value_name = "FILE")]
        input: Option<PathBuf>,
        /// Output file, written 0600 (default stdout).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

fn stream_error(err: StreamError) -> CliError {
    match err {
        StreamError::Service(client) => CliError::from(client),
        other => CliError::refused(other.to_string()),
    }
}

async fn open_input(input: Option<&Path>) -> Result<Box<dyn AsyncRead + Unpin + Send>, CliError> {
    Ok(match input {
        Some(path) => Box::new(
            tokio::fs::File::open(path)
                .await
                .map_err(|e| CliError::refused(format!("cannot read {}: {e}", path.display())))?,
        ),
        None => Box::new(tokio::io::stdin()),
    })
}

/// The output: stdout, or a private temporary file beside `out` that
/// [`Output::finish`] renames over it.
enum Output {
    Stdout(tokio::io::Stdout),
    File {
        temp: tempfile::NamedTempFile,
        writer: tokio::fs::File,
        out: PathBuf,
    },
}

impl Output {
    fn create(out: Option<&Path>) -> Result<Self, CliError> {
        let Some(out) = out else {
            return Ok(Self::Stdout(tokio::io::stdout()));
        };
        let dir = out
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let temp = tempfile::Builder::new()
            .prefix(".tresor-envelope-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|e| CliError::refused(format!("cannot write in {}: {e}", dir.display())))?;
        let writer = temp
            .reopen()
            .map(tokio::fs::File::from_std)
            .map_err(|e| CliError::refused(format!("cannot write in {}: {e}", dir.display())))?;
        Ok(Self::File {
            temp,
            writer,
            out: out.to_path_buf(),
        })
    }

    fn writer(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send) {
        match self {
            Self::Stdout(stdout) => stdout,
            Self::File { writer, .. } => writer,
        }
    }

    /// Makes the output final (a file: synced and renamed over `out`).
    async fn finish(self) -> Result<(), CliError> {
        let Self::File { temp, writer, out } = self else {
            return Ok(());
        };
        writer
            .sync_all()
            .await
            .map_err(|e| CliError::refused(format!("cannot write {}: {e}", out.display())))?;
        temp.persist(&out)
            .map_err(|e| CliError::refused(format!("cannot write {}: {e}", out.display())))?;
        crate::fs::sync_parent_dir(&out)
            .map_err(|e| CliError::refused(format!("cannot write {}: {e}", out.display())))
    }
}

/// Runs a `tresor envelope` command.
pub async fn run_envelope(command: EnvelopeCommand, conn: &Connection) -> Result<(), CliError> {
    match command {
        EnvelopeCommand::Seal {
            key_id,
            context: pairs,
            chunk_size,
            input,
            out,
        } => {
            let chunk_size = ChunkSize::new(chunk_size).map_err(|_| {
                CliError::usage("--chunk-size is a power of two from 1024 to 16777216")
            })?;
            let reader = open_input(input.as_deref()).await?;
            let mut output = Output::create(out.as_deref())?;
            conn.client
                .seal_stream_chunked(
                    &key_id,
                    &context(&pairs),
                    chunk_size,
                    reader,
                    output.writer(),
                )
                .await
                .map_err(stream_error)?;
            output.finish().await
        }
        EnvelopeCommand::Open {
            key_ids,
            context: pairs,
            accept_legacy,
            input,
            out,
        } => {
            let client = if accept_legacy {
                conn.client.clone().accepting_legacy_streams()
            } else {
                conn.client.clone()
            };
            let reader = open_input(input.as_deref()).await?;
            let mut output = Output::create(out.as_deref())?;
            let keys: Vec<&str> = key_ids.iter().map(String::as_str).collect();
            // On failure `output` is dropped: a temporary file is removed.
            client
                .open_stream(&keys, &context(&pairs), reader, output.writer())
                .await
                .map_err(stream_error)?;
            output.finish().await
        }
    }
}
