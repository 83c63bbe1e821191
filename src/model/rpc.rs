//! The RPCs of tresor's gRPC services, by name: what audit records,
//! metrics and rate limits call each call. One enum instead of string
//! literals, so a misspelt operation does not compile and a new RPC is
//! placed (data plane or control plane, state-changing or not) where it is
//! declared.

use std::fmt;

/// One RPC of `tresor.v1.Crypto` or `tresor.v1.Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rpc {
    /// `Crypto/Encrypt`.
    Encrypt,
    /// `Crypto/Decrypt`.
    Decrypt,
    /// `Crypto/ReEncrypt`.
    ReEncrypt,
    /// `Crypto/GenerateDataKey`.
    GenerateDataKey,
    /// `Crypto/GenerateDataKeyWithoutPlaintext`.
    GenerateDataKeyWithoutPlaintext,
    /// `Crypto/DecryptDataKey`.
    DecryptDataKey,
    /// `Crypto/EncryptBatch`.
    EncryptBatch,
    /// `Crypto/DecryptBatch`.
    DecryptBatch,
    /// `Crypto/ReEncryptBatch`.
    ReEncryptBatch,
    /// `Crypto/Mac`.
    Mac,
    /// `Crypto/VerifyMac`.
    VerifyMac,
    /// `Crypto/MacAllVersions`.
    MacAllVersions,
    /// `Crypto/MacBatch`.
    MacBatch,
    /// `Admin/CreateKey`.
    CreateKey,
    /// `Admin/RotateKey`.
    RotateKey,
    /// `Admin/GetKey`.
    GetKey,
    /// `Admin/DisableKey`.
    DisableKey,
    /// `Admin/EnableKey`.
    EnableKey,
    /// `Admin/SetMinDecryptionVersion`.
    SetMinDecryptionVersion,
    /// `Admin/SetRotationPeriod`.
    SetRotationPeriod,
    /// `Admin/DestroyKeyVersion`.
    DestroyKeyVersion,
    /// `Admin/ListKeys`.
    ListKeys,
    /// `Admin/SetKeyLabels`.
    SetKeyLabels,
    /// `Admin/TransferKeyOwnership`.
    TransferKeyOwnership,
    /// `Admin/UpdateKeyDescription`.
    UpdateKeyDescription,
    /// `Admin/CreateAlias`.
    CreateAlias,
    /// `Admin/UpdateAlias`.
    UpdateAlias,
    /// `Admin/DeleteAlias`.
    DeleteAlias,
    /// `Admin/ListAliases`.
    ListAliases,
    /// `Admin/ScheduleKeyDeletion`.
    ScheduleKeyDeletion,
    /// `Admin/CancelKeyDeletion`.
    CancelKeyDeletion,
    /// `Admin/CreateGrant`.
    CreateGrant,
    /// `Admin/RevokeGrant`.
    RevokeGrant,
    /// `Admin/Seal`.
    Seal,
    /// `Admin/Unseal`.
    Unseal,
    /// `Admin/RotateMasterKey`.
    RotateMasterKey,
    /// `Admin/RotateRootKey`.
    RotateRootKey,
    /// `Admin/VerifyAuditLog`.
    VerifyAuditLog,
    /// `Admin/GetStatus`.
    GetStatus,
    /// `Admin/CreateBackup`.
    CreateBackup,
    /// `Admin/AddRoleBinding`.
    AddRoleBinding,
    /// `Admin/RemoveRoleBinding`.
    RemoveRoleBinding,
    /// `Admin/ListRoleBindings`.
    ListRoleBindings,
}

