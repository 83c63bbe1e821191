//! Stream-encrypts or decrypts a file of any size with the SDK
//! ([`Client::seal_stream`], [`Client::open_stream`]): one GenerateDataKey
//! call per file to seal, one DecryptDataKey call to open, the payload never sent
//! to tresor, memory bounded by one 64 KiB chunk buffer.
//!
//! ```sh
//! tresor dev &   # prints the variables below; use the billing certificate
//! export TRESOR_ADDR=https://localhost:7443
//! export TRESOR_CA=.tresor-dev/ca/ca.pem
//! export TRESOR_CERT=.tresor-dev/billing/cert.pem TRESOR_KEY=.tresor-dev/billing/key.pem
//! cargo run --release --example stream_file -- seal big.bin big.trss
//! cargo run --release --example stream_file -- open big.trss big.out
//! ```
//!
//! Optional: `TRESOR_KEY_ID` (default `billing/customer-records`, the key
//! `tresor dev` creates for billing) and `TRESOR_CONTEXT` (`k=v,k2=v2`,
//! default empty; opening needs the same pairs).
//!
//! `open` writes to `OUT.partial` and renames it to `OUT` only when the
//! whole stream has authenticated: `open_stream` writes chunks as they are
//! verified, so a tampered or truncated file would otherwise leave a
//! plausible-looking prefix behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio::fs::File;
use tresor_client::{Client, StreamSummary};

mod common;

use common::BoxError;

const USAGE: &str = "usage: stream_file seal|open IN OUT (env: TRESOR_ADDR, TRESOR_CA, TRESOR_CERT, TRESOR_KEY, optional TRESOR_KEY_ID, TRESOR_CONTEXT)";

// One thread is plenty: the work is one sequential stream.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("stream_file: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, input, output] = args.as_slice() else {
        return Err(USAGE.into());
    };
    let client = common::connect(USAGE, |builder| builder).await?;
    let context = context_from_env()?;
    let key_id =
        std::env::var("TRESOR_KEY_ID").unwrap_or_else(|_| "billing/customer-records".into());
    let started = Instant::now();
    let summary = match mode.as_str() {
        "seal" => seal(&client, &key_id, &context, input, Path::new(output)).await?,
        "open" => open(&client, &key_id, &context, input, Path::new(output)).await?,
        _ => return Err(USAGE.into()),
    };
    let seconds = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)] // a rate for a human
    let mib_per_s = summary.bytes_in as f64 / seconds / (1024.0 * 1024.0);
    eprintln!(
        "{mode}: {} bytes in, {} bytes out, {} chunks, key version {}, {seconds:.2} s, {mib_per_s:.0} MiB/s",
        summary.bytes_in, summary.bytes_out, summary.chunks, summary.key_version
    );
    Ok(())
}

async fn seal(
    client: &Client,
    key_id: &str,
    context: &HashMap<String, String>,
    input: &str,
    output: &Path,
) -> Result<StreamSummary, BoxError> {
    let reader = File::open(input).await?;
    let writer = File::create(output).await?;
    Ok(client.seal_stream(key_id, context, reader, writer).await?)
}

async fn open(
    client: &Client,
    key_id: &str,
    context: &HashMap<String, String>,
    input: &str,
    output: &Path,
) -> Result<StreamSummary, BoxError> {
    let mut partial = PathBuf::from(output).into_os_string();
    partial.push(".partial");
    let reader = File::open(input).await?;
    let mut writer = File::create(&partial).await?;
    match client
        .open_stream(&[key_id], context, reader, &mut writer)
        .await
    {
        Ok(summary) => {
            writer.sync_all().await?;
            drop(writer);
            tokio::fs::rename(&partial, output).await?;
            Ok(summary)
        }
        Err(e) => {
            // What was written is a prefix of a stream that did not
            // authenticate: never leave it where it could be used.
            drop(writer);
            let _ = tokio::fs::remove_file(&partial).await;
            Err(e.into())
        }
    }
}

/// `TRESOR_CONTEXT=k=v,k2=v2` as a map (unset or empty: no pairs).
fn context_from_env() -> Result<HashMap<String, String>, BoxError> {
    let raw = std::env::var("TRESOR_CONTEXT").unwrap_or_default();
    raw.split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("TRESOR_CONTEXT: {pair:?} is not k=v").into())
        })
        .collect()
}
