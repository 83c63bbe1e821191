"""The SDK's values: frozen dataclasses and enums, never protobuf messages.

Times are seconds since the Unix epoch (UTC), as in the proto (0: none).
Values that hold secrets (plaintexts, data keys) leave them out of `repr`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Optional, Union

from ._context import Context


class Operation(enum.IntEnum):
    """Operations a grant can allow (the proto's `Operation`)."""

    ENCRYPT = 1
    DECRYPT = 2
    REENCRYPT = 3
    GENERATE_DATA_KEY = 4
    MAC = 5
    VERIFY_MAC = 6


class KeyState(enum.IntEnum):
    """The life-cycle state of a key."""

    UNSPECIFIED = 0
    ENABLED = 1
    DISABLED = 2
    PENDING_DELETION = 3


class KeyPurpose(enum.IntEnum):
    """What a key is for, fixed at creation."""

    UNSPECIFIED = 0
    ENCRYPT_DECRYPT = 1
    MAC = 2
    DETERMINISTIC = 3


@dataclass(frozen=True)
class EncryptResult:
    """A ciphertext, the key version that made it and the key used (the alias's
    target when an alias was given: store this id with the ciphertext).
    """

    ciphertext: bytes
    key_version: int
    key_id: str


@dataclass(frozen=True)
class DecryptResult:
    """A plaintext (not shown by repr) and the key version that made it."""

    plaintext: bytes = field(repr=False)
    key_version: int
    key_id: str


@dataclass(frozen=True)
class DataKey:
    """A data key from GenerateDataKey: in clear (not shown by repr) and wrapped."""

    plaintext_key: bytes = field(repr=False)
    wrapped_key: bytes
    key_version: int
    key_id: str


@dataclass(frozen=True)
class WrappedKey:
    """A data key from GenerateDataKeyWithoutPlaintext: wrapped only."""

    wrapped_key: bytes
    key_version: int
    key_id: str


@dataclass(frozen=True)
class DecryptedDataKey:
    """A data key opened by DecryptDataKey (not shown by repr)."""

    plaintext_key: bytes = field(repr=False)
    key_version: int
    key_id: str


@dataclass(frozen=True)
class MacResult:
    """A MAC token, the key version that made it, and the key."""

    mac: bytes
    key_version: int
    key_id: str


@dataclass(frozen=True)
class VerifyMacResult:
    """Whether a token is valid, and its key version when it is (0 otherwise)."""

    valid: bool
    key_version: int
    key_id: str


@dataclass(frozen=True)
class KeyVersionInfo:
    """One version of a key (one DEK)."""

    version: int
    created_at_unix: int
    destroyed_at_unix: int


@dataclass(frozen=True)
class Grant:
    """What one identity (or pattern) may do with a key besides its owner."""

    grantee: str
    operations: tuple[Operation, ...]
    context_equals: Mapping[str, str]
    context_subset: Mapping[str, str]
    expires_at_unix: int
    expired: bool


@dataclass(frozen=True)
class KeyInfo:
    """A key's metadata; never its key material."""

    key_id: str
    owner: str
    state: KeyState
    primary_version: int
    min_decryption_version: int
    versions: tuple[KeyVersionInfo, ...]
    created_at_unix: int
    deletion_at_unix: int
    description: str
    grants: tuple[Grant, ...]
    rotation_period_seconds: int
    next_rotation_at_unix: int
    purpose: KeyPurpose
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ListKeysPage:
    """One page of ListKeys; `next_page_token` is empty on the last page."""

    keys: tuple[KeyInfo, ...]
    next_page_token: str


@dataclass(frozen=True)
class AliasInfo:
    """An alias and the key it points at."""

    alias: str
    key_id: str
    created_at_unix: int
    updated_at_unix: int


@dataclass(frozen=True)
class RoleBinding:
    """A control-plane role held by an identity or pattern."""

    role: str
    identity: str
    created_at_unix: int
    created_by: str


@dataclass(frozen=True)
class ServerCertificate:
    """The certificate the server presents to new TLS handshakes."""

    subject: str
    serial: str
    not_before_unix: int
    not_after_unix: int


@dataclass(frozen=True)
class SealStatus:
    """The server's state, as Seal, Unseal, GetStatus and RotateRootKey report it."""

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
    unseal_approved_by: tuple[str, ...]
    unseal_window_remaining_seconds: int
    unseal_token_required: bool
    server_certificate: Optional[ServerCertificate]


@dataclass(frozen=True)
class AuditLogReport:
    """What the server found checking its own audit log."""

    intact: bool
    files: int
    records: int
    first_record: int
    last_record: int
    problem: str


@dataclass(frozen=True)
class StreamSummary:
    """What one sealed or opened stream amounted to."""

    #: Bytes read (plaintext when sealing, the stream when opening).
    bytes_in: int
    #: Bytes written.
    bytes_out: int
    #: Chunks sealed or opened, the last one included.
    chunks: int
    #: The version of the tresor key that wrapped the data key.
    key_version: int


@dataclass(frozen=True)
class EncryptItem:
    """One item of encrypt_batch."""

    key_id: str
    plaintext: bytes = field(repr=False)
    context: Optional[Context] = None


@dataclass(frozen=True)
class DecryptItem:
    """One item of decrypt_batch."""

    key_id: str
    ciphertext: bytes
    context: Optional[Context] = None


@dataclass(frozen=True)
class ReEncryptItem:
    """One item of re_encrypt_batch; with a destination key, a key move."""

    key_id: str
    ciphertext: bytes
    context: Optional[Context] = None
    destination_key_id: str = ""
    destination_context: Optional[Context] = None


@dataclass(frozen=True)
class MacItem:
    """One item of mac_batch."""

    key_id: str
    message: bytes = field(repr=False)
    context: Optional[Context] = None
    truncate_bytes: int = 0


#: What a key id argument of open_stream/open_bytes accepts: one id or several.
KeyIds = Union[str, Iterable[str]]
