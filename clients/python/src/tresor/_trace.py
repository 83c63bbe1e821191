"""W3C trace context on every call, as the Rust SDK sends it: when the
caller's current OpenTelemetry context holds a valid span (an application
that traces with OpenTelemetry), each request carries its `traceparent` (and
`tracestate`), so tresor's spans join the caller's trace. Nothing is sent
otherwise, and nothing at all when the `opentelemetry-api` package is not
installed: it is optional (`pip install tresor-client[otel]`). Baggage is
never sent: only the trace context reaches the KMS.
"""

from __future__ import annotations

from typing import Optional

try:
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover - exercised where the package is absent
    _otel_trace = None  # type: ignore[assignment]

#: gRPC metadata: (key, value) pairs.
Metadata = tuple[tuple[str, str], ...]


def trace_metadata() -> Optional[Metadata]:
    """The current span's `traceparent` (and `tracestate`), or None."""
    if _otel_trace is None:
        return None
    context = _otel_trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    parent = f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    state = context.trace_state.to_header() if context.trace_state else ""
    if state:
        return (("traceparent", parent), ("tracestate", state))
    return (("traceparent", parent),)