impl Rpc {
    /// Every RPC.
    pub const ALL: [Self; 43] = [
        Self::Encrypt,
        Self::Decrypt,
        Self::ReEncrypt,
        Self::GenerateDataKey,
        Self::GenerateDataKeyWithoutPlaintext,
        Self::DecryptDataKey,
        Self::EncryptBatch,
        Self::DecryptBatch,
        Self::ReEncryptBatch,
        Self::Mac,
        Self::VerifyMac,
        Self::MacAllVersions,
        Self::MacBatch,
        Self::CreateKey,
        Self::RotateKey,
        Self::GetKey,
        Self::DisableKey,
        Self::EnableKey,
        Self::SetMinDecryptionVersion,
        Self::SetRotationPeriod,
        Self::DestroyKeyVersion,
        Self::ListKeys,
        Self::SetKeyLabels,
        Self::TransferKeyOwnership,
        Self::UpdateKeyDescription,
        Self::CreateAlias,
        Self::UpdateAlias,
        Self::DeleteAlias,
        Self::ListAliases,
        Self::ScheduleKeyDeletion,
        Self::CancelKeyDeletion,
        Self::CreateGrant,
        Self::RevokeGrant,
        Self::Seal,
        Self::Unseal,
        Self::RotateMasterKey,
        Self::RotateRootKey,
        Self::VerifyAuditLog,
        Self::GetStatus,
        Self::CreateBackup,
        Self::AddRoleBinding,
        Self::RemoveRoleBinding,
        Self::ListRoleBindings,
    ];

    /// The gRPC method name, as audit records and metrics show it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Encrypt => "Encrypt",
            Self::Decrypt => "Decrypt",
            Self::ReEncrypt => "ReEncrypt",
            Self::GenerateDataKey => "GenerateDataKey",
            Self::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            Self::DecryptDataKey => "DecryptDataKey",
            Self::EncryptBatch => "EncryptBatch",
            Self::DecryptBatch => "DecryptBatch",
            Self::ReEncryptBatch => "ReEncryptBatch",
            Self::Mac => "Mac",
            Self::VerifyMac => "VerifyMac",
            Self::MacAllVersions => "MacAllVersions",
            Self::MacBatch => "MacBatch",
            Self::CreateKey => "CreateKey",
            Self::RotateKey => "RotateKey",
            Self::GetKey => "GetKey",
            Self::DisableKey => "DisableKey",
            Self::EnableKey => "EnableKey",
            Self::SetMinDecryptionVersion => "SetMinDecryptionVersion",
            Self::SetRotationPeriod => "SetRotationPeriod",
            Self::DestroyKeyVersion => "DestroyKeyVersion",
            Self::ListKeys => "ListKeys",
            Self::SetKeyLabels => "SetKeyLabels",
            Self::TransferKeyOwnership => "TransferKeyOwnership",
            Self::UpdateKeyDescription => "UpdateKeyDescription",
            Self::CreateAlias => "CreateAlias",
            Self::UpdateAlias => "UpdateAlias",
            Self::DeleteAlias => "DeleteAlias",
            Self::ListAliases => "ListAliases",
            Self::ScheduleKeyDeletion => "ScheduleKeyDeletion",
            Self::CancelKeyDeletion => "CancelKeyDeletion",
            Self::CreateGrant => "CreateGrant",
            Self::RevokeGrant => "RevokeGrant",
            Self::Seal => "Seal",
            Self::Unseal => "Unseal",
            Self::RotateMasterKey => "RotateMasterKey",
            Self::RotateRootKey => "RotateRootKey",
            Self::VerifyAuditLog => "VerifyAuditLog",
            Self::GetStatus => "GetStatus",
            Self::CreateBackup => "CreateBackup",
            Self::AddRoleBinding => "AddRoleBinding",
            Self::RemoveRoleBinding => "RemoveRoleBinding",
            Self::ListRoleBindings => "ListRoleBindings",
        }
    }

    /// The full gRPC method name, `tresor.v1.Crypto/Encrypt` etc. (trace
    /// spans are named so).
    pub fn full_name(self) -> &'static str {
        static FULL_NAMES: std::sync::LazyLock<std::collections::HashMap<Rpc, String>> =
            std::sync::LazyLock::new(|| {
                Rpc::ALL
                    .iter()
                    .map(|rpc| {
                        let service = if rpc.is_data_plane() {
                            "Crypto"
                        } else {
                            "Admin"
                        };
                        (*rpc, format!("tresor.v1.{service}/{}", rpc.name()))
                    })
                    .collect()
            });
        FULL_NAMES.get(&self).map_or("tresor.v1", String::as_str)
    }

    /// A data-plane call (`tresor.v1.Crypto`): rate-limited per identity
    /// by its number of items; every other call is control plane.
    pub fn is_data_plane(self) -> bool {
        matches!(
            self,
            Self::Encrypt
                | Self::Decrypt
                | Self::ReEncrypt
                | Self::GenerateDataKey
                | Self::GenerateDataKeyWithoutPlaintext
                | Self::DecryptDataKey
                | Self::EncryptBatch
                | Self::DecryptBatch
                | Self::ReEncryptBatch
                | Self::Mac
                | Self::VerifyMac
                | Self::MacAllVersions
                | Self::MacBatch
        )
    }

    /// A call the anomaly detector counts as decrypting (each item of a
    /// DecryptBatch is observed on its own).
    pub fn decrypts(self) -> bool {
        matches!(
            self,
            Self::Decrypt
                | Self::DecryptDataKey
                | Self::ReEncrypt
                | Self::DecryptBatch
                | Self::ReEncryptBatch
        )
    }

    /// A control-plane call that changes state: it writes an intent record
    /// to the audit log before the change.
    pub fn changes_state(self) -> bool {
        match self {
            Self::CreateKey
            | Self::RotateKey
            | Self::DisableKey
            | Self::EnableKey
            | Self::SetMinDecryptionVersion
            | Self::DestroyKeyVersion
            | Self::ScheduleKeyDeletion
            | Self::CancelKeyDeletion
            | Self::CreateGrant
            | Self::RevokeGrant
            | Self::SetRotationPeriod
            | Self::SetKeyLabels
            | Self::TransferKeyOwnership
            | Self::UpdateKeyDescription
            | Self::CreateAlias
            | Self::UpdateAlias
            | Self::DeleteAlias
            | Self::Seal
            | Self::Unseal
            | Self::RotateMasterKey
            | Self::RotateRootKey
            | Self::AddRoleBinding
            | Self::RemoveRoleBinding => true,
            Self::Encrypt
            | Self::Decrypt
            | Self::ReEncrypt
            | Self::GenerateDataKey
            | Self::GenerateDataKeyWithoutPlaintext
            | Self::DecryptDataKey
            | Self::EncryptBatch
            | Self::DecryptBatch
            | Self::ReEncryptBatch
            | Self::Mac
            | Self::VerifyMac
            | Self::MacAllVersions
            | Self::MacBatch
            | Self::GetKey
            | Self::ListKeys
            | Self::ListAliases
            | Self::VerifyAuditLog
            | Self::GetStatus
            | Self::CreateBackup
            | Self::ListRoleBindings => false,
        }
    }
}

