/**
 * W3C trace context on every call, as the Rust SDK sends it: when the
 * caller's active OpenTelemetry context holds a valid span (an application
 * that traces with OpenTelemetry), each request carries its `traceparent`
 * (and `tracestate`), so tresor's spans join the caller's trace. Nothing is
 * sent otherwise. Baggage is never sent: only the trace context reaches the
 * KMS. `@opentelemetry/api` reads the context manager the application
 * registered (its registry is global, shared by every copy of the API).
 */

import { Metadata } from "@grpc/grpc-js";
import { context, isSpanContextValid, trace } from "@opentelemetry/api";

/** Call metadata with the active span's trace context, if there is one. */
export function traceMetadata(): Metadata {
  const metadata = new Metadata();
  const span = trace.getSpanContext(context.active());
  if (!span || !isSpanContextValid(span)) return metadata;
  const flags = span.traceFlags.toString(16).padStart(2, "0");
  metadata.set("traceparent", `00-${span.traceId}-${span.spanId}-${flags}`);
  const state = span.traceState?.serialize();
  if (state) metadata.set("tracestate", state);
  return metadata;
}
