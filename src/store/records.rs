//! On-disk encoding of store records. Protobuf (via prost derive) so that
//! fields can be added later without breaking old keystores; this module is
//! the only place that knows the stored layout.

use std::collections::BTreeMap;

use prost::Message;

use super::{AuditMark, RetiringRoot, RootWrapping, StoredRoot, StoredVersion};
use crate::error::StoreError;
use crate::identity::Identity;
use crate::model::{
    Alias, AliasName, ConditionalGrant, ContextConstraint, Grantee, KeyId, KeyMetadata, KeyPurpose,
    KeyState, KeyVersion, Labels, OperationSet, Role, RoleBinding, RotationPeriod, UnixTime,
    VersionInfo,
};

const STATE_ENABLED: i32 = 1;
const STATE_DISABLED: i32 = 2;
const STATE_PENDING_DELETION: i32 = 3;

#[derive(Clone, PartialEq, Message)]
struct RootRecord {
    #[prost(string, tag = "1")]
    keystore_id: String,
    /// The current master key (older keystores wrote only the provider name).
    #[prost(string, tag = "2")]
    master_key: String,
    #[prost(bytes = "vec", tag = "3")]
    wrapped_root_key: Vec<u8>,
    /// Pending wrapping of an interrupted master-key rotation.
    #[prost(string, tag = "4")]
    pending_master_key: String,
    #[prost(bytes = "vec", tag = "5")]
    pending_wrapped_root_key: Vec<u8>,
    /// Generation of the current root key (0 in old records means 1).
    #[prost(uint32, tag = "6")]
    generation: u32,
    /// A root key being retired by a root-key rotation (0: none).
    #[prost(uint32, tag = "7")]
    retiring_generation: u32,
    #[prost(string, tag = "8")]
    retiring_master_key: String,
    #[prost(bytes = "vec", tag = "9")]
    retiring_wrapped_root_key: Vec<u8>,
    /// The audit key sealed under the current root key (empty: none yet).
    #[prost(bytes = "vec", tag = "10")]
    audit_key: Vec<u8>,
    /// The metadata key sealed under the current root key (empty: none yet).
    #[prost(bytes = "vec", tag = "11")]
    metadata_key: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct AuditMarkRecord {
    #[prost(uint64, tag = "1")]
    sequence: u64,
    #[prost(bytes = "vec", tag = "2")]
    record_hash: Vec<u8>,
}

/// Encodes an audit checkpoint mark.
pub fn encode_audit_mark(mark: &AuditMark) -> Vec<u8> {
    AuditMarkRecord {
        sequence: mark.sequence,
        record_hash: mark.record_hash.clone(),
    }
    .encode_to_vec()
}

/// Decodes an audit checkpoint mark.
pub fn decode_audit_mark(bytes: &[u8]) -> Result<AuditMark, StoreError> {
    let record = AuditMarkRecord::decode(bytes).map_err(|e| corrupt("audit mark", e))?;
    Ok(AuditMark {
        sequence: record.sequence,
        record_hash: record.record_hash,
    })
}

#[derive(Clone, PartialEq, Message)]
struct CursorRecord {
    #[prost(string, tag = "1")]
    key_id: String,
    #[prost(uint32, tag = "2")]
    version: u32,
}

#[derive(Clone, PartialEq, Message)]
struct VersionRecord {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(int64, tag = "2")]
    created_at: i64,
    /// When the DEK was destroyed (0: it exists).
    #[prost(int64, tag = "3")]
    destroyed_at: i64,
}

#[derive(Clone, PartialEq, Message)]
struct GrantRecord {
    #[prost(string, tag = "1")]
    grantee: String,
    #[prost(uint32, tag = "2")]
    operations: u32,
}

