//! The layer that turns tresor's traced spans into OpenTelemetry spans,
//! written for what tresor records instead of `tracing-opentelemetry`:
//! it keeps a small record per span (ids, name, start, attributes) and
//! builds the exported `SpanData` once, when the span closes. Entering and
//! leaving a span, which an instrumented future does at every poll, costs
//! it nothing (the general layer took locks and read the clock there);
//! no SDK span, builder or context is made per span.
//!
//! A span's parent is the nearest exported span around it; a traced call's
//! span may instead continue a caller's trace ([`continue_remote`]).
//! `otel.name` names the span and `otel.kind = "server"` makes it a server
//! span; every other field becomes an attribute (strings, integers,
//! booleans; anything else by its `Debug`).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::queue::QueueProcessor;

/// What is kept of a span until it closes.
#[derive(Debug)]
struct Recording {
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: SpanId,
    parent_is_remote: bool,
    trace_state: TraceState,
    name: Cow<'static, str>,
    kind: SpanKind,
    start: SystemTime,
    attributes: Vec<KeyValue>,
}

impl Recording {
    /// A string-valued field: the name, the kind, or an attribute.
    fn record_string(&mut self, field: &Field, value: String) {
        match field.name() {
            "otel.name" => self.name = Cow::Owned(value),
            "otel.kind" => {
                if value == "server" {
                    self.kind = SpanKind::Server;
                }
            }
            name => self.attributes.push(KeyValue::new(name, value)),
        }
    }
}

impl Visit for Recording {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_string(field, value.to_owned());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` fields (Display) arrive here too, formatted once.
        self.record_string(field, format!("{value:?}"));
    }
}

/// The export layer: records tresor's traced spans and hands each one, as
/// it closes, to the span queue.
#[derive(Debug, Clone)]
pub struct SpanLayer {
    queue: Arc<QueueProcessor>,
    scope: InstrumentationScope,
}

impl SpanLayer {
    /// A layer exporting through `queue`.
    pub fn new(queue: Arc<QueueProcessor>) -> Self {
        Self {
            queue,
            scope: InstrumentationScope::builder("tresor")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        }
    }
}

fn random_span_id() -> SpanId {
    SpanId::from(rand::random::<u64>().max(1))
}

impl<S> tracing_subscriber::Layer<S> for SpanLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        // The nearest exported span around this one, if any.
        let parent = if attrs.is_root() {
            None
        } else if let Some(parent) = attrs.parent() {
            ctx.span(parent)
        } else {
            ctx.lookup_current()
        };
        let inherited = parent.as_ref().and_then(|parent| {
            parent
                .extensions()
                .get::<Recording>()
                .map(|p| (p.trace_id, p.span_id, p.trace_state.clone()))
        });
        let (trace_id, parent_span_id, trace_state) = inherited.unwrap_or_else(|| {
            (
                TraceId::from(rand::random::<u128>().max(1)),
                SpanId::INVALID,
                TraceState::default(),
            )
        });
        let mut recording = Recording {
            trace_id,
            span_id: random_span_id(),
            parent_span_id,
            parent_is_remote: false,
            trace_state,
            name: Cow::Borrowed(attrs.metadata().name()),
            kind: SpanKind::Internal,
            start: SystemTime::now(),
            attributes: Vec::with_capacity(attrs.fields().len()),
        };
        attrs.record(&mut recording);
        span.extensions_mut().insert(recording);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(recording) = span.extensions_mut().get_mut::<Recording>()
        {
            values.record(recording);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(recording) = span.extensions_mut().remove::<Recording>() else {
            return;
        };
        self.queue.on_end(SpanData {
            span_context: SpanContext::new(
                recording.trace_id,
                recording.span_id,
                TraceFlags::SAMPLED,
                false,
                recording.trace_state,
            ),
            parent_span_id: recording.parent_span_id,
            parent_span_is_remote: recording.parent_is_remote,
            span_kind: recording.kind,
            name: recording.name,
            start_time: recording.start,
            end_time: SystemTime::now(),
            attributes: recording.attributes,
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: self.scope.clone(),
        });
    }
}

/// Makes `span` (a traced call's, just opened) continue the caller's
/// trace: its trace id and parent become the caller's. Spans opened under
/// it afterwards inherit the trace.
pub fn continue_remote(span: &tracing::Span, remote: &SpanContext) {
    span.with_subscriber(|(id, dispatch)| {
        let Some(registry) = dispatch.downcast_ref::<Registry>() else {
            return;
        };
        let Some(data) = registry.span(id) else {
            return;
        };
        if let Some(recording) = data.extensions_mut().get_mut::<Recording>() {
            recording.trace_id = remote.trace_id();
            recording.parent_span_id = remote.span_id();
            recording.parent_is_remote = true;
            recording.trace_state = remote.trace_state().clone();
        }
    });
}
