"""Typed errors: what happened, in words a caller can act on.

Every error the SDK raises is a `TresorError`. A refusal by the server is
typed from its `x-tresor-reason` metadata when it carries one (the values
never change meaning), else from its gRPC status code, exactly as the Rust
SDK's `ClientError` (crates/tresor-client/src/error.rs). Each error carries
the gRPC `code`, the `reason` and the server's `request_id` (the
`x-request-id` the server answers with; quote it to an operator, it is in
the audit record and the logs).

The server's message text is read in two places only, as in the Rust SDK:
batch items, which carry a code and a message but no metadata (the server's
fixed messages give the reason), and transport failures, whose text is all
there is to tell a refused connection from a rejected certificate.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Optional

import grpc

#: The metadata key of the server's machine-readable reason.
REASON_HEADER = "x-tresor-reason"
#: The metadata key of the request id, in answers and errors.
REQUEST_ID_HEADER = "x-request-id"


class ConnectHint(enum.Enum):
    """Why a connection could not be made, as far as the client can tell."""

    SERVER_NOT_RUNNING = "is the server running and listening at this address?"
    WRONG_CA = (
        "the server's certificate is not signed by the CA given (ca=, TRESOR_CA); "
        "use the CA that issued the server certificate"
    )
    MISSING_CLIENT_CERT = (
        "the server requires a client certificate: give cert= and key= (TRESOR_CERT/TRESOR_KEY)"
    )
    CLIENT_CERT_REJECTED = (
        "the server refused the client certificate: was it issued by the server's client CA "
        "(tresor certs issue), and is it still valid?"
    )
    CERTIFICATE_EXPIRED = (
        "a certificate has expired or is not yet valid: issue a new one with `tresor certs`"
    )
    NAME_MISMATCH = (
        "the server certificate does not name the host of the address; "
        "use a name or IP it was issued for"
    )
    TIMEOUT = "the server did not answer in time; check the address and the network"
    BAD_ADDRESS = "the host name of the address does not resolve"
    UNKNOWN = "check the address, ca, cert and key"

    @property
    def advice(self) -> str:
        """What to check, for a human."""
        return self.value

    @classmethod
    def classify(cls, detail: str, had_client_cert: bool) -> ConnectHint:
        """Classifies a transport failure from its text (the Rust SDK's needles,
        plus BoringSSL's spelling, whose words are joined by underscores).
        """
        text = detail.lower().replace("_", " ")

        def has(*needles: str) -> bool:
            return any(needle in text for needle in needles)

        if has("connection refused"):
            return cls.SERVER_NOT_RUNNING
        if has("expired", "notvalidyet", "not valid yet"):
            return cls.CERTIFICATE_EXPIRED
        if has("certificaterequired", "certificate required"):
            return cls.MISSING_CLIENT_CERT
        if has("unknownissuer", "unknown issuer", "badsignature", "certificate verify failed"):
            return cls.WRONG_CA
        if has("notvalidforname", "not valid for name", "hostname mismatch", "peer name"):
            return cls.NAME_MISMATCH
        if has("unknownca", "unknown ca", "badcertificate", "bad certificate", "decrypterror"):
            return cls.CLIENT_CERT_REJECTED
        if has(
            "broken pipe",
            "connection reset",
            "connection closed",
            "unexpected eof",
            "socket closed",
            "connection was not ready",
        ):
            return cls.CLIENT_CERT_REJECTED if had_client_cert else cls.MISSING_CLIENT_CERT
        if has("timed out", "deadline"):
            return cls.TIMEOUT
        if has("failed to lookup", "dns", "name or service not known", "resolve"):
            return cls.BAD_ADDRESS
        return cls.UNKNOWN if had_client_cert else cls.MISSING_CLIENT_CERT


class TresorError(Exception):
    """Base of every error the SDK raises.

    Attributes: `code` (the gRPC status code, None when no call was made),
    `reason` (the server's `x-tresor-reason`, or None), `request_id` (the
    server's `x-request-id` for the call, or None) and `message` (the
    server's message, or the SDK's).
    """

    def __init__(
        self,
        message: str,
        *,
        code: Optional[grpc.StatusCode] = None,
        reason: Optional[str] = None,
        request_id: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.request_id = request_id

    def __str__(self) -> str:
        text = self.describe()
        return f"{text} (request id {self.request_id})" if self.request_id else text

    def describe(self) -> str:
        """The error for a human, without the request id."""
        return self.message


class ConfigError(TresorError):
    """The client was configured wrongly (no address, unreadable PEM file...)."""


class ConnectError(TresorError):
    """No connection: the server is unreachable, or TLS failed. `hint` says what
    to check, `endpoint` where the client tried to connect.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        hint: ConnectHint,
        code: Optional[grpc.StatusCode] = None,
        request_id: Optional[str] = None,
    ) -> None:
        super().__init__(message, code=code, request_id=request_id)
        self.endpoint = endpoint
        self.hint = hint

    def describe(self) -> str:
        """The error for a human, with what to check."""
        return f"cannot connect to {self.endpoint}: {self.message}\nhint: {self.hint.advice}"


