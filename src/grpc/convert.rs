//! Conversions between proto messages and domain types, validating at the
//! edge.

use std::collections::HashMap;

use tonic::Status;

use crate::identity::Identity;
use crate::model::{
    ConditionalGrant, ContextConstraint, Grantee, KeyId, KeyMetadata, KeyPurpose, KeyState, Labels,
    Operation, OperationSet,
};
use crate::service::{BatchInput, BatchItem, DataKeySize};
use tresor_crypto::{Context, MacLength};
use tresor_proto::v1 as proto;

/// A validated key id.
pub fn key_id(raw: &str) -> Result<KeyId, Status> {
    Ok(KeyId::parse(raw)?)
}

/// The key a ListKeys page starts after, from the token the previous page
/// gave (none for the first page).
pub fn page_start(token: &str) -> Result<Option<KeyId>, Status> {
    page_start_of(token, KeyId::parse)
}

/// Where a listing's page starts, from the token the previous page gave
/// (none for the first page), read back with `parse`. Tokens are opaque
/// to callers: the hex of the last id listed.
pub fn page_start_of<T>(
    token: &str,
    parse: impl Fn(&str) -> Result<T, crate::error::Error>,
) -> Result<Option<T>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Status::invalid_argument("page_token is not one this server issued");
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    parse(&text).map(Some).map_err(|_| invalid())
}

/// The token of the page after one that ended at the id `last`.
pub fn page_token(last: &str) -> String {
    hex::encode(last)
}

/// A refusal of a request field's value: an invalid argument says which
/// field; any other error is answered as it is.
pub fn in_field(field: &str) -> impl Fn(crate::error::Error) -> Status + '_ {
    move |e| match e {
        crate::error::Error::InvalidArgument(why) => {
            Status::invalid_argument(format!("{field}: {why}"))
        }
        other => Status::from(other),
    }
}

/// A validated identity named in a request field, to be given access (an
/// owner, a grantee): it must be one a certificate can present.
pub fn identity(field: &str, raw: &str) -> Result<Identity, Status> {
    Identity::parse(raw).map_err(|e| Status::invalid_argument(format!("{field}: {e}")))
}

/// An identity named in a request field to be taken access from (the
/// grantee of a revocation): also a legacy name an older release stored.
pub fn stored_identity(field: &str, raw: &str) -> Result<Identity, Status> {
    Identity::parse_stored(raw).map_err(|e| Status::invalid_argument(format!("{field}: {e}")))
}

/// GenerateDataKey's `key_bytes`: 0 or 32 for AES-256, 16 for AES-128.
pub fn data_key_size(key_bytes: u32) -> Result<DataKeySize, Status> {
    DataKeySize::from_requested(key_bytes).ok_or_else(|| {
        Status::invalid_argument(format!(
            "key_bytes is {key_bytes}: give 16 or 32 (or leave it 0 for 32)"
        ))
    })
}

/// The encryption context.
pub fn context(map: HashMap<String, String>) -> Context {
    Context::from(map)
}

/// One batch item (its context taken out of the request), or why its key
/// id is invalid: that item's answer, not the whole call's.
pub fn batch_item<'a>(
    key_id: &str,
    data: &'a [u8],
    context: &mut HashMap<String, String>,
) -> BatchInput<'a> {
    Ok(BatchItem {
        key_id: KeyId::parse(key_id)?,
        data,
        context: Context::from(std::mem::take(context)),
    })
}

/// A failed batch item's status, as the single call would have answered.
pub fn item_status(status: &Status) -> proto::ItemStatus {
    proto::ItemStatus {
        code: status.code().into(),
        message: status.message().to_owned(),
    }
}

fn operation(raw: i32) -> Result<Operation, Status> {
    match proto::Operation::try_from(raw) {
        Ok(proto::Operation::Encrypt) => Ok(Operation::Encrypt),
        Ok(proto::Operation::Decrypt) => Ok(Operation::Decrypt),
        Ok(proto::Operation::Reencrypt) => Ok(Operation::ReEncrypt),
        Ok(proto::Operation::GenerateDataKey) => Ok(Operation::GenerateDataKey),
        Ok(proto::Operation::Mac) => Ok(Operation::Mac),
        Ok(proto::Operation::VerifyMac) => Ok(Operation::VerifyMac),
        Ok(proto::Operation::Unspecified) | Err(_) => Err(Status::invalid_argument(format!(
            "operations: {raw} is not a known operation"
        ))),
    }
}

/// A set of operations from their proto values.
pub fn operations(raw: &[i32]) -> Result<OperationSet, Status> {
    raw.iter().map(|op| operation(*op)).collect()
}

fn proto_operation(op: Operation) -> proto::Operation {
    match op {
        Operation::Encrypt => proto::Operation::Encrypt,
        Operation::Decrypt => proto::Operation::Decrypt,
        Operation::ReEncrypt => proto::Operation::Reencrypt,
        Operation::GenerateDataKey => proto::Operation::GenerateDataKey,
        Operation::Mac => proto::Operation::Mac,
        Operation::VerifyMac => proto::Operation::VerifyMac,
    }
}

/// A conditional grant as KeyInfo shows it.
fn conditional_grant(grant: &ConditionalGrant, now: crate::model::UnixTime) -> proto::Grant {
    let (context_equals, context_subset) = match &grant.constraint {
        ContextConstraint::None => Default::default(),
        ContextConstraint::Equals(pairs) => (pairs.clone().into_iter().collect(), HashMap::new()),
        ContextConstraint::Subset(pairs) => (HashMap::new(), pairs.clone().into_iter().collect()),
    };
    proto::Grant {
        grantee: grant.grantee.to_string(),
        operations: grant
            .operations
            .iter()
            .map(|op| proto_operation(op).into())
            .collect(),
        context_equals,
        context_subset,
        expires_at_unix: grant.expires_at.unwrap_or(0),
        expired: grant.is_expired(now),
    }
}

