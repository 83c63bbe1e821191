//! A minimal OTLP/gRPC trace receiver: accepts every export, counts the
//! spans and drops them (crates/tresor-bench/scripts/bench-otlp.sh). It
//! stands for a collector on another machine, so it costs the benchmark's
//! machine as little as it can: spans are counted without being decoded
//! (each stays an opaque slice of the request). With `--print`, it decodes
//! them and writes one JSON line per span on stdout (name, trace id, span
//! id, parent span id, in hex), and first `listening ADDR`: the Python and
//! Node SDKs' tests read what tresor exported from it.
//! Usage: `otlp_sink [--print] [127.0.0.1:4317]` (port 0: any free port).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

/// Counts what it receives, and prints it when asked.
#[derive(Clone, Default)]
struct Sink(Arc<AtomicU64>, bool);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: Vec<_> = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans)
            .collect();
        if self.1 {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            for span in &spans {
                let line = format!(
                    "{{\"name\":{:?},\"trace_id\":\"{}\",\"span_id\":\"{}\",\"parent_span_id\":\"{}\"}}",
                    span.name,
                    hex(&span.trace_id),
                    hex(&span.span_id),
                    hex(&span.parent_span_id)
                );
                let _ = writeln!(out, "{line}");
            }
            let _ = out.flush();
        }
        let spans = spans.len();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let print = args.iter().any(|a| a == "--print");
    let addr = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or("127.0.0.1:4317", String::as_str);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    if print {
        println!("listening {}", listener.local_addr()?);
    }
    let sink = Sink(Arc::default(), print);
    let count = sink.0.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!(
            "otlp_sink: {} spans received",
            count.load(Ordering::Relaxed)
        );
        std::process::exit(0);
    });
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    if print {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(sink))
            .serve_with_incoming(incoming)
            .await?;
    } else {
        tonic::transport::Server::builder()
            .add_service(counting::CountingServer(sink.0))
            .serve_with_incoming(incoming)
            .await?;
    }
    Ok(())
}

/// The trace service answering exports whose spans it counts without
/// decoding them: the request is read as nested repeated fields down to
/// each span's bytes (prost skips every other field).
mod counting {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::task::{Context, Poll};

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use tonic::codegen::{BoxFuture, Service, http};

    /// `ExportTraceServiceRequest` with only its `resource_spans`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        #[prost(message, repeated, tag = "1")]
        resource_spans: Vec<ResourceSpans>,
    }

    /// `ResourceSpans` with only its `scope_spans`.
    #[derive(Clone, PartialEq, prost::Message)]
    struct ResourceSpans {
        #[prost(message, repeated, tag = "2")]
        scope_spans: Vec<ScopeSpans>,
    }

    /// `ScopeSpans` with its spans left encoded.
    #[derive(Clone, PartialEq, prost::Message)]
    struct ScopeSpans {
        #[prost(bytes = "bytes", repeated, tag = "2")]
        spans: Vec<bytes::Bytes>,
    }

    impl Request {
        fn spans(&self) -> usize {
            self.resource_spans
                .iter()
                .flat_map(|resource| &resource.scope_spans)
                .map(|scope| scope.spans.len())
                .sum()
        }
    }

    /// Counts the spans of every export into its counter.
    #[derive(Clone)]
    pub struct CountingServer(pub Arc<AtomicU64>);

    impl tonic::server::NamedService for CountingServer {
        const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    }

    #[derive(Clone)]
    struct Export(Arc<AtomicU64>);

    impl tonic::server::UnaryService<Request> for Export {
        type Response = ExportTraceServiceResponse;
        type Future = BoxFuture<tonic::Response<Self::Response>, tonic::Status>;

        fn call(&mut self, request: tonic::Request<Request>) -> Self::Future {
            let spans = request.get_ref().spans() as u64;
            self.0.fetch_add(spans, Ordering::Relaxed);
            Box::pin(async { Ok(tonic::Response::new(ExportTraceServiceResponse::default())) })
        }
    }

    impl Service<http::Request<tonic::body::Body>> for CountingServer {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = BoxFuture<Self::Response, Self::Error>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
            let export = Export(Arc::clone(&self.0));
            Box::pin(async move {
                let codec =
                    tonic_prost::ProstCodec::<ExportTraceServiceResponse, Request>::default();
                Ok(tonic::server::Grpc::new(codec).unary(export, request).await)
            })
        }
    }
}
