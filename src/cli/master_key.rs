//! `tresor master-key ...`: create a key file, and rotate the master key of
//! a running server (through the Admin API) or of a stopped keystore
//! (`--data-dir`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use super::connection::ConnectionArgs;
use super::failure::CliError;
use super::output::{self, OutputFormat};
use crate::master_key::{FileMasterKey, MasterKeySpec};
use crate::service::{Service, ServiceOptions};
use crate::store::{KeyStore, SledKeyStore};

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
    /// Re-wrap the root key under another master key. Without --data-dir it
    /// asks the running server (security officer); with --data-dir it works on a stopped
    /// keystore. Crash-safe: the keystore opens with the old or the new key.
    ///
    /// Example: tresor master-key rotate --data-dir /var/lib/tresor --from-master-key-file /etc/tresor/master.key --to aws-kms:alias/tresor
    Rotate {
        /// Stopped keystore to work on (offline mode).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Offline: the current master key file.
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with = "from",
            requires = "data_dir"
        )]
        from_master_key_file: Option<PathBuf>,
        /// Offline: the current master key, aws-kms:KEY or file:PATH.
        #[arg(long, value_name = "SPEC", requires = "data_dir")]
        from: Option<String>,
        /// The new master key, aws-kms:KEY or file:PATH (online: omit both
        /// --to options to re-wrap under the current key).
        #[arg(long, value_name = "SPEC", conflicts_with = "to_master_key_file")]
        to: Option<String>,
        /// The new master key file.
        #[arg(long, value_name = "FILE")]
        to_master_key_file: Option<PathBuf>,
        /// Offline only: KMS endpoint for aws-kms keys (AWS_ENDPOINT_URL
        /// works too). Online, the server's own --aws-endpoint applies.
        #[arg(long, value_name = "URL")]
        aws_endpoint: Option<String>,
    },
}

fn spec(
    flag: &str,
    raw: Option<String>,
    file: Option<PathBuf>,
    endpoint: &Option<String>,
) -> Result<Option<MasterKeySpec>, CliError> {
    match (raw, file) {
        (Some(raw), None) => MasterKeySpec::parse(&raw, endpoint.clone())
            .map(Some)
            .map_err(|e| CliError::usage(format!("{flag}: {e}"))),
        (None, Some(path)) => Ok(Some(MasterKeySpec::File(path))),
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(CliError::usage(format!(
            "{flag}: give a spec or a file, not both"
        ))),
    }
}

/// Runs a `tresor master-key` command; returns what to print.
pub fn run(
    command: MasterKeyCommand,
    connection: &ConnectionArgs,
    format: OutputFormat,
) -> Result<String, CliError> {
    match command {
        MasterKeyCommand::Generate { out } => {
            FileMasterKey::generate(&out).map_err(|e| CliError::refused(e.to_string()))?;
            Ok(match format {
                OutputFormat::Json => {
                    output::json(&serde_json::json!({ "file": out.display().to_string() }))
                }
                OutputFormat::Human => {
                    format!("wrote a new master key to {} (mode 0600)\n", out.display())
                }
            })
        }
        MasterKeyCommand::Rotate {
            data_dir,
            from_master_key_file,
            from,
            to,
            to_master_key_file,
            aws_endpoint,
        } => {
            let to = spec("--to", to, to_master_key_file, &aws_endpoint)?;
            let runtime = super::runtime()?;
            let described = match data_dir {
                Some(dir) => {
                    let from = spec("--from", from, from_master_key_file, &aws_endpoint)?
                        .ok_or_else(|| {
                            CliError::usage(
                                "offline rotation needs the current master key: --from-master-key-file FILE or --from SPEC",
                            )
                        })?;
                    let to = to.ok_or_else(|| {
                        CliError::usage(
                            "offline rotation needs --to SPEC or --to-master-key-file FILE",
                        )
                    })?;
                    runtime.block_on(rotate_offline(dir, from, to))?
                }
                None => runtime.block_on(async {
                    if aws_endpoint.is_some() {
                        return Err(CliError::usage(
                            "--aws-endpoint applies offline only: a running server reaches KMS at its own --aws-endpoint, and rotates only to its --allowed-master-key entries",
                        ));
                    }
                    let conn = connection.connect().await?;
                    let new = to.as_ref().map(ToString::to_string).unwrap_or_default();
                    Ok::<_, CliError>(
                        conn.client
                            .rotate_master_key(&new, "")
                            .await?
                            .master_key,
                    )
                })?,
            };
            Ok(match format {
                OutputFormat::Json => output::json(&serde_json::json!({ "master_key": described })),
                OutputFormat::Human => format!(
                    "the root key is now wrapped by {described}; start the server with that master key\n"
                ),
            })
        }
    }
}

async fn rotate_offline(
    dir: PathBuf,
    from: MasterKeySpec,
    to: MasterKeySpec,
) -> Result<String, CliError> {
    let refuse = |e: &dyn std::fmt::Display| CliError::refused(e.to_string());
    let store = Arc::new(SledKeyStore::open(&dir).map_err(|e| refuse(&e))?);
    if store.root().await.map_err(|e| refuse(&e))?.is_none() {
        return Err(CliError::usage(format!(
            "{} holds no keystore",
            dir.display()
        )));
    }
    let from = from.open().await.map_err(|e| refuse(&e))?;
    let to = to.open().await.map_err(|e| refuse(&e))?;
    let options = ServiceOptions {
        max_plaintext_bytes: 1,
        ..ServiceOptions::new(BTreeSet::new())
    };
    let service = Service::open(store, from, options)
        .await
        .map_err(|e| refuse(&e))?;
    service
        .open_root_for_maintenance()
        .await
        .map_err(|e| refuse(&e))?;
    service.rewrap_root(to).await.map_err(|e| refuse(&e))
}
