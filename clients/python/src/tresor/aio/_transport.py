"""The asyncio client's channel (grpc.aio): as the sync transport, with the
retired channel closed with a grace period that lets its calls finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import grpc
import grpc.aio

from .._connection import Settings, channel_options
from .._methods import Call, Method
from .._trace import trace_metadata
from .._transport import credentials, request_id_of, status_error
from ..retry import RetryPolicy

T = TypeVar("T")


class AioTransport:
    """A grpc.aio channel to tresor, renewed when the followed TLS files change.

    The channel is opened on first use, inside the running event loop.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._channel: Any = None
        self._callables: dict[str, Any] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def _open(self) -> Any:
        return grpc.aio.secure_channel(
            self.settings.target, credentials(self.settings), options=channel_options(self.settings)
        )

    def _callable(self, method: Method[Any]) -> Any:
        if self._channel is None:
            self._channel = self._open()
        elif self.settings.refresh():
            old, self._channel = self._channel, self._open()
            self._callables = {}
            task = asyncio.ensure_future(old.close(grace=self.settings.timeout))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        found = self._callables.get(method.path)
        if found is None:
            factory = (
                self._channel.unary_stream if method.server_streaming else self._channel.unary_unary
            )
            found = factory(
                method.path,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=method.deserialize,
            )
            self._callables[method.path] = found
        return found

    async def attempt(self, call: Call[Any, T]) -> T:
        """One attempt of `call`: its converted answer, or a typed error."""
        stub = self._callable(call.method)
        rpc = stub(call.request, timeout=self.settings.timeout, metadata=trace_metadata())
        try:
            response = await rpc
            request_id = (
                request_id_of(await rpc.initial_metadata()) if call.wants_request_id else None
            )
        except grpc.RpcError as e:
            raise status_error(e, self.settings) from None
        return call.convert(response, request_id)

    async def run(self, call: Call[Any, T], retry: RetryPolicy) -> T:
        """`call` under `retry`, for its method's idempotency."""
        if retry.max_attempts <= 1:
            return await self.attempt(call)
        return await retry.run_async(call.method.idempotency, lambda: self.attempt(call))

    async def stream(self, method: Method[Any], request: Any) -> AsyncIterator[Any]:
        """The messages of a server-streaming call."""
        stub = self._callable(method)
        try:
            async for message in stub(
                request, timeout=self.settings.timeout, metadata=trace_metadata()
            ):
                yield message
        except grpc.RpcError as e:
            raise status_error(e, self.settings) from None

    async def close(self) -> None:
        """Closes the channel (calls still running are cancelled)."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        for task in list(self._closing):
            task.cancel()
