"""Sealing and opening stream envelopes over binary file objects, in constant
memory: the I/O half of `seal_stream`/`open_stream`, shared by the sync and
asyncio clients (which get the data key from tresor and call these).

The input is read one chunk plus one byte at a time, so that the chunk the
input ends with, and only that one, is sealed (or opened) as the last: a
payload of whole chunks ends with a full last chunk, as the Rust SDK writes.

**Opening writes as it goes.** Each chunk is written once it authenticated, so
when opening fails (a tampered or truncated stream) `dst` has already received
a prefix of the plaintext: authentic chunks, but maybe not all of them. The
whole is authentic only when `open_stream` returns: on any exception, discard
what was written (write to a temporary file and rename it on success, as
`python -m tresor.envelope_tool open --out FILE` does).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional, Protocol, Union

from . import _stream
from ._context import Context
from .errors import (
    InvalidArgument,
    InvalidCiphertext,
    LegacyStream,
    MalformedStream,
    StreamTooLarge,
    TresorError,
    UnauthenticStream,
    UnexpectedKey,
)
from .types import StreamSummary

DEFAULT_CHUNK_SIZE = _stream.DEFAULT_CHUNK_SIZE


class Readable(Protocol):
    """A binary file object to read from (a file opened "rb", io.BytesIO, a socket
    file...).
    """

    def read(self, size: int = ..., /) -> bytes: ...


class Writable(Protocol):
    """A binary file object to write to."""

    def write(self, data: bytes, /) -> object: ...


def key_id_set(key_ids: Union[str, Iterable[str]]) -> frozenset[str]:
    """The key ids a stream may name: one id, or several."""
    ids = frozenset([key_ids]) if isinstance(key_ids, str) else frozenset(key_ids)
    if not ids:
        raise ValueError("give at least one key id the stream may have been sealed under")
    return ids


def _fill(src: Readable, want: int, head: bytes = b"") -> bytes:
    """Reads until `want` bytes (counting `head`) or the end of the input."""
    data = src.read(want - len(head))
    if head:
        data = head + data
    if len(data) >= want or not data or len(data) == len(head):
        return data
    parts = [data]
    have = len(data)
    while have < want:
        more = src.read(want - have)
        if not more:
            break
        parts.append(more)
        have += len(more)
    return b"".join(parts)


def read_header(src: Readable) -> _stream.StreamHeader:
    """Reads and parses a stream's header (at most 2,125 bytes)."""
    try:
        fixed = _fill(src, _stream.FIXED_HEADER_LEN)
        total = _stream.header_len(fixed)
        raw = _fill(src, total, fixed)
        if len(raw) != total:
            raise _stream.StreamFormatError
        return _stream.parse_header(raw)
    except _stream.StreamFormatError:
        raise MalformedStream(
            "not a tresor stream envelope (or of a version this SDK cannot read)"
        ) from None


def check_header(header: _stream.StreamHeader, key_ids: frozenset[str], legacy: bool) -> None:
    """Refuses, before tresor is asked anything, a stream under a key the caller did
    not name, and a version 1 stream unless legacy streams are accepted.
    """
    if header.key_id not in key_ids:
        raise UnexpectedKey(header.key_id)
    if header.version == _stream.VERSION_1 and not legacy:
        raise LegacyStream(
            "a version 1 stream: its data key is not proven to come from GenerateDataKey; "
            "open it with a client accepting legacy streams only if you trust who sealed it, "
            "then re-seal it"
        )


def unwrap_refused(error: TresorError) -> TresorError:
    """What a refused unwrap means for the stream: INVALID_ARGUMENT (a tampered
    wrapped key, the wrong context) is an unauthentic stream; other refusals are
    raised as they are.
    """
    if isinstance(error, InvalidArgument):
        return _unauthentic()
    return error


def data_key_bytes(plaintext: bytes) -> bytes:
    """An unwrapped data key; anything but 32 bytes means another ciphertext was
    put in the wrapped key's place.
    """
    if len(plaintext) != _stream.DATA_KEY_LEN:
        raise InvalidCiphertext("the unwrapped data key is not 32 bytes")
    return plaintext


def _unauthentic() -> UnauthenticStream:
    return UnauthenticStream(
        "the stream does not authenticate under this context (tampered with, truncated, "
        "or the wrong context); discard any output already written"
    )


def seal(
    data_key: bytes,
    key_id: str,
    wrapped_key: bytes,
    key_version: int,
    context: Optional[Context],
    src: Readable,
    dst: Writable,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    version: int = _stream.CURRENT_VERSION,
) -> StreamSummary:
    """Seals everything `src` yields into `dst` as one stream."""
    try:
        sealer = _stream.StreamSealer(
            data_key, key_id, wrapped_key, context, chunk_size, version=version
        )
    except _stream.StreamTooLarge:
        raise StreamTooLarge("a stream's key id and wrapped key are at most 1024 bytes") from None
    dst.write(sealer.header)
    bytes_in, bytes_out, chunks = 0, len(sealer.header), 0
    unit = sealer.chunk_size
    pending = _fill(src, unit + 1)
    while True:
        last = len(pending) <= unit
        chunk = pending if last else pending[:unit]
        try:
            sealed = sealer.seal(chunk, last)
        except _stream.StreamTooLarge:
            raise StreamTooLarge("a stream holds at most 2^32 chunks") from None
        dst.write(sealed)
        bytes_in += len(chunk)
        bytes_out += len(sealed)
        chunks += 1
        if last:
            break
        pending = _fill(src, unit + 1, pending[unit:])
    _flush(dst)
    return StreamSummary(bytes_in, bytes_out, chunks, key_version)


def open_opener(
    data_key: bytes, header: _stream.StreamHeader, context: Optional[Context]
) -> _stream.StreamOpener:
    """The opener of a parsed header, once its commitment checked out."""
    try:
        return _stream.StreamOpener(data_key, header, context)
    except _stream.StreamAuthError:
        raise _unauthentic() from None


def open_body(
    opener: _stream.StreamOpener,
    header_len: int,
    key_version: int,
    src: Readable,
    dst: Writable,
) -> StreamSummary:
    """Opens the chunks after the header, writing each once it authenticated."""
    bytes_in, bytes_out, chunks = header_len, 0, 0
    unit = opener.sealed_chunk_size
    pending = _fill(src, unit + 1)
    try:
        while True:
            last = len(pending) <= unit
            sealed = pending if last else pending[:unit]
            plaintext = opener.open(sealed, last)
            dst.write(plaintext)
            bytes_in += len(sealed)
            bytes_out += len(plaintext)
            chunks += 1
            if last:
                break
            pending = _fill(src, unit + 1, pending[unit:])
    except _stream.StreamAuthError:
        raise _unauthentic() from None
    _flush(dst)
    return StreamSummary(bytes_in, bytes_out, chunks, key_version)


def _flush(dst: Writable) -> None:
    flush = getattr(dst, "flush", None)
    if callable(flush):
        flush()
