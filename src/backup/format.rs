//! Backup files: a versioned, integrity-protected copy of a keystore
//! snapshot. The only place that knows the backup layout.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "TRESORBK"
//! 8       4     format version, u32 big-endian (3; 1 and 2 are still read)
//! 12      8     body length n, u64 big-endian
//! 20      n     body: protobuf BackupBody (root record, key records,
//!               version records, creation time, from version 2 the
//!               alias records, from version 3 the role bindings), the
//!               store's own encodings
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
/// The format version this build writes: 3, which adds role bindings (2
/// added aliases). Versions 1 and 2 are still read; an older reader
/// refuses a newer version rather than restore a keystore without its
/// aliases or role bindings.
pub const FORMAT_VERSION: u32 = 3;
/// Every format version this build reads.
const READABLE_VERSIONS: [u32; 3] = [1, 2, 3];
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
    /// Aliases (format version 2 on).
    #[prost(bytes = "vec", repeated, tag = "5")]
    aliases: Vec<Vec<u8>>,
    /// Role bindings (format version 3 on).
    #[prost(bytes = "vec", repeated, tag = "6")]
    role_bindings: Vec<Vec<u8>>,
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
        aliases: snapshot.aliases.iter().map(records::encode_alias).collect(),
        role_bindings: snapshot
            .role_bindings
            .iter()
            .map(records::encode_role_binding)
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
    if !READABLE_VERSIONS.contains(&version) {
        return Err(BackupError::Malformed(format!(
            "format version {version}; this tresor reads versions 1 to {FORMAT_VERSION}"
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
        aliases: body
            .aliases
            .iter()
            .map(|record| records::decode_alias(record))
            .collect::<Result<_, _>>()?,
        role_bindings: body
            .role_bindings
            .iter()
            .map(|record| records::decode_role_binding(record))
            .collect::<Result<_, _>>()?,
    };
    Ok(UncheckedBackup {
        snapshot,
        created_at: body.created_at,
        signed: &bytes[..end],
        tag: &bytes[end..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::model::{Alias, AliasName, Grantee, Role, RoleBinding};

    fn snapshot(aliases: Vec<Alias>) -> Snapshot {
        Snapshot {
            root: crate::store::conformance::test_root(),
            keys: vec![crate::store::conformance::metadata("k/one")],
            versions: Vec::new(),
            aliases,
            role_bindings: Vec::new(),
        }
    }

    /// A file of an older format `version` as releases before it wrote
    /// one: the same body without the later fields (empty here), under
    /// that header version.
    fn older_version(snapshot: &Snapshot, root_key: &SecretKey, version: u32) -> Vec<u8> {
        let current = encode(snapshot, root_key, 7).expect("encode");
        let mut old = current[..current.len() - MAC_LEN].to_vec();
        old[8..12].copy_from_slice(&version.to_be_bytes());
        let tag = crypto::mac(root_key, MAC_LABEL, &old).expect("mac");
        old.extend_from_slice(&tag);
        old
    }

    #[test]
    fn role_bindings_round_trip_and_version_2_backups_still_open() {
        let root_key = SecretKey::generate().expect("key");
        let mut with_roles = snapshot(Vec::new());
        with_roles.role_bindings = vec![RoleBinding {
            role: Role::SecurityOfficer,
            grantee: Grantee::parse("spiffe://acme.test/ns/sec/*").expect("pattern"),
            created_at: 5,
            created_by: Identity::parse("spiffe://acme.test/admin").expect("id"),
            tag: Some(vec![4; 32]),
        }];
        let bytes = encode(&with_roles, &root_key, 7).expect("encode");
        let opened = parse(&bytes).expect("parse").verify(&root_key);
        assert_eq!(opened.expect("verify"), with_roles);

        let old = older_version(&snapshot(Vec::new()), &root_key, 2);
        let opened = parse(&old).expect("a version 2 backup parses");
        let opened = opened.verify(&root_key).expect("and verifies");
        assert!(opened.role_bindings.is_empty());
        assert_eq!(opened.keys.len(), 1);
    }

    #[test]
    fn aliases_round_trip_and_version_1_backups_still_open() {
        let root_key = SecretKey::generate().expect("key");
        let alias = Alias {
            name: AliasName::parse("alias/one").expect("alias"),
            key_id: crate::model::KeyId::parse("k/one").expect("id"),
            created_at: 1,
            updated_at: 2,
            tag: Some(vec![3; 32]),
        };
        let with_alias = snapshot(vec![alias]);
        let bytes = encode(&with_alias, &root_key, 7).expect("encode");
        assert_eq!(bytes[8..12], FORMAT_VERSION.to_be_bytes());
        let opened = parse(&bytes)
            .expect("parse")
            .verify(&root_key)
            .expect("verify");
        assert_eq!(opened, with_alias);

        let old = older_version(&snapshot(Vec::new()), &root_key, 1);
        let opened = parse(&old).expect("a version 1 backup parses");
        assert_eq!(opened.created_at, 7);
        let opened = opened.verify(&root_key).expect("and verifies");
        assert!(opened.aliases.is_empty());
        assert_eq!(opened.keys.len(), 1);

        let mut future = bytes.clone();
        future[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_be_bytes());
        assert!(matches!(parse(&future), Err(BackupError::Malformed(_))));
    }
}
