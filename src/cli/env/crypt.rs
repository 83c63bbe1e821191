//! Sealing, opening and re-sealing env values in batches (one call per
//! key and per [`BATCH`] values), with every failure named by its
//! variable, never by its value. Opening fails closed: one value that
//! does not open fails the whole set.

use std::collections::{BTreeMap, HashMap};

use tresor_client::{Client, ClientError};
use tresor_proto::v1 as proto;
use zeroize::Zeroizing;

use super::value::SealedValue;
use crate::cli::failure::CliError;

/// Values per batch call: a file of up to this many variables is one call.
const BATCH: usize = 256;

/// One variable to seal.
pub struct Plain {
    /// The variable's name.
    pub name: String,
    /// Its value.
    pub value: Zeroizing<String>,
    /// Its encryption context (with the name).
    pub context: HashMap<String, String>,
}

/// One variable to open or re-seal.
pub struct Sealed {
    /// The variable's name.
    pub name: String,
    /// Its value.
    pub sealed: SealedValue,
    /// Its encryption context (with the name).
    pub context: HashMap<String, String>,
}

/// What one item's refusal means for an env value, in words that name
/// the cause and never the value.
fn why(err: &ClientError, key_id: &str) -> String {
    match err {
        ClientError::InvalidCiphertext => {
            "does not decrypt: it was changed, moved from another variable, or made with another key or context".to_owned()
        }
        ClientError::PermissionDenied(_) => {
            format!("this identity may not use key {key_id} (or the key does not exist)")
        }
        ClientError::KeyDisabled => format!("key {key_id} is disabled"),
        ClientError::KeyPendingDeletion => format!("key {key_id} is pending deletion"),
        other => other.to_string(),
    }
}

/// Fails with every refused variable listed.
fn refused(failures: &[(String, String)]) -> CliError {
    let lines: Vec<String> = failures
        .iter()
        .map(|(name, why)| format!("  {name}: {why}"))
        .collect();
    CliError::refused(format!(
        "{} value(s) could not be used; nothing was run or written:\n{}",
        failures.len(),
        lines.join("\n")
    ))
}

/// A batch call that failed as a whole (unreachable server, sealed...).
fn whole_batch_failed(err: ClientError, names: &[&str]) -> CliError {
    let mut failed = CliError::from(err);
    let shown: Vec<&str> = names.iter().take(5).copied().collect();
    let more = names.len().saturating_sub(shown.len());
    failed.message = format!(
        "cannot reach a decision for {}{}: {}",
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        },
        failed.message
    );
    failed
}

/// Seals every value under `key_id`, in order.
pub async fn seal_all(
    client: &Client,
    key_id: &str,
    plains: &[Plain],
) -> Result<Vec<SealedValue>, CliError> {
    let mut sealed = Vec::with_capacity(plains.len());
    let mut failures = Vec::new();
    for chunk in plains.chunks(BATCH) {
        let items = chunk
            .iter()
            .map(|plain| proto::EncryptRequest {
                key_id: key_id.to_owned(),
                plaintext: plain.value.as_bytes().to_vec(),
                context: plain.context.clone(),
            })
            .collect();
        let names: Vec<&str> = chunk.iter().map(|p| p.name.as_str()).collect();
        let results = client
            .encrypt_batch(items)
            .await
            .map_err(|e| whole_batch_failed(e, &names))?;
        for (plain, result) in chunk.iter().zip(results) {
            match result {
                Ok(done) => sealed.push(SealedValue {
                    key_id: done.key_id,
                    ciphertext: done.ciphertext,
                }),
                Err(e) => failures.push((plain.name.clone(), why(&e, key_id))),
            }
        }
    }
    if !failures.is_empty() {
        return Err(refused(&failures));
    }
    // A deterministic key's ciphertexts show which values are equal (the
    // same password in two variables, an old value put back): refused.
    if sealed
        .iter()
        .any(|value| tresor_crypto::deterministic_key_version(&value.ciphertext).is_ok())
    {
        return Err(CliError::refused(format!(
            "{key_id} is a deterministic key, whose ciphertexts show which values are equal: seal env files with an encrypt-decrypt key"
        )));
    }
    Ok(sealed)
}

/// Opens every value (one DecryptBatch per key and [`BATCH`] values);
/// returns the plaintexts by name, or fails naming every value that did
/// not open.
pub async fn open_all(
    client: &Client,
    values: &[Sealed],
) -> Result<BTreeMap<String, Zeroizing<String>>, CliError> {
    let mut by_key: BTreeMap<&str, Vec<&Sealed>> = BTreeMap::new();
    for value in values {
        by_key.entry(&value.sealed.key_id).or_default().push(value);
    }
    let mut opened = BTreeMap::new();
    let mut failures = Vec::new();
    for (key_id, group) in by_key {
        for chunk in group.chunks(BATCH) {
            let items = chunk
                .iter()
                .map(|value| proto::DecryptRequest {
                    key_id: key_id.to_owned(),
                    ciphertext: value.sealed.ciphertext.clone(),
                    context: value.context.clone(),
                })
                .collect();
            let names: Vec<&str> = chunk.iter().map(|v| v.name.as_str()).collect();
            let results = client
                .decrypt_batch(items)
                .await
                .map_err(|e| whole_batch_failed(e, &names))?;
            for (value, result) in chunk.iter().zip(results) {
                let plaintext = result.map(|done| Zeroizing::new(done.plaintext));
                match plaintext {
                    Ok(bytes) => match String::from_utf8(bytes.to_vec()) {
                        Ok(text) => {
                            opened.insert(value.name.clone(), Zeroizing::new(text));
                        }
                        Err(e) => {
                            drop(Zeroizing::new(e.into_bytes()));
                            failures.push((value.name.clone(), "is not UTF-8 text".to_owned()));
                        }
                    },
                    Err(e) => failures.push((value.name.clone(), why(&e, key_id))),
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(opened)
    } else {
        Err(refused(&failures))
    }
}

/// Re-seals every value under its key's current version, same context,
/// in order.
pub async fn reseal_all(client: &Client, values: &[Sealed]) -> Result<Vec<SealedValue>, CliError> {
    let mut resealed = Vec::with_capacity(values.len());
    let mut failures = Vec::new();
    for chunk in values.chunks(BATCH) {
        let items = chunk
            .iter()
            .map(|value| proto::ReEncryptRequest {
                key_id: value.sealed.key_id.clone(),
                ciphertext: value.sealed.ciphertext.clone(),
                context: value.context.clone(),
                ..Default::default()
            })
            .collect();
        let names: Vec<&str> = chunk.iter().map(|v| v.name.as_str()).collect();
        let results = client
            .re_encrypt_batch(items)
            .await
            .map_err(|e| whole_batch_failed(e, &names))?;
        for (value, result) in chunk.iter().zip(results) {
            match result {
                Ok(done) => resealed.push(SealedValue {
                    key_id: done.key_id,
                    ciphertext: done.ciphertext,
                }),
                Err(e) => failures.push((value.name.clone(), why(&e, &value.sealed.key_id))),
            }
        }
    }
    if failures.is_empty() {
        Ok(resealed)
    } else {
        Err(refused(&failures))
    }
}
