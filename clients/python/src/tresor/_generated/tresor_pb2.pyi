from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeyPurpose(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_PURPOSE_UNSPECIFIED: _ClassVar[KeyPurpose]
    KEY_PURPOSE_ENCRYPT_DECRYPT: _ClassVar[KeyPurpose]
    KEY_PURPOSE_MAC: _ClassVar[KeyPurpose]
    KEY_PURPOSE_DETERMINISTIC: _ClassVar[KeyPurpose]

class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_UNSPECIFIED: _ClassVar[Operation]
    OPERATION_ENCRYPT: _ClassVar[Operation]
    OPERATION_DECRYPT: _ClassVar[Operation]
    OPERATION_REENCRYPT: _ClassVar[Operation]
    OPERATION_GENERATE_DATA_KEY: _ClassVar[Operation]
    OPERATION_MAC: _ClassVar[Operation]
    OPERATION_VERIFY_MAC: _ClassVar[Operation]

class KeyState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_STATE_UNSPECIFIED: _ClassVar[KeyState]
    KEY_STATE_ENABLED: _ClassVar[KeyState]
    KEY_STATE_DISABLED: _ClassVar[KeyState]
    KEY_STATE_PENDING_DELETION: _ClassVar[KeyState]
KEY_PURPOSE_UNSPECIFIED: KeyPurpose
KEY_PURPOSE_ENCRYPT_DECRYPT: KeyPurpose
KEY_PURPOSE_MAC: KeyPurpose
KEY_PURPOSE_DETERMINISTIC: KeyPurpose
OPERATION_UNSPECIFIED: Operation
OPERATION_ENCRYPT: Operation
OPERATION_DECRYPT: Operation
OPERATION_REENCRYPT: Operation
OPERATION_GENERATE_DATA_KEY: Operation
OPERATION_MAC: Operation
OPERATION_VERIFY_MAC: Operation
KEY_STATE_UNSPECIFIED: KeyState
KEY_STATE_ENABLED: KeyState
KEY_STATE_DISABLED: KeyState
KEY_STATE_PENDING_DELETION: KeyState

class VerifyAuditLogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuditLogReport(_message.Message):
    __slots__ = ("intact", "files", "records", "first_record", "last_record", "problem")
    INTACT_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    FIRST_RECORD_FIELD_NUMBER: _ClassVar[int]
    LAST_RECORD_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    intact: bool
    files: int
    records: int
    first_record: int
    last_record: int
    problem: str
    def __init__(self, intact: bool = ..., files: _Optional[int] = ..., records: _Optional[int] = ..., first_record: _Optional[int] = ..., last_record: _Optional[int] = ..., problem: _Optional[str] = ...) -> None: ...

class EncryptRequest(_message.Message):
    __slots__ = ("key_id", "plaintext", "context")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    plaintext: bytes
    context: _containers.ScalarMap[str, str]
    def __init__(self, key_id: _Optional[str] = ..., plaintext: _Optional[bytes] = ..., context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class EncryptResponse(_message.Message):
    __slots__ = ("ciphertext", "key_version", "key_id")
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    key_version: int
    key_id: str
    def __init__(self, ciphertext: _Optional[bytes] = ..., key_version: _Optional[int] = ..., key_id: _Optional[str] = ...) -> None: ...

class DecryptRequest(_message.Message):
    __slots__ = ("key_id", "ciphertext", "context")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    ciphertext: bytes
    context: _containers.ScalarMap[str, str]
    def __init__(self, key_id: _Optional[str] = ..., ciphertext: _Optional[bytes] = ..., context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DecryptResponse(_message.Message):
    __slots__ = ("plaintext", "key_version", "key_id")
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    plaintext: bytes
    key_version: int
    key_id: str
    def __init__(self, plaintext: _Optional[bytes] = ..., key_version: _Optional[int] = ..., key_id: _Optional[str] = ...) -> None: ...

class ItemStatus(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class EncryptBatchRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[EncryptRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[EncryptRequest, _Mapping]]] = ...) -> None: ...

class EncryptBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EncryptItemResult]
    def __init__(self, results: _Optional[_Iterable[_Union[EncryptItemResult, _Mapping]]] = ...) -> None: ...

class EncryptItemResult(_message.Message):
    __slots__ = ("encrypted", "error")
    ENCRYPTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    encrypted: EncryptResponse
    error: ItemStatus
    def __init__(self, encrypted: _Optional[_Union[EncryptResponse, _Mapping]] = ..., error: _Optional[_Union[ItemStatus, _Mapping]] = ...) -> None: ...

class DecryptBatchRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[DecryptRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[DecryptRequest, _Mapping]]] = ...) -> None: ...

class DecryptBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DecryptItemResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DecryptItemResult, _Mapping]]] = ...) -> None: ...

class DecryptItemResult(_message.Message):
    __slots__ = ("decrypted", "error")
    DECRYPTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    decrypted: DecryptResponse
    error: ItemStatus
    def __init__(self, decrypted: _Optional[_Union[DecryptResponse, _Mapping]] = ..., error: _Optional[_Union[ItemStatus, _Mapping]] = ...) -> None: ...

class ReEncryptRequest(_message.Message):
    __slots__ = ("key_id", "ciphertext", "context", "destination_key_id", "destination_context")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class DestinationContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    ciphertext: bytes
    context: _containers.ScalarMap[str, str]
    destination_key_id: str
    destination_context: _containers.ScalarMap[str, str]
    def __init__(self, key_id: _Optional[str] = ..., ciphertext: _Optional[bytes] = ..., context: _Optional[_Mapping[str, str]] = ..., destination_key_id: _Optional[str] = ..., destination_context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ReEncryptBatchRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ReEncryptRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[ReEncryptRequest, _Mapping]]] = ...) -> None: ...

class GenerateDataKeyRequest(_message.Message):
    __slots__ = ("key_id", "context", "key_bytes")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_BYTES_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    context: _containers.ScalarMap[str, str]
    key_bytes: int
    def __init__(self, key_id: _Optional[str] = ..., context: _Optional[_Mapping[str, str]] = ..., key_bytes: _Optional[int] = ...) -> None: ...

class GenerateDataKeyResponse(_message.Message):
    __slots__ = ("plaintext_key", "wrapped_key", "key_version", "key_id")
    PLAINTEXT_KEY_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    plaintext_key: bytes
    wrapped_key: bytes
    key_version: int
    key_id: str
    def __init__(self, plaintext_key: _Optional[bytes] = ..., wrapped_key: _Optional[bytes] = ..., key_version: _Optional[int] = ..., key_id: _Optional[str] = ...) -> None: ...

class GenerateDataKeyWithoutPlaintextResponse(_message.Message):
    __slots__ = ("wrapped_key", "key_version", "key_id")
    WRAPPED_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    wrapped_key: bytes
    key_version: int
    key_id: str
    def __init__(self, wrapped_key: _Optional[bytes] = ..., key_version: _Optional[int] = ..., key_id: _Optional[str] = ...) -> None: ...

class DecryptDataKeyRequest(_message.Message):
    __slots__ = ("key_id", "wrapped_key", "context")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_KEY_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    wrapped_key: bytes
    context: _containers.ScalarMap[str, str]
    def __init__(self, key_id: _Optional[str] = ..., wrapped_key: _Optional[bytes] = ..., context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DecryptDataKeyResponse(_message.Message):
    __slots__ = ("plaintext_key", "key_version", "key_id")
    PLAINTEXT_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    plaintext_key: bytes
    key_version: int
    key_id: str
    def __init__(self, plaintext_key: _Optional[bytes] = ..., key_version: _Optional[int] = ..., key_id: _Optional[str] = ...) -> None: ...

class MacRequest(_message.Message):
    __slots__ = ("key_id", "message", "context", "truncate_bytes")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_BYTES_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    message: bytes
    context: _containers.ScalarMap[str, str]
    truncate_bytes: int
    def __init__(self, key_id: _Optional[str] = ..., message: _Optional[bytes] = ..., context: _Optional[_Mapping[str, str]] = ..., truncate_bytes: _Optional[int] = ...) -> None: ...

class MacResponse(_message.Message):
    __slots__ = ("mac", "key_version", "key_id")
    MAC_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    mac: bytes
    key_version: int
    key_id: str
    def __init__(self, mac: _Optional[bytes] = ..., key_version: _Optional[int] = ..., key_id: _Optional[str] = ...) -> None: ...

class VerifyMacRequest(_message.Message):
    __slots__ = ("key_id", "message", "mac", "context", "truncate_bytes")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_BYTES_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    message: bytes
    mac: bytes
    context: _containers.ScalarMap[str, str]
    truncate_bytes: int
    def __init__(self, key_id: _Optional[str] = ..., message: _Optional[bytes] = ..., mac: _Optional[bytes] = ..., context: _Optional[_Mapping[str, str]] = ..., truncate_bytes: _Optional[int] = ...) -> None: ...

class VerifyMacResponse(_message.Message):
    __slots__ = ("valid", "key_version", "key_id")
    VALID_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    key_version: int
    key_id: str
    def __init__(self, valid: bool = ..., key_version: _Optional[int] = ..., key_id: _Optional[str] = ...) -> None: ...

class MacAllVersionsResponse(_message.Message):
    __slots__ = ("macs",)
    MACS_FIELD_NUMBER: _ClassVar[int]
    macs: _containers.RepeatedCompositeFieldContainer[MacResponse]
    def __init__(self, macs: _Optional[_Iterable[_Union[MacResponse, _Mapping]]] = ...) -> None: ...

class MacBatchRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[MacRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[MacRequest, _Mapping]]] = ...) -> None: ...

class MacBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[MacItemResult]
    def __init__(self, results: _Optional[_Iterable[_Union[MacItemResult, _Mapping]]] = ...) -> None: ...

class MacItemResult(_message.Message):
    __slots__ = ("mac", "error")
    MAC_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    mac: MacResponse
    error: ItemStatus
    def __init__(self, mac: _Optional[_Union[MacResponse, _Mapping]] = ..., error: _Optional[_Union[ItemStatus, _Mapping]] = ...) -> None: ...

class AliasRequest(_message.Message):
    __slots__ = ("alias", "key_id")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    alias: str
    key_id: str
    def __init__(self, alias: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class AliasInfo(_message.Message):
    __slots__ = ("alias", "key_id", "created_at_unix", "updated_at_unix")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    alias: str
    key_id: str
    created_at_unix: int
    updated_at_unix: int
    def __init__(self, alias: _Optional[str] = ..., key_id: _Optional[str] = ..., created_at_unix: _Optional[int] = ..., updated_at_unix: _Optional[int] = ...) -> None: ...

class RoleBindingRequest(_message.Message):
    __slots__ = ("role", "identity")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    role: str
    identity: str
    def __init__(self, role: _Optional[str] = ..., identity: _Optional[str] = ...) -> None: ...

class RoleBinding(_message.Message):
    __slots__ = ("role", "identity", "created_at_unix", "created_by")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    role: str
    identity: str
    created_at_unix: int
    created_by: str
    def __init__(self, role: _Optional[str] = ..., identity: _Optional[str] = ..., created_at_unix: _Optional[int] = ..., created_by: _Optional[str] = ...) -> None: ...

class RemoveRoleBindingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRoleBindingsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRoleBindingsResponse(_message.Message):
    __slots__ = ("bindings",)
    BINDINGS_FIELD_NUMBER: _ClassVar[int]
    bindings: _containers.RepeatedCompositeFieldContainer[RoleBinding]
    def __init__(self, bindings: _Optional[_Iterable[_Union[RoleBinding, _Mapping]]] = ...) -> None: ...

class DeleteAliasRequest(_message.Message):
    __slots__ = ("alias",)
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    alias: str
    def __init__(self, alias: _Optional[str] = ...) -> None: ...

class DeleteAliasResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAliasesRequest(_message.Message):
    __slots__ = ("prefix", "page_size", "page_token")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    page_size: int
    page_token: str
    def __init__(self, prefix: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAliasesResponse(_message.Message):
    __slots__ = ("aliases", "next_page_token")
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    aliases: _containers.RepeatedCompositeFieldContainer[AliasInfo]
    next_page_token: str
    def __init__(self, aliases: _Optional[_Iterable[_Union[AliasInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class TransferKeyOwnershipRequest(_message.Message):
    __slots__ = ("key_id", "new_owner")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_OWNER_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    new_owner: str
    def __init__(self, key_id: _Optional[str] = ..., new_owner: _Optional[str] = ...) -> None: ...

class UpdateKeyDescriptionRequest(_message.Message):
    __slots__ = ("key_id", "description")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    description: str
    def __init__(self, key_id: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class SetKeyLabelsRequest(_message.Message):
    __slots__ = ("key_id", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, key_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateKeyRequest(_message.Message):
    __slots__ = ("key_id", "owner", "description", "rotation_period_seconds", "purpose", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ROTATION_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    owner: str
    description: str
    rotation_period_seconds: int
    purpose: KeyPurpose
    labels: _containers.ScalarMap[str, str]
    def __init__(self, key_id: _Optional[str] = ..., owner: _Optional[str] = ..., description: _Optional[str] = ..., rotation_period_seconds: _Optional[int] = ..., purpose: _Optional[_Union[KeyPurpose, str]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SetRotationPeriodRequest(_message.Message):
    __slots__ = ("key_id", "rotation_period_seconds")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ROTATION_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    rotation_period_seconds: int
    def __init__(self, key_id: _Optional[str] = ..., rotation_period_seconds: _Optional[int] = ...) -> None: ...

class DestroyKeyVersionRequest(_message.Message):
    __slots__ = ("key_id", "version")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    version: int
    def __init__(self, key_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class KeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class SetMinDecryptionVersionRequest(_message.Message):
    __slots__ = ("key_id", "version")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    version: int
    def __init__(self, key_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("prefix", "page_size", "page_token", "label_selector")
    class LabelSelectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LABEL_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    page_size: int
    page_token: str
    label_selector: _containers.ScalarMap[str, str]
    def __init__(self, prefix: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., label_selector: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys", "next_page_token")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[KeyInfo]
    next_page_token: str
    def __init__(self, keys: _Optional[_Iterable[_Union[KeyInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ScheduleKeyDeletionRequest(_message.Message):
    __slots__ = ("key_id", "pending_days")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PENDING_DAYS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    pending_days: int
    def __init__(self, key_id: _Optional[str] = ..., pending_days: _Optional[int] = ...) -> None: ...

class GrantRequest(_message.Message):
    __slots__ = ("key_id", "grantee", "operations", "context_equals", "context_subset", "expires_at_unix")
    class ContextEqualsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ContextSubsetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    GRANTEE_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_EQUALS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_SUBSET_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    grantee: str
    operations: _containers.RepeatedScalarFieldContainer[Operation]
    context_equals: _containers.ScalarMap[str, str]
    context_subset: _containers.ScalarMap[str, str]
    expires_at_unix: int
    def __init__(self, key_id: _Optional[str] = ..., grantee: _Optional[str] = ..., operations: _Optional[_Iterable[_Union[Operation, str]]] = ..., context_equals: _Optional[_Mapping[str, str]] = ..., context_subset: _Optional[_Mapping[str, str]] = ..., expires_at_unix: _Optional[int] = ...) -> None: ...

class RotateMasterKeyRequest(_message.Message):
    __slots__ = ("new_master_key", "aws_endpoint")
    NEW_MASTER_KEY_FIELD_NUMBER: _ClassVar[int]
    AWS_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    new_master_key: str
    aws_endpoint: str
    def __init__(self, new_master_key: _Optional[str] = ..., aws_endpoint: _Optional[str] = ...) -> None: ...

class RotateMasterKeyResponse(_message.Message):
    __slots__ = ("master_key",)
    MASTER_KEY_FIELD_NUMBER: _ClassVar[int]
    master_key: str
    def __init__(self, master_key: _Optional[str] = ...) -> None: ...

class RotateRootKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateBackupRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BackupChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class SealRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UnsealRequest(_message.Message):
    __slots__ = ("unseal_token",)
    UNSEAL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    unseal_token: str
    def __init__(self, unseal_token: _Optional[str] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SealStatus(_message.Message):
    __slots__ = ("sealed", "key_count", "server_version", "master_key", "root_key_generation", "root_rotation_in_progress", "root_rotation_rewrapped", "root_rotation_total", "unseal_quorum", "unseal_approvals", "unseal_approved_by", "unseal_window_remaining_seconds", "unseal_token_required", "server_certificate")
    SEALED_FIELD_NUMBER: _ClassVar[int]
    KEY_COUNT_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    MASTER_KEY_FIELD_NUMBER: _ClassVar[int]
    ROOT_KEY_GENERATION_FIELD_NUMBER: _ClassVar[int]
    ROOT_ROTATION_IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ROOT_ROTATION_REWRAPPED_FIELD_NUMBER: _ClassVar[int]
    ROOT_ROTATION_TOTAL_FIELD_NUMBER: _ClassVar[int]
    UNSEAL_QUORUM_FIELD_NUMBER: _ClassVar[int]
    UNSEAL_APPROVALS_FIELD_NUMBER: _ClassVar[int]
    UNSEAL_APPROVED_BY_FIELD_NUMBER: _ClassVar[int]
    UNSEAL_WINDOW_REMAINING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    UNSEAL_TOKEN_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    SERVER_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    sealed: bool
    key_count: int
    server_version: str
    master_key: str
    root_key_generation: int
    root_rotation_in_progress: bool
    root_rotation_rewrapped: int
    root_rotation_total: int
    unseal_quorum: int
    unseal_approvals: int
    unseal_approved_by: _containers.RepeatedScalarFieldContainer[str]
    unseal_window_remaining_seconds: int
    unseal_token_required: bool
    server_certificate: ServerCertificate
    def __init__(self, sealed: bool = ..., key_count: _Optional[int] = ..., server_version: _Optional[str] = ..., master_key: _Optional[str] = ..., root_key_generation: _Optional[int] = ..., root_rotation_in_progress: bool = ..., root_rotation_rewrapped: _Optional[int] = ..., root_rotation_total: _Optional[int] = ..., unseal_quorum: _Optional[int] = ..., unseal_approvals: _Optional[int] = ..., unseal_approved_by: _Optional[_Iterable[str]] = ..., unseal_window_remaining_seconds: _Optional[int] = ..., unseal_token_required: bool = ..., server_certificate: _Optional[_Union[ServerCertificate, _Mapping]] = ...) -> None: ...

class ServerCertificate(_message.Message):
    __slots__ = ("subject", "serial", "not_before_unix", "not_after_unix")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_UNIX_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_UNIX_FIELD_NUMBER: _ClassVar[int]
    subject: str
    serial: str
    not_before_unix: int
    not_after_unix: int
    def __init__(self, subject: _Optional[str] = ..., serial: _Optional[str] = ..., not_before_unix: _Optional[int] = ..., not_after_unix: _Optional[int] = ...) -> None: ...

class KeyVersion(_message.Message):
    __slots__ = ("version", "created_at_unix", "destroyed_at_unix")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    DESTROYED_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    version: int
    created_at_unix: int
    destroyed_at_unix: int
    def __init__(self, version: _Optional[int] = ..., created_at_unix: _Optional[int] = ..., destroyed_at_unix: _Optional[int] = ...) -> None: ...

class Grant(_message.Message):
    __slots__ = ("grantee", "operations", "context_equals", "context_subset", "expires_at_unix", "expired")
    class ContextEqualsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ContextSubsetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GRANTEE_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_EQUALS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_SUBSET_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    grantee: str
    operations: _containers.RepeatedScalarFieldContainer[Operation]
    context_equals: _containers.ScalarMap[str, str]
    context_subset: _containers.ScalarMap[str, str]
    expires_at_unix: int
    expired: bool
    def __init__(self, grantee: _Optional[str] = ..., operations: _Optional[_Iterable[_Union[Operation, str]]] = ..., context_equals: _Optional[_Mapping[str, str]] = ..., context_subset: _Optional[_Mapping[str, str]] = ..., expires_at_unix: _Optional[int] = ..., expired: bool = ...) -> None: ...

class KeyInfo(_message.Message):
    __slots__ = ("key_id", "owner", "state", "primary_version", "min_decryption_version", "versions", "created_at_unix", "deletion_at_unix", "description", "grants", "rotation_period_seconds", "next_rotation_at_unix", "purpose", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    MIN_DECRYPTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    DELETION_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    ROTATION_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ROTATION_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    owner: str
    state: KeyState
    primary_version: int
    min_decryption_version: int
    versions: _containers.RepeatedCompositeFieldContainer[KeyVersion]
    created_at_unix: int
    deletion_at_unix: int
    description: str
    grants: _containers.RepeatedCompositeFieldContainer[Grant]
    rotation_period_seconds: int
    next_rotation_at_unix: int
    purpose: KeyPurpose
    labels: _containers.ScalarMap[str, str]
    def __init__(self, key_id: _Optional[str] = ..., owner: _Optional[str] = ..., state: _Optional[_Union[KeyState, str]] = ..., primary_version: _Optional[int] = ..., min_decryption_version: _Optional[int] = ..., versions: _Optional[_Iterable[_Union[KeyVersion, _Mapping]]] = ..., created_at_unix: _Optional[int] = ..., deletion_at_unix: _Optional[int] = ..., description: _Optional[str] = ..., grants: _Optional[_Iterable[_Union[Grant, _Mapping]]] = ..., rotation_period_seconds: _Optional[int] = ..., next_rotation_at_unix: _Optional[int] = ..., purpose: _Optional[_Union[KeyPurpose, str]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...
