"""Protobuf messages to the SDK's values (types.py), and back for requests."""

from __future__ import annotations

from ._generated import tresor_pb2 as pb
from .types import (
    AliasInfo,
    AuditLogReport,
    DataKey,
    DecryptedDataKey,
    DecryptResult,
    EncryptResult,
    Grant,
    KeyInfo,
    KeyPurpose,
    KeyState,
    KeyVersionInfo,
    ListKeysPage,
    MacResult,
    Operation,
    RoleBinding,
    SealStatus,
    ServerCertificate,
    VerifyMacResult,
    WrappedKey,
)


def _enum_or_unspecified(kind: type[KeyState] | type[KeyPurpose], value: int) -> int:
    return value if value in kind._value2member_map_ else 0


def encrypted(m: pb.EncryptResponse) -> EncryptResult:
    """EncryptResponse (also ReEncrypt's answer)."""
    return EncryptResult(ciphertext=m.ciphertext, key_version=m.key_version, key_id=m.key_id)


def decrypted(m: pb.DecryptResponse) -> DecryptResult:
    """DecryptResponse."""
    return DecryptResult(plaintext=m.plaintext, key_version=m.key_version, key_id=m.key_id)


def data_key(m: pb.GenerateDataKeyResponse) -> DataKey:
    """GenerateDataKeyResponse."""
    return DataKey(
        plaintext_key=m.plaintext_key,
        wrapped_key=m.wrapped_key,
        key_version=m.key_version,
        key_id=m.key_id,
    )


def wrapped_data_key(m: pb.GenerateDataKeyWithoutPlaintextResponse) -> WrappedKey:
    """GenerateDataKeyWithoutPlaintextResponse."""
    return WrappedKey(wrapped_key=m.wrapped_key, key_version=m.key_version, key_id=m.key_id)


def decrypted_data_key(m: pb.DecryptDataKeyResponse) -> DecryptedDataKey:
    """DecryptDataKeyResponse."""
    return DecryptedDataKey(
        plaintext_key=m.plaintext_key, key_version=m.key_version, key_id=m.key_id
    )


def mac(m: pb.MacResponse) -> MacResult:
    """MacResponse."""
    return MacResult(mac=m.mac, key_version=m.key_version, key_id=m.key_id)


def verify_mac(m: pb.VerifyMacResponse) -> VerifyMacResult:
    """VerifyMacResponse."""
    return VerifyMacResult(valid=m.valid, key_version=m.key_version, key_id=m.key_id)


def mac_all_versions(m: pb.MacAllVersionsResponse) -> list[MacResult]:
    """MacAllVersionsResponse: primary version first."""
    return [mac(one) for one in m.macs]


def operations(values: object) -> tuple[Operation, ...]:
    """Repeated Operation values this SDK knows (newer ones are left out)."""
    known = Operation._value2member_map_
    return tuple(Operation(int(v)) for v in values if int(v) in known)  # type: ignore[attr-defined]


def grant(m: pb.Grant) -> Grant:
    """Grant."""
    return Grant(
        grantee=m.grantee,
        operations=operations(m.operations),
        context_equals=dict(m.context_equals),
        context_subset=dict(m.context_subset),
        expires_at_unix=m.expires_at_unix,
        expired=m.expired,
    )


def key_info(m: pb.KeyInfo) -> KeyInfo:
    """KeyInfo."""
    return KeyInfo(
        key_id=m.key_id,
        owner=m.owner,
        state=KeyState(_enum_or_unspecified(KeyState, m.state)),
        primary_version=m.primary_version,
        min_decryption_version=m.min_decryption_version,
        versions=tuple(
            KeyVersionInfo(
                version=v.version,
                created_at_unix=v.created_at_unix,
                destroyed_at_unix=v.destroyed_at_unix,
            )
            for v in m.versions
        ),
        created_at_unix=m.created_at_unix,
        deletion_at_unix=m.deletion_at_unix,
        description=m.description,
        grants=tuple(grant(g) for g in m.grants),
        rotation_period_seconds=m.rotation_period_seconds,
        next_rotation_at_unix=m.next_rotation_at_unix,
        purpose=KeyPurpose(_enum_or_unspecified(KeyPurpose, m.purpose)),
        labels=dict(m.labels),
    )


def list_keys_page(m: pb.ListKeysResponse) -> ListKeysPage:
    """ListKeysResponse."""
    return ListKeysPage(keys=tuple(key_info(k) for k in m.keys), next_page_token=m.next_page_token)


def alias_info(m: pb.AliasInfo) -> AliasInfo:
    """AliasInfo."""
    return AliasInfo(
        alias=m.alias,
        key_id=m.key_id,
        created_at_unix=m.created_at_unix,
        updated_at_unix=m.updated_at_unix,
    )


def role_binding(m: pb.RoleBinding) -> RoleBinding:
    """RoleBinding."""
    return RoleBinding(
        role=m.role,
        identity=m.identity,
        created_at_unix=m.created_at_unix,
        created_by=m.created_by,
    )


def role_bindings(m: pb.ListRoleBindingsResponse) -> list[RoleBinding]:
    """ListRoleBindingsResponse."""
    return [role_binding(b) for b in m.bindings]


def seal_status(m: pb.SealStatus) -> SealStatus:
    """SealStatus."""
    cert = m.server_certificate
    return SealStatus(
        sealed=m.sealed,
        key_count=m.key_count,
        server_version=m.server_version,
        master_key=m.master_key,
        root_key_generation=m.root_key_generation,
        root_rotation_in_progress=m.root_rotation_in_progress,
        root_rotation_rewrapped=m.root_rotation_rewrapped,
        root_rotation_total=m.root_rotation_total,
        unseal_quorum=m.unseal_quorum,
        unseal_approvals=m.unseal_approvals,
        unseal_approved_by=tuple(m.unseal_approved_by),
        unseal_window_remaining_seconds=m.unseal_window_remaining_seconds,
        unseal_token_required=m.unseal_token_required,
        server_certificate=ServerCertificate(
            subject=cert.subject,
            serial=cert.serial,
            not_before_unix=cert.not_before_unix,
            not_after_unix=cert.not_after_unix,
        )
        if m.HasField("server_certificate")
        else None,
    )


def audit_log_report(m: pb.AuditLogReport) -> AuditLogReport:
    """AuditLogReport."""
    return AuditLogReport(
        intact=m.intact,
        files=m.files,
        records=m.records,
        first_record=m.first_record,
        last_record=m.last_record,
        problem=m.problem,
    )


def master_key(m: pb.RotateMasterKeyResponse) -> str:
    """RotateMasterKeyResponse: the master key now wrapping the root key."""
    return m.master_key


def nothing(_: object) -> None:
    """An empty answer."""
    return None
