//! One audit record and its line format.
//!
//! A record is one JSON object on one line. The writer fills in `seq`,
//! `time` and `prev` (the SHA-256 of the previous line), serialises the
//! object, and appends `"mac"`, an HMAC-SHA256 of everything before it under
//! the audit key:
//!
//! ```text
//! {"seq":7,"time":"…","prev":"<64 hex>",…other fields…,"mac":"<64 hex>"}
//! └──────────────────── body (MAC input, with "}" appended) ──┘
//! ```
//!
//! The MAC is computed over the exact bytes written, so verification needs
//! no canonical JSON. The chain hash of a record is the SHA-256 of its whole
//! line (MAC included, newline excluded).

use std::borrow::Cow;
use std::collections::BTreeMap;

use ring::digest;
use serde::{Deserialize, Serialize};

use crate::error::CryptoError;
use tresor_crypto::{MacKey, SecretKey};

/// HMAC label of record MACs.
const RECORD_LABEL: &[u8] = b"audit-record";
/// HMAC label of context value digests.
const CONTEXT_LABEL: &[u8] = b"audit-context";
/// What a record's MAC is appended with.
const MAC_PREFIX: &str = ",\"mac\":\"";
/// Bytes of the MAC suffix: prefix, 64 hex digits, `"}`.
const MAC_SUFFIX_LEN: usize = MAC_PREFIX.len() + 64 + 2;
/// Prefix of a context value digest.
pub const CONTEXT_DIGEST_PREFIX: &str = "hmac-sha256:";
/// What the digest of a whole oversized context starts its MAC input
/// with, so that it never equals the digest of a single value.
const OVERSIZED_CONTEXT_LABEL: &[u8] = b"tresor/v1 oversized audit context\0";
/// Longest record line the writer writes (without its newline). A record
/// that would be longer loses, in this order, its context digests, its
/// per-item results, then the tail of its long text fields, and is
/// flagged `"truncated":true`.
pub const MAX_LINE_BYTES: usize = 256 * 1024;
/// Longest text field (identity, key id, detail...) of a record cut down
/// to fit [`MAX_LINE_BYTES`].
const MAX_CUT_FIELD_BYTES: usize = 1024;

/// The SHA-256 of a line: what the next record's `prev` holds.
pub type LineHash = [u8; 32];

/// The `prev` of the first record of a log.
pub const GENESIS: LineHash = [0u8; 32];

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A gRPC call, allowed or refused.
    Request,
    /// Something that happened without a request: a key destroyed when its
    /// deletion window ended, a seal on signal, an anomaly alert, a start or
    /// stop of the server.
    Event,
    /// An authenticated marker written at start, every 30 s and at
    /// shutdown; the keystore remembers the latest (it only moves
    /// forward), so a file cut short before it is detected, at the next
    /// start and by `tresor audit verify`.
    Checkpoint,
    /// The first record of a file after rotation (or of a new log): its
    /// `prev` names the last record of the previous file.
    FileStart,
    /// A control-plane call about to change state, written after the call
    /// is admitted and before it changes anything: its outcome follows in
    /// a `request` record with the same request id. An intent without an
    /// outcome is a call cut off (crash, audit failure) that may have
    /// changed state; a change never happens without one.
    Intent,
    /// Records the keystore's checkpoint proved written were missing at
    /// start, and the operator accepted it (`--accept-audit-gap`). Its
    /// sequence number skips past the checkpoint; its `prev` chains to the
    /// last record still there.
    Gap,
}

