//! Confirmation of destructive commands: asked on a terminal, `--yes`
//! required otherwise.

use std::io::{BufRead, IsTerminal, Write};

use super::failure::CliError;

/// Asks "`question` [y/N]" on a terminal unless `yes`; refuses without a
/// terminal unless `yes`.
pub fn confirm(question: &str, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::usage(format!(
            "{question}: refusing without confirmation because stdin is not a terminal; pass --yes"
        )));
    }
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{question}? Type 'yes' to continue: ");
    let _ = stderr.flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::refused(format!("cannot read the answer: {e}")))?;
    match answer.trim() {
        "yes" | "y" | "YES" | "Yes" => Ok(()),
        _ => Err(CliError::refused("aborted: not confirmed")),
    }
}
