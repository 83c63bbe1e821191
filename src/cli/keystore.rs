//! `tresor keystore compact`: rewrite the keystore's files so that nothing
//! it removed (destroyed key versions, deleted keys) stays in them.

use std::path::PathBuf;

use clap::Subcommand;

use super::failure::CliError;
use super::output::{self, OutputFormat};
use crate::store::{KeyStore, PostgresKeyStore, SledKeyStore};

/// `tresor keystore ...`
#[derive(Debug, Subcommand)]
pub enum KeystoreCommand {
    /// Erase removed key material from the keystore's files.
    ///
    /// sled (--data-dir) keeps removed values in its log until it rewrites
    /// the segment, so a destroyed version's wrapped DEK may stay on disk:
    /// stop the server, then compact. PostgreSQL (--store) is compacted
    /// online with VACUUM FULL, which locks the key tables while it runs.
    ///
    /// Example: tresor keystore compact --data-dir /var/lib/tresor
    Compact {
        /// The sled keystore directory (server stopped).
        #[arg(
            long,
            value_name = "DIR",
            conflicts_with = "store",
            required_unless_present = "store"
        )]
        data_dir: Option<PathBuf>,
        /// The PostgreSQL keystore: postgres://...
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
}

/// Runs a `tresor keystore` command; returns what to print.
pub fn run(command: KeystoreCommand, format: OutputFormat) -> Result<String, CliError> {
    let refuse = |e: &dyn std::fmt::Display| CliError::refused(e.to_string());
    match command {
        KeystoreCommand::Compact {
            data_dir: Some(dir),
            store: None,
        } => {
            if !dir.is_dir() {
                return Err(CliError::usage(format!(
                    "{} is not a directory (give the server's --data-dir)",
                    dir.display()
                )));
            }
            let report = SledKeyStore::compact_offline(&dir).map_err(|e| refuse(&e))?;
            Ok(match format {
                OutputFormat::Json => output::json(&serde_json::json!({
                    "data_dir": dir.display().to_string(),
                    "entries": report.entries,
                    "bytes_before": report.bytes_before,
                    "bytes_after": report.bytes_after,
                })),
                OutputFormat::Human => format!(
                    "compacted {}: {} entries rewritten, {} bytes before, {} after\n",
                    dir.display(),
                    report.entries,
                    report.bytes_before,
                    report.bytes_after
                ),
            })
        }
        KeystoreCommand::Compact {
            data_dir: None,
            store: Some(url),
        } => super::runtime()?.block_on(async {
            let store = PostgresKeyStore::connect(&url, "compact")
                .await
                .map_err(|e| refuse(&e))?;
            store.compact().await.map_err(|e| refuse(&e))?;
            Ok(match format {
                OutputFormat::Json => output::json(&serde_json::json!({ "store": "postgres" })),
                OutputFormat::Human => {
                    "compacted the PostgreSQL keystore (VACUUM FULL of its key tables)\n".to_owned()
                }
            })
        }),
        KeystoreCommand::Compact { .. } => Err(CliError::usage(
            "give --data-dir DIR or --store postgres://...",
        )),
    }
}
