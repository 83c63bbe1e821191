"""Retrying calls the server could not serve for a moment (sealed, keystore or
audit log unavailable, connection lost), with capped exponential backoff and
full jitter: the Rust SDK's policy (crates/tresor-client/src/retry.rs).

Only calls that may safely run twice are retried on every such failure:
reads, Encrypt and GenerateDataKey (a second run makes another ciphertext or
data key and changes nothing), and admin calls that set a state (enable,
disable, grant...). Calls that change state each time they run (CreateKey,
RotateKey, DestroyKeyVersion, root and master key rotation, CreateAlias,
DeleteAlias, role bindings) are retried only when the server certainly did
nothing: it was sealed, or no connection could be made.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Callable, TypeVar

from .errors import TresorError, is_transient, nothing_done

T = TypeVar("T")

_log = logging.getLogger("tresor")
_random = random.SystemRandom()


class Idempotency(enum.Enum):
    """How a call may be repeated."""

    #: Running it twice has the effect of running it once (or no effect).
    SAFE = "safe"
    #: Running it twice changes state twice.
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class RetryPolicy:
    """When and how often a failed call is tried again.

    The default: four attempts, waits drawn uniformly below 50, 100 and
    200 ms. `RetryPolicy.none()` turns retries off.
    """

    #: Attempts in all, the first included (1 disables retries).
    max_attempts: int = 4
    #: The backoff cap before the first retry, in seconds; it doubles each retry.
    initial_backoff: float = 0.05
    #: The largest backoff cap, in seconds.
    max_backoff: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("max_attempts >= 1 and non-negative backoffs")

    @classmethod
    def none(cls) -> RetryPolicy:
        """No retries: every failure is raised at once."""
        return cls(max_attempts=1)

    def cap(self, retry: int) -> float:
        """The cap on the wait before retry number `retry` (from 1)."""
        return float(min(self.initial_backoff * 2 ** max(retry - 1, 0), self.max_backoff))

    def should_retry(self, attempt: int, idempotency: Idempotency, error: TresorError) -> bool:
        """Whether `error` after attempt number `attempt` (from 1) calls for another."""
        if attempt >= self.max_attempts:
            return False
        if idempotency is Idempotency.SAFE:
            return is_transient(error)
        return nothing_done(error)

    def wait(self, retry: int) -> float:
        """A wait drawn uniformly from zero to the cap of retry number `retry`."""
        return _random.uniform(0, self.cap(retry))

    def run(self, idempotency: Idempotency, attempt: Callable[[], T]) -> T:
        """Runs `attempt` until it succeeds, fails for good, or the attempts are spent."""
        tried = 0
        while True:
            tried += 1
            try:
                return attempt()
            except TresorError as error:
                if not self.should_retry(tried, idempotency, error):
                    raise
                wait = self.wait(tried)
                _log.debug("retrying after %r (attempt %d, waiting %.3fs)", error, tried, wait)
                time.sleep(wait)

    async def run_async(self, idempotency: Idempotency, attempt: Callable[[], Awaitable[T]]) -> T:
        """`run` for coroutines."""
        tried = 0
        while True:
            tried += 1
            try:
                return await attempt()
            except TresorError as error:
                if not self.should_retry(tried, idempotency, error):
                    raise
                wait = self.wait(tried)
                _log.debug("retrying after %r (attempt %d, waiting %.3fs)", error, tried, wait)
                await asyncio.sleep(wait)
