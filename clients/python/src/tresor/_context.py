"""Encryption contexts and their canonical encoding (docs/FORMAT.md section 3).

The encoding is the server's, byte for byte: the pair count, then each pair
in ascending byte-wise order of the key's UTF-8 bytes, every field prefixed
with its length as a 4-byte big-endian integer. The stream envelope binds it
(section 10.2) and the data-key cache keys on it, so equal contexts given in
any order are one context.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Optional

#: A context as callers give it: string keys to string values.
Context = Mapping[str, str]

_U32_MAX = 0xFFFFFFFF


def as_dict(context: Optional[Context]) -> dict[str, str]:
    """A plain dict copy of `context` (empty for None), checking its types."""
    if context is None:
        return {}
    out: dict[str, str] = {}
    for key, value in context.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("an encryption context maps str keys to str values")
        out[key] = value
    return out


def canonical_context(context: Optional[Context]) -> bytes:
    """The canonical encoding of `context` (FORMAT.md section 3).

    Raises ValueError for a context whose pair count, key or value does not
    fit in 32 bits (the server's `TooLarge`).
    """
    pairs = sorted(
        (key.encode("utf-8"), value.encode("utf-8")) for key, value in as_dict(context).items()
    )
    if len(pairs) > _U32_MAX:
        raise ValueError("an encryption context holds at most 2^32 - 1 pairs")
    parts = [struct.pack(">I", len(pairs))]
    for key, value in pairs:
        if len(key) > _U32_MAX or len(value) > _U32_MAX:
            raise ValueError("a context key or value is at most 2^32 - 1 bytes")
        parts.append(struct.pack(">I", len(key)))
        parts.append(key)
        parts.append(struct.pack(">I", len(value)))
        parts.append(value)
    return b"".join(parts)
