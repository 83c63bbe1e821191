//! W3C trace context on every call: when the caller's current
//! OpenTelemetry context holds a valid span (an application that traces
//! with OpenTelemetry, or attaches a context it received), each request
//! carries its `traceparent` (and `tracestate`), so tresor's spans join the
//! caller's trace. Nothing is sent otherwise. Written against the API crate
//! only: the SDK's propagator would pull the whole SDK into every service.

use opentelemetry::trace::TraceContextExt;

/// `message` as a request carrying the current trace context, if any.
pub(crate) fn traced<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let current = opentelemetry::Context::current();
    let span = current.span();
    let context = span.span_context();
    if !context.is_valid() {
        return request;
    }
    let parent = format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    );
    let metadata = request.metadata_mut();
    if let Ok(value) = parent.parse() {
        metadata.insert("traceparent", value);
    }
    let state = context.trace_state().header();
    if !state.is_empty()
        && let Ok(value) = state.parse()
    {
        metadata.insert("tracestate", value);
    }
    request
}
