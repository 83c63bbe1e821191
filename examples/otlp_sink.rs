//! A minimal OTLP/gRPC trace receiver: accepts every export, counts the
//! spans and drops them (crates/tresor-bench/scripts/bench-otlp.sh). With
//! `--print`, it also writes one JSON line per span on stdout (name, trace
//! id, span id, parent span id, in hex), and first `listening ADDR`: the
//! Python and Node SDKs' tests read what tresor exported from it.
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
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(sink))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
        .await?;
    Ok(())
}
