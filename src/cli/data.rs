//! `tresor encrypt|decrypt|datakey`: the data plane for scripts and
//! debugging. Binary-safe: raw bytes by default, base64 with `--base64`.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use zeroize::Zeroizing;

use super::connection::Connection;
use super::failure::CliError;
use super::output::{self, OutputFormat};
use tresor_client::ClientError;

/// Flags shared by encrypt and decrypt.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// Key id.
    pub id: String,
    /// Encryption context pair (repeatable); decrypt needs the same pairs.
    #[arg(long = "context", short = 'c', value_name = "K=V", value_parser = parse_pair)]
    pub context: Vec<(String, String)>,
    /// Input file, or - for stdin.
    #[arg(long = "in", short = 'i', default_value = "-", value_name = "FILE")]
    pub input: String,
    /// Output file, or - for stdout. A file is written with mode 0600 and
    /// replaced whole; a symlink at FILE is replaced, not followed.
    #[arg(long = "out", short = 'o', default_value = "-", value_name = "FILE")]
    pub out_file: String,
    /// Ciphertext as base64 text (encrypt writes it, decrypt reads it).
    #[arg(long)]
    pub base64: bool,
}

/// Flags of `tresor decrypt`.
#[derive(Debug, Clone, clap::Args)]
pub struct DecryptArgs {
    /// Key id, context, input and output, as for encrypt.
    #[command(flatten)]
    pub data: DataArgs,
    /// The input is a wrapped data key from `tresor datakey` (opened with
    /// DecryptDataKey; plain decrypt refuses wrapped data keys).
    #[arg(long)]
    pub data_key: bool,
}

/// Flags of `tresor datakey`.
#[derive(Debug, Clone, clap::Args)]
pub struct DataKeyArgs {
    /// Key id.
    pub id: String,
    /// Encryption context pair (repeatable).
    #[arg(long = "context", short = 'c', value_name = "K=V", value_parser = parse_pair)]
    pub context: Vec<(String, String)>,
    /// Length of the data key: 32 (AES-256) or 16 (AES-128).
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = key_bytes)]
    pub bytes: u32,
    /// Print only the wrapped key (GenerateDataKeyWithoutPlaintext): for
    /// provisioning a key this machine must never see.
    #[arg(long)]
    pub without_plaintext: bool,
}

/// `--bytes`: 16 or 32.
fn key_bytes(raw: &str) -> Result<u32, String> {
    match raw {
        "16" => Ok(16),
        "32" => Ok(32),
        _ => Err("give 16 (AES-128) or 32 (AES-256)".to_owned()),
    }
}

pub(super) fn parse_pair(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{raw:?} is not KEY=VALUE"))
}

pub(super) fn context(pairs: &[(String, String)]) -> HashMap<String, String> {
    pairs.iter().cloned().collect()
}

pub(super) fn read_input(path: &str) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let mut data = Zeroizing::new(Vec::new());
    if path == "-" {
        std::io::stdin()
            .read_to_end(&mut data)
            .map_err(|e| CliError::refused(format!("cannot read stdin: {e}")))?;
    } else {
        let mut file =
            std::fs::File::open(path).map_err(|e| CliError::usage(format!("--in {path}: {e}")))?;
        file.read_to_end(&mut data)
            .map_err(|e| CliError::refused(format!("cannot read {path}: {e}")))?;
    }
    Ok(data)
}

pub(super) fn write_output(path: &str, bytes: &[u8]) -> Result<(), CliError> {
    if path == "-" {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(bytes)
            .and_then(|()| stdout.flush())
            .map_err(|e| CliError::refused(format!("cannot write stdout: {e}")))
    } else {
        // Plaintext (and everything else written here) goes to a new file of
        // mode 0600 renamed over `path`: never readable by others, never
        // written through a symlink planted at `path`, never half written.
        crate::fs::write_private_file(Path::new(path), bytes, true)
            .map_err(|e| CliError::refused(format!("cannot write {path}: {e}")))
    }
}

pub(super) fn refuse_binary_to_terminal(args: &DataArgs, what: &str) -> Result<(), CliError> {
    if args.out_file == "-" && !args.base64 && std::io::stdout().is_terminal() {
        return Err(CliError::usage(format!(
            "refusing to write binary {what} to a terminal; pass --base64 or --out FILE"
        )));
    }
    Ok(())
}

#[derive(Serialize)]
struct EncryptedView<'a> {
    key_id: &'a str,
    key_version: u32,
    ciphertext: String,
}

#[derive(Serialize)]
struct DecryptedView<'a> {
    key_id: &'a str,
    key_version: u32,
    plaintext: String,
}

#[derive(Serialize)]
struct DataKeyView<'a> {
    key_id: &'a str,
    key_version: u32,
    /// Absent with --without-plaintext.
    #[serde(skip_serializing_if = "Option::is_none")]
    plaintext_key: Option<String>,
    wrapped_key: String,
}

