//! OpenTelemetry traces over OTLP/gRPC (`tresor serve --otlp-endpoint`, or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`), off by default.
//!
//! - [`start`] runs before the log subscriber is built, which takes its
//!   layer; the exporter's gRPC connection runs on a one-thread runtime of
//!   its own.
//! - `sampling`: whether a call is traced is decided once, when it
//!   arrives ([`trace_of`], `OTEL_TRACES_SAMPLER`/`_ARG`); an untraced call
//!   gets a span the exporter never sees ([`ExportFilter`]), so sampling
//!   1% costs about what export off costs.
//! - `queue`: spans wait in a bounded queue exported by a thread of its
//!   own; a request never waits, and a full queue drops spans and counts
//!   them ([`dropped_spans`]).
//!
//! Only tresor's own spans are exported (one per RPC, named
//! `tresor.v1.Crypto/Encrypt` etc., with children for keystore reads and
//! writes and the audit write); their fields never hold plaintext, key
//! material or context values. A caller's W3C `traceparent` continues into
//! tresor. `OTEL_SERVICE_NAME` names the service (default `tresor`).

mod queue;
mod sampling;
mod spans;

pub use queue::{QueueConfig, dropped_spans};
pub use sampling::Sampling;
pub use spans::{SpanLayer, continue_remote};

use std::sync::OnceLock;

use opentelemetry::propagation::Extractor;
use std::sync::Arc;

use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanProcessor as _;
use tracing_subscriber::layer::{Context, Filter};

/// The sampling of calls while exporting; unset when not exporting.
static SAMPLING: OnceLock<Sampling> = OnceLock::new();

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
    let layer = SpanLayer::new(Arc::clone(&queue));
    let _ = SAMPLING.set(sampling);
    Ok((
        Exporting {
            queue,
            _runtime: runtime,
        },
        layer,
    ))
}

/// Whether and how a call is traced.
#[derive(Debug)]
pub enum Trace {
    /// Not traced: its span never reaches the exporter.
    No,
    /// Traced, as a new trace or under the caller's span (`traceparent`).
    Yes(Option<SpanContext>),
}

/// Decides whether the call with this metadata is traced: never when not
/// exporting; else by the sampling rules and the caller's `traceparent`.
pub fn trace_of(metadata: &tonic::metadata::MetadataMap) -> Trace {
    let Some(sampling) = SAMPLING.get() else {
        return Trace::No;
    };
    let parent = metadata.get("traceparent").map(|_| {
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&MetadataExtractor(metadata))
        })
    });
    let remote = parent
        .as_ref()
        .map(|cx| cx.span().span_context().clone())
        .filter(|span| span.is_valid());
    if sampling.samples(remote.as_ref()) {
        Trace::Yes(remote)
    } else {
        Trace::No
    }
}

/// The field only a traced call's span has ([`Trace::Yes`]).
pub const TRACED_FIELD: &str = "otel.name";

/// The name of a call's span; without [`TRACED_FIELD`], an untraced call.
pub const UNTRACED_CALL: &str = "call";

/// Which spans reach the exporter: tresor's traced call spans (they have an
/// [`TRACED_FIELD`] field), and tresor's spans opened under one of them.
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
    fn enabled(&self, meta: &tracing::Metadata<'_>, cx: &Context<'_, S>) -> bool {
        if !is_tresor_span(meta) {
            return false;
        }
        meta.fields().field(TRACED_FIELD).is_some() || cx.lookup_current().is_some()
    }

    fn callsite_enabled(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if !is_tresor_span(meta) {
            tracing::subscriber::Interest::never()
        } else if meta.fields().field(TRACED_FIELD).is_some() {
            tracing::subscriber::Interest::always()
        } else if meta.name() == UNTRACED_CALL {
            // Decided here, not per span: tracing-subscriber 0.3 creates a
            // span whose interest is "sometimes" even when every per-layer
            // filter then disables it, so only "never" keeps an untraced
            // call's span (and its work at every poll) out of the registry.
            tracing::subscriber::Interest::never()
        } else {
            tracing::subscriber::Interest::sometimes()
        }
    }
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

#[cfg(test)]
mod tests {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::ExportFilter;

    /// A layer that only exists to be filtered.
    struct Nothing;
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Nothing {}

    #[test]
    fn an_untraced_call_span_is_not_created_at_all() {
        let subscriber = tracing_subscriber::registry()
            .with(Nothing.with_filter(ExportFilter))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::sink)
                    .with_filter(tracing_subscriber::EnvFilter::new("warn")),
            );
        tracing::subscriber::with_default(subscriber, || {
            let untraced = tracing::info_span!("call", request_id = "r");
            assert!(untraced.is_disabled(), "an untraced call's span");
            let traced = tracing::info_span!("call", otel.name = "tresor.v1.Crypto/Encrypt");
            assert!(!traced.is_disabled(), "a traced call's span");
            let _in = traced.enter();
            let child = tracing::info_span!("audit.write");
            assert!(!child.is_disabled(), "a span under a traced call");
        });
    }
}
