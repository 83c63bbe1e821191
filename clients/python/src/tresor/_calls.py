"""The requests of every public call and the conversion of their answers.

Shared by the sync client (`tresor.Client`) and the asyncio client
(`tresor.aio.Client`): each builder returns a `Call` that either client's
transport runs under its retry policy. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Callable, Optional, TypeVar, Union

from . import _convert as cv
from . import _methods as m
from ._context import Context, as_dict
from ._generated import tresor_pb2 as pb
from .errors import ProtocolError, TresorError, from_item_status
from .types import (
    AliasInfo,
    AuditLogReport,
    DataKey,
    DecryptedDataKey,
    DecryptItem,
    DecryptResult,
    EncryptItem,
    EncryptResult,
    KeyInfo,
    KeyPurpose,
    ListKeysPage,
    MacItem,
    MacResult,
    Operation,
    ReEncryptItem,
    RoleBinding,
    SealStatus,
    VerifyMacResult,
    WrappedKey,
)

Resp = TypeVar("Resp")
T = TypeVar("T")
#: What a batch answers per item: the result, or the error the single call would raise.
ItemResult = Union[T, TresorError]


Call = m.Call


def _call(method: m.Method[Resp], request: Any, convert: Callable[[Resp], T]) -> Call[Resp, T]:
    return Call(method, request, lambda resp, _request_id: convert(resp))


def _items_call(
    method: m.Method[Resp],
    request: Any,
    count: int,
    ok_field: str,
    convert: Callable[[Any], T],
) -> Call[Resp, list[ItemResult[T]]]:
    def split(resp: Any, request_id: Optional[str]) -> list[ItemResult[T]]:
        results = resp.results
        if len(results) != count:
            raise ProtocolError(f"the server answered {len(results)} results for {count} items")
        out: list[ItemResult[T]] = []
        for index, result in enumerate(results):
            which = result.WhichOneof("result")
            if which == ok_field:
                out.append(convert(getattr(result, ok_field)))
            elif which == "error":
                out.append(from_item_status(result.error.code, result.error.message, request_id))
            else:
                raise ProtocolError(f"the server answered nothing for item {index}")
        return out

    return Call(method, request, split, wants_request_id=True)


# --- data plane ---------------------------------------------------------------


def encrypt(key_id: str, plaintext: bytes, context: Optional[Context]) -> Call[Any, EncryptResult]:
    """Encrypt."""
    request = pb.EncryptRequest(key_id=key_id, plaintext=plaintext, context=as_dict(context))
    return _call(m.ENCRYPT, request, cv.encrypted)


def decrypt(key_id: str, ciphertext: bytes, context: Optional[Context]) -> Call[Any, DecryptResult]:
    """Decrypt."""
    request = pb.DecryptRequest(key_id=key_id, ciphertext=ciphertext, context=as_dict(context))
    return _call(m.DECRYPT, request, cv.decrypted)


def _re_encrypt_request(item: ReEncryptItem) -> pb.ReEncryptRequest:
    return pb.ReEncryptRequest(
        key_id=item.key_id,
        ciphertext=item.ciphertext,
        context=as_dict(item.context),
        destination_key_id=item.destination_key_id,
        destination_context=as_dict(item.destination_context),
    )


def re_encrypt(item: ReEncryptItem) -> Call[Any, EncryptResult]:
    """ReEncrypt (a key move when the item names a destination)."""
    return _call(m.RE_ENCRYPT, _re_encrypt_request(item), cv.encrypted)


def _data_key_request(key_id: str, context: Optional[Context], key_bytes: int) -> Any:
    return pb.GenerateDataKeyRequest(key_id=key_id, context=as_dict(context), key_bytes=key_bytes)


def generate_data_key(
    key_id: str, context: Optional[Context], key_bytes: int
) -> Call[Any, DataKey]:
    """GenerateDataKey."""
    return _call(m.GENERATE_DATA_KEY, _data_key_request(key_id, context, key_bytes), cv.data_key)


def generate_data_key_without_plaintext(
    key_id: str, context: Optional[Context], key_bytes: int
) -> Call[Any, WrappedKey]:
    """GenerateDataKeyWithoutPlaintext."""
    request = _data_key_request(key_id, context, key_bytes)
    return _call(m.GENERATE_DATA_KEY_WITHOUT_PLAINTEXT, request, cv.wrapped_data_key)


def decrypt_data_key(
    key_id: str, wrapped_key: bytes, context: Optional[Context]
) -> Call[Any, DecryptedDataKey]:
    """DecryptDataKey."""
    request = pb.DecryptDataKeyRequest(
        key_id=key_id, wrapped_key=wrapped_key, context=as_dict(context)
    )
    return _call(m.DECRYPT_DATA_KEY, request, cv.decrypted_data_key)


def encrypt_batch(items: Sequence[EncryptItem]) -> Call[Any, list[ItemResult[EncryptResult]]]:
    """EncryptBatch."""
    request = pb.EncryptBatchRequest(
        items=[
            pb.EncryptRequest(key_id=i.key_id, plaintext=i.plaintext, context=as_dict(i.context))
            for i in items
        ]
    )
    return _items_call(m.ENCRYPT_BATCH, request, len(items), "encrypted", cv.encrypted)


def decrypt_batch(items: Sequence[DecryptItem]) -> Call[Any, list[ItemResult[DecryptResult]]]:
    """DecryptBatch."""
    request = pb.DecryptBatchRequest(
        items=[
            pb.DecryptRequest(key_id=i.key_id, ciphertext=i.ciphertext, context=as_dict(i.context))
            for i in items
        ]
    )
    return _items_call(m.DECRYPT_BATCH, request, len(items), "decrypted", cv.decrypted)


def re_encrypt_batch(items: Sequence[ReEncryptItem]) -> Call[Any, list[ItemResult[EncryptResult]]]:
    """ReEncryptBatch."""
    request = pb.ReEncryptBatchRequest(items=[_re_encrypt_request(i) for i in items])
    return _items_call(m.RE_ENCRYPT_BATCH, request, len(items), "encrypted", cv.encrypted)


def _mac_request(item: MacItem) -> pb.MacRequest:
    return pb.MacRequest(
        key_id=item.key_id,
        message=item.message,
        context=as_dict(item.context),
        truncate_bytes=item.truncate_bytes,
    )


def mac(item: MacItem) -> Call[Any, MacResult]:
    """Mac."""
    return _call(m.MAC, _mac_request(item), cv.mac)


def mac_all_versions(item: MacItem) -> Call[Any, list[MacResult]]:
    """MacAllVersions."""
    return _call(m.MAC_ALL_VERSIONS, _mac_request(item), cv.mac_all_versions)


def verify_mac(
    key_id: str, message: bytes, token: bytes, context: Optional[Context], truncate_bytes: int
) -> Call[Any, VerifyMacResult]:
    """VerifyMac."""
    request = pb.VerifyMacRequest(
        key_id=key_id,
        message=message,
        mac=token,
        context=as_dict(context),
        truncate_bytes=truncate_bytes,
    )
    return _call(m.VERIFY_MAC, request, cv.verify_mac)


def mac_batch(items: Sequence[MacItem]) -> Call[Any, list[ItemResult[MacResult]]]:
    """MacBatch."""
    request = pb.MacBatchRequest(items=[_mac_request(i) for i in items])
    return _items_call(m.MAC_BATCH, request, len(items), "mac", cv.mac)


# --- control plane ------------------------------------------------------------


def create_key(
    key_id: str,
    owner: str,
    description: str,
    rotation_period_seconds: Optional[int],
    purpose: KeyPurpose,
    labels: Optional[Context],
) -> Call[Any, KeyInfo]:
    """CreateKey."""
    request = pb.CreateKeyRequest(
        key_id=key_id,
        owner=owner,
        description=description,
        rotation_period_seconds=rotation_period_seconds or 0,
        purpose=int(purpose),  # type: ignore[arg-type]
        labels=as_dict(labels),
    )
    return _call(m.CREATE_KEY, request, cv.key_info)


def key_call(method: m.Method[Any], key_id: str) -> Call[Any, KeyInfo]:
    """A control-plane call that takes only a key id (RotateKey, GetKey...)."""
    return _call(method, pb.KeyRequest(key_id=key_id), cv.key_info)


def set_min_decryption_version(key_id: str, version: int) -> Call[Any, KeyInfo]:
    """SetMinDecryptionVersion."""
    request = pb.SetMinDecryptionVersionRequest(key_id=key_id, version=version)
    return _call(m.SET_MIN_DECRYPTION_VERSION, request, cv.key_info)


def set_rotation_period(key_id: str, seconds: Optional[int]) -> Call[Any, KeyInfo]:
    """SetRotationPeriod (None or 0: rotated only on request)."""
    request = pb.SetRotationPeriodRequest(key_id=key_id, rotation_period_seconds=seconds or 0)
    return _call(m.SET_ROTATION_PERIOD, request, cv.key_info)


def destroy_key_version(key_id: str, version: int) -> Call[Any, KeyInfo]:
    """DestroyKeyVersion."""
    request = pb.DestroyKeyVersionRequest(key_id=key_id, version=version)
    return _call(m.DESTROY_KEY_VERSION, request, cv.key_info)


def schedule_key_deletion(key_id: str, pending_days: int) -> Call[Any, KeyInfo]:
    """ScheduleKeyDeletion."""
    request = pb.ScheduleKeyDeletionRequest(key_id=key_id, pending_days=pending_days)
    return _call(m.SCHEDULE_KEY_DELETION, request, cv.key_info)


def transfer_key_ownership(key_id: str, new_owner: str) -> Call[Any, KeyInfo]:
    """TransferKeyOwnership."""
    request = pb.TransferKeyOwnershipRequest(key_id=key_id, new_owner=new_owner)
    return _call(m.TRANSFER_KEY_OWNERSHIP, request, cv.key_info)


def update_key_description(key_id: str, description: str) -> Call[Any, KeyInfo]:
    """UpdateKeyDescription."""
    request = pb.UpdateKeyDescriptionRequest(key_id=key_id, description=description)
    return _call(m.UPDATE_KEY_DESCRIPTION, request, cv.key_info)


def set_key_labels(key_id: str, labels: Optional[Context]) -> Call[Any, KeyInfo]:
    """SetKeyLabels."""
    request = pb.SetKeyLabelsRequest(key_id=key_id, labels=as_dict(labels))
    return _call(m.SET_KEY_LABELS, request, cv.key_info)


def list_keys_page(
    prefix: str, page_size: int, page_token: str, label_selector: Optional[Context]
) -> Call[Any, ListKeysPage]:
    """ListKeys (one page)."""
    request = pb.ListKeysRequest(
        prefix=prefix,
        page_size=page_size,
        page_token=page_token,
        label_selector=as_dict(label_selector),
    )
    return _call(m.LIST_KEYS, request, cv.list_keys_page)


def _grant_request(
    key_id: str,
    grantee: str,
    operations: Iterable[Operation],
    context_equals: Optional[Context] = None,
    context_subset: Optional[Context] = None,
    expires_at_unix: int = 0,
) -> pb.GrantRequest:
    return pb.GrantRequest(
        key_id=key_id,
        grantee=grantee,
        operations=[int(op) for op in operations],  # type: ignore[misc]
        context_equals=as_dict(context_equals),
        context_subset=as_dict(context_subset),
        expires_at_unix=expires_at_unix,
    )


def create_grant(
    key_id: str,
    grantee: str,
    operations: Iterable[Operation],
    context_equals: Optional[Context],
    context_subset: Optional[Context],
    expires_at_unix: int,
) -> Call[Any, KeyInfo]:
    """CreateGrant."""
    request = _grant_request(
        key_id, grantee, operations, context_equals, context_subset, expires_at_unix
    )
    return _call(m.CREATE_GRANT, request, cv.key_info)


def revoke_grant(key_id: str, grantee: str, operations: Iterable[Operation]) -> Call[Any, KeyInfo]:
    """RevokeGrant (no operations: all of them)."""
    return _call(m.REVOKE_GRANT, _grant_request(key_id, grantee, operations), cv.key_info)


def alias_call(method: m.Method[Any], alias: str, key_id: str) -> Call[Any, AliasInfo]:
    """CreateAlias or UpdateAlias."""
    return _call(method, pb.AliasRequest(alias=alias, key_id=key_id), cv.alias_info)


def delete_alias(alias: str) -> Call[Any, None]:
    """DeleteAlias."""
    return _call(m.DELETE_ALIAS, pb.DeleteAliasRequest(alias=alias), cv.nothing)


def list_aliases_page(prefix: str, page_token: str) -> Call[Any, tuple[list[AliasInfo], str]]:
    """ListAliases (one page): the aliases and the next page's token."""
    request = pb.ListAliasesRequest(prefix=prefix, page_token=page_token)
    return _call(
        m.LIST_ALIASES,
        request,
        lambda r: ([cv.alias_info(a) for a in r.aliases], r.next_page_token),
    )


