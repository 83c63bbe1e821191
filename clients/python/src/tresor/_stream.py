"""The stream envelope's wire format and cipher (docs/FORMAT.md section 10).

Pure and synchronous: no I/O and no server. The header layout, the key
derivation and the chunk nonces live here and nowhere else, so this module
is what must stay byte-compatible with the Rust SDK (crates/tresor-crypto,
src/stream/). `_envelope.py` drives it over file objects.

    header  = "TRSS" | version | u32be(chunk size) | u16be(k) | u16be(w)
              | salt(32) | key id(k) | wrapped key(w) | commitment(32)
    key     = HMAC-SHA256(data key, u32be(20) | "tresor/stream v1 key"
                                    | header without commitment | canonical context)
    commit  = SHA-256("tresor/stream v1 commitment" | key)
    chunk i = AES-256-GCM(key, u88be(i) | last, aad = empty)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass
from typing import Optional, Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._context import Context, canonical_context

MAGIC = b"TRSS"
#: Stream version 1: the wrapped key is an Encrypt ciphertext (legacy).
VERSION_1 = 1
#: Stream version 2: the wrapped key is a GenerateDataKey ciphertext.
VERSION_2 = 2
CURRENT_VERSION = VERSION_2
#: Bytes of the fixed part of the header: magic, version, chunk size, k, w, salt.
FIXED_HEADER_LEN = 4 + 1 + 4 + 2 + 2 + 32
SALT_LEN = 32
COMMITMENT_LEN = 32
TAG_LEN = 16
MAX_KEY_ID_LEN = 1024
MAX_WRAPPED_KEY_LEN = 1024
MAX_HEADER_LEN = FIXED_HEADER_LEN + MAX_KEY_ID_LEN + MAX_WRAPPED_KEY_LEN + COMMITMENT_LEN
MIN_CHUNK_SIZE = 1 << 10
MAX_CHUNK_SIZE = 1 << 24
#: The default plaintext bytes per chunk (64 KiB), as the Rust SDK's.
DEFAULT_CHUNK_SIZE = 1 << 16
#: Most chunks one stream may hold.
MAX_CHUNKS = 1 << 32
DATA_KEY_LEN = 32

_KEY_LABEL = b"tresor/stream v1 key"
_COMMIT_LABEL = b"tresor/stream v1 commitment"

Buffer = Union[bytes, bytearray, memoryview]


class StreamFormatError(Exception):
    """Internal: the input is not a stream envelope (mapped to MalformedStream)."""


class StreamAuthError(Exception):
    """Internal: the stream does not authenticate (mapped to UnauthenticStream)."""


class StreamTooLarge(Exception):
    """Internal: more chunks than a stream may hold, or an oversized header field."""


def check_chunk_size(chunk_size: int) -> int:
    """`chunk_size` if it is a power of two from 1 KiB to 16 MiB; else ValueError."""
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE or chunk_size & (chunk_size - 1):
        raise ValueError("the chunk size must be a power of two from 1024 to 16777216 bytes")
    return chunk_size


@dataclass(frozen=True)
class StreamHeader:
    """A parsed header; nothing in it is authenticated until the commitment is."""

    raw: bytes
    version: int
    chunk_size: int
    key_id: str
    wrapped_key: bytes

    @property
    def bound(self) -> bytes:
        """The header without its commitment: what the derivation binds."""
        return self.raw[:-COMMITMENT_LEN]

    @property
    def commitment(self) -> bytes:
        """The commitment the opener checks."""
        return self.raw[-COMMITMENT_LEN:]


def header_len(fixed: bytes) -> int:
    """The whole header's length, from its first FIXED_HEADER_LEN bytes."""
    if len(fixed) < FIXED_HEADER_LEN or fixed[:4] != MAGIC:
        raise StreamFormatError
    if fixed[4] not in (VERSION_1, VERSION_2):
        raise StreamFormatError
    chunk_size, key_id_len, wrapped_len = (int(v) for v in struct.unpack(">IHH", fixed[5:13]))
    try:
        check_chunk_size(chunk_size)
    except ValueError:
        raise StreamFormatError from None
    if key_id_len > MAX_KEY_ID_LEN or wrapped_len > MAX_WRAPPED_KEY_LEN:
        raise StreamFormatError
    return FIXED_HEADER_LEN + key_id_len + wrapped_len + COMMITMENT_LEN