/// A grant with a pattern, a context constraint or an expiry.
#[derive(Clone, PartialEq, Message)]
struct ConditionalGrantRecord {
    /// An identity, or a pattern `spiffe://.../*`.
    #[prost(string, tag = "1")]
    grantee: String,
    #[prost(uint32, tag = "2")]
    operations: u32,
    /// 0: no constraint; 1: context equals `context`; 2: context contains
    /// `context`.
    #[prost(uint32, tag = "3")]
    constraint: u32,
    #[prost(btree_map = "string, string", tag = "4")]
    context: BTreeMap<String, String>,
    /// When it expires (0: never).
    #[prost(int64, tag = "5")]
    expires_at: i64,
}

const CONSTRAINT_NONE: u32 = 0;
const CONSTRAINT_EQUALS: u32 = 1;
const CONSTRAINT_SUBSET: u32 = 2;

fn encode_conditional(grant: &ConditionalGrant) -> ConditionalGrantRecord {
    let (constraint, context) = match &grant.constraint {
        ContextConstraint::None => (CONSTRAINT_NONE, BTreeMap::new()),
        ContextConstraint::Equals(pairs) => (CONSTRAINT_EQUALS, pairs.clone()),
        ContextConstraint::Subset(pairs) => (CONSTRAINT_SUBSET, pairs.clone()),
    };
    ConditionalGrantRecord {
        grantee: grant.grantee.to_string(),
        operations: u32::from(grant.operations.bits()),
        constraint,
        context,
        expires_at: grant.expires_at.unwrap_or(0),
    }
}

fn decode_conditional(record: &ConditionalGrantRecord) -> Result<ConditionalGrant, String> {
    let grantee = match Grantee::parse(&record.grantee) {
        Ok(grantee) => grantee,
        // A name an older release accepted (never a pattern).
        Err(_) => {
            Grantee::Exact(Identity::parse_stored(&record.grantee).map_err(|e| e.to_string())?)
        }
    };
    let bits = u8::try_from(record.operations).map_err(|e| e.to_string())?;
    let constraint = match record.constraint {
        CONSTRAINT_NONE => ContextConstraint::None,
        CONSTRAINT_EQUALS => ContextConstraint::Equals(record.context.clone()),
        CONSTRAINT_SUBSET => ContextConstraint::Subset(record.context.clone()),
        other => return Err(format!("unknown grant constraint {other}")),
    };
    Ok(ConditionalGrant {
        grantee,
        operations: OperationSet::from_bits(bits),
        constraint,
        expires_at: (record.expires_at != 0).then_some(record.expires_at),
    })
}

#[derive(Clone, PartialEq, Message)]
struct KeyRecord {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    owner: String,
    #[prost(string, tag = "3")]
    description: String,
    #[prost(int32, tag = "4")]
    state: i32,
    #[prost(int64, tag = "5")]
    deletion_at: i64,
    #[prost(uint32, tag = "6")]
    primary_version: u32,
    #[prost(uint32, tag = "7")]
    min_decryption_version: u32,
    #[prost(message, repeated, tag = "8")]
    versions: Vec<VersionRecord>,
    #[prost(int64, tag = "9")]
    created_at: i64,
    #[prost(message, repeated, tag = "10")]
    grants: Vec<GrantRecord>,
    /// Automatic rotation period in seconds (0: none).
    #[prost(uint32, tag = "11")]
    rotation_period: u32,
    /// The service's integrity tag over the metadata (empty: none).
    #[prost(bytes = "vec", tag = "12")]
    tag: Vec<u8>,
    /// The key's purpose (0, and absent in old records: encryption).
    #[prost(uint32, tag = "13")]
    purpose: u32,
    /// Labels.
    #[prost(btree_map = "string, string", tag = "14")]
    labels: BTreeMap<String, String>,
    /// Grants with a pattern, a constraint or an expiry.
    #[prost(message, repeated, tag = "15")]
    conditional_grants: Vec<ConditionalGrantRecord>,
}

#[derive(Clone, PartialEq, Message)]
struct AliasRecord {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    key_id: String,
    #[prost(int64, tag = "3")]
    created_at: i64,
    #[prost(int64, tag = "4")]
    updated_at: i64,
    /// The service's integrity tag (empty: none).
    #[prost(bytes = "vec", tag = "5")]
    tag: Vec<u8>,
}

