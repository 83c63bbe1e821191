//! `tresor unseal` (an approval, with the unseal token when the server
//! needs one) and `tresor unseal-token generate` (a token for the operator
//! and its verifier for the server).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use zeroize::Zeroizing;

use super::failure::CliError;
use super::output::{self, OutputFormat};
use crate::service::{UnsealTokenVerifier, generate_unseal_token};
use tresor_proto::v1 as proto;

/// Flags of `tresor unseal`.
#[derive(Debug, Clone, clap::Args)]
pub struct UnsealArgs {
    /// File holding the unseal token (from `tresor unseal-token generate`),
    /// for a server started with --unseal-token-file; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// `tresor unseal-token ...`
#[derive(Debug, Subcommand)]
pub enum UnsealTokenCommand {
    /// Create an unseal token (for the operator to keep offline) and its
    /// verifier (for the server's --unseal-token-file), both mode 0600.
    ///
    /// Example: tresor unseal-token generate --out /media/offline/unseal.token --verifier-out /etc/tresor/unseal.verifier
    Generate {
        /// Where to write the token (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Where to write the verifier (must not exist).
        #[arg(long, value_name = "FILE")]
        verifier_out: PathBuf,
    },
}

/// Reads the unseal token from `path` (`-`: stdin), trimmed.
pub fn read_token(path: &Path) -> Result<Zeroizing<String>, CliError> {
    let mut text = Zeroizing::new(String::new());
    let read = if path == Path::new("-") {
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(drop)
    } else {
        std::fs::File::open(path)
            .and_then(|mut file| std::io::Read::read_to_string(&mut file, &mut text))
            .map(drop)
    };
    read.map_err(|e| CliError::usage(format!("--token-file {}: {e}", path.display())))?;
    Ok(Zeroizing::new(text.trim().to_owned()))
}

/// Runs `tresor unseal-token generate`; returns what to print.
pub fn run_token(command: UnsealTokenCommand, format: OutputFormat) -> Result<String, CliError> {
    let UnsealTokenCommand::Generate { out, verifier_out } = command;
    let token = generate_unseal_token().map_err(|e| CliError::refused(e.to_string()))?;
    let verifier = UnsealTokenVerifier::of_token(&token);
    let write = |path: &Path, text: &[u8]| {
        crate::fs::write_private_file(path, text, false)
            .map_err(|e| CliError::refused(format!("cannot write {}: {e}", path.display())))
    };
    let mut line = Zeroizing::new(token.as_str().to_owned());
    line.push('\n');
    write(&out, line.as_bytes())?;
    if let Err(e) = write(&verifier_out, verifier.to_file_text().as_bytes()) {
        // Best effort: a token without its verifier is useless.
        let _ = std::fs::remove_file(&out);
        return Err(e);
    }
    Ok(match format {
        OutputFormat::Json => output::json(&serde_json::json!({
            "token_file": out.display().to_string(),
            "verifier_file": verifier_out.display().to_string(),
        })),
        OutputFormat::Human => format!(
            "wrote the unseal token to {} (keep it offline) and its verifier to {} (start the server with --unseal-token-file {})\n",
            out.display(),
            verifier_out.display(),
            verifier_out.display()
        ),
    })
}

/// The first line `tresor unseal` prints.
pub fn summary(status: &proto::SealStatus) -> String {
    if status.sealed {
        format!(
            "approval recorded: {} of {} approvals; still sealed",
            status.unseal_approvals, status.unseal_quorum
        )
    } else {
        "server unsealed".to_owned()
    }
}