/// What a caller asks the log to record. The writer adds the sequence
/// number, the time and the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// What the record is about.
    pub kind: RecordKind,
    /// The gRPC method or event name (`Encrypt`, `key_destroyed`...).
    pub operation: Cow<'static, str>,
    /// Request id (sent by the client as `x-request-id`, or generated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The caller's identity, when its certificate names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The caller's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The key concerned, as the caller named it (a key id or an alias).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The key the call used when it is not `key_id`: the target of an
    /// alias in `key_id`, or a key move's destination (ReEncrypt with a
    /// destination key). Absent when `key_id` named the key used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_key_id: Option<String>,
    /// What authorized a data-plane call: `owner`, `grant to IDENTITY`, or
    /// a conditional grant with its pattern, constraint keys and expiry (a
    /// batch call: each distinct one, `; ` between them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<String>,
    /// For a refused data-plane call: the conditional grant(s) that came
    /// closest to allowing it (covering the caller, with the operation
    /// when one has it), for operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closest_grant: Option<String>,
    /// The key version used, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_version: Option<u32>,
    /// A batch call's number of items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<u32>,
    /// A batch call's per-item outcomes, in item order, when its items
    /// were processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<ItemEntry>>,
    /// Encryption context: keys in clear, values as
    /// `hmac-sha256:<hex>` under the audit key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<BTreeMap<String, String>>,
    /// An encryption context over the size limits, recorded as one digest
    /// instead of [`Entry::context`] (the call was refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_oversized: Option<OversizedContext>,
    /// gRPC status code name (`OK`, `PERMISSION_DENIED`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Cow<'static, str>>,
    /// Time spent handling the call, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// Free text for events (never secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Set when the record was cut down to [`MAX_LINE_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
}

/// An encryption context too large to record pair by pair: its size and
/// one keyed digest of all of it, so that equal contexts still correlate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OversizedContext {
    /// Number of pairs.
    pub pairs: u64,
    /// Bytes of keys plus values.
    pub bytes: u64,
    /// `hmac-sha256:<hex>` under the audit key's context MAC key, over a
    /// label and then, in byte-wise ascending key order, each key and
    /// value with its length as a u64 big-endian prefix.
    pub digest: String,
}

impl Entry {
    /// An event record with nothing but its name and detail.
    pub fn event(operation: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self {
            kind: RecordKind::Event,
            operation: operation.into(),
            request_id: None,
            identity: None,
            peer: None,
            key_id: None,
            resolved_key_id: None,
            allowed_by: None,
            closest_grant: None,
            key_version: None,
            items: None,
            results: None,
            context: None,
            context_oversized: None,
            status: None,
            latency_us: None,
            detail: Some(detail.into()).filter(|d: &String| !d.is_empty()),
            truncated: None,
        }
    }

    /// This entry cut down one step towards [`MAX_LINE_BYTES`] (`step`
    /// from 1): 1 drops the context digests (of the call and its items),
    /// 2 the per-item results, 3 cuts every text field to
    /// [`MAX_CUT_FIELD_BYTES`]. `None` after the last step.
    fn cut_down(&self, step: u8) -> Option<Self> {
        let mut cut = self.clone();
        cut.truncated = Some(true);
        cut.context = None;
        for item in cut.results.iter_mut().flatten() {
            item.context = None;
        }
        if step >= 2 {
            cut.results = None;
        }
        if step >= 3 {
            for text in [
                &mut cut.request_id,
                &mut cut.identity,
                &mut cut.peer,
                &mut cut.key_id,
                &mut cut.detail,
            ]
            .into_iter()
            .flatten()
            {
                text.truncate(text.floor_char_boundary(MAX_CUT_FIELD_BYTES));
            }
            if cut.operation.len() > MAX_CUT_FIELD_BYTES {
                let mut operation = cut.operation.into_owned();
                operation.truncate(operation.floor_char_boundary(MAX_CUT_FIELD_BYTES));
                cut.operation = operation.into();
            }
        }
        (step <= 3).then_some(cut)
    }
}

/// One item of a batch call, in its call's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemEntry {
    /// The key the item named (a key id or an alias).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The key the item used when it is not `key_id` (an alias's target,
    /// a key move's destination), when the item succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_key_id: Option<String>,
    /// The key version used, when the item succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_version: Option<u32>,
    /// The item's context, digested as [`Entry::context`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<BTreeMap<String, String>>,
    /// The item's context when over the limits, as
    /// [`Entry::context_oversized`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_oversized: Option<OversizedContext>,
    /// The item's gRPC status code name.
    pub status: Cow<'static, str>,
}

/// A whole record as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the log, from 1, across files.
    pub seq: u64,
    /// When it was written (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// Hex SHA-256 of the previous line (zeros for the first record).
    pub prev: String,
    /// The content.
    #[serde(flatten)]
    pub entry: Entry,
}

/// A line read back and authenticated.
#[derive(Debug, Clone)]
pub struct VerifiedLine {
    /// The record.
    pub record: Record,
    /// Its `prev`, decoded.
    pub prev: LineHash,
    /// The chain hash of this line.
    pub hash: LineHash,
}