/// Encodes an alias.
pub fn encode_alias(alias: &Alias) -> Vec<u8> {
    AliasRecord {
        name: alias.name.as_str().to_owned(),
        key_id: alias.key_id.as_str().to_owned(),
        created_at: alias.created_at,
        updated_at: alias.updated_at,
        tag: alias.tag.clone().unwrap_or_default(),
    }
    .encode_to_vec()
}

/// Decodes an alias.
pub fn decode_alias(bytes: &[u8]) -> Result<Alias, StoreError> {
    let record = AliasRecord::decode(bytes).map_err(|e| corrupt("alias record", e))?;
    let bad = |e: &dyn std::fmt::Display| corrupt(&format!("alias record {}", record.name), e);
    Ok(Alias {
        name: AliasName::parse(&record.name).map_err(|e| bad(&e))?,
        key_id: KeyId::parse(&record.key_id).map_err(|e| bad(&e))?,
        created_at: record.created_at,
        updated_at: record.updated_at,
        tag: (!record.tag.is_empty()).then_some(record.tag),
    })
}

#[derive(Clone, PartialEq, Message)]
struct RoleBindingRecord {
    /// The role's name (`admin`, `security-officer`, `auditor`).
    #[prost(string, tag = "1")]
    role: String,
    /// An identity, or a pattern `spiffe://.../*`.
    #[prost(string, tag = "2")]
    grantee: String,
    #[prost(int64, tag = "3")]
    created_at: i64,
    #[prost(string, tag = "4")]
    created_by: String,
    /// The service's integrity tag (empty: none).
    #[prost(bytes = "vec", tag = "5")]
    tag: Vec<u8>,
}

/// Encodes a role binding.
pub fn encode_role_binding(binding: &RoleBinding) -> Vec<u8> {
    RoleBindingRecord {
        role: binding.role.as_str().to_owned(),
        grantee: binding.grantee.to_string(),
        created_at: binding.created_at,
        created_by: binding.created_by.as_str().to_owned(),
        tag: binding.tag.clone().unwrap_or_default(),
    }
    .encode_to_vec()
}

/// Decodes a role binding.
pub fn decode_role_binding(bytes: &[u8]) -> Result<RoleBinding, StoreError> {
    let record = RoleBindingRecord::decode(bytes).map_err(|e| corrupt("role binding", e))?;
    let bad = |e: &dyn std::fmt::Display| {
        corrupt(
            &format!("role binding {} {}", record.role, record.grantee),
            e,
        )
    };
    Ok(RoleBinding {
        role: Role::parse(&record.role).map_err(|e| bad(&e))?,
        grantee: Grantee::parse(&record.grantee).map_err(|e| bad(&e))?,
        created_at: record.created_at,
        created_by: Identity::parse_stored(&record.created_by).map_err(|e| bad(&e))?,
        tag: (!record.tag.is_empty()).then_some(record.tag),
    })
}

#[derive(Clone, PartialEq, Message)]
struct WrappedDekRecord {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(bytes = "vec", tag = "2")]
    wrapped_dek: Vec<u8>,
    /// Root key generation (0 in old records means 1).
    #[prost(uint32, tag = "3")]
    root_generation: u32,
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

/// Encodes a root record.
pub fn encode_root(root: &StoredRoot) -> Vec<u8> {
    let (pending_master_key, pending_wrapped_root_key) = match &root.pending {
        Some(pending) => (pending.master_key.clone(), pending.wrapped_root_key.clone()),
        None => (String::new(), Vec::new()),
    };
    let (retiring_generation, retiring_master_key, retiring_wrapped_root_key) = match &root.retiring
    {
        Some(retiring) => (
            retiring.generation,
            retiring.wrapping.master_key.clone(),
            retiring.wrapping.wrapped_root_key.clone(),
        ),
        None => (0, String::new(), Vec::new()),
    };
    RootRecord {
        keystore_id: root.keystore_id.clone(),
        master_key: root.current.master_key.clone(),
        wrapped_root_key: root.current.wrapped_root_key.clone(),
        pending_master_key,
        pending_wrapped_root_key,
        generation: root.generation,
        retiring_generation,
        retiring_master_key,
        retiring_wrapped_root_key,
        audit_key: root.audit_key.clone().unwrap_or_default(),
        metadata_key: root.metadata_key.clone().unwrap_or_default(),
    }
    .encode_to_vec()
}

