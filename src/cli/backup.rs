//! `tresor backup create|verify|restore`: take a backup from a running
//! server, check one offline, restore one into an empty keystore. Offline
//! commands take the master key exactly as `serve` does.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use super::connection::ConnectionArgs;
use super::failure::CliError;
use super::keystore::{KeystoreLocation, Location};
use super::output::{self, OutputFormat};
use crate::master_key::MasterKeySpec;
use crate::service::{BackupSummary, open_backup, plan_restore};
use crate::store::{KeyStore, SledKeyStore};

/// The master key, as `serve` takes it.
#[derive(Debug, Clone, clap::Args)]
pub struct MasterKeyArgs {
    /// Local master key file.
    #[arg(long, value_name = "FILE", conflicts_with = "master_key")]
    pub master_key_file: Option<PathBuf>,
    /// aws-kms:KEY_ID_OR_ARN_OR_ALIAS (or file:PATH).
    #[arg(long, value_name = "SPEC")]
    pub master_key: Option<String>,
    /// KMS-compatible endpoint for aws-kms master keys.
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub aws_endpoint: Option<String>,
}

impl MasterKeyArgs {
    pub(super) fn spec(&self) -> Result<MasterKeySpec, CliError> {
        match (&self.master_key_file, &self.master_key) {
            (Some(path), None) => Ok(MasterKeySpec::File(path.clone())),
            (None, Some(spec)) => MasterKeySpec::parse(spec, self.aws_endpoint.clone())
                .map_err(|e| CliError::usage(format!("--master-key: {e}"))),
            _ => Err(CliError::usage(
                "give the master key: --master-key-file FILE or --master-key aws-kms:KEY",
            )),
        }
    }
}

/// `tresor backup ...`
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Take a consistent backup from the running server (security officer) into FILE
    /// (mode 0600; must not exist).
    ///
    /// Example: tresor backup create --out /backups/tresor-2026-11-26.tbk
    Create {
        /// Where to write the backup.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Check a backup offline: its integrity tag, and that every key
    /// version in it unwraps with the master key.
    ///
    /// Example: tresor backup verify /backups/tresor-2026-11-26.tbk --master-key-file /etc/tresor/master.key
    Verify {
        /// The backup file.
        file: PathBuf,
        /// The master key.
        #[command(flatten)]
        master: MasterKeyArgs,
    },
    /// Restore a backup into an empty keystore (server stopped). Over a
    /// keystore that is not empty (--force), it first lists what the
    /// restore brings back (deleted keys, destroyed versions, revoked
    /// grants...) and asks for confirmation (--yes without a terminal).
    /// The audit logs' checkpoints in the keystore are kept.
    ///
    /// Example: tresor backup restore /backups/tresor-2026-11-26.tbk --data-dir /var/lib/tresor --master-key-file /etc/tresor/master.key
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The keystore to restore into.
        #[command(flatten)]
        keystore: KeystoreLocation,
        /// Replace a keystore that is not empty.
        #[arg(long)]
        force: bool,
        /// Do not ask before bringing back what was deleted, destroyed or
        /// revoked since the backup was made.
        #[arg(long)]
        yes: bool,
        /// The master key.
        #[command(flatten)]
        master: MasterKeyArgs,
    },
}

fn summary_json(summary: &BackupSummary) -> serde_json::Value {
    serde_json::json!({
        "keystore_id": summary.keystore_id,
        "created_at": output::timestamp(summary.created_at),
        "keys": summary.keys,
        "versions": summary.versions,
    })
}

fn summary_text(verb: &str, summary: &BackupSummary, format: OutputFormat) -> String {
    match format {
        OutputFormat::Json => output::json(&summary_json(summary)),
        OutputFormat::Human => format!(
            "{verb}: keystore {}, made {}, {} keys, {} key versions (every one unwrapped)\n",
            summary.keystore_id,
            output::timestamp(summary.created_at),
            summary.keys,
            summary.versions
        ),
    }
}

fn read(file: &PathBuf) -> Result<Vec<u8>, CliError> {
    std::fs::read(file).map_err(|e| CliError::usage(format!("{}: {e}", file.display())))
}

/// Runs a `tresor backup` command; returns what to print.
pub fn run(
    command: BackupCommand,
    connection: &ConnectionArgs,
    format: OutputFormat,
) -> Result<String, CliError> {
    let runtime = super::runtime()?;
    let refuse = |e: &dyn std::fmt::Display| CliError::refused(e.to_string());
    match command {
        BackupCommand::Create { out } => runtime.block_on(async {
            let conn = connection.connect().await?;
            let bytes = conn.client.create_backup().await?;
            crate::fs::write_private_file(&out, &bytes, false)
                .map_err(|e| CliError::refused(format!("{}: {e}", out.display())))?;
            Ok(match format {
                OutputFormat::Json => output::json(&serde_json::json!({
                    "file": out.display().to_string(),
                    "bytes": bytes.len(),
                })),
                OutputFormat::Human => {
                    format!(
                        "wrote a backup of {} bytes to {}\n",
                        bytes.len(),
                        out.display()
                    )
                }
            })
        }),
        BackupCommand::Verify { file, master } => runtime.block_on(async {
            let bytes = read(&file)?;
            let master = master.spec()?.open().await.map_err(|e| refuse(&e))?;
            let (_, summary) = open_backup(&bytes, master.as_ref())
                .await
                .map_err(|e| refuse(&e))?;
            Ok(summary_text("backup is intact", &summary, format))
        }),
        BackupCommand::Restore {
            file,
            keystore,
            force,
            yes,
            master,
        } => runtime.block_on(async {
            let bytes = read(&file)?;
            let master = master.spec()?.open().await.map_err(|e| refuse(&e))?;
            let target: Arc<dyn KeyStore> = match keystore.location()? {
                Location::Sled(dir) => Arc::new(SledKeyStore::open(&dir).map_err(|e| refuse(&e))?),
                Location::Postgres { url, tls } => {
                    Arc::new(KeystoreLocation::connect(&url, tls, "restore").await?)
                }
            };
            let plan = plan_restore(&bytes, master.as_ref(), target.as_ref())
                .await
                .map_err(|e| refuse(&e))?;
            let comes_back = plan.comes_back.clone();
            if force && !comes_back.is_empty() {
                eprintln!("this restore brings back what was removed since the backup was made:");
                for line in &comes_back {
                    eprintln!("  {line}");
                }
                super::confirm::confirm("restore it anyway", yes)?;
            }
            let summary = plan
                .apply(target.as_ref(), force)
                .await
                .map_err(|e| refuse(&e))?;
            Ok(match format {
                OutputFormat::Json => {
                    let mut json = summary_json(&summary);
                    json["brought_back"] = serde_json::json!(comes_back);
                    output::json(&json)
                }
                OutputFormat::Human => summary_text("restored", &summary, format),
            })
        }),
    }
}
