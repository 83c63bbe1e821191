//! CLI failures and their exit codes: 0 success, 1 the server refused (or a
//! local operation failed), 2 usage error, 3 cannot connect or TLS failure.

use crate::identity::Identity;
use tresor_client::ClientError;

/// Exit code when the server refused or an operation failed.
pub const EXIT_REFUSED: u8 = 1;
/// Exit code for usage errors (clap uses 2 as well).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the server cannot be reached or TLS fails.
pub const EXIT_CONNECT: u8 = 3;

/// A failed command: what to print and how to exit.
#[derive(Debug)]
pub struct CliError {
    /// Process exit code.
    pub exit: u8,
    /// Message for stderr (after `error: `).
    pub message: String,
}

impl CliError {
    /// The server refused, or a local operation failed.
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            exit: EXIT_REFUSED,
            message: message.into(),
        }
    }

    /// An exit code without a message (the command printed its result;
    /// `tresor plan` with changes exits 2).
    pub fn silent(exit: u8) -> Self {
        Self {
            exit,
            message: String::new(),
        }
    }

    /// The command was used wrongly.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            exit: EXIT_USAGE,
            message: message.into(),
        }
    }
}

impl CliError {
    /// A client error, with the key and the caller's identity added to
    /// refusals so the message says what was refused to whom.
    pub fn about_key(err: ClientError, key_id: &str, identity: Option<&Identity>) -> Self {
        let mut cli = Self::from(err);
        if cli.exit == EXIT_REFUSED {
            cli.message = match identity {
                Some(identity) => format!("{} (key {key_id}, as {identity})", cli.message),
                None => format!("{} (key {key_id})", cli.message),
            };
        }
        cli
    }
}

impl From<ClientError> for CliError {
    fn from(err: ClientError) -> Self {
        let exit = match &err {
            ClientError::Connect { .. } => EXIT_CONNECT,
            ClientError::Config(_) => EXIT_USAGE,
            _ => EXIT_REFUSED,
        };
        Self {
            exit,
            message: err.to_string(),
        }
    }
}

impl From<tresor_bench::BenchError> for CliError {
    fn from(err: tresor_bench::BenchError) -> Self {
        match err {
            tresor_bench::BenchError::NoConnection => Self::usage(err.to_string()),
            _ => Self::refused(err.to_string()),
        }
    }
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        Self::refused(message)
    }
}
