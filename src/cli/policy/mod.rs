//! Policy as code: `tresor plan`, `tresor apply` and `tresor export` read
//! and write a YAML file that declares keys, grants, aliases and role
//! bindings (docs/POLICY.md).
//!
//! The CLI only computes a diff: [`plan`] compares the file with what the
//! server reports, and [`apply`] makes each change through the SDK with
//! the RPC any admin would use, so every change is authorized (and
//! audited) by the server alone.
//!
//! Layout: [`file`] the file's types, [`values`] its values' parsing; [`validate`]
//! reading a file and the checks across entries; [`state`] the server's
//! state in the file's types; [`plan`] and [`grants`] the diff; [`apply`]
//! making it; [`export`] the state as a file; [`render`] what is printed;
//! [`roles`] the role bindings' calls.

mod apply;
mod export;
mod file;
mod grants;
mod plan;
mod render;
mod roles;
mod state;
mod validate;
mod values;

use std::path::PathBuf;

use super::confirm::confirm;
use super::connection::ConnectionArgs;
use super::failure::{CliError, EXIT_USAGE};
use super::output::OutputFormat;

/// `tresor plan`'s exit code when the plan has changes to apply (0: none,
/// 1: an error), as `terraform plan -detailed-exitcode`.
pub const EXIT_PLAN_CHANGES: u8 = 2;

/// `tresor plan` (and what `tresor apply` shares).
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// The policy file (YAML; docs/POLICY.md).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: PathBuf,
    /// Also take away what the file does not declare, for the keys it
    /// declares: revoke grants, delete aliases, remove role bindings (with
    /// a roles: section), and disable keys it says are disabled. Keys the
    /// file does not declare are never touched.
    #[arg(long)]
    pub prune: bool,
}

/// `tresor apply`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApplyArgs {
    /// The file and --prune.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// With --prune: make destructive changes without asking.
    #[arg(long, short)]
    pub yes: bool,
}

/// `tresor export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Where to write the file ('-': stdout); an existing file is replaced.
    #[arg(long = "out", short = 'o', value_name = "FILE")]
    pub out: String,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Reads the file, then the server, and computes the plan; nothing is
/// changed. Returns the connection for apply.
async fn prepare(
    args: &PlanArgs,
    connection: &ConnectionArgs,
) -> Result<(super::connection::Connection, plan::Plan), CliError> {
    let policy = validate::load(&args.file)?;
    let conn = connection.connect().await?;
    let state = state::read(&conn.client, policy.roles.is_some()).await?;
    let plan = plan::plan(&policy, &state, args.prune, now_unix())?;
    Ok((conn, plan))
}

/// Runs `tresor plan`: prints the plan; exit 0 without changes to apply,
/// 2 with some, 1 on an error (never 2: a usage error reads as 1 here).
pub async fn run_plan(
    args: PlanArgs,
    connection: &ConnectionArgs,
    format: OutputFormat,
) -> Result<(), CliError> {
    let not_two = |err: CliError| match err.exit {
        EXIT_USAGE => CliError::refused(err.message),
        _ => err,
    };
    let (_, plan) = prepare(&args, connection).await.map_err(not_two)?;
    let name = args.file.display().to_string();
    let text = match format {
        OutputFormat::Json => render::json(&plan, &name, None),
        OutputFormat::Human => render::plan_text(&plan, &name),
    };
    super::print(&text).map_err(not_two)?;
    if plan.counts().0 > 0 {
        return Err(CliError::silent(EXIT_PLAN_CHANGES));
    }
    Ok(())
}

/// Runs `tresor apply`: makes the plan's changes, prints what became of
/// each; exit 1 if one failed.
pub async fn run_apply(
    args: ApplyArgs,
    connection: &ConnectionArgs,
    format: OutputFormat,
) -> Result<(), CliError> {
    let (conn, plan) = prepare(&args.plan, connection).await?;
    let destructive = plan
        .changes
        .iter()
        .filter(|c| c.destructive && plan.applies(c))
        .count();
    if destructive > 0 {
        confirm(
            &format!(
                "Make {destructive} destructive changes (revocations, alias deletions, disabled keys, removed role bindings: see `tresor plan --prune`)"
            ),
            args.yes,
        )?;
    }
    let outcomes = apply::apply(&conn, &plan).await;
    let name = args.plan.file.display().to_string();
    let text = match format {
        OutputFormat::Json => render::json(&plan, &name, Some(&outcomes)),
        OutputFormat::Human => render::apply_text(&plan, &name, &outcomes),
    };
    super::print(&text)?;
    let count = |wanted| apply::count(&outcomes, wanted);
    if count(apply::Outcome::Failed) > 0 {
        return Err(CliError::refused(format!(
            "apply stopped at a failed change: {} applied, 1 failed, {} not attempted; fix the cause and run `tresor apply` again (it makes only what is still missing)",
            count(apply::Outcome::Applied),
            count(apply::Outcome::NotAttempted)
        )));
    }
    Ok(())
}

/// Runs `tresor export`: writes the server's state as a policy file.
pub async fn run_export(
    args: ExportArgs,
    connection: &ConnectionArgs,
    format: OutputFormat,
) -> Result<(), CliError> {
    let conn = connection.connect().await?;
    let state = state::read(&conn.client, true).await?;
    let (policy, skipped) = export::export(&state);
    let yaml = export::to_yaml(&policy)?;
    // What export writes, plan must read: refuse rather than write a file
    // that `tresor plan` would reject (an identity of an older release).
    validate::parse(&yaml, "the exported file")?;
    let summary = format!(
        "wrote {} keys and {} aliases to {}{}\n",
        policy.keys.len(),
        policy.aliases.len(),
        if args.out == "-" { "stdout" } else { &args.out },
        if skipped.is_empty() {
            String::new()
        } else {
            format!(
                "; left out {} keys pending deletion: {}",
                skipped.len(),
                skipped.join(", ")
            )
        }
    );
    if args.out == "-" {
        super::print(&yaml)?;
        eprint!("{summary}");
        return Ok(());
    }
    crate::fs::write_file(
        std::path::Path::new(&args.out),
        yaml.as_bytes(),
        true,
        0o644,
    )
    .map_err(|e| CliError::refused(format!("cannot write {}: {e}", args.out)))?;
    super::print(&match format {
        OutputFormat::Json => super::output::json(&serde_json::json!({
            "file": args.out,
            "keys": policy.keys.len(),
            "aliases": policy.aliases.len(),
            "left_out_pending_deletion": skipped,
        })),
        OutputFormat::Human => summary,
    })
}
