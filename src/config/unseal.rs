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
    // Quorum 1 without approvers is the default: with no --admin either,
    // nobody can unseal, as nobody can use the control plane (warned above).
    if args.unseal_quorum > 1
        && usize::try_from(args.unseal_quorum).map_or(true, |quorum| quorum > eligible)
    {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostFiles;

    fn args(quorum: u32, approvers: &[&str], window: &str) -> UnsealArgs {
        UnsealArgs {
            unseal_quorum: quorum,
            unseal_approvers: approvers.iter().map(|a| (*a).to_owned()).collect(),
            unseal_window: window.to_owned(),
            unseal_token_file: None,
        }
    }

    fn admins(n: usize) -> BTreeSet<Identity> {
        (0..n)
            .map(|i| Identity::parse(&format!("spiffe://x/admin-{i}")).expect("id"))
            .collect()
    }

    #[test]
    fn the_default_is_one_call_by_an_admin() {
        let policy = unseal_policy(&args(1, &[], "15m"), &admins(1), &HostFiles).expect("policy");
        assert_eq!(policy, UnsealPolicy::default());
    }

    #[test]
    fn a_quorum_must_be_reachable_and_the_window_sensible() {
        let two = ["spiffe://x/alice", "spiffe://x/bob"];
        let policy = unseal_policy(&args(2, &two, "90s"), &admins(1), &HostFiles).expect("policy");
        assert_eq!(policy.quorum, 2);
        assert_eq!(policy.approvers.map(|a| a.len()), Some(2));
        assert_eq!(policy.window, std::time::Duration::from_secs(90));
        // Without --unseal-approver the admins approve: two admins, quorum 2.
        assert!(unseal_policy(&args(2, &[], "15m"), &admins(2), &HostFiles).is_ok());
        for (bad, flag) in [
            (args(0, &[], "15m"), "--unseal-quorum"),
            (args(2, &[], "15m"), "--unseal-quorum"),
            (args(3, &two, "15m"), "--unseal-quorum"),
            (args(1, &["not an identity\n"], "15m"), "--unseal-approver"),
            (args(1, &[], "0s"), "--unseal-window"),
            (args(1, &[], "2d"), "--unseal-window"),
            (args(1, &[], "soon"), "--unseal-window"),
        ] {
            let error = unseal_policy(&bad, &admins(1), &HostFiles).expect_err("refused");
            assert_eq!(error.flag, flag, "{bad:?}");
        }
    }

    #[test]
    fn the_token_file_holds_a_verifier_not_the_token() {
        let dir = tempfile::tempdir().expect("dir");
        let token = crate::service::generate_unseal_token().expect("token");
        let verifier = UnsealTokenVerifier::of_token(&token);
        let good = dir.path().join("unseal.verifier");
        std::fs::write(&good, verifier.to_file_text()).expect("write");
        let with_file = |path: &std::path::Path| UnsealArgs {
            unseal_token_file: Some(path.to_owned()),
            ..args(1, &[], "15m")
        };
        let policy = unseal_policy(&with_file(&good), &admins(1), &HostFiles).expect("policy");
        assert!(policy.token.expect("token").matches(&token));

        let token_itself = dir.path().join("unseal.token");
        std::fs::write(&token_itself, token.as_bytes()).expect("write");
        let error = unseal_policy(&with_file(&token_itself), &admins(1), &HostFiles)
            .expect_err("the token itself is refused");
        assert!(error.message.contains("keep it offline"), "{error}");
        assert!(!error.to_string().contains(&token[30..]), "{error}");
        let missing = dir.path().join("missing");
        assert_eq!(
            unseal_policy(&with_file(&missing), &admins(1), &HostFiles)
                .expect_err("missing")
                .flag,
            "--unseal-token-file"
        );
    }
}
