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
        /// The keystore to compact.
        #[command(flatten)]
        keystore: KeystoreLocation,
    },
}

/// Which keystore an offline command works on: a sled directory (with the
/// server stopped) or a PostgreSQL URL. Exactly one must be given.
#[derive(Debug, Clone, clap::Args)]
pub struct KeystoreLocation {
    /// The sled keystore directory (the server's --data-dir; server
    /// stopped).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "store",
        required_unless_present = "store"
    )]
    pub data_dir: Option<PathBuf>,
    /// The PostgreSQL keystore: postgres://...
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

/// A [`KeystoreLocation`] with exactly one of its flags given.
pub(super) enum Location {
    /// A sled keystore directory.
    Sled(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl KeystoreLocation {
    /// The location given, or a usage error when neither or both are.
    pub(super) fn location(self) -> Result<Location, CliError> {
        match (self.data_dir, self.store) {
            (Some(dir), None) => Ok(Location::Sled(dir)),
            (None, Some(url)) => Ok(Location::Postgres(url)),
            _ => Err(CliError::usage(
                "give --data-dir DIR or --store postgres://...",
            )),
        }
    }
}

/// Runs a `tresor keystore` command; returns what to print.
pub fn run(command: KeystoreCommand, format: OutputFormat) -> Result<String, CliError> {
    let refuse = |e: &dyn std::fmt::Display| CliError::refused(e.to_string());
    let KeystoreCommand::Compact { keystore } = command;
    match keystore.location()? {
        Location::Sled(dir) => {
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
        Location::Postgres(url) => super::runtime()?.block_on(async {
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
    }
}
