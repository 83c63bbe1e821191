"""Property tests (hypothesis), offline: the envelope round-trips any payload at
any chunk size, a tampered byte anywhere in a small stream is always caught,
and the context encoding is the server's (FORMAT.md section 3)."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures import FIXED_KEY, open_offline, seal_offline
from tresor import StreamError, UnauthenticStream, _envelope, _stream, canonical_context

contexts = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4)
chunk_sizes = st.sampled_from([1024, 2048, 4096])


def test_the_documented_example_encodes_byte_for_byte() -> None:
    expected = bytes.fromhex("0000000200000001 61 00000001 31 00000001 62 00000002 3232")
    assert canonical_context({"b": "22", "a": "1"}) == expected
    assert canonical_context({}) == b"\x00\x00\x00\x00" == canonical_context(None)
    assert canonical_context({"ab": "c"}) != canonical_context({"a": "bc"})


@given(contexts)
def test_the_encoding_ignores_order_and_sorts_by_utf8_bytes(context: dict[str, str]) -> None:
    encoded = canonical_context(dict(reversed(list(context.items()))))
    assert encoded == canonical_context(context)
    (count,) = struct.unpack(">I", encoded[:4])
    assert count == len(context)
    keys = sorted(k.encode() for k in context)
    assert keys == sorted(keys)  # memcmp order is bytes order
    offset, seen = 4, []
    for _ in range(count):
        (n,) = struct.unpack(">I", encoded[offset : offset + 4])
        seen.append(encoded[offset + 4 : offset + 4 + n])
        offset += 4 + n
        (n,) = struct.unpack(">I", encoded[offset : offset + 4])
        offset += 4 + n
    assert seen == keys and offset == len(encoded)


@given(contexts, contexts)
def test_distinct_contexts_encode_distinctly(a: dict[str, str], b: dict[str, str]) -> None:
    assert (canonical_context(a) == canonical_context(b)) == (a == b)


@settings(max_examples=60, deadline=None)
@given(st.data(), chunk_sizes, contexts)
def test_sealed_payloads_open_to_themselves(
    data: st.DataObject, chunk_size: int, context: dict[str, str]
) -> None:
    # Sizes around chunk boundaries are where the last-chunk logic lives.
    size = data.draw(
        st.one_of(
            st.integers(0, 3 * chunk_size + 1),
            st.sampled_from([0, 1, chunk_size - 1, chunk_size, chunk_size + 1, 2 * chunk_size]),
        )
    )
    payload = data.draw(st.binary(min_size=size, max_size=size))
    stream, summary = seal_offline(payload, context, chunk_size)
    chunks = max(1, -(-size // chunk_size))
    assert summary.chunks == chunks and summary.bytes_in == size
    assert summary.bytes_out == len(stream)
    assert open_offline(FIXED_KEY, stream, context) == payload
    other = dict(context, extra="x")
    with pytest.raises(UnauthenticStream):
        open_offline(FIXED_KEY, stream, other)


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=2500), contexts)
def test_tampering_at_every_byte_of_small_streams_fails(
    payload: bytes, context: dict[str, str]
) -> None:
    stream, _ = seal_offline(payload, context, 1024)
    for i in range(len(stream)):
        changed = bytearray(stream)
        changed[i] ^= 0x5A
        with pytest.raises(StreamError):
            open_offline(FIXED_KEY, bytes(changed), context)


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=0))
def test_truncated_or_extended_streams_fail(payload: bytes, cut_seed: int) -> None:
    stream, _ = seal_offline(payload, {}, 1024)
    cut = cut_seed % len(stream)
    with pytest.raises(StreamError):
        open_offline(FIXED_KEY, stream[:cut], {})
    with pytest.raises(StreamError):
        open_offline(FIXED_KEY, stream + b"\x00", {})


def test_a_stream_of_whole_chunks_ends_with_a_full_last_chunk() -> None:
    stream, summary = seal_offline(b"x" * 2048, {}, 1024)
    assert summary.chunks == 2
    header = _envelope.read_header(io.BytesIO(stream))
    assert len(stream) == len(header.raw) + 2 * (1024 + 16)


def test_an_empty_last_chunk_after_full_chunks_opens() -> None:
    """What the Rust crypto API can produce: openers must accept it."""
    sealer = _stream.StreamSealer(FIXED_KEY, "py/offline", b"w", {}, 1024)
    stream = sealer.header + sealer.seal(b"a" * 1024, False) + sealer.seal(b"", True)
    assert open_offline(FIXED_KEY, stream, {}) == b"a" * 1024
