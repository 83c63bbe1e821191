//! `tresor alias ...`: stable names for keys, repointed without touching
//! the applications that use them.

use clap::Subcommand;
use serde::Serialize;

use super::confirm::confirm;
use super::connection::Connection;
use super::failure::CliError;
use super::output::{self, OutputFormat};
use tresor_proto::v1 as proto;

/// `tresor alias ...`
#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Point a new alias at a key.
    ///
    /// Example: tresor alias create alias/payments billing/payments-2026
    Create {
        /// alias/ followed by 1-128 characters of A-Za-z0-9._/-.
        alias: String,
        /// The key it points at.
        #[arg(value_name = "KEY")]
        key_id: String,
    },
    /// Point an alias at another key of the same purpose. Ciphertexts made
    /// through it stay bound to the old key (decrypt them with its id).
    ///
    /// Example: tresor alias update alias/payments billing/payments-2027
    Update {
        /// The alias.
        alias: String,
        /// The key it points at from now on.
        #[arg(value_name = "KEY")]
        key_id: String,
    },
    /// Delete an alias (its key is untouched).
    ///
    /// Example: tresor alias delete alias/payments --yes
    Delete {
        /// The alias.
        alias: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// List aliases (all pages): admins and auditors see all, others their
    /// keys'.
    ///
    /// Example: tresor alias list --prefix alias/payments
    List {
        /// Only aliases starting with this.
        #[arg(long, default_value = "", value_name = "P")]
        prefix: String,
    },
}

/// An alias as printed.
#[derive(Debug, Serialize)]
struct AliasView {
    alias: String,
    key_id: String,
    created_at: String,
    updated_at: String,
}

impl From<&proto::AliasInfo> for AliasView {
    fn from(alias: &proto::AliasInfo) -> Self {
        Self {
            alias: alias.alias.clone(),
            key_id: alias.key_id.clone(),
            created_at: output::timestamp(alias.created_at_unix),
            updated_at: output::timestamp(alias.updated_at_unix),
        }
    }
}

fn print_alias(format: OutputFormat, alias: &proto::AliasInfo, summary: String) -> String {
    match format {
        OutputFormat::Json => output::json(&AliasView::from(alias)),
        OutputFormat::Human => format!("{summary}\n"),
    }
}

/// Runs a `tresor alias` command; returns what to print.
pub async fn run_alias(
    command: AliasCommand,
    conn: &Connection,
    format: OutputFormat,
) -> Result<String, CliError> {
    let client = &conn.client;
    let refused = |key: &str| {
        let key = key.to_owned();
        move |e| CliError::about_key(e, &key, conn.identity.as_ref())
    };
    Ok(match command {
        AliasCommand::Create { alias, key_id } => {
            let created = client
                .create_alias(&alias, &key_id)
                .await
                .map_err(refused(&alias))?;
            print_alias(format, &created, format!("{alias} now points at {key_id}"))
        }
        AliasCommand::Update { alias, key_id } => {
            let updated = client
                .update_alias(&alias, &key_id)
                .await
                .map_err(refused(&alias))?;
            print_alias(format, &updated, format!("{alias} now points at {key_id}"))
        }
        AliasCommand::Delete { alias, yes } => {
            confirm(&format!("Delete {alias} (calls naming it will fail)"), yes)?;
            client.delete_alias(&alias).await.map_err(refused(&alias))?;
            match format {
                OutputFormat::Json => output::json(&serde_json::json!({ "deleted": alias })),
                OutputFormat::Human => format!("deleted {alias}\n"),
            }
        }
        AliasCommand::List { prefix } => {
            let aliases: Vec<AliasView> = client
                .list_aliases(&prefix)
                .await
                .map_err(CliError::from)?
                .iter()
                .map(AliasView::from)
                .collect();
            match format {
                OutputFormat::Json => output::json(&serde_json::json!({ "aliases": aliases })),
                OutputFormat::Human if aliases.is_empty() => "no aliases\n".to_owned(),
                OutputFormat::Human => {
                    let mut rows = vec![["ALIAS", "KEY ID", "UPDATED"].map(str::to_owned).to_vec()];
                    rows.extend(
                        aliases
                            .iter()
                            .map(|a| vec![a.alias.clone(), a.key_id.clone(), a.updated_at.clone()]),
                    );
                    output::table(&rows)
                }
            }
        }
    })
}
