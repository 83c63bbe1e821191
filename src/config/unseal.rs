//! Who may unseal, and what it takes: the `tresor serve` flags
//! ([`UnsealArgs`]) and their validated form
//! ([`UnsealPolicy`](crate::service::UnsealPolicy)).

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{ConfigError, ConfigFiles, config_error};
use crate::identity::Identity;
use crate::service::{UnsealPolicy, UnsealTokenVerifier};

/// Longest `--unseal-window`.
const MAX_UNSEAL_WINDOW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Flags of `tresor serve` about unsealing.
#[derive(Debug, Clone, clap::Args)]
pub struct UnsealArgs {
    /// After a seal, Unseal takes effect only once this many distinct
    /// unseal approvers have called it within --unseal-window (default 1:
    /// one call by any admin).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub unseal_quorum: u32,
    /// Identity that may approve an unseal (repeatable); it need not be an
    /// admin, and gets Unseal and GetStatus only. Without it, the admins
    /// are the approvers.
    #[arg(long = "unseal-approver", value_name = "IDENTITY")]
    pub unseal_approvers: Vec<String>,
    /// Approvals count for this long from the first one; then the round
    /// starts over. For example 15m.
    #[arg(long, default_value = "15m", value_name = "DURATION")]
    pub unseal_window: String,
    /// Verifier file of an out-of-band unseal token (from `tresor
    /// unseal-token generate`): every Unseal call must then carry the token.
    #[arg(long, value_name = "FILE")]
    pub unseal_token_file: Option<PathBuf>,
}

/// Validates the unseal flags, given the admins.
pub(super) fn unseal_policy(
    args: &UnsealArgs,
    admins: &BTreeSet<Identity>,
    files: &dyn ConfigFiles,
) -> Result<UnsealPolicy, ConfigError> {
    let approvers = if args.unseal_approvers.is_empty() {
        None
    } else {
        Some(
            args.unseal_approvers
                .iter()
                .map(|raw| {
                    Identity::parse(raw)
                        .map_err(|e| config_error("--unseal-approver", e.to_string()))
                })
                .collect::<Result<BTreeSet<_>, _>>()?,
        )
    };
    let eligible = approvers.as_ref().unwrap_or(admins).len();
    if args.unseal_quorum == 0 {
        return Err(config_error("--unseal-quorum", "must be at least 1"));
    }
    if usize::try_from(args.unseal_quorum).map_or(true, |quorum| quorum > eligible) {
        return Err(config_error(
            "--unseal-quorum",
            format!(
                "{} approvals can never be reached with {eligible} approvers: name at least that many with --unseal-approver (or --admin)",
                args.unseal_quorum
            ),
        ));
    }
    let window = humantime::parse_duration(&args.unseal_window).map_err(|e| {
        config_error(
            "--unseal-window",
            format!("{:?}: {e} (for example 15m)", args.unseal_window),
        )
    })?;
    if window < std::time::Duration::from_secs(1) || window > MAX_UNSEAL_WINDOW {
        return Err(config_error(
            "--unseal-window",
            "must be between 1s and 24h",
        ));
    }
    let token = args
        .unseal_token_file
        .as_deref()
        .map(|path| {
            let text = files.read_to_string(path).map_err(|e| {
                config_error(
                    "--unseal-token-file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            UnsealTokenVerifier::parse(&text).map_err(|e| {
                config_error("--unseal-token-file", format!("{}: {e}", path.display()))
            })
        })
        .transpose()?;
    Ok(UnsealPolicy {
        quorum: args.unseal_quorum,
        approvers,
        window,
        token,
    })
}