/// Why a line is not a genuine record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Not in the record format at all.
    #[error("not an audit record ({0})")]
    Malformed(&'static str),
    /// Well-formed, but its MAC does not match: edited, forged or inserted.
    #[error("its MAC does not match: edited, forged or inserted")]
    Unauthentic,
}

/// The MAC keys derived from the audit key: one for records, one for
/// context digests.
#[derive(Debug)]
pub struct AuditKeys {
    record: MacKey,
    context: MacKey,
}

impl AuditKeys {
    /// Derives both from the audit key.
    pub fn derive(audit_key: &SecretKey) -> Result<Self, CryptoError> {
        Ok(Self {
            record: MacKey::derive(audit_key, RECORD_LABEL)?,
            context: MacKey::derive(audit_key, CONTEXT_LABEL)?,
        })
    }
}

/// The chain hash of a line (without its newline).
pub fn line_hash(line: &[u8]) -> LineHash {
    let digest = digest::digest(&digest::SHA256, line);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Serialises `record` and appends its MAC under `key`: one line, without
/// the newline.
pub fn encode_line(keys: &AuditKeys, record: &Record) -> Result<Vec<u8>, CryptoError> {
    let prev = parse_hash(&record.prev).ok_or(CryptoError::Malformed)?;
    let mut line = Vec::with_capacity(384);
    append_line(
        keys,
        &mut line,
        record.seq,
        &record.time,
        &prev,
        &record.entry,
    )?;
    Ok(line)
}

/// The fields of a record in their written order, borrowed: what the
/// writer serialises straight into its group buffer.
struct Fields<'a> {
    seq: u64,
    time: &'a str,
    prev: &'a str,
    entry: &'a Entry,
}

impl Serialize for Fields<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let e = self.entry;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("seq", &self.seq)?;
        map.serialize_entry("time", self.time)?;
        map.serialize_entry("prev", self.prev)?;
        map.serialize_entry("kind", &e.kind)?;
        map.serialize_entry("operation", &e.operation)?;
        macro_rules! optional {
            ($($name:ident),*) => {$(
                if let Some(value) = &e.$name {
                    map.serialize_entry(stringify!($name), value)?;
                }
            )*};
        }
        optional!(
            request_id,
            identity,
            peer,
            key_id,
            resolved_key_id,
            allowed_by,
            closest_grant,
            key_version,
            items,
            results,
            context,
            context_oversized,
            status,
            latency_us,
            detail,
            truncated
        );
        map.end()
    }
}

/// Appends one record line (without newline) to `out`: the JSON object,
/// then its MAC field. Writes nothing on error.
pub fn append_line(
    keys: &AuditKeys,
    out: &mut Vec<u8>,
    seq: u64,
    time: &str,
    prev: &LineHash,
    entry: &Entry,
) -> Result<(), CryptoError> {
    let start = out.len();
    let mut prev_hex = [0u8; 64];
    hex::encode_to_slice(prev, &mut prev_hex).map_err(|_| CryptoError::Malformed)?;
    let prev_hex = std::str::from_utf8(&prev_hex).map_err(|_| CryptoError::Malformed)?;
    let fields = Fields {
        seq,
        time,
        prev: prev_hex,
        entry,
    };
    if serde_json::to_writer(&mut *out, &fields).is_err() {
        out.truncate(start);
        return Err(CryptoError::Malformed);
    }
    close_with_mac(keys, out, start);
    Ok(())
}

/// [`append_line`], cutting the entry down (see [`Entry::cut_down`]) until
/// its line fits in [`MAX_LINE_BYTES`].
pub fn append_capped_line(
    keys: &AuditKeys,
    out: &mut Vec<u8>,
    seq: u64,
    time: &str,
    prev: &LineHash,
    entry: &Entry,
) -> Result<(), CryptoError> {
    let start = out.len();
    append_line(keys, out, seq, time, prev, entry)?;
    let mut step = 0;
    while out.len() - start > MAX_LINE_BYTES {
        out.truncate(start);
        step += 1;
        // Three steps leave at most six text fields of 1 KiB (6 KiB once
        // JSON-escaped) and fixed-size numbers: far below the cap.
        let cut = entry.cut_down(step).ok_or(CryptoError::TooLarge)?;
        append_line(keys, out, seq, time, prev, &cut)?;
    }
    Ok(())
}

