//! OpenTelemetry traces over OTLP/gRPC (`tresor serve --otlp-endpoint`, or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`), off by default.
//!
//! - [`start`] runs before the log subscriber is built, which takes its
//!   layer; the exporter's gRPC connection runs on a one-thread runtime of
//!   its own.
//! - `sampling`: whether a call is traced is decided once, when it
//!   arrives (`OTEL_TRACES_SAMPLER`/`_ARG`); a call that is not gets no
//!   [`CallSpan`], so sampling 1% costs about what export off costs.
//! - `call`: a traced call records its own span and the audit write's
//!   ([`CallSpan`]), not through `tracing`; work run [`around`] it is the
//!   task's traced call.
//! - `spans`: the layer that records the `tracing` spans the services open
//!   while working for a traced call (keystore reads and writes) as the
//!   call's children ([`SpanLayer`], [`ExportFilter`]).
//! - `record`: what is kept of a span until it ends, for both.
//! - `queue`: spans wait in a bounded queue exported by a thread of its
//!   own; a request never waits, and a full queue drops spans and counts
//!   them ([`dropped_spans`]).
//!
//! Only tresor's own spans are exported (one per RPC, named
//! `tresor.v1.Crypto/Encrypt` etc., with children for keystore reads and
//! writes and the audit write); their attributes never hold plaintext, key
//! material or context values. A caller's W3C `traceparent` continues into
//! tresor. `OTEL_SERVICE_NAME` names the service (default `tresor`).

mod call;
mod queue;
mod record;
mod sampling;
mod spans;

pub use call::{CallSpan, ChildSpan, STATUS_CODE, around};
pub use queue::{QueueConfig, dropped_spans};
pub use sampling::Sampling;
pub use spans::SpanLayer;

use std::sync::{Arc, OnceLock};

use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanProcessor as _;
use tracing_subscriber::layer::{Context, Filter};

/// What exporting needs while it runs; unset when not exporting.
static EXPORT: OnceLock<Export> = OnceLock::new();

/// The sampling of calls, the span queue and the scope spans are
/// exported under.
#[derive(Debug)]
struct Export {
    sampling: Sampling,
    queue: Arc<queue::QueueProcessor>,
    scope: InstrumentationScope,
}

impl Export {
    /// Ends `record` (if any) and queues it for export.
    fn send(&self, record: Option<record::SpanRecord>) {
        if let Some(record) = record {
            self.queue.on_end(record.end(&self.scope));
        }
    }
}

/// The layer that turns tresor's spans into exported OpenTelemetry spans.
pub type ExportLayer = SpanLayer;

/// The exporter while it runs; [`Exporting::shutdown`] flushes it.
#[derive(Debug)]
pub struct Exporting {
    queue: Arc<queue::QueueProcessor>,
    /// Drives the exporter's gRPC connection (one worker thread), apart
    /// from the server's runtime so the subscriber can be built first.
    _runtime: tokio::runtime::Runtime,
}

impl Exporting {
    /// Exports what is queued and stops.
    pub fn shutdown(self) {
        if let Err(e) = self.queue.shutdown() {
            tracing::warn!(error = %e, "the trace exporter did not shut down cleanly");
        }
    }
}

/// Starts exporting to `endpoint` (`http://HOST:4317`); returns the
/// exporter and the layer to build the log subscriber with. Only tresor's
/// own spans should reach the layer (the subscriber filters by target).
/// Once per process: a second call is refused.
pub fn start(endpoint: &str) -> Result<(Exporting, ExportLayer), String> {
    let sampling = Sampling::from_env()?;
    let queue = QueueConfig::from_env()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tresor-otlp")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the trace exporter: {e}"))?;
    // The tonic exporter binds its connection to the runtime it is built in.
    let entered = runtime.enter();
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| format!("--otlp-endpoint {endpoint}: {e}"))?;
    drop(entered);
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("tresor");
    }
    let resource = resource.build();
    opentelemetry_sdk::trace::SpanExporter::set_resource(&mut exporter, &resource);
    let queue = Arc::new(queue::QueueProcessor::start(
        exporter,
        queue,
        runtime.handle().clone(),
    )?);
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let export = Export {
        sampling,
        queue: Arc::clone(&queue),
        scope: InstrumentationScope::builder("tresor")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    };
    EXPORT
        .set(export)
        .map_err(|_| "the trace exporter is already running".to_owned())?;
    let export = EXPORT.get().ok_or("the trace exporter did not start")?;
    Ok((
        Exporting {
            queue,
            _runtime: runtime,
        },
        SpanLayer::new(export),
    ))
}

/// The name of the `tracing` span every call opens (for log lines); the
/// exporter never takes it (a traced call has a [`CallSpan`]).
pub const CALL_SPAN: &str = "call";

/// Which `tracing` spans reach the exporter: tresor's spans opened while
/// the task works for a traced call ([`around`]), never the call's own.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportFilter;

/// Whether `meta` is one of tresor's spans (events and other crates'
/// spans are never exported).
fn is_tresor_span(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_span() && meta.target().starts_with("tresor")
}

impl<S> Filter<S> for ExportFilter
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn enabled(&self, meta: &tracing::Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        is_tresor_span(meta) && meta.name() != CALL_SPAN && call::in_traced_call()
    }

    fn callsite_enabled(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if !is_tresor_span(meta) || meta.name() == CALL_SPAN {
            // Decided here, not per span: tracing-subscriber 0.3 creates a
            // span whose interest is "sometimes" even when every per-layer
            // filter then disables it, so only "never" keeps a call's span
            // (and its work at every poll) out of the registry when no log
            // line wants it.
            tracing::subscriber::Interest::never()
        } else {
            tracing::subscriber::Interest::sometimes()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::ExportFilter;

    /// A layer that counts the spans it is given.
    struct Counting(Arc<AtomicUsize>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Counting {
        fn on_new_span(
            &self,
            _: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn only_spans_opened_for_a_traced_call_reach_the_exporter() {
        let given = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(Counting(Arc::clone(&given)).with_filter(ExportFilter))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::sink)
                    .with_filter(tracing_subscriber::EnvFilter::new("warn")),
            );
        tracing::subscriber::with_default(subscriber, || {
            let call = tracing::info_span!("call", request_id = "r");
            assert!(call.is_disabled(), "a call's own span is not even created");
            let _untraced = tracing::info_span!("keystore.read_key");
            assert_eq!(
                given.load(Ordering::Relaxed),
                0,
                "a span outside a traced call"
            );
            super::call::in_a_traced_call(|| {
                let call = tracing::info_span!("call", request_id = "r");
                assert!(call.is_disabled(), "a traced call's own span");
                let _child = tracing::info_span!("keystore.read_key");
                assert_eq!(given.load(Ordering::Relaxed), 1, "a span for a traced call");
            });
        });
    }
}
