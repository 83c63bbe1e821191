//! A traced call's span ([`CallSpan`]), recorded by the call itself
//! (src/grpc/audited.rs) rather than through `tracing`: the call knows its
//! name, start, attributes and end, so its span costs a small record and
//! one push onto the span queue, with nothing done when its futures are
//! polled. Work run [`around`] the call is polled with the call as the
//! task's current traced call, so spans the service opens through
//! `tracing` (keystore reads and writes) become the call's children.

use std::borrow::Cow;
use std::future::Future;

use opentelemetry::KeyValue;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{SpanContext, SpanKind, TraceContextExt as _};

use super::Export;
use super::record::{Parent, SpanRecord};

tokio::task_local! {
    /// The traced call whose work the task is polling.
    static CURRENT: Parent;
}

/// The traced call the running task works for, if any.
pub(super) fn current_call() -> Option<Parent> {
    CURRENT.try_with(Parent::clone).ok()
}

/// Whether the running task works for a traced call.
pub(super) fn in_traced_call() -> bool {
    CURRENT.try_with(|_| ()).is_ok()
}

/// The span of a call that is traced; calls that are not have none. A
/// call dropped before it ended (its caller went away) is exported with
/// the status code CANCELLED.
#[derive(Debug)]
pub struct CallSpan {
    /// Taken when the span ends.
    record: Option<SpanRecord>,
    export: &'static Export,
}

/// The attribute of a call span that holds its gRPC status code.
pub const STATUS_CODE: &str = "rpc.grpc.status_code";

/// How many attributes a call span gets at most (request id, operation,
/// identity, key id, key version, status code, reason).
const CALL_ATTRIBUTES: usize = 7;

impl CallSpan {
    /// The span of the call with this metadata, named `name`, when the
    /// call is traced: never when not exporting, else by the sampling
    /// rules and the caller's W3C `traceparent` (whose trace it continues).
    pub fn begin(metadata: &tonic::metadata::MetadataMap, name: &'static str) -> Option<Self> {
        let export = super::EXPORT.get()?;
        let remote = remote_parent(metadata);
        if !export.sampling.samples(remote.as_ref()) {
            return None;
        }
        let parent = remote.as_ref().map(|remote| Parent {
            trace_id: remote.trace_id(),
            span_id: remote.span_id(),
            trace_state: remote.trace_state().clone(),
        });
        let mut record = SpanRecord::start(Cow::Borrowed(name), parent.as_ref(), CALL_ATTRIBUTES);
        record.parent_is_remote = parent.is_some();
        record.kind = SpanKind::Server;
        Some(Self {
            record: Some(record),
            export,
        })
    }

    /// Sets an attribute (never a secret, a plaintext or a context value).
    /// A string is best given as `&'static str` or `Arc<str>`: the exporter
    /// clones every span it sends.
    pub fn set(&mut self, key: &'static str, value: impl Into<opentelemetry::Value>) {
        if let Some(record) = &mut self.record {
            record.attributes.push(KeyValue::new(key, value));
        }
    }

    /// This span as the parent of the spans opened under it.
    fn as_parent(&self) -> Option<Parent> {
        self.record.as_ref().map(SpanRecord::as_parent)
    }

    /// A child span named `name`, starting now.
    pub fn child(&self, name: &'static str) -> ChildSpan {
        ChildSpan {
            record: Some(SpanRecord::start(
                Cow::Borrowed(name),
                self.as_parent().as_ref(),
                0,
            )),
            export: self.export,
        }
    }

    /// Ends the span: it joins the export queue.
    pub fn end(mut self) {
        self.export.send(self.record.take());
    }
}

impl Drop for CallSpan {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            // The caller went away, also when the call's answer was known.
            let cancelled = KeyValue::new(STATUS_CODE, tonic::Code::Cancelled as i64);
            match record
                .attributes
                .iter_mut()
                .find(|kv| kv.key.as_str() == STATUS_CODE)
            {
                Some(status) => *status = cancelled,
                None => record.attributes.push(cancelled),
            }
            self.export.send(Some(record));
        }
    }
}

