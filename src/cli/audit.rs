//! `tresor audit verify`: checks an audit log offline with the keystore's
//! audit key (unwrapped with the master key, exactly as `serve` takes it)
//! and the latest checkpoint the keystore remembers for that log: a sled
//! data directory's own log, or one replica's log in a PostgreSQL keystore.

use std::path::PathBuf;

use clap::Subcommand;

use super::backup::MasterKeyArgs;
use super::connection::ConnectionArgs;
use super::failure::CliError;
use super::keystore::{KeystoreLocation, Location};
use super::output::{self, OutputFormat};
use crate::audit::{Checkpoint, Expectations, Verified, VerifyError, files, verify_files};
use crate::service::{LOCAL_LOG, default_audit_file, offline_audit_key, stored_checkpoint};
use crate::store::{KeyStore, SledKeyStore};

/// `tresor audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check that an audit log is intact: every record authentic, none
    /// removed, reordered or inserted, and the log not cut short before the
    /// keystore's latest checkpoint. Run it with the server stopped (the
    /// embedded keystore allows one process), or on a copy of the data dir;
    /// with PostgreSQL (--store), once per replica log. Gaps an operator
    /// accepted with `serve --accept-audit-gap` are listed. Exit 0 when
    /// intact, 1 when not.
    ///
    /// Example: tresor audit verify --data-dir /var/lib/tresor --master-key-file /etc/tresor/master.key
    Verify(Box<VerifyArgs>),
    /// Ask the running server to check its own audit log up to a
    /// checkpoint it writes now (auditor). Exit 0 when intact, 1 when not.
    ///
    /// Example: tresor audit check
    Check,
}

/// What `tresor audit verify` checks, and with which keys.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The keystore the server ran with.
    #[command(flatten)]
    pub keystore: KeystoreLocation,
    /// With --store: the replica whose log this is (its --replica-name).
    #[arg(long, value_name = "NAME", requires = "store")]
    pub replica_name: Option<String>,
    /// The current audit file if the server ran with --audit-file
    /// (default: DIR/audit/audit.jsonl; required with --store).
    #[arg(long, value_name = "FILE")]
    pub audit_file: Option<PathBuf>,
    /// The master key.
    #[command(flatten)]
    pub master: MasterKeyArgs,
    /// Check only these files (any order); default: every file of the
    /// log, which must then start at its first record.
    pub files: Vec<PathBuf>,
}

/// Runs a `tresor audit` command; returns what to print.
pub fn run(
    command: AuditCommand,
    connection: &ConnectionArgs,
    format: OutputFormat,
) -> Result<String, CliError> {
    let runtime = super::runtime()?;
    let (keystore, replica_name, audit_file, master, given) = match command {
        AuditCommand::Check => return runtime.block_on(check(connection, format)),
        AuditCommand::Verify(args) => {
            let VerifyArgs {
                keystore,
                replica_name,
                audit_file,
                master,
                files,
            } = *args;
            (keystore, replica_name, audit_file, master, files)
        }
    };
    let location = keystore.location()?;
    let (log_name, current) = match (&location, audit_file) {
        (Location::Sled(dir), file) => (
            LOCAL_LOG.to_owned(),
            file.unwrap_or_else(|| default_audit_file(dir)),
        ),
        (Location::Postgres { .. }, Some(file)) => {
            let Some(replica) = replica_name else {
                return Err(CliError::usage(
                    "with --store, give --replica-name NAME: the replica whose log --audit-file is",
                ));
            };
            (replica, file)
        }
        (Location::Postgres { .. }, None) => {
            return Err(CliError::usage(
                "with --store, give the replica's --audit-file FILE and --replica-name NAME",
            ));
        }
    };
    runtime.block_on(async {
        let refuse = |e: &dyn std::fmt::Display| CliError::refused(e.to_string());
        let master = master.spec()?.open().await.map_err(|e| refuse(&e))?;
        let store = open_keystore(&location).await?;
        let key = offline_audit_key(store.as_ref(), master.as_ref())
            .await
            .map_err(|e| refuse(&e))?;
        let checkpoint = stored_checkpoint(store.as_ref(), &log_name)
            .await
            .map_err(|e| refuse(&e))?;
        drop(store);
        let whole_log = given.is_empty();
        let paths = if whole_log {
            files::log_files(&current).map_err(|e| refuse(&e))?
        } else {
            in_chain_order(given)
        };
        if paths.is_empty() {
            return Err(CliError::refused(format!(
                "no audit files found at {}",
                current.display()
            )));
        }
        let ends_with_current = paths.last().is_some_and(|last| same_file(last, &current));
        let expect = Expectations {
            from_genesis: whole_log,
            checkpoint: checkpoint.filter(|_| ends_with_current),
            stop_at_checkpoint: false,
        };
        match verify_files(&key, &paths, expect) {
            Ok(verified) => Ok(report(&verified, expect.checkpoint, format)),
            Err(VerifyError::Tampered(tampering) | VerifyError::CutShort { tampering, .. }) => Err(
                CliError::refused(format!("audit log NOT intact: {tampering}")),
            ),
            Err(other) => Err(refuse(&other)),
        }
    })
}

