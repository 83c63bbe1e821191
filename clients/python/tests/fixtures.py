"""The stream envelope's fixed vectors, keystore-fixtures/stream-v1.txt and -v2.txt
(the format those files describe in their header: `field: value` lines,
`#` comments, blank lines between vectors)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from tresor import _envelope, _stream
from tresor.types import StreamSummary

FIXTURES = Path(__file__).resolve().parents[3] / "keystore-fixtures"
FIXED_KEY = bytes(range(32))


@dataclass
class Vector:
    name: str
    data_key: bytes
    key_id: str
    wrapped_key: bytes
    chunk_size: int
    context: dict[str, str]
    plaintext: bytes
    stream: bytes


def vectors(version: int) -> list[Vector]:
    """Every vector of stream-v{version}.txt."""
    records: list[list[tuple[str, str]]] = [[]]
    for line in (FIXTURES / f"stream-v{version}.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if records[-1]:
                records.append([])
            continue
        field, _, value = line.partition(":")
        records[-1].append((field.strip(), value.strip()))
    out = []
    for record in filter(None, records):
        fields = dict(record)
        keys = [v for k, v in record if k == "ctx_key"]
        values = [v for k, v in record if k == "ctx_value"]
        out.append(
            Vector(
                name=fields["name"],
                data_key=bytes.fromhex(fields["data_key"]),
                key_id=fields["key_id"],
                wrapped_key=bytes.fromhex(fields["wrapped_key"]),
                chunk_size=int(fields["chunk_size"]),
                context=dict(zip(keys, values)),
                plaintext=bytes.fromhex(fields["plaintext"]),
                stream=bytes.fromhex(fields["stream"]),
            )
        )
    return out


def open_offline(data_key: bytes, stream: bytes, context: dict[str, str]) -> bytes:
    """Opens a stream with a known data key, as open_stream does after unwrapping."""
    src, out = io.BytesIO(stream), io.BytesIO()
    header = _envelope.read_header(src)
    opener = _envelope.open_opener(data_key, header, context)
    _envelope.open_body(opener, len(header.raw), 1, src, out)
    return out.getvalue()


def seal_offline(
    plaintext: bytes,
    context: dict[str, str],
    chunk_size: int = _stream.MIN_CHUNK_SIZE,
    data_key: bytes = FIXED_KEY,
) -> tuple[bytes, StreamSummary]:
    """Seals with a known data key and a stand-in wrapped key."""
    out = io.BytesIO()
    summary = _envelope.seal(
        data_key, "py/offline", b"wrapped", 1, context, io.BytesIO(plaintext), out, chunk_size
    )
    return out.getvalue(), summary
