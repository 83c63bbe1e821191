//! `tresor keystore compact`: rewrite the keystore's files so that nothing
//! it removed (destroyed key versions, deleted keys) stays in them.

use std::path::PathBuf;

use clap::Subcommand;

use super::failure::CliError;
use super::output::{self, OutputFormat};
use crate::config::StoreSpec;
use crate::store::{DbTls, KeyStore, PostgresKeyStore, SledKeyStore};

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
/// server stopped) or PostgreSQL. Exactly one must be given. The same
/// flags and rules as `tresor serve`'s.
#[derive(Debug, Clone, clap::Args)]
pub struct KeystoreLocation {
    /// The sled keystore directory (the server's --data-dir; server
    /// stopped).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The PostgreSQL keystore: postgres://... A URL with a password
    /// belongs in --store-file or TRESOR_STORE: every user of the host can
    /// read a command line.
    #[arg(long, value_name = "URL", env = crate::config::STORE_ENV, hide_env_values = true)]
    pub store: Option<String>,
    /// File holding the --store URL (password included).
    #[arg(long, value_name = "FILE")]
    pub store_file: Option<PathBuf>,
    /// CA certificate(s) (PEM) of PostgreSQL's TLS certificate: with it the
    /// connection uses TLS; without it the database must be on this
    /// machine.
    #[arg(long, value_name = "FILE")]
    pub store_ca: Option<PathBuf>,
}

/// A [`KeystoreLocation`] with exactly one keystore given.
pub(super) enum Location {
    /// A sled keystore directory.
    Sled(PathBuf),
    /// A PostgreSQL connection URL, and how to secure the connection.
    Postgres {
        /// The connection URL (may hold a password: never printed).
        url: String,
        /// TLS, when a CA was given.
        tls: DbTls,
    },
}

impl KeystoreLocation {
    /// The location given, or a usage error when neither or both are, or
    /// the PostgreSQL connection would be unsafe.
    pub(super) fn location(self) -> Result<Location, CliError> {
        let spec = crate::config::offline_store_spec(
            self.data_dir,
            self.store,
            self.store_file.as_deref(),
            self.store_ca.as_deref(),
        )
        .map_err(|e| CliError::usage(e.to_string()))?;
        Ok(match spec {
            StoreSpec::Sled(dir) => Location::Sled(dir),
            StoreSpec::Postgres { url, ca_pem, .. } => Location::Postgres {
                url,
                tls: match ca_pem {
                    Some(pem) => {
                        DbTls::from_ca_pem(&pem).map_err(|e| CliError::usage(e.to_string()))?
                    }
                    None => DbTls::Off,
                },
            },
        })
    }

    /// Opens the PostgreSQL keystore at `url` as `replica`.
    pub(super) async fn connect(
        url: &str,
        tls: DbTls,
        replica: &str,
    ) -> Result<PostgresKeyStore, CliError> {
        PostgresKeyStore::connect_with_tls(url, replica, tls)
            .await
            .map_err(|e| CliError::refused(e.to_string()))
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
        Location::Postgres { url, tls } => super::runtime()?.block_on(async {
            let store = KeystoreLocation::connect(&url, tls, "compact").await?;
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