/// A CreateGrant request's grant, validated: grantee (identity or
/// pattern), operations, constraint and expiry.
pub fn grant(req: &proto::GrantRequest) -> Result<ConditionalGrant, Status> {
    let grantee = Grantee::parse(&req.grantee).map_err(in_field("grantee"))?;
    let constraint = ContextConstraint::from_fields(
        req.context_equals.clone().into_iter().collect(),
        req.context_subset.clone().into_iter().collect(),
    )?;
    if req.expires_at_unix < 0 {
        return Err(Status::invalid_argument("expires_at_unix is negative"));
    }
    Ok(ConditionalGrant {
        grantee,
        operations: operations(&req.operations)?,
        constraint,
        expires_at: (req.expires_at_unix != 0).then_some(req.expires_at_unix),
    })
}

/// A RevokeGrant request's grantee: a pattern, or an identity as stored
/// (also a legacy name an older release kept); no constraint or expiry.
pub fn revoked_grantee(req: &proto::GrantRequest) -> Result<Grantee, Status> {
    if !req.context_equals.is_empty() || !req.context_subset.is_empty() || req.expires_at_unix != 0
    {
        return Err(Status::invalid_argument(
            "RevokeGrant takes no constraint or expiry: it revokes from every grant of the grantee",
        ));
    }
    match Grantee::parse(&req.grantee) {
        Ok(grantee) => Ok(grantee),
        Err(_) => Ok(Grantee::Exact(stored_identity("grantee", &req.grantee)?)),
    }
}

/// CreateKey's purpose: unspecified is ENCRYPT_DECRYPT.
pub fn key_purpose(raw: i32) -> Result<KeyPurpose, Status> {
    match proto::KeyPurpose::try_from(raw) {
        Ok(proto::KeyPurpose::Unspecified | proto::KeyPurpose::EncryptDecrypt) => {
            Ok(KeyPurpose::EncryptDecrypt)
        }
        Ok(proto::KeyPurpose::Mac) => Ok(KeyPurpose::Mac),
        Ok(proto::KeyPurpose::Deterministic) => Ok(KeyPurpose::Deterministic),
        Err(_) => Err(Status::invalid_argument(format!(
            "purpose: {raw} is not a known key purpose"
        ))),
    }
}

fn proto_purpose(purpose: KeyPurpose) -> proto::KeyPurpose {
    match purpose {
        KeyPurpose::EncryptDecrypt => proto::KeyPurpose::EncryptDecrypt,
        KeyPurpose::Mac => proto::KeyPurpose::Mac,
        KeyPurpose::Deterministic => proto::KeyPurpose::Deterministic,
    }
}

/// Validated labels (or a label selector) from a request field.
pub fn labels(field: &str, map: HashMap<String, String>) -> Result<Labels, Status> {
    Labels::parse(map).map_err(in_field(field))
}

/// MAC token length from `truncate_bytes` (0 means 32).
pub fn mac_length(truncate_bytes: u32) -> Result<MacLength, Status> {
    Ok(mac_length_of_item(truncate_bytes)?)
}

/// [`mac_length`] for a batch item, whose refusal is the item's answer.
pub fn mac_length_of_item(truncate_bytes: u32) -> Result<MacLength, crate::error::Error> {
    match truncate_bytes {
        0 => Ok(MacLength::FULL),
        n => MacLength::new(n).ok_or_else(|| {
            crate::error::Error::InvalidArgument(format!(
                "truncate_bytes is {n}: give 4 to 32 (or leave it 0 for 32)"
            ))
        }),
    }
}

/// Key metadata as the API shows it.
pub fn key_info(key: &KeyMetadata, now: crate::model::UnixTime) -> proto::KeyInfo {
    let state = match key.state {
        KeyState::Enabled => proto::KeyState::Enabled,
        KeyState::Disabled => proto::KeyState::Disabled,
        KeyState::PendingDeletion { .. } => proto::KeyState::PendingDeletion,
    };
    proto::KeyInfo {
        key_id: key.id.to_string(),
        owner: key.owner.to_string(),
        state: state.into(),
        primary_version: key.primary_version.get(),
        min_decryption_version: key.min_decryption_version.get(),
        versions: key
            .versions
            .iter()
            .map(|v| proto::KeyVersion {
                version: v.version.get(),
                created_at_unix: v.created_at,
                destroyed_at_unix: v.destroyed_at.unwrap_or(0),
            })
            .collect(),
        created_at_unix: key.created_at,
        deletion_at_unix: key.deletion_at().unwrap_or(0),
        description: key.description.clone(),
        grants: key
            .grants
            .iter()
            .map(|(grantee, ops)| proto::Grant {
                grantee: grantee.to_string(),
                operations: ops.iter().map(|op| proto_operation(op).into()).collect(),
                ..Default::default()
            })
            .chain(
                key.conditional_grants
                    .iter()
                    .map(|grant| conditional_grant(grant, now)),
            )
            .collect(),
        rotation_period_seconds: key
            .rotation_period
            .map_or(0, |period| u64::from(period.secs())),
        next_rotation_at_unix: key.next_rotation_at().unwrap_or(0),
        purpose: proto_purpose(key.purpose).into(),
        labels: key
            .labels
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
}