impl fmt::Display for Rpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_is_listed_once_with_a_distinct_name() {
        let names: std::collections::BTreeSet<_> = Rpc::ALL.iter().map(|rpc| rpc.name()).collect();
        assert_eq!(names.len(), Rpc::ALL.len());
    }

    #[test]
    fn the_proto_declares_exactly_these_rpcs() {
        let proto = include_str!("../../crates/tresor-proto/proto/tresor/v1/tresor.proto");
        let declared: std::collections::BTreeSet<&str> = proto
            .lines()
            .filter_map(|line| line.trim().strip_prefix("rpc "))
            .filter_map(|rest| rest.split('(').next())
            .map(str::trim)
            .collect();
        let known: std::collections::BTreeSet<&str> =
            Rpc::ALL.iter().map(|rpc| rpc.name()).collect();
        assert_eq!(declared, known);
    }

    #[test]
    fn data_plane_calls_never_write_intents() {
        for rpc in Rpc::ALL {
            assert!(!(rpc.is_data_plane() && rpc.changes_state()), "{rpc}");
            assert!(!rpc.decrypts() || rpc.is_data_plane(), "{rpc}");
        }
    }

    #[test]
    fn full_names_name_the_service_each_rpc_is_declared_in() {
        let proto = include_str!("../../crates/tresor-proto/proto/tresor/v1/tresor.proto");
        let mut service = "";
        let mut declared = std::collections::BTreeSet::new();
        for line in proto.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix("service ") {
                service = name.trim_end_matches('{').trim();
            } else if let Some(rest) = line.strip_prefix("rpc ")
                && let Some(name) = rest.split('(').next()
            {
                declared.insert(format!("tresor.v1.{service}/{}", name.trim()));
            }
        }
        let named: std::collections::BTreeSet<String> = Rpc::ALL
            .iter()
            .map(|rpc| rpc.full_name().to_owned())
            .collect();
        assert_eq!(named, declared);
    }
}
