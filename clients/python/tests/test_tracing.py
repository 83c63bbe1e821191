"""The caller's trace continues into tresor: a call made inside an
OpenTelemetry span carries its `traceparent`, and the span tresor exports
for the call (to a real OTLP receiver, examples/otlp_sink.rs) is a child of
it. Against a real server started with `--otlp-endpoint`.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import tresor
import tresor.aio
from tresor_server import BILLING, TresorServer, tresor_bin, unavailable


class Sink:
    """examples/otlp_sink, printing every span it receives."""

    def __init__(self) -> None:
        path = Path(tresor_bin()).parent / "examples" / "otlp_sink"
        if not path.is_file():
            unavailable(f"no OTLP receiver at {path}: build it with `cargo build --examples`")
        self.process = subprocess.Popen(
            [str(path), "--print", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        first = self.process.stdout.readline().split()
        assert first[:1] == ["listening"], first
        self.addr = first[1]
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def span(self, name: str, trace_id: str, timeout: float = 30.0) -> dict[str, str]:
        """The first span named `name` in trace `trace_id`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                span: dict[str, str] = json.loads(self.lines.get(timeout=0.5))
            except queue.Empty:
                continue
            if span["name"] == name and span["trace_id"] == trace_id:
                return span
        pytest.fail(f"no {name} span of trace {trace_id} within {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    receiver = Sink()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def traced_server(sink: Sink) -> Iterator[TresorServer]:
    server = TresorServer(
        "--otlp-endpoint", f"http://{sink.addr}", env={"OTEL_BSP_SCHEDULE_DELAY": "100"}
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tracer() -> trace.Tracer:
    return TracerProvider().get_tracer("tresor-python-tests")


def _make_key(server: TresorServer, key: str) -> str:
    with tresor.Client(**server.client_args("admin")) as admin:
        admin.create_key(key, BILLING)
    return key


def _ids(span: trace.Span) -> tuple[str, str]:
    context = span.get_span_context()
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def test_a_call_inside_a_span_is_a_child_of_it(
    traced_server: TresorServer, sink: Sink, tracer: trace.Tracer
) -> None:
    key = _make_key(traced_server, "py/traced")
    with tresor.Client(**traced_server.client_args("billing")) as billing:
        with tracer.start_as_current_span("checkout") as span:
            billing.encrypt(key, b"x", {"tenant": "42"})
        trace_id, span_id = _ids(span)
        exported = sink.span("tresor.v1.Crypto/Encrypt", trace_id)
        assert exported["parent_span_id"] == span_id
        # Outside any span, a call starts a trace of its own.
        billing.encrypt(key, b"y")


def test_the_asyncio_client_sends_it_too(
    traced_server: TresorServer, sink: Sink, tracer: trace.Tracer
) -> None:
    import asyncio

    key = _make_key(traced_server, "py/traced-aio")

    async def call() -> tuple[str, str]:
        async with tresor.aio.Client(**traced_server.client_args("billing")) as billing:
            with tracer.start_as_current_span("async checkout") as span:
                await billing.encrypt(key, b"x")
            return _ids(span)

    trace_id, span_id = asyncio.run(call())
    assert sink.span("tresor.v1.Crypto/Encrypt", trace_id)["parent_span_id"] == span_id


def test_nothing_is_sent_outside_a_span() -> None:
    from tresor._trace import trace_metadata

    assert trace_metadata() is None
    assert os.environ.get("OTEL_SDK_DISABLED") != "true"