/// Replaces the closing brace of the JSON object in `out[start..]` with
/// the MAC field, computed over that object (closing brace included).
fn close_with_mac(keys: &AuditKeys, out: &mut Vec<u8>, start: usize) {
    let tag = keys.record.sign(&out[start..]);
    out.pop(); // the closing brace; the MAC field closes the object
    out.extend_from_slice(MAC_PREFIX.as_bytes());
    out.extend(hex_digits(&tag));
    out.extend_from_slice(b"\"}");
}

/// Authenticates one line (without its newline) and parses it.
pub fn decode_line(keys: &AuditKeys, line: &[u8]) -> Result<VerifiedLine, LineError> {
    if line.len() < MAC_SUFFIX_LEN + 2 || !line.ends_with(b"\"}") {
        return Err(LineError::Malformed("no MAC at the end"));
    }
    let split = line.len() - MAC_SUFFIX_LEN;
    let (head, suffix) = line.split_at(split);
    if !suffix.starts_with(MAC_PREFIX.as_bytes()) {
        return Err(LineError::Malformed("no MAC at the end"));
    }
    let tag = hex::decode(&suffix[MAC_PREFIX.len()..suffix.len() - 2])
        .map_err(|_| LineError::Malformed("the MAC is not hex"))?;
    let mut body = Vec::with_capacity(head.len() + 1);
    body.extend_from_slice(head);
    body.push(b'}');
    keys.record
        .verify(&body, &tag)
        .map_err(|_| LineError::Unauthentic)?;
    let record: Record =
        serde_json::from_slice(&body).map_err(|_| LineError::Malformed("not the record JSON"))?;
    let prev = parse_hash(&record.prev).ok_or(LineError::Malformed("prev is not a hash"))?;
    Ok(VerifiedLine {
        record,
        prev,
        hash: line_hash(line),
    })
}

/// Reads `seq` and the chain hash of a line without authenticating it (to
/// resume a log at start-up; `tresor audit verify` authenticates).
pub fn peek_line(line: &[u8]) -> Option<(u64, LineHash)> {
    #[derive(Deserialize)]
    struct Seq {
        seq: u64,
    }
    let seq: Seq = serde_json::from_slice(line).ok()?;
    Some((seq.seq, line_hash(line)))
}

/// Decodes a hex chain hash.
pub fn parse_hash(text: &str) -> Option<LineHash> {
    let bytes = hex::decode(text).ok()?;
    bytes.try_into().ok()
}

/// The digest of one context value: `hmac-sha256:<hex>` under the audit
/// key, so equal values can be correlated without being readable.
pub fn context_value_digest(keys: &AuditKeys, value: &str) -> String {
    digest_text(&keys.context.sign(value.as_bytes()))
}

/// `hmac-sha256:<hex of tag>`. Written digit by digit into a sized String:
/// `hex::encode` collects chars one at a time, which showed in profiles of
/// batch calls (one digest per item).
fn digest_text(tag: &[u8]) -> String {
    let mut digest = String::with_capacity(CONTEXT_DIGEST_PREFIX.len() + 2 * tag.len());
    digest.push_str(CONTEXT_DIGEST_PREFIX);
    digest.extend(hex_digits(tag).map(char::from));
    digest
}

/// The record of an oversized encryption context (see
/// [`OversizedContext::digest`]). Costs one sort and one pass of HMAC over
/// the pairs, whatever their number.
pub fn oversized_context<'a>(
    keys: &AuditKeys,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> OversizedContext {
    let mut pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
    pairs.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let bytes: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    let lengths: Vec<[u8; 8]> = pairs
        .iter()
        .flat_map(|(k, v)| [k.len(), v.len()])
        .map(|len| (len as u64).to_be_bytes())
        .collect();
    let chunks = pairs
        .iter()
        .flat_map(|(k, v)| [k.as_bytes(), v.as_bytes()])
        .zip(&lengths)
        .flat_map(|(field, len)| [len.as_slice(), field]);
    let tag = keys
        .context
        .sign_chunks(std::iter::once(OVERSIZED_CONTEXT_LABEL).chain(chunks));
    OversizedContext {
        pairs: pairs.len() as u64,
        bytes: bytes as u64,
        digest: digest_text(&tag),
    }
}

