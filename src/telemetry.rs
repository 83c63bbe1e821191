//! OpenTelemetry traces over OTLP/gRPC (`tresor serve --otlp-endpoint`, or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`), off by default.
//!
//! [`start`] runs before the log subscriber is built, which takes its
//! layer; the exporter's gRPC connection runs on a one-thread runtime of
//! its own. Spans go through the
//! SDK's batch processor on a thread of its own: a request never waits for
//! an export, and a full queue drops spans. Only tresor's own spans are
//! exported (one per RPC, named `tresor.v1.Crypto/Encrypt` etc., with
//! children for keystore reads and writes and the audit write); their
//! fields never hold plaintext, key material or context values. A caller's
//! W3C `traceparent` continues into tresor ([`continue_trace`]).
//! `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`
//! are read by the OpenTelemetry SDK.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::Registry;

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// The layer that turns tresor's spans into exported OpenTelemetry spans.
pub type ExportLayer = OpenTelemetryLayer<Registry, Tracer>;

/// The exporter while it runs; [`Exporting::shutdown`] flushes it.
#[derive(Debug)]
pub struct Exporting {
    provider: SdkTracerProvider,
    /// Drives the exporter's gRPC connection (one worker thread), apart
    /// from the server's runtime so the subscriber can be built first.
    _runtime: tokio::runtime::Runtime,
}

impl Exporting {
    /// Exports what is queued and stops.
    pub fn shutdown(self) {
        EXPORTING.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "the trace exporter did not shut down cleanly");
        }
    }
}

/// Starts exporting to `endpoint` (`http://HOST:4317`); returns the
/// exporter and the layer to build the log subscriber with. Only tresor's
/// own spans should reach the layer (the subscriber filters by target).
pub fn start(endpoint: &str) -> Result<(Exporting, ExportLayer), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tresor-otlp")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the trace exporter: {e}"))?;
    // The tonic exporter binds its connection to the runtime it is built in.
    let _entered = runtime.enter();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| format!("--otlp-endpoint {endpoint}: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("tresor"));
    drop(_entered);
    EXPORTING.store(true, Ordering::Relaxed);
    Ok((
        Exporting {
            provider,
            _runtime: runtime,
        },
        layer,
    ))
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

/// Makes `span` a child of the caller's trace when the request carries a
/// `traceparent` (and traces are exported).
pub fn continue_trace(span: &tracing::Span, metadata: &tonic::metadata::MetadataMap) {
    if !EXPORTING.load(Ordering::Relaxed) || metadata.get("traceparent").is_none() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&MetadataExtractor(metadata))
    });
    let _ = span.set_parent(parent);
}