def parse_header(raw: bytes) -> StreamHeader:
    """Parses exactly one header (`raw` of header_len bytes)."""
    total = header_len(raw[:FIXED_HEADER_LEN])
    if len(raw) != total:
        raise StreamFormatError
    (chunk_size, key_id_len, _) = struct.unpack(">IHH", raw[5:13])
    key_id_end = FIXED_HEADER_LEN + key_id_len
    try:
        key_id = raw[FIXED_HEADER_LEN:key_id_end].decode("utf-8")
    except UnicodeDecodeError:
        raise StreamFormatError from None
    return StreamHeader(
        raw=bytes(raw),
        version=raw[4],
        chunk_size=chunk_size,
        key_id=key_id,
        wrapped_key=bytes(raw[key_id_end : total - COMMITMENT_LEN]),
    )


def _derive(data_key: Buffer, bound: bytes, context: Optional[Context]) -> tuple[bytes, bytes]:
    """The stream key and the commitment (section 10.2)."""
    if len(data_key) != DATA_KEY_LEN:
        raise ValueError("a stream's data key is 32 bytes")
    msg = struct.pack(">I", len(_KEY_LABEL)) + _KEY_LABEL + bound + canonical_context(context)
    stream_key = hmac.new(bytes(data_key), msg, hashlib.sha256).digest()
    commitment = hashlib.sha256(_COMMIT_LABEL + stream_key).digest()
    return stream_key, commitment


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class _ChunkCipher:
    """AES-256-GCM under one stream key, with the chunk counter."""

    __slots__ = ("_aead", "_next", "chunk_size")

    def __init__(self, stream_key: bytes, chunk_size: int) -> None:
        self._aead = AESGCM(stream_key)
        self._next = 0
        self.chunk_size = chunk_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(chunk_size={self.chunk_size}, key=<redacted>)"

    def _take_nonce(self, last: bool) -> bytes:
        if self._next >= MAX_CHUNKS:
            raise StreamTooLarge
        nonce = _nonce(self._next, last)
        self._next += 1
        return nonce


class StreamSealer(_ChunkCipher):
    """Seals one stream: `header`, then every chunk in order, the last one last."""

    __slots__ = ("header",)

    def __init__(
        self,
        data_key: Buffer,
        key_id: str,
        wrapped_key: bytes,
        context: Optional[Context],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        version: int = CURRENT_VERSION,
        salt: Optional[bytes] = None,
    ) -> None:
        check_chunk_size(chunk_size)
        key_id_bytes = key_id.encode("utf-8")
        if len(key_id_bytes) > MAX_KEY_ID_LEN or len(wrapped_key) > MAX_WRAPPED_KEY_LEN:
            raise StreamTooLarge
        salt = os.urandom(SALT_LEN) if salt is None else salt
        if len(salt) != SALT_LEN or version not in (VERSION_1, VERSION_2):
            raise ValueError("a 32-byte salt and stream version 1 or 2")
        bound = (
            MAGIC
            + struct.pack(">BIHH", version, chunk_size, len(key_id_bytes), len(wrapped_key))
            + salt
            + key_id_bytes
            + wrapped_key
        )
        stream_key, commitment = _derive(data_key, bound, context)
        super().__init__(stream_key, chunk_size)
        #: The header to write before the first chunk.
        self.header = bound + commitment

    def seal(self, chunk: Buffer, last: bool) -> bytes:
        """Seals the next chunk: exactly chunk_size bytes unless it is the last."""
        if len(chunk) > self.chunk_size or (not last and len(chunk) != self.chunk_size):
            raise ValueError("only the last chunk may be shorter than the chunk size")
        return self._aead.encrypt(self._take_nonce(last), chunk, None)


class StreamOpener(_ChunkCipher):
    """Opens one stream whose header was parsed, once its commitment checked out."""

    __slots__ = ()

    def __init__(self, data_key: Buffer, header: StreamHeader, context: Optional[Context]) -> None:
        stream_key, commitment = _derive(data_key, header.bound, context)
        if not hmac.compare_digest(commitment, header.commitment):
            raise StreamAuthError
        super().__init__(stream_key, header.chunk_size)

    @property
    def sealed_chunk_size(self) -> int:
        """Bytes of a full sealed chunk (chunk size plus the tag)."""
        return self.chunk_size + TAG_LEN

    def open(self, sealed: Buffer, last: bool) -> bytes:
        """Opens the next sealed chunk; StreamAuthError if it does not authenticate."""
        full = self.chunk_size + TAG_LEN
        if not (TAG_LEN <= len(sealed) <= full) or (not last and len(sealed) != full):
            raise StreamAuthError
        try:
            nonce = self._take_nonce(last)
        except StreamTooLarge:
            raise StreamAuthError from None
        try:
            return self._aead.decrypt(nonce, sealed, None)
        except InvalidTag:
            raise StreamAuthError from None
