"""The sync client's channel: opens it with the current TLS material, opens a new
one when followed files changed (the old one is closed once its calls had
time to finish), runs prepared calls under the retry policy and turns gRPC
errors into typed ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, Optional, TypeVar

import grpc

from ._connection import Settings, channel_options
from ._methods import Call, Method
from ._trace import trace_metadata
from .errors import REQUEST_ID_HEADER, TresorError, from_status
from .retry import RetryPolicy

T = TypeVar("T")


def status_error(error: grpc.RpcError, settings: Settings) -> TresorError:
    """The typed error of a failed call (sync or asyncio)."""
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    details = error.details() if callable(getattr(error, "details", None)) else str(error)
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    headers = error.initial_metadata() if hasattr(error, "initial_metadata") else None
    debug = error.debug_error_string() if hasattr(error, "debug_error_string") else ""
    return from_status(
        code or grpc.StatusCode.UNKNOWN,
        details or "",
        trailers=trailers,
        headers=headers,
        endpoint=settings.endpoint,
        had_client_cert=settings.had_client_cert,
        transport_detail=debug or "",
    )


def request_id_of(metadata: Any) -> Optional[str]:
    """The x-request-id in a call's metadata."""
    for key, value in metadata or ():
        if key == REQUEST_ID_HEADER:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def credentials(settings: Settings) -> grpc.ChannelCredentials:
    """The channel credentials of the current material."""
    material = settings.material
    return grpc.ssl_channel_credentials(
        root_certificates=material.ca,
        private_key=material.key,
        certificate_chain=material.cert,
    )


class Transport:
    """A sync channel to tresor, renewed when the followed TLS files change."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._channel = self._open()
        self._callables: dict[str, Any] = {}
        self._retired: list[tuple[float, grpc.Channel]] = []
        self._closed = False

    def _open(self) -> grpc.Channel:
        return grpc.secure_channel(
            self.settings.target, credentials(self.settings), options=channel_options(self.settings)
        )

    def _renew(self) -> None:
        """A new channel when the material changed; closes channels retired long
        enough ago that their calls have ended.
        """
        if self.settings.refresh():
            with self._lock:
                self._retired.append((time.monotonic(), self._channel))
                self._channel = self._open()
                self._callables = {}
        if self._retired:
            grace = self.settings.timeout + 5
            now = time.monotonic()
            with self._lock:
                done = [c for t, c in self._retired if now - t > grace]
                self._retired = [(t, c) for t, c in self._retired if now - t <= grace]
            for channel in done:
                channel.close()

    def _callable(self, method: Method[Any]) -> Any:
        self._renew()
        found = self._callables.get(method.path)
        if found is None:
            with self._lock:
                channel = self._channel
                factory = channel.unary_stream if method.server_streaming else channel.unary_unary
                found = factory(
                    method.path,
                    request_serializer=lambda m: m.SerializeToString(),
                    response_deserializer=method.deserialize,
                )
                self._callables[method.path] = found
        return found

    def attempt(self, call: Call[Any, T]) -> T:
        """One attempt of `call`: its converted answer, or a typed error."""
        stub = self._callable(call.method)
        try:
            response, rpc = stub.with_call(
                call.request, timeout=self.settings.timeout, metadata=trace_metadata()
            )
        except grpc.RpcError as e:
            raise status_error(e, self.settings) from None
        request_id = request_id_of(rpc.initial_metadata()) if call.wants_request_id else None
        return call.convert(response, request_id)

    def run(self, call: Call[Any, T], retry: RetryPolicy) -> T:
        """`call` under `retry`, for its method's idempotency."""
        if retry.max_attempts <= 1:
            return self.attempt(call)
        return retry.run(call.method.idempotency, lambda: self.attempt(call))

    def stream(self, method: Method[Any], request: Any) -> Iterator[Any]:
        """The messages of a server-streaming call."""
        stub = self._callable(method)
        try:
            yield from stub(request, timeout=self.settings.timeout, metadata=trace_metadata())
        except grpc.RpcError as e:
            raise status_error(e, self.settings) from None

    def close(self) -> None:
        """Closes every channel (calls still running are cancelled)."""
        with self._lock:
            self._closed = True
            channels = [self._channel] + [c for _, c in self._retired]
            self._retired = []
        for channel in channels:
            channel.close()
