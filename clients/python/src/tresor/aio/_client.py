"""`tresor.aio.Client`: the asyncio client (on grpc.aio), with the same methods
as `tresor.Client`, as coroutines. The envelope's file I/O and cipher run in a
worker thread (asyncio.to_thread), so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import copy
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional, TypeVar, Union

from .. import _calls as calls
from .. import _envelope as env
from .._connection import DEFAULT_RELOAD_INTERVAL, DEFAULT_TIMEOUT, Pem, Settings, settings_from_env
from .._context import Context
from .._stream import VERSION_1
from ..data_key_cache import CachedDataKey, DataKeyCache, DataKeyCacheLimits
from ..errors import ProtocolError, TresorError
from ..retry import RetryPolicy
from ..types import (
    DataKey,
    DecryptedDataKey,
    DecryptItem,
    DecryptResult,
    EncryptItem,
    EncryptResult,
    MacItem,
    MacResult,
    ReEncryptItem,
    StreamSummary,
    VerifyMacResult,
    WrappedKey,
)
from ._admin import AioAdminCalls
from ._transport import AioTransport

T = TypeVar("T")
#: One answer of a batch: the result, or the error the single call would raise.
ItemResult = Union[T, TresorError]


class Client(AioAdminCalls):
    """An asyncio connection to tresor over mutual TLS (clones share it; use it from
    one event loop).

    `addr` is `https://HOST:PORT` or `HOST:PORT`. `ca`, `cert` and `key` are PEM
    file paths, read again when they change (new connections use the new set),
    or PEM bytes, read once. Without `cert`/`key` no client certificate is
    presented (tresor will refuse the handshake). `server_name` is the name the
    server certificate must carry when it is not the address's host.
    `timeout` is per call, in seconds. `retry` defaults to `RetryPolicy()`
    (`RetryPolicy.none()` disables retries). `data_key_cache` turns on the
    data-key cache (off by default: read `tresor.data_key_cache` for the
    trade-off). `accept_legacy_streams` also opens version 1 streams: see
    `accepting_legacy_streams`.

    The channel connects lazily: an unreachable server is reported by the
    first call (as `ConnectError`, after the retries).
    """

    def __init__(
        self,
        addr: str,
        *,
        ca: Pem,
        cert: Optional[Pem] = None,
        key: Optional[Pem] = None,
        server_name: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: Optional[RetryPolicy] = None,
        data_key_cache: Optional[DataKeyCacheLimits] = None,
        accept_legacy_streams: bool = False,
        reload_interval: float = DEFAULT_RELOAD_INTERVAL,
    ) -> None:
        settings = Settings(
            addr,
            ca=ca,
            cert=cert,
            key=key,
            server_name=server_name,
            timeout=timeout,
            reload_interval=reload_interval,
        )
        self._transport = AioTransport(settings)
        self._retry = retry or RetryPolicy()
        self._cache = DataKeyCache(data_key_cache) if data_key_cache else None
        self._legacy_streams = accept_legacy_streams

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, **options: Any) -> Client:
        """A client from TRESOR_ADDR, TRESOR_CA, TRESOR_CERT and TRESOR_KEY, as the
        `tresor` CLI reads them; `options` as for the constructor.
        """
        return cls(**settings_from_env(environ, **options))  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"tresor.aio.Client({self._transport.settings.endpoint!r})"

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the connection (of this client and its clones)."""
        await self._transport.close()

    @property
    def data_key_cache(self) -> Optional[DataKeyCache]:
        """The data-key cache, when on."""
        return self._cache

    def with_retry_policy(self, policy: RetryPolicy) -> Client:
        """The same connection with another retry policy."""
        clone = copy.copy(self)
        clone._retry = policy
        return clone

    def accepting_legacy_streams(self) -> Client:
        """The same connection, whose open_stream also opens version 1 streams.

        **Only for data you know was sealed by a trusted writer.** A version 1
        stream's wrapped key is an ordinary ciphertext, so anyone allowed to
        Encrypt under the key can forge a stream that opens here with a data
        key of their choosing. Re-seal old streams, then stop using this.
        """
        clone = copy.copy(self)
        clone._legacy_streams = True
        return clone

    async def _run(self, call: calls.Call[Any, T]) -> T:
        return await self._transport.run(call, self._retry)

    # --- data plane ---------------------------------------------------------

    async def encrypt(
        self, key_id: str, plaintext: bytes, context: Optional[Context] = None
    ) -> EncryptResult:
        """Encrypts under the key's primary version, bound to `context`."""
        return await self._run(calls.encrypt(key_id, plaintext, context))

    async def decrypt(
        self, key_id: str, ciphertext: bytes, context: Optional[Context] = None
    ) -> DecryptResult:
        """Decrypts a ciphertext of Encrypt or ReEncrypt (same key id and context)."""
        return await self._run(calls.decrypt(key_id, ciphertext, context))

    async def re_encrypt(
        self, key_id: str, ciphertext: bytes, context: Optional[Context] = None
    ) -> EncryptResult:
        """Re-encrypts under the key's primary version without revealing the plaintext."""
        return await self._run(calls.re_encrypt(ReEncryptItem(key_id, ciphertext, context)))

    async def re_encrypt_to(
        self,
        key_id: str,
        ciphertext: bytes,
        context: Optional[Context],
        destination: str,
        destination_context: Optional[Context] = None,
    ) -> EncryptResult:
        """Moves a ciphertext of `key_id` to the primary version of `destination`,
        bound to `destination_context`, without the plaintext leaving tresor.
        """
        item = ReEncryptItem(key_id, ciphertext, context, destination, destination_context)
        return await self._run(calls.re_encrypt(item))

    async def generate_data_key(
        self, key_id: str, context: Optional[Context] = None, key_bytes: int = 32
    ) -> DataKey:
        """A fresh data key (32 or 16 bytes), in clear and wrapped."""
        return await self._run(calls.generate_data_key(key_id, context, key_bytes))

    async def generate_data_key_without_plaintext(
        self, key_id: str, context: Optional[Context] = None, key_bytes: int = 32
    ) -> WrappedKey:
        """A fresh data key, wrapped only (for keys this process must never see)."""
        return await self._run(
            calls.generate_data_key_without_plaintext(key_id, context, key_bytes)
        )

    async def decrypt_data_key(
        self, key_id: str, wrapped_key: bytes, context: Optional[Context] = None
    ) -> DecryptedDataKey:
        """Opens a wrapped data key of GenerateDataKey (an Encrypt ciphertext is
        refused as InvalidCiphertext).
        """
        return await self._run(calls.decrypt_data_key(key_id, wrapped_key, context))

    async def encrypt_batch(self, items: Sequence[EncryptItem]) -> list[ItemResult[EncryptResult]]:
        """Encrypts many items in one call (at most the server's --max-batch-items).
        A whole-call failure raises; each item answers its result or the error the
        single call would have raised, in order.
        """
        return await self._run(calls.encrypt_batch(items))

    async def decrypt_batch(self, items: Sequence[DecryptItem]) -> list[ItemResult[DecryptResult]]:
        """Decrypts many items in one call; as encrypt_batch."""
        return await self._run(calls.decrypt_batch(items))

    async def re_encrypt_batch(
        self, items: Sequence[ReEncryptItem]
    ) -> list[ItemResult[EncryptResult]]:
        """Re-encrypts or moves many ciphertexts in one call; as encrypt_batch."""
        return await self._run(calls.re_encrypt_batch(items))

    async def mac(
        self,
        key_id: str,
        message: bytes,
        context: Optional[Context] = None,
        truncate_bytes: int = 0,
    ) -> MacResult:
        """The MAC token of `message` under a MAC key's primary version."""
        return await self._run(calls.mac(MacItem(key_id, message, context, truncate_bytes)))

    async def verify_mac(
        self,
        key_id: str,
        message: bytes,
        mac: bytes,
        context: Optional[Context] = None,
        truncate_bytes: int = 0,
    ) -> VerifyMacResult:
        """Whether `mac` is the token of `message` under the key (any live version)."""
        return await self._run(calls.verify_mac(key_id, message, mac, context, truncate_bytes))

    async def mac_all_versions(
        self,
        key_id: str,
        message: bytes,
        context: Optional[Context] = None,
        truncate_bytes: int = 0,
    ) -> list[MacResult]:
        """The tokens of `message` under every live version, primary first."""
        return await self._run(
            calls.mac_all_versions(MacItem(key_id, message, context, truncate_bytes))
        )

    async def mac_batch(self, items: Sequence[MacItem]) -> list[ItemResult[MacResult]]:
        """Many Mac calls in one; as encrypt_batch."""
        return await self._run(calls.mac_batch(items))

    # --- stream envelope ----------------------------------------------------

    async def seal_stream(
        self,
        key_id: str,
        src: env.Readable,
        dst: env.Writable,
        context: Optional[Context] = None,
        chunk_size: int = env.DEFAULT_CHUNK_SIZE,
    ) -> StreamSummary:
        """Seals everything `src` yields into `dst` as one stream envelope
        (docs/FORMAT.md section 10) under a fresh data key of `key_id`, bound to
        `context`, in constant memory. One GenerateDataKey call; the payload never
        leaves this process. Flushes `dst` but does not close it.
        """
        key = await self._data_key_for_sealing(key_id, context, None)
        return await asyncio.to_thread(
            env.seal,
            key.key,
            key_id,
            key.wrapped_key,
            key.key_version,
            context,
            src,
            dst,
            chunk_size,
        )

    async def open_stream(
        self,
        key_ids: Union[str, Iterable[str]],
        src: env.Readable,
        dst: env.Writable,
        context: Optional[Context] = None,
    ) -> StreamSummary:
        """Opens a stream of seal_stream from `src` into `dst`: checks that the key id
        its header names is one of `key_ids` (else UnexpectedKey, and tresor is not
        asked), has tresor unwrap the data key (one DecryptDataKey call: the Decrypt
        grant and exactly the sealing `context`), then opens chunk by chunk.

        **Writes as it goes**: when this raises, `dst` may hold a prefix of the
        plaintext (authentic chunks, but maybe not all of them), which must be
        discarded: write to a temporary file and rename it only on success.

        Raises MalformedStream, UnexpectedKey, LegacyStream, UnauthenticStream
        (changed, truncated, reordered or spliced, or the wrong context), the
        server's refusal as a TresorError, or OSError from the file objects.
        """
        header = await asyncio.to_thread(env.read_header, src)
        env.check_header(header, env.key_id_set(key_ids), self._legacy_streams)
        key, version = await self._unwrap_data_key(
            header.key_id, context, header.wrapped_key, header.version
        )
        opener = env.open_opener(key, header, context)
        return await asyncio.to_thread(env.open_body, opener, len(header.raw), version, src, dst)

    async def seal_bytes(
        self,
        key_id: str,
        plaintext: bytes,
        context: Optional[Context] = None,
        chunk_size: int = env.DEFAULT_CHUNK_SIZE,
    ) -> bytes:
        """Seals a payload held in memory as one stream (a cached data key may serve
        it when the cache is on).
        """
        key = await self._data_key_for_sealing(key_id, context, len(plaintext))
        out = io.BytesIO()
        env.seal(
            key.key,
            key_id,
            key.wrapped_key,
            key.key_version,
            context,
            io.BytesIO(plaintext),
            out,
            chunk_size,
        )
        return out.getvalue()

    async def open_bytes(
        self,
        key_ids: Union[str, Iterable[str]],
        stream: bytes,
        context: Optional[Context] = None,
    ) -> bytes:
        """Opens a stream held in memory; nothing of the plaintext is returned unless
        the whole stream authenticated.
        """
        out = io.BytesIO()
        await self.open_stream(key_ids, io.BytesIO(stream), out, context)
        return out.getvalue()

    async def _data_key_for_sealing(
        self, key_id: str, context: Optional[Context], known_len: Optional[int]
    ) -> CachedDataKey:
        """A data key for one message: cached when the cache is on and the length
        known, else fresh from GenerateDataKey.
        """
        cache = self._cache if known_len is not None else None
        if cache is not None and known_len is not None:
            cached = cache.take_sealing(key_id, context, known_len)
            if cached is not None:
                return cached
        fresh = await self.generate_data_key(key_id, context)
        if len(fresh.plaintext_key) != 32:
            raise ProtocolError("the data key is not 32 bytes")
        key = CachedDataKey(fresh.plaintext_key, fresh.wrapped_key, fresh.key_version)
        if cache is not None and known_len is not None:
            cache.put_sealing(key_id, context, known_len, key)
        return key

    async def _unwrap_data_key(
        self, key_id: str, context: Optional[Context], wrapped: bytes, version: int
    ) -> tuple[bytes, int]:
        """The data key of a stream: DecryptDataKey (version 2, cached when the cache
        is on) or Decrypt (version 1, never cached).
        """
        try:
            if version == VERSION_1:
                opened = await self.decrypt(key_id, wrapped, context)
                return env.data_key_bytes(opened.plaintext), opened.key_version
            cached = self._cache.get_opening(key_id, context, wrapped) if self._cache else None
            if cached is not None:
                return cached.key, cached.key_version
            unwrapped = await self.decrypt_data_key(key_id, wrapped, context)
            key = env.data_key_bytes(unwrapped.plaintext_key)
        except TresorError as e:
            raise env.unwrap_refused(e) from None
        if self._cache is not None:
            self._cache.put_opening(
                key_id, context, wrapped, CachedDataKey(key, wrapped, unwrapped.key_version)
            )
        return key, unwrapped.key_version
