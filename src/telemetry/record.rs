//! What is kept of an exported span until it ends ([`SpanRecord`]), and
//! the one place it becomes the SDK's `SpanData`. Calls record their own
//! span (`call`); spans opened under a traced call through `tracing` are
//! recorded by the span layer (`spans`). Both end up on the span queue.

use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::SpanData;

/// The span that spans opened under it take as their parent.
#[derive(Debug, Clone)]
pub(super) struct Parent {
    pub(super) trace_id: TraceId,
    pub(super) span_id: SpanId,
    pub(super) trace_state: TraceState,
}

/// A span being recorded.
#[derive(Debug)]
pub(super) struct SpanRecord {
    pub(super) trace_id: TraceId,
    pub(super) span_id: SpanId,
    pub(super) parent_span_id: SpanId,
    pub(super) parent_is_remote: bool,
    pub(super) trace_state: TraceState,
    pub(super) name: Cow<'static, str>,
    pub(super) kind: SpanKind,
    pub(super) start: SystemTime,
    pub(super) attributes: Vec<KeyValue>,
}

impl SpanRecord {
    /// A span starting now under `parent` (a new trace without one), with
    /// room for `attributes` attributes.
    pub(super) fn start(
        name: Cow<'static, str>,
        parent: Option<&Parent>,
        attributes: usize,
    ) -> Self {
        let (trace_id, parent_span_id, trace_state) = match parent {
            Some(parent) => (parent.trace_id, parent.span_id, parent.trace_state.clone()),
            None => (
                TraceId::from(rand::random::<u128>().max(1)),
                SpanId::INVALID,
                TraceState::default(),
            ),
        };
        Self {
            trace_id,
            span_id: SpanId::from(rand::random::<u64>().max(1)),
            parent_span_id,
            parent_is_remote: false,
            trace_state,
            name,
            kind: SpanKind::Internal,
            start: SystemTime::now(),
            attributes: Vec::with_capacity(attributes),
        }
    }

    /// This span, as the parent of spans opened under it.
    pub(super) fn as_parent(&self) -> Parent {
        Parent {
            trace_id: self.trace_id,
            span_id: self.span_id,
            trace_state: self.trace_state.clone(),
        }
    }

    /// The span, ended now, as the exporter takes it.
    pub(super) fn end(self, scope: &InstrumentationScope) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                self.trace_id,
                self.span_id,
                TraceFlags::SAMPLED,
                false,
                self.trace_state,
            ),
            parent_span_id: self.parent_span_id,
            parent_span_is_remote: self.parent_is_remote,
            span_kind: self.kind,
            name: self.name,
            start_time: self.start,
            end_time: SystemTime::now(),
            attributes: self.attributes,
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: scope.clone(),
        }
    }
}