/// Polls `work` with `call` (when the call is traced) as the task's
/// current traced call.
pub async fn around<F: Future>(call: Option<&CallSpan>, work: F) -> F::Output {
    match call.and_then(CallSpan::as_parent) {
        Some(parent) => CURRENT.scope(parent, work).await,
        None => work.await,
    }
}

/// A child of a call's span, timed by the call; ended when dropped.
#[derive(Debug)]
pub struct ChildSpan {
    record: Option<SpanRecord>,
    export: &'static Export,
}

impl ChildSpan {
    /// Ends the span: it joins the export queue.
    pub fn end(self) {
        drop(self);
    }
}

impl Drop for ChildSpan {
    fn drop(&mut self) {
        self.export.send(self.record.take());
    }
}

/// The caller's span from its W3C `traceparent` (and `tracestate`), if it
/// gave a valid one.
fn remote_parent(metadata: &tonic::metadata::MetadataMap) -> Option<SpanContext> {
    metadata.get("traceparent")?;
    let cx = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&MetadataExtractor(metadata))
    });
    Some(cx.span().span_context().clone()).filter(SpanContext::is_valid)
}

/// Reads W3C trace context from gRPC metadata.
struct MetadataExtractor<'a>(&'a tonic::metadata::MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                tonic::metadata::KeyRef::Ascii(key) => Some(key.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// Runs `work` as if for a traced call (a new trace).
#[cfg(test)]
pub(super) fn in_a_traced_call<R>(work: impl FnOnce() -> R) -> R {
    let record = SpanRecord::start(Cow::Borrowed("test"), None, 0);
    CURRENT.sync_scope(record.as_parent(), work)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::Value;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SpanData, SpanExporter, SpanProcessor as _};

    use super::*;
    use crate::telemetry::queue::{QueueConfig, QueueProcessor};

    /// Keeps what it is given.
    #[derive(Debug, Clone, Default)]
    struct Kept(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Kept {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().expect("kept").extend(batch);
            Ok(())
        }
    }

    fn status_code(span: &SpanData) -> Option<Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == STATUS_CODE)
            .map(|kv| kv.value.clone())
    }

    #[test]
    fn a_call_dropped_before_it_ends_is_exported_as_cancelled_with_its_children() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let kept = Kept::default();
        let queue = QueueProcessor::start(
            kept.clone(),
            QueueConfig::default(),
            runtime.handle().clone(),
        )
        .expect("queue");
        let export: &'static Export = Box::leak(Box::new(Export {
            sampling: super::super::Sampling::default(),
            queue: Arc::new(queue),
            scope: opentelemetry::InstrumentationScope::builder("tresor").build(),
        }));
        let mut ended = CallSpan {
            record: Some(SpanRecord::start(Cow::Borrowed("ended"), None, 1)),
            export,
        };
        ended.set(STATUS_CODE, 0);
        ended.end();
        let mut cancelled = CallSpan {
            record: Some(SpanRecord::start(Cow::Borrowed("cancelled"), None, 0)),
            export,
        };
        // Its answer was known, but the caller went away before it was sent.
        cancelled.set(STATUS_CODE, 0);
        let child = cancelled.child("audit.write");
        drop(child);
        drop(cancelled);
        export.queue.force_flush().expect("flushed");
        let spans = kept.0.lock().expect("kept").clone();
        let named = |name: &str| spans.iter().find(|s| s.name == name).expect(name).clone();
        assert_eq!(
            status_code(&named("ended")),
            Some(Value::I64(0)),
            "ended once, as set"
        );
        let (cancelled, child) = (named("cancelled"), named("audit.write"));
        assert_eq!(status_code(&cancelled), Some(Value::I64(1)), "CANCELLED");
        assert_eq!(cancelled.attributes.len(), 1, "one status code");
        assert_eq!(child.parent_span_id, cancelled.span_context.span_id());
        assert_eq!(
            child.span_context.trace_id(),
            cancelled.span_context.trace_id()
        );
        assert_eq!(spans.len(), 3);
    }
}
