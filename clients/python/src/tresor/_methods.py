"""Every RPC of the proto by path, with its messages and idempotency.

The clients call methods by path (what the generated `_pb2_grpc` stubs would
do), which keeps them typed and shared by the sync and asyncio clients.
tests/test_stubs.py checks that this table names every method of both
services in the proto's descriptor, with the right message types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Optional, TypeVar

from ._generated import tresor_pb2 as pb
from .retry import Idempotency

Resp = TypeVar("Resp")
T = TypeVar("T")

SAFE = Idempotency.SAFE
UNSAFE = Idempotency.UNSAFE


@dataclass(frozen=True)
class Method(Generic[Resp]):
    """One RPC: its path, request and response types, and how it may be repeated."""

    service: str
    name: str
    request_type: type[Any]
    response_type: type[Resp]
    idempotency: Idempotency
    server_streaming: bool = False

    @property
    def path(self) -> str:
        """The gRPC method path, /tresor.v1.Service/Name."""
        return f"/tresor.v1.{self.service}/{self.name}"

    def deserialize(self, data: bytes) -> Resp:
        """A response message from its bytes."""
        return self.response_type.FromString(data)  # type: ignore[attr-defined, no-any-return]


@dataclass(frozen=True)
class Call(Generic[Resp, T]):
    """One prepared call: the method, the request, and how to convert the answer
    (given the response and, when `wants_request_id`, the call's request id).
    """

    method: Method[Resp]
    request: Any
    convert: Callable[[Resp, Optional[str]], T]
    wants_request_id: bool = False


def _crypto(
    name: str, request: type[Any], response: type[Resp], idempotency: Idempotency = SAFE
) -> Method[Resp]:
    return Method("Crypto", name, request, response, idempotency)


def _admin(
    name: str, request: type[Any], response: type[Resp], idempotency: Idempotency = SAFE
) -> Method[Resp]:
    return Method("Admin", name, request, response, idempotency)


# Data plane: every call may run twice (a second Encrypt makes another
# ciphertext and changes nothing).
ENCRYPT = _crypto("Encrypt", pb.EncryptRequest, pb.EncryptResponse)
DECRYPT = _crypto("Decrypt", pb.DecryptRequest, pb.DecryptResponse)
RE_ENCRYPT = _crypto("ReEncrypt", pb.ReEncryptRequest, pb.EncryptResponse)
GENERATE_DATA_KEY = _crypto(
    "GenerateDataKey", pb.GenerateDataKeyRequest, pb.GenerateDataKeyResponse
)
GENERATE_DATA_KEY_WITHOUT_PLAINTEXT = _crypto(
    "GenerateDataKeyWithoutPlaintext",
    pb.GenerateDataKeyRequest,
    pb.GenerateDataKeyWithoutPlaintextResponse,
)
DECRYPT_DATA_KEY = _crypto("DecryptDataKey", pb.DecryptDataKeyRequest, pb.DecryptDataKeyResponse)
ENCRYPT_BATCH = _crypto("EncryptBatch", pb.EncryptBatchRequest, pb.EncryptBatchResponse)
DECRYPT_BATCH = _crypto("DecryptBatch", pb.DecryptBatchRequest, pb.DecryptBatchResponse)
RE_ENCRYPT_BATCH = _crypto("ReEncryptBatch", pb.ReEncryptBatchRequest, pb.EncryptBatchResponse)
MAC = _crypto("Mac", pb.MacRequest, pb.MacResponse)
VERIFY_MAC = _crypto("VerifyMac", pb.VerifyMacRequest, pb.VerifyMacResponse)
MAC_ALL_VERSIONS = _crypto("MacAllVersions", pb.MacRequest, pb.MacAllVersionsResponse)
MAC_BATCH = _crypto("MacBatch", pb.MacBatchRequest, pb.MacBatchResponse)

# Control plane. Unsafe: calls whose second run changes state again, or
# answers differently (ALREADY_EXISTS, NOT_FOUND) after a lost answer.
CREATE_KEY = _admin("CreateKey", pb.CreateKeyRequest, pb.KeyInfo, UNSAFE)
ROTATE_KEY = _admin("RotateKey", pb.KeyRequest, pb.KeyInfo, UNSAFE)
GET_KEY = _admin("GetKey", pb.KeyRequest, pb.KeyInfo)
DISABLE_KEY = _admin("DisableKey", pb.KeyRequest, pb.KeyInfo)
ENABLE_KEY = _admin("EnableKey", pb.KeyRequest, pb.KeyInfo)
SET_MIN_DECRYPTION_VERSION = _admin(
    "SetMinDecryptionVersion", pb.SetMinDecryptionVersionRequest, pb.KeyInfo
)
SET_ROTATION_PERIOD = _admin("SetRotationPeriod", pb.SetRotationPeriodRequest, pb.KeyInfo)
DESTROY_KEY_VERSION = _admin("DestroyKeyVersion", pb.DestroyKeyVersionRequest, pb.KeyInfo, UNSAFE)
LIST_KEYS = _admin("ListKeys", pb.ListKeysRequest, pb.ListKeysResponse)
SET_KEY_LABELS = _admin("SetKeyLabels", pb.SetKeyLabelsRequest, pb.KeyInfo)
TRANSFER_KEY_OWNERSHIP = _admin("TransferKeyOwnership", pb.TransferKeyOwnershipRequest, pb.KeyInfo)
UPDATE_KEY_DESCRIPTION = _admin("UpdateKeyDescription", pb.UpdateKeyDescriptionRequest, pb.KeyInfo)
CREATE_ALIAS = _admin("CreateAlias", pb.AliasRequest, pb.AliasInfo, UNSAFE)
UPDATE_ALIAS = _admin("UpdateAlias", pb.AliasRequest, pb.AliasInfo)
DELETE_ALIAS = _admin("DeleteAlias", pb.DeleteAliasRequest, pb.DeleteAliasResponse, UNSAFE)
LIST_ALIASES = _admin("ListAliases", pb.ListAliasesRequest, pb.ListAliasesResponse)
SCHEDULE_KEY_DELETION = _admin("ScheduleKeyDeletion", pb.ScheduleKeyDeletionRequest, pb.KeyInfo)
CANCEL_KEY_DELETION = _admin("CancelKeyDeletion", pb.KeyRequest, pb.KeyInfo)
CREATE_GRANT = _admin("CreateGrant", pb.GrantRequest, pb.KeyInfo)
REVOKE_GRANT = _admin("RevokeGrant", pb.GrantRequest, pb.KeyInfo)
SEAL = _admin("Seal", pb.SealRequest, pb.SealStatus)
# Retrying resends the same approval, which never counts twice.
UNSEAL = _admin("Unseal", pb.UnsealRequest, pb.SealStatus)
GET_STATUS = _admin("GetStatus", pb.StatusRequest, pb.SealStatus)
ROTATE_MASTER_KEY = _admin(
    "RotateMasterKey", pb.RotateMasterKeyRequest, pb.RotateMasterKeyResponse, UNSAFE
)
ROTATE_ROOT_KEY = _admin("RotateRootKey", pb.RotateRootKeyRequest, pb.SealStatus, UNSAFE)
CREATE_BACKUP: Method[pb.BackupChunk] = Method(
    "Admin", "CreateBackup", pb.CreateBackupRequest, pb.BackupChunk, SAFE, server_streaming=True
)
VERIFY_AUDIT_LOG = _admin("VerifyAuditLog", pb.VerifyAuditLogRequest, pb.AuditLogReport)
ADD_ROLE_BINDING = _admin("AddRoleBinding", pb.RoleBindingRequest, pb.RoleBinding, UNSAFE)
REMOVE_ROLE_BINDING = _admin(
    "RemoveRoleBinding", pb.RoleBindingRequest, pb.RemoveRoleBindingResponse, UNSAFE
)
LIST_ROLE_BINDINGS = _admin(
    "ListRoleBindings", pb.ListRoleBindingsRequest, pb.ListRoleBindingsResponse
)

#: Every method, for the check against the proto's descriptor.
ALL: tuple[Method[Any], ...] = tuple(v for v in list(globals().values()) if isinstance(v, Method))