def add_role_binding(role: str, identity: str) -> Call[Any, RoleBinding]:
    """AddRoleBinding."""
    request = pb.RoleBindingRequest(role=role, identity=identity)
    return _call(m.ADD_ROLE_BINDING, request, cv.role_binding)


def remove_role_binding(role: str, identity: str) -> Call[Any, None]:
    """RemoveRoleBinding."""
    request = pb.RoleBindingRequest(role=role, identity=identity)
    return _call(m.REMOVE_ROLE_BINDING, request, cv.nothing)


def list_role_bindings() -> Call[Any, list[RoleBinding]]:
    """ListRoleBindings."""
    return _call(m.LIST_ROLE_BINDINGS, pb.ListRoleBindingsRequest(), cv.role_bindings)


def seal() -> Call[Any, SealStatus]:
    """Seal."""
    return _call(m.SEAL, pb.SealRequest(), cv.seal_status)


def unseal(token: Optional[str]) -> Call[Any, SealStatus]:
    """Unseal (an approval; with the out-of-band token when the server needs one)."""
    return _call(m.UNSEAL, pb.UnsealRequest(unseal_token=token or ""), cv.seal_status)


def status() -> Call[Any, SealStatus]:
    """GetStatus."""
    return _call(m.GET_STATUS, pb.StatusRequest(), cv.seal_status)


def rotate_master_key(new_master_key: str, aws_endpoint: str) -> Call[Any, str]:
    """RotateMasterKey."""
    request = pb.RotateMasterKeyRequest(new_master_key=new_master_key, aws_endpoint=aws_endpoint)
    return _call(m.ROTATE_MASTER_KEY, request, cv.master_key)


def rotate_root_key() -> Call[Any, SealStatus]:
    """RotateRootKey."""
    return _call(m.ROTATE_ROOT_KEY, pb.RotateRootKeyRequest(), cv.seal_status)


def verify_audit_log() -> Call[Any, AuditLogReport]:
    """VerifyAuditLog."""
    return _call(m.VERIFY_AUDIT_LOG, pb.VerifyAuditLogRequest(), cv.audit_log_report)


def create_backup_request() -> pb.CreateBackupRequest:
    """CreateBackup's request (a server-streaming call, run by the clients)."""
    return pb.CreateBackupRequest()