/// Decodes a root record.
pub fn decode_root(bytes: &[u8]) -> Result<StoredRoot, StoreError> {
    let record = RootRecord::decode(bytes).map_err(|e| corrupt("root record", e))?;
    let pending = if record.pending_wrapped_root_key.is_empty() {
        None
    } else {
        Some(RootWrapping {
            master_key: record.pending_master_key,
            wrapped_root_key: record.pending_wrapped_root_key,
        })
    };
    let retiring = if record.retiring_generation == 0 {
        None
    } else {
        Some(RetiringRoot {
            generation: record.retiring_generation,
            wrapping: RootWrapping {
                master_key: record.retiring_master_key,
                wrapped_root_key: record.retiring_wrapped_root_key,
            },
        })
    };
    Ok(StoredRoot {
        keystore_id: record.keystore_id,
        current: RootWrapping {
            master_key: record.master_key,
            wrapped_root_key: record.wrapped_root_key,
        },
        pending,
        generation: record.generation.max(1),
        retiring,
        audit_key: (!record.audit_key.is_empty()).then_some(record.audit_key),
        metadata_key: (!record.metadata_key.is_empty()).then_some(record.metadata_key),
    })
}

/// Encodes a wrapped DEK.
pub fn encode_version(version: &StoredVersion) -> Vec<u8> {
    WrappedDekRecord {
        version: version.version.get(),
        wrapped_dek: version.wrapped_dek.clone(),
        root_generation: version.root_generation,
    }
    .encode_to_vec()
}

/// Decodes a wrapped DEK.
pub fn decode_version(bytes: &[u8]) -> Result<StoredVersion, StoreError> {
    let record = WrappedDekRecord::decode(bytes).map_err(|e| corrupt("version record", e))?;
    Ok(StoredVersion {
        version: KeyVersion::new(record.version).map_err(|e| corrupt("version record", e))?,
        wrapped_dek: record.wrapped_dek,
        root_generation: record.root_generation.max(1),
    })
}

/// Encodes a root-key rotation cursor.
pub fn encode_cursor(cursor: &super::RewrapCursor) -> Vec<u8> {
    CursorRecord {
        key_id: cursor.key_id.as_str().to_owned(),
        version: cursor.version.get(),
    }
    .encode_to_vec()
}

/// Decodes a root-key rotation cursor.
pub fn decode_cursor(bytes: &[u8]) -> Result<super::RewrapCursor, StoreError> {
    let record = CursorRecord::decode(bytes).map_err(|e| corrupt("cursor record", e))?;
    Ok(super::RewrapCursor {
        key_id: KeyId::parse(&record.key_id).map_err(|e| corrupt("cursor record", e))?,
        version: KeyVersion::new(record.version).map_err(|e| corrupt("cursor record", e))?,
    })
}

/// The (key id, version) a version entry key names.
pub fn parse_version_entry_key(entry: &[u8]) -> Result<super::RewrapCursor, StoreError> {
    let bad = || StoreError::Corrupt("version entry key is malformed".into());
    let split = entry.len().checked_sub(5).ok_or_else(bad)?;
    if entry[split] != 0 {
        return Err(bad());
    }
    let id = std::str::from_utf8(&entry[..split]).map_err(|_| bad())?;
    let version: [u8; 4] = entry[split + 1..].try_into().map_err(|_| bad())?;
    Ok(super::RewrapCursor {
        key_id: KeyId::parse(id).map_err(|_| bad())?,
        version: KeyVersion::new(u32::from_be_bytes(version)).map_err(|_| bad())?,
    })
}