/// The lowercase hex digits of `bytes`, as ASCII bytes.
fn hex_digits(bytes: &[u8]) -> impl Iterator<Item = u8> + '_ {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|byte| [HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0x0f)]])
}

/// The audit keys the fuzz helpers decode with, derived from a fixed,
/// public test key. Never for a real log: the key is in the source. Seed
/// corpora are written under it, so that seeds authenticate.
pub fn fuzz_keys() -> AuditKeys {
    // Invariant: 32 bytes is the one length `from_bytes` accepts, and
    // deriving a MAC key from a valid key cannot fail.
    let key = SecretKey::from_bytes(&[0x41; 32]).expect("a 32-byte key");
    AuditKeys::derive(&key).expect("MAC keys from a valid key")
}

/// Signs `body`, a JSON object ending in `}`, under `keys` into a line as
/// the writer writes it: `None` unless it ends in `}`.
pub(super) fn sign_body(keys: &AuditKeys, body: &[u8]) -> Option<Vec<u8>> {
    if body.last() != Some(&b'}') {
        return None;
    }
    let mut line = Vec::with_capacity(body.len() + MAC_SUFFIX_LEN);
    line.extend_from_slice(body);
    close_with_mac(keys, &mut line, 0);
    Some(line)
}

/// Fuzz entry point of the audit line parsers, for
/// `fuzz/fuzz_targets/audit_record.rs` and the proptest smoke test
/// `tests/it/fuzz_smoke.rs` (nothing else calls it).
///
/// Runs [`peek_line`] (what start-up resumes from) and [`decode_line`]
/// under [`fuzz_keys`] on `data`. Then, if `data` ends in `}`, signs it as
/// a record body under those keys, so that the JSON parsing behind the MAC
/// sees arbitrary input too, and decodes that line, which must not be
/// called unauthentic. Every line that decodes must agree with
/// [`peek_line`] on sequence number and hash, and its record must encode
/// with [`encode_line`] and decode back to the same record.
///
/// # Panics
///
/// Only when the library breaks one of these properties: a bug the fuzzer
/// reports. No input is expected to panic.
pub fn fuzz_line(data: &[u8]) {
    let keys = fuzz_keys();
    check_decoded(&keys, data, decode_line(&keys, data));
    if let Some(line) = sign_body(&keys, data) {
        let decoded = decode_line(&keys, &line);
        assert!(
            !matches!(decoded, Err(LineError::Unauthentic)),
            "a line signed under the fuzz keys does not authenticate"
        );
        check_decoded(&keys, &line, decoded);
    }
}

