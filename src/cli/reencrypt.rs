//! `tresor reencrypt`: a ciphertext re-encrypted under its key's primary
//! version, or moved to another key (`--to`), without the plaintext
//! leaving tresor.

use super::connection::Connection;
use super::data::{DataArgs, context, parse_pair, read_ciphertext, write_ciphertext};
use super::failure::CliError;
use super::output::OutputFormat;

/// Flags of `tresor reencrypt`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReEncryptArgs {
    /// The ciphertext's key id and context, input and output, as for
    /// decrypt (the output is written as encrypt writes it).
    #[command(flatten)]
    pub data: DataArgs,
    /// Move the ciphertext to this key (its primary version): needs the
    /// decrypt grant on the key the ciphertext is under and encrypt on
    /// this one. Store this key id with the new ciphertext.
    #[arg(long, value_name = "KEY")]
    pub to: Option<String>,
    /// Context pair the moved ciphertext is bound to (repeatable; with
    /// --to, and decrypting it then needs the same pairs).
    #[arg(long = "to-context", value_name = "K=V", value_parser = parse_pair, requires = "to")]
    pub to_context: Vec<(String, String)>,
}

/// `tresor reencrypt`.
pub async fn reencrypt(
    args: ReEncryptArgs,
    conn: &Connection,
    format: OutputFormat,
) -> Result<(), CliError> {
    let ciphertext = read_ciphertext(&args.data)?;
    let data = &args.data;
    let source_context = context(&data.context);
    let (moved, key_id) = match &args.to {
        None => (
            conn.client
                .re_encrypt(&data.id, &ciphertext, &source_context)
                .await,
            &data.id,
        ),
        Some(destination) => (
            conn.client
                .re_encrypt_to(
                    &data.id,
                    &ciphertext,
                    &source_context,
                    destination,
                    &context(&args.to_context),
                )
                .await,
            destination,
        ),
    };
    let out = moved.map_err(|e| CliError::about_key(e, &data.id, conn.identity.as_ref()))?;
    write_ciphertext(data, key_id, out, format)
}
