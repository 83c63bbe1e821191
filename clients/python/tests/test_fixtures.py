"""Cross-language proof, offline: every vector Rust wrote opens here to its
plaintext, and every tampered variant of it fails."""

from __future__ import annotations

import io

import pytest

from fixtures import Vector, open_offline, vectors
from tresor import MalformedStream, StreamError, UnauthenticStream, _envelope, _stream

ALL = [(1, v) for v in vectors(1)] + [(2, v) for v in vectors(2)]


def test_both_files_hold_their_five_vectors() -> None:
    assert [len(vectors(1)), len(vectors(2))] == [5, 5]


@pytest.mark.parametrize(("version", "v"), ALL, ids=lambda x: getattr(x, "name", str(x)))
def test_every_vector_opens_to_its_plaintext(version: int, v: Vector) -> None:
    header = _envelope.read_header(io.BytesIO(v.stream))
    assert (header.version, header.key_id, header.wrapped_key) == (version, v.key_id, v.wrapped_key)
    assert header.chunk_size == v.chunk_size
    assert open_offline(v.data_key, v.stream, v.context) == v.plaintext


def _fails(v: Vector, stream: bytes, context: dict[str, str]) -> None:
    with pytest.raises(StreamError) as failure:
        open_offline(v.data_key, stream, context)
    assert isinstance(failure.value, (UnauthenticStream, MalformedStream))


@pytest.mark.parametrize(("version", "v"), ALL, ids=lambda x: getattr(x, "name", str(x)))
def test_every_tampered_variant_fails(version: int, v: Vector) -> None:
    stream = v.stream
    # Every bit position of every byte would be 8x the work for no more
    # coverage: GCM and the commitment react to any change of a byte.
    for i in range(len(stream)):
        for flip in (0x01, 0x80):
            changed = bytearray(stream)
            changed[i] ^= flip
            _fails(v, bytes(changed), v.context)
    header_len = len(_envelope.read_header(io.BytesIO(stream)).raw)
    sealed = v.chunk_size + _stream.TAG_LEN
    cuts = {0, 1, header_len - 1, header_len, len(stream) - 1, len(stream) - _stream.TAG_LEN}
    cuts |= set(range(header_len, len(stream), sealed))
    for cut in sorted(c for c in cuts if 0 <= c < len(stream)):
        _fails(v, stream[:cut], v.context)
    _fails(v, stream + b"\x00", v.context)
    _fails(v, stream + stream[header_len:], v.context)
    if len(stream) - header_len > sealed:  # two chunks or more: swap the first two
        body = stream[header_len:]
        swapped = body[sealed : 2 * sealed] + body[:sealed] + body[2 * sealed :]
        _fails(v, stream[:header_len] + swapped, v.context)
    relabelled = bytearray(stream)
    relabelled[4] = 3 - version
    _fails(v, bytes(relabelled), v.context)
    _fails(v, stream, dict(v.context, **{"not": "the context"}))
    if v.context:
        _fails(v, stream, {})
    other_key = bytes(b ^ 1 for b in v.data_key)
    with pytest.raises(UnauthenticStream):
        open_offline(other_key, stream, v.context)