class PermissionDenied(TresorError):
    """The caller may not do this, or the key does not exist (non-admins are not
    told which).
    """


class NotFound(TresorError):
    """The key (or alias, role binding) does not exist (admin calls)."""


class AlreadyExists(TresorError):
    """The key id (or alias, role binding) is taken."""


class InvalidArgument(TresorError):
    """The request was invalid (bad key id, too large, malformed field)."""


class InvalidCiphertext(InvalidArgument):
    """The ciphertext is malformed, tampered with, or was made with another key or
    encryption context (the server does not say which).
    """


class WrappedDataKey(InvalidArgument):
    """Decrypt was given a wrapped data key: open it with decrypt_data_key."""


class FailedPrecondition(TresorError):
    """A rule on the key's state forbids this."""


class KeyDisabled(FailedPrecondition):
    """The key is disabled: an admin must enable it (`tresor key enable KEY`)."""


class KeyPendingDeletion(FailedPrecondition):
    """The key is scheduled for deletion: an admin may cancel the deletion while
    its window lasts (`tresor key cancel-deletion KEY`).
    """


class KeyVersionBelowMinimum(FailedPrecondition):
    """The ciphertext's key version is below the key's minimum decryption version."""


class KeyVersionDestroyed(FailedPrecondition):
    """The ciphertext's key version was destroyed: it can never be decrypted again."""


class WrongKeyPurpose(FailedPrecondition):
    """The key's purpose does not serve the call (Encrypt on a MAC key...)."""


class KeyRecordTampered(TresorError):
    """The key's stored record fails its integrity check; an admin must restore it."""


class Sealed(TresorError):
    """The server is sealed (nothing was done: any call may be retried); an admin
    must run `tresor unseal`.
    """


class Unavailable(TresorError):
    """The server is up but cannot serve the call now (its keystore is unreachable,
    or the audit record could not be written). Whether a change was made before
    the refusal is unknown.
    """


class ResourceExhausted(TresorError):
    """Too many requests, or a too-large message."""


class RateLimited(ResourceExhausted):
    """The caller exceeded its data-plane rate limit."""


class Unauthenticated(TresorError):
    """The server could not identify the caller from its certificate."""


class Internal(TresorError):
    """The server failed internally (details are in its log)."""


class OtherError(TresorError):
    """Any other status code."""


class ProtocolError(TresorError):
    """The server broke the protocol's contract (a batch answer of the wrong size...)."""


class StreamError(TresorError):
    """Base of the stream envelope's own failures (seal_stream, open_stream)."""


class MalformedStream(StreamError):
    """The input is not a stream envelope this SDK can read (wrong magic or version,
    a header cut short, a chunk size out of range).
    """


class UnexpectedKey(StreamError):
    """The stream names a key (`found`) that is not among those the caller expects;
    nothing was asked of tresor.
    """

    def __init__(self, found: str) -> None:
        super().__init__(
            f"the stream was sealed under key {found!r}, which is not one this call accepts"
        )
        self.found = found


class LegacyStream(StreamError):
    """A version 1 stream, refused: its data key is not proven to come from
    GenerateDataKey (open it on a client accepting legacy streams only if you
    trust who sealed it, then re-seal it).
    """


class UnauthenticStream(StreamError):
    """The stream does not open under this context: it was changed, truncated,
    reordered or spliced, or the context is wrong. Discard any output already
    written.
    """


class StreamTooLarge(StreamError):
    """The stream would exceed 2^32 chunks, or its key id or wrapped key 1024 bytes."""


# The typed error of each reason; a reason newer than this SDK falls back to the code.
_BY_REASON: dict[str, type[TresorError]] = {
    "KEY_DISABLED": KeyDisabled,
    "KEY_PENDING_DELETION": KeyPendingDeletion,
    "KEY_VERSION_BELOW_MINIMUM": KeyVersionBelowMinimum,
    "KEY_VERSION_DESTROYED": KeyVersionDestroyed,
    "INVALID_CIPHERTEXT": InvalidCiphertext,
    "WRAPPED_DATA_KEY": WrappedDataKey,
    "KEY_RECORD_TAMPERED": KeyRecordTampered,
    "SEALED": Sealed,
    "KEYSTORE_UNAVAILABLE": Unavailable,
    "AUDIT_UNAVAILABLE": Unavailable,
    "RATE_LIMITED": RateLimited,
    "WRONG_KEY_PURPOSE": WrongKeyPurpose,
}

