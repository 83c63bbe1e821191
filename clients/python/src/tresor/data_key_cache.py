"""An optional cache of data keys for local envelope encryption, bounded as the
Rust SDK's `DataKeyCache` (and the AWS Encryption SDK's caching materials
manager).

Without it, every sealed message costs a GenerateDataKey round trip (and every
opened one a DecryptDataKey). With it, one data key serves several messages
under the same key id and encryption context until any limit is reached: its
age (`max_age`), the messages it sealed (`max_messages`) or the bytes
(`max_bytes`); at most `max_entries` keys are kept, least recently used first
out. Unwrapped keys for opening are cached under the same age and entry
limits, keyed by the exact wrapped key, key id and context. The cache key is
the key id and the canonical context (FORMAT.md section 3), so equal contexts
in any order share a data key.

**Off by default, and a trade-off** (say so in your threat model):

- a plaintext data key stays in this process's memory for up to `max_age`, so
  a compromise of the process exposes every message it sealed, up to
  `max_messages` (and Python cannot wipe memory: a key that left the cache
  stays in memory until the garbage collector reuses it);
- the server's audit log shows one GenerateDataKey per cached key, not one call
  per message, and one DecryptDataKey per cached unwrapped key;
- disabling the key or revoking a grant on the server stops cached keys only
  when they expire: `max_age` bounds how long;
- each message still gets its own salt and stream key, so reusing a data key
  does not weaken the encryption of one message.

Only payloads of known length use it (`seal_bytes`); `seal_stream` always gets
a fresh data key, as in the Rust SDK.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

from ._context import Context, canonical_context


@dataclass(frozen=True)
class DataKeyCacheLimits:
    """The limits of a DataKeyCache. Default: one minute, 10,000 messages, 1 GiB,
    100 keys.
    """

    #: Longest time, in seconds, a data key is used after it was generated (or
    #: an unwrapped key after it was unwrapped).
    max_age: float = 60.0
    #: Most messages one data key seals.
    max_messages: int = 10_000
    #: Most plaintext bytes one data key seals.
    max_bytes: int = 1 << 30
    #: Most data keys kept (for sealing, and again for opening).
    max_entries: int = 100

    def __post_init__(self) -> None:
        if self.max_entries < 1 or self.max_age < 0 or self.max_messages < 0 or self.max_bytes < 0:
            raise ValueError("max_entries >= 1 and non-negative limits")


class CachedDataKey:
    """A data key (redacted in repr), its wrapped form and the key version."""

    __slots__ = ("_key", "key_version", "wrapped_key")

    def __init__(self, key: bytes, wrapped_key: bytes, key_version: int) -> None:
        self._key = bytes(key)
        self.wrapped_key = wrapped_key
        self.key_version = key_version

    @property
    def key(self) -> bytes:
        """The 32-byte data key."""
        return self._key

    def __repr__(self) -> str:
        return f"CachedDataKey(key=<redacted>, key_version={self.key_version})"


@dataclass
class _Sealing:
    key: CachedDataKey
    born: float
    messages: int
    bytes: int


@dataclass
class _Opening:
    key: CachedDataKey
    born: float


_Scope = tuple[str, bytes]


class DataKeyCache:
    """The cache; thread-safe (internally locked), shared by clones of a client."""

    def __init__(self, limits: Optional[DataKeyCacheLimits] = None) -> None:
        self.limits = limits or DataKeyCacheLimits()
        self._lock = threading.Lock()
        self._sealing: OrderedDict[_Scope, _Sealing] = OrderedDict()
        self._opening: OrderedDict[tuple[_Scope, bytes], _Opening] = OrderedDict()

    def __repr__(self) -> str:
        return f"DataKeyCache(limits={self.limits!r}, entries={len(self)})"

    def __len__(self) -> int:
        sealing, opening = self.sizes()
        return sealing + opening

    def sizes(self) -> tuple[int, int]:
        """Data keys cached for sealing and for opening."""
        with self._lock:
            return len(self._sealing), len(self._opening)

    def take_sealing(
        self, key_id: str, context: Optional[Context], nbytes: int
    ) -> Optional[CachedDataKey]:
        """A cached data key for one more message of `nbytes` bytes, counted against
        its limits; None when none may take it.
        """
        scope = (key_id, canonical_context(context))
        with self._lock:
            entry = self._sealing.get(scope)
            if entry is None:
                return None
            fits = (
                time.monotonic() - entry.born < self.limits.max_age
                and entry.messages < self.limits.max_messages
                and entry.bytes + nbytes <= self.limits.max_bytes
            )
            if not fits:
                # Spent or expired: a later message may be smaller, but a key
                # past its age or count never comes back.
                del self._sealing[scope]
                return None
            self._sealing.move_to_end(scope)
            entry.messages += 1
            entry.bytes += nbytes
            return entry.key

    def put_sealing(
        self, key_id: str, context: Optional[Context], nbytes: int, key: CachedDataKey
    ) -> None:
        """Caches a fresh data key, already used for one message of `nbytes` bytes.
        A message larger than max_bytes on its own is not cached.
        """
        if nbytes > self.limits.max_bytes or self.limits.max_messages == 0:
            return
        scope = (key_id, canonical_context(context))
        with self._lock:
            self._sealing[scope] = _Sealing(key, time.monotonic(), 1, nbytes)
            self._sealing.move_to_end(scope)
            while len(self._sealing) > self.limits.max_entries:
                self._sealing.popitem(last=False)

    def get_opening(
        self, key_id: str, context: Optional[Context], wrapped_key: bytes
    ) -> Optional[CachedDataKey]:
        """A cached unwrapped key for `wrapped_key` under `key_id` and `context`."""
        slot = ((key_id, canonical_context(context)), bytes(wrapped_key))
        with self._lock:
            entry = self._opening.get(slot)
            if entry is None:
                return None
            if time.monotonic() - entry.born >= self.limits.max_age:
                del self._opening[slot]
                return None
            self._opening.move_to_end(slot)
            return entry.key

    def put_opening(
        self, key_id: str, context: Optional[Context], wrapped_key: bytes, key: CachedDataKey
    ) -> None:
        """Caches a key the server unwrapped."""
        slot = ((key_id, canonical_context(context)), bytes(wrapped_key))
        with self._lock:
            self._opening[slot] = _Opening(key, time.monotonic())
            self._opening.move_to_end(slot)
            while len(self._opening) > self.limits.max_entries:
                self._opening.popitem(last=False)

    def clear(self) -> None:
        """Forgets every key."""
        with self._lock:
            self._sealing.clear()
            self._opening.clear()
