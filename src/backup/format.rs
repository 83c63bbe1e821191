//! Backup files: a versioned, integrity-protected copy of a keystore
//! snapshot. The only place that knows the backup layout.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "TRESORBK"
//! 8       4     format version, u32 big-endian (1)
//! 12      8     body length n, u64 big-endian
//! 20      n     body: protobuf BackupBody (root record, key records,
//!               version records, creation time), the store's own encodings
//! 20+n    32    HMAC-SHA256 over bytes 0..20+n, key derived (HKDF) from the
//!               root key with the label "tresor backup v1"
//! ```
//!
//! A backup holds only what the keystore holds: metadata and key material
//! wrapped by the root key, the root key wrapped by the master key. It is as
//! safe at rest as the keystore, and only someone with the master key can
//! check its tag or use it.

use prost::Message;

use crate::error::StoreError;
use crate::model::KeyId;
use crate::store::{Snapshot, records};
use tresor_crypto::{self as crypto, MAC_LEN, SecretKey};

const MAGIC: &[u8; 8] = b"TRESORBK";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const MAC_LABEL: &[u8] = b"tresor backup v1";
const HEADER_LEN: usize = 20;

#[derive(Clone, PartialEq, Message)]
struct VersionEntry {
    #[prost(string, tag = "1")]
    key_id: String,
    #[prost(bytes = "vec", tag = "2")]
    record: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct BackupBody {
    #[prost(int64, tag = "1")]
    created_at: i64,
    #[prost(bytes = "vec", tag = "2")]
    root: Vec<u8>,
    #[prost(bytes = "vec", repeated, tag = "3")]
    keys: Vec<Vec<u8>>,
    #[prost(message, repeated, tag = "4")]
    versions: Vec<VersionEntry>,
}

/// Why a backup file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// Not a tresor backup, cut short, or of an unknown format version.
    #[error("not a readable tresor backup: {0}")]
    Malformed(String),
    /// The integrity tag does not match: the file was altered, or it belongs
    /// to a keystore with another root key.
    #[error(
        "the backup's integrity check failed: the file was altered or belongs to another keystore"
    )]
    Tampered,
    /// A record inside is corrupt.
    #[error("backup record: {0}")]
    Record(#[from] StoreError),
}

/// A backup, parsed but not yet checked.
#[derive(Debug)]
pub struct UncheckedBackup<'a> {
    /// The snapshot inside.
    pub snapshot: Snapshot,
    /// When it was made (Unix seconds).
    pub created_at: i64,
    signed: &'a [u8],
    tag: &'a [u8],
}

impl UncheckedBackup<'_> {
    /// Checks the tag with the root key the backup's root record unwraps
    /// to (the current generation's).
    pub fn verify(self, root_key: &SecretKey) -> Result<Snapshot, BackupError> {
        crypto::verify_mac(root_key, MAC_LABEL, self.signed, self.tag)
            .map_err(|_| BackupError::Tampered)?;
        Ok(self.snapshot)
    }
}

/// Encodes `snapshot` as a backup tagged under `root_key`.
pub fn encode(
    snapshot: &Snapshot,
    root_key: &SecretKey,
    created_at: i64,
) -> Result<Vec<u8>, crate::error::CryptoError> {
    let body = BackupBody {
        created_at,
        root: records::encode_root(&snapshot.root),
        keys: snapshot.keys.iter().map(records::encode_key).collect(),
        versions: snapshot
            .versions
            .iter()
            .map(|(id, version)| VersionEntry {
                key_id: id.as_str().to_owned(),
                record: records::encode_version(version),
            })
            .collect(),
    }
    .encode_to_vec();
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + MAC_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    out.extend_from_slice(&body);
    let tag = crypto::mac(root_key, MAC_LABEL, &out)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Parses a backup without checking its tag (the caller needs the root key
/// from inside it first).
pub fn parse(bytes: &[u8]) -> Result<UncheckedBackup<'_>, BackupError> {
    let malformed = |why: &str| BackupError::Malformed(why.to_owned());
    if bytes.len() < HEADER_LEN + MAC_LEN || &bytes[..8] != MAGIC {
        return Err(malformed("missing the TRESORBK header"));
    }
    let version = u32::from_be_bytes(bytes[8..12].try_into().map_err(|_| malformed("header"))?);
    if version != FORMAT_VERSION {
        return Err(BackupError::Malformed(format!(
            "format version {version}; this tresor reads version {FORMAT_VERSION}"
        )));
    }
    let len = u64::from_be_bytes(bytes[12..20].try_into().map_err(|_| malformed("header"))?);
    let len = usize::try_from(len).map_err(|_| malformed("body length"))?;
    let end = HEADER_LEN
        .checked_add(len)
        .filter(|end| end.checked_add(MAC_LEN) == Some(bytes.len()))
        .ok_or_else(|| malformed("the file is cut short or has trailing bytes"))?;
    let body = BackupBody::decode(&bytes[HEADER_LEN..end])
        .map_err(|e| BackupError::Malformed(e.to_string()))?;
    let snapshot = Snapshot {
        root: records::decode_root(&body.root)?,
        keys: body
            .keys
            .iter()
            .map(|record| records::decode_key(record))
            .collect::<Result<_, _>>()?,
        versions: body
            .versions
            .iter()
            .map(|entry| {
                let id = KeyId::parse(&entry.key_id)
                    .map_err(|e| StoreError::Corrupt(format!("backup version entry: {e}")))?;
                Ok((id, records::decode_version(&entry.record)?))
            })
            .collect::<Result<_, StoreError>>()?,
    };
    Ok(UncheckedBackup {
        snapshot,
        created_at: body.created_at,
        signed: &bytes[..end],
        tag: &bytes[end..],
    })
}
