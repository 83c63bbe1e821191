//! The layer that records the spans tresor's services open through
//! `tracing` while they work for a traced call (keystore reads and
//! writes), written for what they record instead of
//! `tracing-opentelemetry`: a small record per span, the exported
//! `SpanData` built once when the span closes, nothing done when the span
//! is entered or left.
//!
//! A span's parent is the nearest recorded span around it, else the
//! traced call the task works for (`call`). Every field becomes an
//! attribute (strings, integers, booleans; anything else by its `Debug`).

use std::borrow::Cow;

use opentelemetry::KeyValue;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::Export;
use super::record::SpanRecord;

/// A span's fields, as attributes.
struct Fields<'a>(&'a mut Vec<KeyValue>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push(KeyValue::new(field.name(), value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.push(KeyValue::new(field.name(), value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        self.0.push(KeyValue::new(field.name(), value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.push(KeyValue::new(field.name(), value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` fields (Display) arrive here too, formatted once.
        self.0
            .push(KeyValue::new(field.name(), format!("{value:?}")));
    }
}

/// The export layer: records the spans opened under a traced call and
/// hands each one, as it closes, to the span queue.
#[derive(Debug, Clone, Copy)]
pub struct SpanLayer {
    export: &'static Export,
}

impl SpanLayer {
    /// A layer exporting through `export`.
    pub(super) fn new(export: &'static Export) -> Self {
        Self { export }
    }
}

impl<S> tracing_subscriber::Layer<S> for SpanLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        // The nearest recorded span around this one, else the traced call.
        let around = if attrs.is_root() {
            None
        } else if let Some(parent) = attrs.parent() {
            ctx.span(parent)
        } else {
            ctx.lookup_current()
        };
        let parent = around
            .and_then(|around| {
                around
                    .extensions()
                    .get::<SpanRecord>()
                    .map(SpanRecord::as_parent)
            })
            .or_else(super::call::current_call);
        let Some(parent) = parent else {
            return;
        };
        let mut record = SpanRecord::start(
            Cow::Borrowed(attrs.metadata().name()),
            Some(&parent),
            attrs.fields().len(),
        );
        attrs.record(&mut Fields(&mut record.attributes));
        span.extensions_mut().insert(record);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(record) = span.extensions_mut().get_mut::<SpanRecord>()
        {
            values.record(&mut Fields(&mut record.attributes));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(record) = span.extensions_mut().remove::<SpanRecord>() else {
            return;
        };
        self.export.send(Some(record));
    }
}