/// The keystore the log's checkpoint and audit key are in.
async fn open_keystore(location: &Location) -> Result<Box<dyn KeyStore>, CliError> {
    match location {
        Location::Sled(dir) => {
            if !dir.is_dir() {
                return Err(CliError::usage(format!(
                    "--data-dir {}: no such directory",
                    dir.display()
                )));
            }
            let store = SledKeyStore::open(dir).map_err(|e| {
                CliError::refused(format!(
                    "cannot open the keystore in {}: {e} (is the server still running? stop it, or verify a copy of the data dir)",
                    dir.display()
                ))
            })?;
            Ok(Box::new(store))
        }
        Location::Postgres { url, tls } => Ok(Box::new(
            KeystoreLocation::connect(url, tls.clone(), "audit-verify").await?,
        )),
    }
}

async fn check(connection: &ConnectionArgs, format: OutputFormat) -> Result<String, CliError> {
    let conn = connection.connect().await?;
    let report = conn.client.verify_audit_log().await?;
    if !report.intact {
        return Err(CliError::refused(format!(
            "audit log NOT intact: {}",
            report.problem
        )));
    }
    Ok(match format {
        OutputFormat::Json => output::json(&serde_json::json!({
            "intact": true,
            "files": report.files,
            "records": report.records,
            "first_record": report.first_record,
            "last_record": report.last_record,
        })),
        OutputFormat::Human => format!(
            "audit log intact: {} records in {} file(s), records {}–{} (up to the checkpoint just written)\n",
            report.records, report.files, report.first_record, report.last_record
        ),
    })
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Sorts files by the sequence number of their first record (a shell glob
/// would put the current file before the rotated ones).
fn in_chain_order(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.sort_by_cached_key(|path| files::first_seq(path).unwrap_or(u64::MAX));
    paths
}

fn report(verified: &Verified, checkpoint: Option<Checkpoint>, format: OutputFormat) -> String {
    match format {
        OutputFormat::Json => output::json(&serde_json::json!({
            "intact": true,
            "files": verified.files,
            "records": verified.records,
            "first_record": verified.first_seq,
            "last_record": verified.last_seq,
            "checkpoint": checkpoint.map(|c| c.seq),
            "checkpoint_matched": verified.checkpoint_matched,
            "accepted_gaps": verified.gaps.iter().map(|gap| serde_json::json!({
                "record": gap.record,
                "first_missing": gap.first_missing,
                "time": gap.time,
                "detail": gap.detail,
            })).collect::<Vec<_>>(),
        })),
        OutputFormat::Human => {
            let checkpoint = match checkpoint {
                Some(c) if verified.checkpoint_matched => {
                    format!("; the keystore's checkpoint at record {} matches", c.seq)
                }
                Some(c) => format!(
                    "; the keystore's checkpoint (record {}) is older than these files",
                    c.seq
                ),
                None => "; no checkpoint to compare (none recorded, or the current file not given)"
                    .into(),
            };
            let mut text = format!(
                "audit log intact: {} records in {} file(s), records {}–{}{checkpoint}\n",
                verified.records, verified.files, verified.first_seq, verified.last_seq
            );
            for gap in &verified.gaps {
                text.push_str(&format!("ACCEPTED GAP: {gap}\n"));
            }
            text
        }
    }
}