/// `tresor encrypt`.
pub async fn encrypt(
    args: DataArgs,
    conn: &Connection,
    format: OutputFormat,
) -> Result<(), CliError> {
    if format == OutputFormat::Human {
        refuse_binary_to_terminal(&args, "ciphertext")?;
    }
    let plaintext = read_input(&args.input)?;
    let out = conn
        .client
        .encrypt(&args.id, &plaintext, &context(&args.context))
        .await
        .map_err(|e| CliError::about_key(e, &args.id, conn.identity.as_ref()))?;
    write_ciphertext(&args, &args.id, out, format)
}

/// The ciphertext `args` name: the input's bytes, or its base64 text
/// (whitespace ignored) with `--base64`.
pub(super) fn read_ciphertext(args: &DataArgs) -> Result<Vec<u8>, CliError> {
    let raw = read_input(&args.input)?;
    if !args.base64 {
        return Ok(raw.to_vec());
    }
    let text: String = String::from_utf8_lossy(&raw).split_whitespace().collect();
    BASE64
        .decode(text.as_bytes())
        .map_err(|e| CliError::usage(format!("input is not base64: {e}")))
}

/// Writes a ciphertext of `key_id` where `args` say: raw, base64 with
/// `--base64`, or a JSON document.
pub(super) fn write_ciphertext(
    args: &DataArgs,
    key_id: &str,
    out: tresor_proto::v1::EncryptResponse,
    format: OutputFormat,
) -> Result<(), CliError> {
    // The key that made it: the alias's target when an alias was given
    // (an older server does not say; then the id as given).
    let key_id = if out.key_id.is_empty() {
        key_id
    } else {
        out.key_id.as_str()
    };
    let bytes = match format {
        OutputFormat::Json => output::json(&EncryptedView {
            key_id,
            key_version: out.key_version,
            ciphertext: BASE64.encode(&out.ciphertext),
        })
        .into_bytes(),
        OutputFormat::Human if args.base64 => {
            format!("{}\n", BASE64.encode(&out.ciphertext)).into_bytes()
        }
        OutputFormat::Human => out.ciphertext,
    };
    write_output(&args.out_file, &bytes)
}

/// `tresor decrypt`.
pub async fn decrypt(
    args: DecryptArgs,
    conn: &Connection,
    format: OutputFormat,
) -> Result<(), CliError> {
    let DecryptArgs {
        data: args,
        data_key,
    } = args;
    let ciphertext = read_ciphertext(&args)?;
    let context = context(&args.context);
    let opened = if data_key {
        conn.client
            .decrypt_data_key(&args.id, &ciphertext, &context)
            .await
            .map(|out| (out.plaintext_key, out.key_version))
    } else {
        conn.client
            .decrypt(&args.id, &ciphertext, &context)
            .await
            .map(|out| (out.plaintext, out.key_version))
    };
    let (plaintext, key_version) = opened.map_err(|e| match e {
        ClientError::WrappedDataKey => CliError::refused(
            "this is a wrapped data key from `tresor datakey`: add --data-key to open it",
        ),
        e => CliError::about_key(e, &args.id, conn.identity.as_ref()),
    })?;
    let plaintext = Zeroizing::new(plaintext);
    match format {
        OutputFormat::Json => {
            let text = Zeroizing::new(output::json(&DecryptedView {
                key_id: &args.id,
                key_version,
                plaintext: BASE64.encode(plaintext.as_slice()),
            }));
            write_output(&args.out_file, text.as_bytes())
        }
        OutputFormat::Human => write_output(&args.out_file, &plaintext),
    }
}

/// `tresor datakey`.
pub async fn datakey(
    args: DataKeyArgs,
    conn: &Connection,
    format: OutputFormat,
) -> Result<String, CliError> {
    let client = &conn.client;
    let context = context(&args.context);
    let refused = |e| CliError::about_key(e, &args.id, conn.identity.as_ref());
    let (key_version, plaintext_key, wrapped_key) = if args.without_plaintext {
        let out = client
            .generate_data_key_without_plaintext(&args.id, &context, args.bytes)
            .await
            .map_err(refused)?;
        (out.key_version, None, out.wrapped_key)
    } else {
        let out = client
            .generate_data_key_of(&args.id, &context, args.bytes)
            .await
            .map_err(refused)?;
        let plaintext_key = Zeroizing::new(out.plaintext_key);
        (
            out.key_version,
            Some(BASE64.encode(plaintext_key.as_slice())),
            out.wrapped_key,
        )
    };
    let view = DataKeyView {
        key_id: &args.id,
        key_version,
        plaintext_key,
        wrapped_key: BASE64.encode(&wrapped_key),
    };
    Ok(match format {
        OutputFormat::Json => output::json(&view),
        OutputFormat::Human => {
            let mut rows = vec![
                vec!["key_id:".into(), view.key_id.to_owned()],
                vec!["key_version:".into(), view.key_version.to_string()],
            ];
            if let Some(plaintext_key) = &view.plaintext_key {
                rows.push(vec!["plaintext_key:".into(), plaintext_key.clone()]);
            }
            rows.push(vec!["wrapped_key:".into(), view.wrapped_key.clone()]);
            output::table(&rows)
        }
    })
}