/// Encodes key metadata.
pub fn encode_key(meta: &KeyMetadata) -> Vec<u8> {
    let (state, deletion_at) = match meta.state {
        KeyState::Enabled => (STATE_ENABLED, 0),
        KeyState::Disabled => (STATE_DISABLED, 0),
        KeyState::PendingDeletion { deletion_at } => (STATE_PENDING_DELETION, deletion_at),
    };
    KeyRecord {
        id: meta.id.as_str().to_owned(),
        owner: meta.owner.as_str().to_owned(),
        description: meta.description.clone(),
        state,
        deletion_at,
        primary_version: meta.primary_version.get(),
        min_decryption_version: meta.min_decryption_version.get(),
        versions: meta
            .versions
            .iter()
            .map(|v| VersionRecord {
                version: v.version.get(),
                created_at: v.created_at,
                destroyed_at: v.destroyed_at.unwrap_or(0),
            })
            .collect(),
        created_at: meta.created_at,
        grants: meta
            .grants
            .iter()
            .map(|(grantee, ops)| GrantRecord {
                grantee: grantee.as_str().to_owned(),
                operations: u32::from(ops.bits()),
            })
            .collect(),
        rotation_period: meta.rotation_period.map_or(0, RotationPeriod::secs),
        tag: meta.tag.clone().unwrap_or_default(),
        purpose: u32::from(meta.purpose.code()),
        conditional_grants: meta
            .conditional_grants
            .iter()
            .map(encode_conditional)
            .collect(),
        labels: meta
            .labels
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
    .encode_to_vec()
}

/// Decodes key metadata.
pub fn decode_key(bytes: &[u8]) -> Result<KeyMetadata, StoreError> {
    let record = KeyRecord::decode(bytes).map_err(|e| corrupt("key record", e))?;
    let bad = |e: &dyn std::fmt::Display| corrupt(&format!("key record {}", record.id), e);
    let state = match record.state {
        STATE_ENABLED => KeyState::Enabled,
        STATE_DISABLED => KeyState::Disabled,
        STATE_PENDING_DELETION => KeyState::PendingDeletion {
            deletion_at: record.deletion_at,
        },
        other => return Err(bad(&format!("unknown state {other}"))),
    };
    let versions = record
        .versions
        .iter()
        .map(|v| {
            Ok(VersionInfo {
                version: KeyVersion::new(v.version).map_err(|e| bad(&e))?,
                created_at: v.created_at,
                destroyed_at: (v.destroyed_at != 0).then_some(v.destroyed_at),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let grants = record
        .grants
        .iter()
        .try_fold(BTreeMap::new(), |mut grants, g| {
            let grantee = Identity::parse_stored(&g.grantee).map_err(|e| bad(&e))?;
            let bits = u8::try_from(g.operations).map_err(|e| bad(&e))?;
            // Two names an older release kept apart (e.g. a DNS name in two
            // cases) are one identity now: it gets both grants' operations.
            let operations: &mut OperationSet = grants.entry(grantee).or_default();
            *operations = operations.union(OperationSet::from_bits(bits));
            Ok::<_, StoreError>(grants)
        })?;
    Ok(KeyMetadata {
        id: KeyId::parse(&record.id).map_err(|e| bad(&e))?,
        owner: Identity::parse_stored(&record.owner).map_err(|e| bad(&e))?,
        description: record.description,
        state,
        primary_version: KeyVersion::new(record.primary_version).map_err(|e| bad(&e))?,
        min_decryption_version: KeyVersion::new(record.min_decryption_version)
            .map_err(|e| bad(&e))?,
        versions,
        created_at: record.created_at,
        grants,
        rotation_period: match record.rotation_period {
            0 => None,
            secs => Some(RotationPeriod::from_secs(u64::from(secs)).map_err(|e| bad(&e))?),
        },
        conditional_grants: {
            let mut grants = record
                .conditional_grants
                .iter()
                .map(|g| decode_conditional(g).map_err(|e| bad(&e)))
                .collect::<Result<Vec<_>, _>>()?;
            // The service writes them sorted by grantee and authorizes by
            // binary search; a stable sort keeps that true whatever was read.
            grants.sort_by(|a, b| a.grantee.cmp(&b.grantee));
            grants
        },
        purpose: KeyPurpose::from_code(record.purpose)
            .ok_or_else(|| bad(&format!("unknown purpose {}", record.purpose)))?,
        labels: Labels::parse(record.labels).map_err(|e| bad(&e))?,
        tag: (!record.tag.is_empty()).then_some(record.tag),
    })
}

/// Index key for a schedule (deletions, automatic rotations): big-endian
/// time then the key id, so a range scan up to `now` finds every due key.
pub fn schedule_index_key(at: UnixTime, id: &KeyId) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + id.as_str().len());
    key.extend_from_slice(&at.to_be_bytes());
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

/// The key id a schedule index key names.
pub fn parse_schedule_index_key(entry: &[u8]) -> Result<KeyId, StoreError> {
    let id = std::str::from_utf8(entry.get(8..).unwrap_or_default())
        .map_err(|e| StoreError::Corrupt(format!("schedule index: {e}")))?;
    KeyId::parse(id).map_err(|e| StoreError::Corrupt(format!("schedule index: {e}")))
}

/// Store key of a version entry: the key id, a NUL separator (never part of
/// a key id) and the big-endian version, so a key's versions are contiguous.
pub fn version_entry_key(id: &KeyId, version: KeyVersion) -> Vec<u8> {
    let mut key = version_prefix(id);
    key.extend_from_slice(&version.get().to_be_bytes());
    key
}

/// Prefix shared by every version entry of a key.
pub fn version_prefix(id: &KeyId) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.as_str().len() + 5);
    key.extend_from_slice(id.as_str().as_bytes());
    key.push(0);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKind;

    /// A key record as an older release could write it: owner and grantees
    /// are whatever its `Identity::parse` accepted.
    fn old_record(owner: &str, grantees: &[(&str, u32)]) -> Vec<u8> {
        KeyRecord {
            id: "old/key".into(),
            owner: owner.into(),
            state: STATE_ENABLED,
            primary_version: 1,
            min_decryption_version: 1,
            versions: vec![VersionRecord {
                version: 1,
                created_at: 1,
                destroyed_at: 0,
            }],
            grants: grantees
                .iter()
                .map(|(grantee, operations)| GrantRecord {
                    grantee: (*grantee).into(),
                    operations: *operations,
                })
                .collect(),
            ..KeyRecord::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn uri_owners_and_grantees_stay_byte_identical() {
        let bytes = old_record("spiffe://unit/owner", &[("spiffe://unit/friend", 3)]);
        let key = decode_key(&bytes).expect("decodes");
        assert_eq!(key.owner.kind(), IdentityKind::Uri);
        assert_eq!(key.owner.as_str(), "spiffe://unit/owner");
        assert_eq!(encode_key(&key), bytes);
    }

    #[test]
    fn names_no_kind_fits_any_more_still_open() {
        let bytes = old_record(
            "billing service",
            &[
                ("Billing.Internal", 1),
                ("billing.internal", 2),
                ("x\u{202E}", 4),
            ],
        );
        let key = decode_key(&bytes).expect("an old keystore opens");
        assert_eq!(key.owner.kind(), IdentityKind::Legacy);
        assert_eq!(key.owner.as_str(), "billing service");
        // The two spellings of one DNS name are one grantee with both grants.
        let dns = Identity::parse("billing.internal").expect("dns");
        assert_eq!(key.grants.get(&dns), Some(&OperationSet::from_bits(3)));
        assert_eq!(key.grants.len(), 2);
    }
}
