"""The Python SDK of tresor, an envelope-encryption key-management service.

    import tresor

    client = tresor.Client.from_env()            # TRESOR_ADDR, TRESOR_CA, TRESOR_CERT, TRESOR_KEY
    sealed = client.encrypt("billing/records", b"hello", {"tenant": "42"})
    opened = client.decrypt("billing/records", sealed.ciphertext, {"tenant": "42"})

`tresor.Client` is the sync client, `tresor.aio.Client` the asyncio one, with
the same methods. The Rust SDK (crates/tresor-client) is the reference this
package mirrors.

Layout:

| module | responsibility |
|--------|----------------|
| `_client`, `_admin` | `Client`: data-plane and control-plane calls, the envelope |
| `aio` | the asyncio `Client` |
| `_calls`, `_methods`, `_convert` | requests, RPC paths and idempotency, answers as `types` |
| `_transport`, `_connection` | channels, TLS material followed on disk, the environment |
| `errors` | `TresorError` and its subclasses, from `x-tresor-reason` |
| `retry` | `RetryPolicy`: which calls may be repeated, and backoff |
| `_context` | the canonical encoding of encryption contexts |
| `_stream`, `_envelope` | the stream envelope's format and its I/O |
| `data_key_cache` | `DataKeyCache`: bounded reuse of data keys |
| `envelope_tool` | `python -m tresor.envelope_tool seal|open` |
"""

from __future__ import annotations

from ._client import Client, ItemResult
from ._context import canonical_context
from ._stream import DEFAULT_CHUNK_SIZE
from .data_key_cache import DataKeyCache, DataKeyCacheLimits
from .errors import (
    AlreadyExists,
    ConfigError,
    ConnectError,
    ConnectHint,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    InvalidCiphertext,
    KeyDisabled,
    KeyPendingDeletion,
    KeyRecordTampered,
    KeyVersionBelowMinimum,
    KeyVersionDestroyed,
    LegacyStream,
    MalformedStream,
    NotFound,
    OtherError,
    PermissionDenied,
    ProtocolError,
    RateLimited,
    ResourceExhausted,
    Sealed,
    StreamError,
    StreamTooLarge,
    TresorError,
    Unauthenticated,
    UnauthenticStream,
    Unavailable,
    UnexpectedKey,
    WrappedDataKey,
    WrongKeyPurpose,
)
from .retry import RetryPolicy
from .types import (
    AliasInfo,
    AuditLogReport,
    DataKey,
    DecryptedDataKey,
    DecryptItem,
    DecryptResult,
    EncryptItem,
    EncryptResult,
    Grant,
    KeyInfo,
    KeyPurpose,
    KeyState,
    KeyVersionInfo,
    ListKeysPage,
    MacItem,
    MacResult,
    Operation,
    ReEncryptItem,
    RoleBinding,
    SealStatus,
    ServerCertificate,
    StreamSummary,
    VerifyMacResult,
    WrappedKey,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "AliasInfo",
    "AlreadyExists",
    "AuditLogReport",
    "Client",
    "ConfigError",
    "ConnectError",
    "ConnectHint",
    "DataKey",
    "DataKeyCache",
    "DataKeyCacheLimits",
    "DecryptItem",
    "DecryptResult",
    "DecryptedDataKey",
    "EncryptItem",
    "EncryptResult",
    "FailedPrecondition",
    "Grant",
    "Internal",
    "InvalidArgument",
    "InvalidCiphertext",
    "ItemResult",
    "KeyDisabled",
    "KeyInfo",
    "KeyPendingDeletion",
    "KeyPurpose",
    "KeyRecordTampered",
    "KeyState",
    "KeyVersionBelowMinimum",
    "KeyVersionDestroyed",
    "KeyVersionInfo",
    "LegacyStream",
    "ListKeysPage",
    "MacItem",
    "MacResult",
    "MalformedStream",
    "NotFound",
    "Operation",
    "OtherError",
    "PermissionDenied",
    "ProtocolError",
    "RateLimited",
    "ReEncryptItem",
    "ResourceExhausted",
    "RetryPolicy",
    "RoleBinding",
    "SealStatus",
    "Sealed",
    "ServerCertificate",
    "StreamError",
    "StreamSummary",
    "StreamTooLarge",
    "TresorError",
    "UnauthenticStream",
    "Unauthenticated",
    "Unavailable",
    "UnexpectedKey",
    "VerifyMacResult",
    "WrappedDataKey",
    "WrappedKey",
    "WrongKeyPurpose",
    "__version__",
    "canonical_context",
]