/// The checks [`fuzz_line`] makes on the outcome of decoding `line`.
fn check_decoded(keys: &AuditKeys, line: &[u8], decoded: Result<VerifiedLine, LineError>) {
    let peeked = peek_line(line);
    let Ok(verified) = decoded else { return };
    let seq = verified.record.seq;
    assert_eq!(verified.hash, line_hash(line));
    assert_eq!(peeked, Some((seq, verified.hash)), "peek_line disagrees");
    let encoded = encode_line(keys, &verified.record);
    let Ok(encoded) = encoded else {
        panic!("a decoded record does not encode");
    };
    let again = decode_line(keys, &encoded);
    let Ok(again) = again else {
        panic!("a re-encoded record does not decode: {again:?}");
    };
    assert_eq!(again.prev, verified.prev);
    assert_eq!(again.record.seq, seq);
    assert_eq!(again.record.time, verified.record.time);
    assert_eq!(again.record.entry, verified.record.entry);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> Record {
        Record {
            seq,
            time: "2026-11-26T19:00:00.000Z".into(),
            prev: hex::encode(GENESIS),
            entry: Entry {
                key_id: Some("orders".into()),
                resolved_key_id: None,
                key_version: Some(3),
                items: Some(2),
                results: Some(vec![
                    ItemEntry {
                        key_id: Some("orders".into()),
                        resolved_key_id: None,
                        key_version: Some(3),
                        context: Some(BTreeMap::from([("t".into(), "hmac-sha256:00".into())])),
                        context_oversized: None,
                        status: "OK".into(),
                    },
                    ItemEntry {
                        key_id: Some("other".into()),
                        resolved_key_id: None,
                        key_version: None,
                        context: None,
                        context_oversized: Some(OversizedContext {
                            pairs: 70,
                            bytes: 900,
                            digest: "hmac-sha256:01".into(),
                        }),
                        status: "PERMISSION_DENIED".into(),
                    },
                ]),
                status: Some("OK".into()),
                ..Entry::event("Encrypt", "x")
            },
        }
    }

    #[test]
    fn lines_round_trip_and_any_edit_is_detected() {
        let key = AuditKeys::derive(&SecretKey::generate().expect("key")).expect("keys");
        let line = encode_line(&key, &record(7)).expect("encode");
        let back = decode_line(&key, &line).expect("decode");
        assert_eq!(back.record, record(7));
        assert_eq!(back.hash, line_hash(&line));
        assert_eq!(peek_line(&line), Some((7, line_hash(&line))));
        for i in 0..line.len() {
            let mut edited = line.clone();
            edited[i] ^= 0x01;
            assert!(decode_line(&key, &edited).is_err(), "edit at byte {i}");
        }
        let other = AuditKeys::derive(&SecretKey::generate().expect("key")).expect("keys");
        assert_eq!(
            decode_line(&other, &line).unwrap_err(),
            LineError::Unauthentic
        );
    }

    #[test]
    fn a_record_over_the_line_cap_is_cut_down_and_still_authenticates() {
        let keys = AuditKeys::derive(&SecretKey::generate().expect("key")).expect("keys");
        let digests = BTreeMap::from([("tenant".to_owned(), "hmac-sha256:00".to_owned())]);
        let item = ItemEntry {
            key_id: Some("orders".into()),
            resolved_key_id: None,
            key_version: Some(1),
            context: Some(digests.clone()),
            context_oversized: None,
            status: "OK".into(),
        };
        let small = Entry {
            context: Some(digests),
            results: Some(vec![item.clone(); 10]),
            ..Entry::event("EncryptBatch", "")
        };
        let many_items = Entry {
            results: Some(vec![item; 5_000]),
            ..small.clone()
        };
        let long_text = Entry {
            identity: Some("\u{1}".repeat(MAX_LINE_BYTES)),
            detail: Some("é".repeat(MAX_LINE_BYTES)),
            ..many_items.clone()
        };
        for (entry, kept_items) in [(&small, true), (&many_items, true), (&long_text, false)] {
            let mut line = Vec::new();
            append_capped_line(&keys, &mut line, 3, "t", &GENESIS, entry).expect("encode");
            assert!(line.len() <= MAX_LINE_BYTES, "{} bytes", line.len());
            let back = decode_line(&keys, &line).expect("decode").record.entry;
            if entry == &small {
                assert_eq!(&back, entry, "a small record is written as is");
                continue;
            }
            assert_eq!(back.truncated, Some(true));
            assert_eq!(back.context, None);
            assert_eq!(back.results.is_some(), kept_items);
        }
    }

    #[test]
    fn an_oversized_context_has_one_digest_of_all_its_pairs() {
        let keys = AuditKeys::derive(&SecretKey::generate().expect("key")).expect("keys");
        let pairs = [("b", "tenant-42"), ("a", ""), ("c", "x")];
        let one = oversized_context(&keys, pairs);
        let reversed = oversized_context(&keys, pairs.into_iter().rev());
        assert_eq!(one, reversed, "order does not matter");
        assert_eq!((one.pairs, one.bytes), (3, 13));
        assert!(one.digest.starts_with(CONTEXT_DIGEST_PREFIX) && !one.digest.contains("tenant"));
        // Moving a byte from a key to its value changes the digest.
        let moved = oversized_context(&keys, [("b", "tenant-42"), ("a", ""), ("cx", "")]);
        assert_ne!(moved.digest, one.digest);
        assert_ne!(one.digest, context_value_digest(&keys, "tenant-42"));
    }

    #[test]
    fn context_digests_hide_values_but_correlate() {
        let key = AuditKeys::derive(&SecretKey::generate().expect("key")).expect("keys");
        let a = context_value_digest(&key, "tenant-42");
        assert_eq!(a, context_value_digest(&key, "tenant-42"));
        assert_ne!(a, context_value_digest(&key, "tenant-43"));
        assert!(a.starts_with(CONTEXT_DIGEST_PREFIX) && !a.contains("tenant"));
        let tag = key.context.sign(b"tenant-42");
        assert_eq!(a, format!("{CONTEXT_DIGEST_PREFIX}{}", hex::encode(tag)));
    }
}
