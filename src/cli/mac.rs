//! `tresor mac` and `tresor verify-mac`: blind-index tokens for scripts
//! and debugging. Tokens are printed (and read) as base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;

use super::connection::Connection;
use super::data::{context, parse_pair, read_input};
use super::failure::CliError;
use super::output::{self, OutputFormat};
use tresor_client::mac_request;

/// Flags of `tresor mac`.
#[derive(Debug, Clone, clap::Args)]
pub struct MacArgs {
    /// MAC key id.
    pub id: String,
    /// Context pair bound to the token (repeatable); verify-mac needs the
    /// same pairs.
    #[arg(long = "context", short = 'c', value_name = "K=V", value_parser = parse_pair)]
    pub context: Vec<(String, String)>,
    /// The message: a file, or - for stdin (taken byte for byte: mind a
    /// trailing newline).
    #[arg(long = "in", short = 'i', default_value = "-", value_name = "FILE")]
    pub input: String,
    /// Keep only N bytes of the HMAC (4 to 32): fewer bytes, more false
    /// positives, less leaked about equal values (SECURITY.md).
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u32).range(4..=32))]
    pub truncate: u32,
    /// The token of every live version, primary first (MacAllVersions):
    /// what an index lookup needs once the key has been rotated.
    #[arg(long)]
    pub all_versions: bool,
}

/// Flags of `tresor verify-mac`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyMacArgs {
    /// The key, context, message and length, as for `tresor mac`.
    #[command(flatten)]
    pub mac: MacArgs,
    /// The token to check, base64 as `tresor mac` prints it.
    #[arg(long = "mac", value_name = "BASE64")]
    pub token: String,
}

#[derive(Serialize)]
struct TokenView {
    key_version: u32,
    mac: String,
}

#[derive(Serialize)]
struct VerifiedView<'a> {
    key_id: &'a str,
    valid: bool,
    key_version: u32,
}

/// `tresor mac`.
pub async fn mac(
    args: MacArgs,
    conn: &Connection,
    format: OutputFormat,
) -> Result<String, CliError> {
    let message = read_input(&args.input)?;
    let request = mac_request(&args.id, &message, &context(&args.context), args.truncate);
    let refused = |e| CliError::about_key(e, &args.id, conn.identity.as_ref());
    let tokens: Vec<TokenView> = if args.all_versions {
        conn.client
            .mac_all_versions_request(request)
            .await
            .map_err(refused)?
    } else {
        vec![conn.client.mac_request(request).await.map_err(refused)?]
    }
    .into_iter()
    .map(|token| TokenView {
        key_version: token.key_version,
        mac: BASE64.encode(&token.mac),
    })
    .collect();
    Ok(match format {
        OutputFormat::Json if args.all_versions => {
            output::json(&serde_json::json!({ "key_id": args.id, "macs": tokens }))
        }
        OutputFormat::Json => output::json(&serde_json::json!({
            "key_id": args.id,
            "key_version": tokens.first().map_or(0, |t| t.key_version),
            "mac": tokens.first().map(|t| t.mac.clone()),
        })),
        OutputFormat::Human if args.all_versions => {
            let mut rows = vec![vec!["VERSION".to_owned(), "MAC".to_owned()]];
            rows.extend(
                tokens
                    .iter()
                    .map(|t| vec![t.key_version.to_string(), t.mac.clone()]),
            );
            output::table(&rows)
        }
        OutputFormat::Human => tokens.iter().map(|t| format!("{}\n", t.mac)).collect(),
    })
}

/// `tresor verify-mac`: exit 0 when the token verifies, 1 when not.
pub async fn verify_mac(
    args: VerifyMacArgs,
    conn: &Connection,
    format: OutputFormat,
) -> Result<String, CliError> {
    let VerifyMacArgs { mac: args, token } = args;
    if args.all_versions {
        return Err(CliError::usage(
            "--all-versions is for `tresor mac`; verify-mac reads the version from the token",
        ));
    }
    let token = BASE64
        .decode(token.trim())
        .map_err(|e| CliError::usage(format!("--mac is not base64: {e}")))?;
    let message = read_input(&args.input)?;
    let verified = conn
        .client
        .verify_mac(
            &args.id,
            &message,
            &token,
            &context(&args.context),
            args.truncate,
        )
        .await
        .map_err(|e| CliError::about_key(e, &args.id, conn.identity.as_ref()))?;
    let printed = match format {
        OutputFormat::Json => output::json(&VerifiedView {
            key_id: &args.id,
            valid: verified.valid,
            key_version: verified.key_version,
        }),
        OutputFormat::Human if verified.valid => {
            format!(
                "valid (key {}, version {})\n",
                args.id, verified.key_version
            )
        }
        OutputFormat::Human => String::new(),
    };
    if verified.valid {
        Ok(printed)
    } else if format == OutputFormat::Json {
        print!("{printed}");
        Err(CliError::refused("the MAC does not verify"))
    } else {
        Err(CliError::refused(format!(
            "the MAC does not verify under key {} with this message and context",
            args.id
        )))
    }
}
