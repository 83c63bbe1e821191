//! `tresor role ...`: who holds the control-plane roles (`admin`,
//! `security-officer`, `auditor`), kept in the keystore.

use clap::Subcommand;
use serde::Serialize;

use super::confirm::confirm;
use super::connection::Connection;
use super::failure::CliError;
use super::output::{self, OutputFormat};
use tresor_proto::v1 as proto;

/// `tresor role ...`
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Give a role to an identity, or to every identity under a SPIFFE
    /// path (`spiffe://TD/PATH/*`). Roles: admin (keys, grants, aliases,
    /// labels, roles), security-officer (seal, master and root key
    /// rotation, backups), auditor (read-only, audit verification). You
    /// cannot give yourself a role you do not hold: another admin must.
    ///
    /// Example: tresor role add security-officer 'spiffe://acme.test/ns/security/*'
    Add {
        /// admin, security-officer or auditor.
        role: String,
        /// An identity, or a pattern ending in /*.
        identity: String,
    },
    /// Take a role back (the exact identity or pattern it was given to).
    ///
    /// Example: tresor role remove auditor spiffe://acme.test/ns/audit/reader --yes
    Remove {
        /// admin, security-officer or auditor.
        role: String,
        /// The identity or pattern as listed.
        identity: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// List every role binding (any role holder may).
    ///
    /// Example: tresor role list --output json
    List,
}

/// A binding as printed.
#[derive(Debug, Serialize)]
struct BindingView {
    role: String,
    identity: String,
    created_at: String,
    created_by: String,
}

impl From<&proto::RoleBinding> for BindingView {
    fn from(binding: &proto::RoleBinding) -> Self {
        Self {
            role: binding.role.clone(),
            identity: binding.identity.clone(),
            created_at: output::timestamp(binding.created_at_unix),
            created_by: binding.created_by.clone(),
        }
    }
}

/// Runs a `tresor role` command; returns what to print.
pub async fn run_role(
    command: RoleCommand,
    conn: &Connection,
    format: OutputFormat,
) -> Result<String, CliError> {
    let client = &conn.client;
    Ok(match command {
        RoleCommand::Add { role, identity } => {
            let added = client
                .add_role_binding(&role, &identity)
                .await
                .map_err(CliError::from)?;
            match format {
                OutputFormat::Json => output::json(&BindingView::from(&added)),
                OutputFormat::Human => format!("{identity} now holds the role {role}\n"),
            }
        }
        RoleCommand::Remove {
            role,
            identity,
            yes,
        } => {
            confirm(&format!("Take the role {role} from {identity}"), yes)?;
            client
                .remove_role_binding(&role, &identity)
                .await
                .map_err(CliError::from)?;
            match format {
                OutputFormat::Json => output::json(
                    &serde_json::json!({ "removed": { "role": role, "identity": identity } }),
                ),
                OutputFormat::Human => format!("{identity} no longer holds the role {role}\n"),
            }
        }
        RoleCommand::List => {
            let bindings: Vec<BindingView> = client
                .list_role_bindings()
                .await
                .map_err(CliError::from)?
                .iter()
                .map(BindingView::from)
                .collect();
            match format {
                OutputFormat::Json => output::json(&serde_json::json!({ "bindings": bindings })),
                OutputFormat::Human if bindings.is_empty() => {
                    "no role bindings (only the server's --admin identities hold roles)\n"
                        .to_owned()
                }
                OutputFormat::Human => {
                    let mut rows = vec![
                        ["ROLE", "IDENTITY", "ADDED", "BY"]
                            .map(str::to_owned)
                            .to_vec(),
                    ];
                    rows.extend(bindings.iter().map(|b| {
                        vec![
                            b.role.clone(),
                            b.identity.clone(),
                            b.created_at.clone(),
                            b.created_by.clone(),
                        ]
                    }));
                    output::table(&rows)
                }
            }
        }
    })
}