#: Every reason this SDK knows (the server's `Reason::ALL`).
KNOWN_REASONS = frozenset(_BY_REASON)

_BY_CODE: dict[grpc.StatusCode, type[TresorError]] = {
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.INTERNAL: Internal,
}

# Codes that, without a reason, mean the call did not reach a tresor handler.
_TRANSPORT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)


def reason_from_message(code: grpc.StatusCode, message: str) -> Optional[str]:
    """The reason behind a status without reason metadata (batch items carry only
    code and message), from the server's fixed messages: the Rust SDK's
    `reason_from_message`, rule for rule.
    """
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        if message == "key is disabled":
            return "KEY_DISABLED"
        if message == "key is pending deletion":
            return "KEY_PENDING_DELETION"
        if "below the minimum decryption version" in message:
            return "KEY_VERSION_BELOW_MINIMUM"
        if message.startswith("key version") and message.endswith("was destroyed"):
            return "KEY_VERSION_DESTROYED"
        if message.startswith("the key's purpose is "):
            return "WRONG_KEY_PURPOSE"
    elif code == grpc.StatusCode.INVALID_ARGUMENT:
        if message.startswith("invalid ciphertext"):
            return "INVALID_CIPHERTEXT"
    elif code == grpc.StatusCode.UNAVAILABLE:
        if message == "service is sealed":
            return "SEALED"
        if message.startswith("keystore unavailable"):
            return "KEYSTORE_UNAVAILABLE"
        if message.startswith("audit log unavailable"):
            return "AUDIT_UNAVAILABLE"
    return None


Metadata = Optional[Sequence[tuple[str, object]]]


def _value(metadata: Metadata, key: str) -> Optional[str]:
    for name, value in metadata or ():
        if name == key:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return None


def from_status(
    code: grpc.StatusCode,
    message: str,
    *,
    trailers: Metadata = None,
    headers: Metadata = None,
    endpoint: str = "",
    had_client_cert: bool = True,
    transport_detail: str = "",
) -> TresorError:
    """The typed error for a failed call's status and metadata."""
    request_id = _value(trailers, REQUEST_ID_HEADER) or _value(headers, REQUEST_ID_HEADER)
    sent = _value(trailers, REASON_HEADER)
    reason = sent if sent in _BY_REASON else reason_from_message(code, message)
    typed = _BY_REASON.get(reason) if reason else None
    if typed is not None:
        return typed(message, code=code, reason=reason, request_id=request_id)
    by_code = _BY_CODE.get(code)
    if by_code is not None:
        return by_code(message, code=code, reason=sent, request_id=request_id)
    if code in _TRANSPORT_CODES:
        detail = message
        if transport_detail and transport_detail not in detail:
            detail = f"{detail}: {transport_detail}" if detail else transport_detail
        return ConnectError(
            detail or code.name.lower(),
            endpoint=endpoint,
            hint=ConnectHint.classify(detail, had_client_cert),
            code=code,
            request_id=request_id,
        )
    words = code.name.lower().replace("_", " ")
    return OtherError(f"{words}: {message}", code=code, reason=sent, request_id=request_id)


def from_item_status(code: int, message: str, request_id: Optional[str]) -> TresorError:
    """The typed error of one batch item (code numbered as google.rpc.Code)."""
    status = next((s for s in grpc.StatusCode if s.value[0] == code), grpc.StatusCode.UNKNOWN)
    error = from_status(status, message)
    error.request_id = request_id
    return error


def is_transient(error: TresorError) -> bool:
    """Whether the failure may pass: sealed, unavailable, or unreachable (not a
    certificate problem). Safe calls are retried on these.
    """
    if isinstance(error, (Sealed, Unavailable)):
        return True
    if isinstance(error, ConnectError):
        return _cancelled_unsent(error.message) or error.hint not in (
            ConnectHint.WRONG_CA,
            ConnectHint.MISSING_CLIENT_CERT,
            ConnectHint.CLIENT_CERT_REJECTED,
            ConnectHint.CERTIFICATE_EXPIRED,
            ConnectHint.NAME_MISMATCH,
        )
    return False


def nothing_done(error: TresorError) -> bool:
    """Whether the server certainly did nothing, so that even a call that is not
    idempotent may be sent again: it was sealed, or no connection was made.
    """
    if isinstance(error, Sealed):
        return True
    if isinstance(error, ConnectError):
        return error.hint in (
            ConnectHint.SERVER_NOT_RUNNING,
            ConnectHint.BAD_ADDRESS,
        ) or _cancelled_unsent(error.message)
    return False


def _cancelled_unsent(detail: str) -> bool:
    return "operation was canceled" in detail and "connection closed" in detail
