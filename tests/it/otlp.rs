//! OpenTelemetry traces (issue 26): `tresor serve --otlp-endpoint` exports
//! its spans over OTLP/gRPC to a collector this test serves (the public
//! OTLP trace service proto, with tonic). A traced Encrypt continues the
//! caller's trace, carries its attributes, has child spans, and no
//! exported attribute holds the plaintext or a context value; the Rust
//! SDK sends its caller's OpenTelemetry context as `traceparent`.

use std::sync::{Arc, Mutex};

use crate::common;

use common::{ADMIN, BILLING, Fixture, ServeProcess, proto};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

const KEY: &str = "billing/traced";
const PLAINTEXT: &[u8] = b"traced-plaintext-5a1c";
const CONTEXT_VALUE: &str = "tenant-value-93d2";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const SDK_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

/// Every span any export delivered.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans);
        self.0.lock().expect("spans").extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value| value.value.as_ref())
        .map(|value| match value {
            Value::StringValue(s) => s.clone(),
            Value::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_encrypt_reaches_the_collector_as_a_child_of_the_callers_trace() {
    let (collector, collector_addr) = start_collector().await;
    let spans = collector.0.clone();
    let (fixture, server, mut billing) =
        traced_server(collector_addr, &[("OTEL_BSP_SCHEDULE_DELAY", "100")], &[]).await;
    let mut request = tonic::Request::new(proto::EncryptRequest {
        key_id: KEY.into(),
        plaintext: PLAINTEXT.to_vec(),
        context: common::ctx(&[("tenant", CONTEXT_VALUE)]),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{PARENT_ID}-01")
            .parse()
            .expect("metadata"),
    );
    billing.crypto.encrypt(request).await.expect("encrypt");

    let encrypt = common::eventually("the Encrypt span at the collector", || {
        let spans = spans.clone();
        async move {
            spans
                .lock()
                .expect("spans")
                .iter()
                .find(|span| span.name == "tresor.v1.Crypto/Encrypt")
                .cloned()
        }
    })
    .await;
    assert_eq!(
        hex(&encrypt.trace_id),
        TRACE_ID,
        "the caller's trace goes on"
    );
    assert_eq!(
        hex(&encrypt.parent_span_id),
        PARENT_ID,
        "a child of the caller's span"
    );
    assert_eq!(attribute(&encrypt, "identity").as_deref(), Some(BILLING));
    assert_eq!(attribute(&encrypt, "key_id").as_deref(), Some(KEY));
    assert_eq!(attribute(&encrypt, "key_version").as_deref(), Some("1"));
    assert_eq!(
        attribute(&encrypt, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );
    assert!(attribute(&encrypt, "request_id").is_some());

    let children = common::eventually("the Encrypt span's children", || {
        let spans = spans.clone();
        let id = encrypt.span_id.clone();
        async move {
            let names: Vec<String> = spans
                .lock()
                .expect("spans")
                .iter()
                .filter(|span| span.parent_span_id == id)
                .map(|span| span.name.clone())
                .collect();
            names.iter().any(|n| n == "audit.write").then_some(names)
        }
    })
    .await;
    assert!(
        children.iter().any(|n| n.starts_with("keystore.")),
        "a keystore read under the call: {children:?}"
    );

    // The Rust SDK sends the caller's current OpenTelemetry context.
    let sdk = fixture.sdk_at(server.addr, BILLING).await;
    let remote = SpanContext::new(
        TraceId::from_hex(SDK_TRACE_ID).expect("trace id"),
        SpanId::from_hex(PARENT_ID).expect("span id"),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let traced = opentelemetry::Context::current().with_remote_span_context(remote);
    {
        let _attached = traced.attach();
        sdk.encrypt(KEY, PLAINTEXT, &common::ctx(&[("tenant", CONTEXT_VALUE)]))
            .await
            .expect("sdk encrypt");
    }
    let from_sdk = common::eventually("the SDK's Encrypt in its caller's trace", || {
        let spans = spans.clone();
        async move {
            spans
                .lock()
                .expect("spans")
                .iter()
                .find(|span| {
                    hex(&span.trace_id) == SDK_TRACE_ID && span.name == "tresor.v1.Crypto/Encrypt"
                })
                .cloned()
        }
    })
    .await;
    assert_eq!(hex(&from_sdk.parent_span_id), PARENT_ID);

    let everything = format!("{:?}", spans.lock().expect("spans"));
    let plaintext = String::from_utf8_lossy(PLAINTEXT);
    assert!(
        !everything.contains(plaintext.as_ref()),
        "plaintext exported"
    );
    assert!(
        !everything.contains(CONTEXT_VALUE),
        "a context value exported"
    );
    assert!(server.terminate().success());
}

/// A collector on an ephemeral port, and where it is.
async fn start_collector() -> (Collector, std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let collector = Collector::default();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (collector, addr)
}

/// A server exporting to `endpoint` with `envs` and the extra `flags`,
/// with KEY created for billing; the fixture, the server and billing's
/// client.
async fn traced_server(
    endpoint: std::net::SocketAddr,
    envs: &[(&str, &str)],
    extra: &[&str],
) -> (Fixture, ServeProcess, common::Clients) {
    let fixture = Fixture::new();
    let mut flags = fixture.serve_flags();
    flags.extend(["--otlp-endpoint".to_owned(), format!("http://{endpoint}")]);
    flags.extend(extra.iter().map(|flag| (*flag).to_owned()));
    let server = ServeProcess::start_with(&flags, envs);
    fixture
        .client_at(server.addr, ADMIN)
        .await
        .create_key(KEY, BILLING)
        .await;
    let billing = fixture.client_at(server.addr, BILLING).await;
    (fixture, server, billing)
}

fn encrypt_request(traceparent: Option<&str>) -> tonic::Request<proto::EncryptRequest> {
    let mut request = tonic::Request::new(proto::EncryptRequest {
        key_id: KEY.into(),
        plaintext: PLAINTEXT.to_vec(),
        context: common::ctx(&[("tenant", CONTEXT_VALUE)]),
    });
    if let Some(traceparent) = traceparent {
        request
            .metadata_mut()
            .insert("traceparent", traceparent.parse().expect("metadata"));
    }
    request
}

/// Untraced calls export nothing, not even their child spans as roots of
/// their own: with `parentbased_always_off`, only the call whose caller
/// sampled its trace is exported, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_sampled_calls_are_exported_and_whole() {
    let (collector, collector_addr) = start_collector().await;
    let (_fixture, server, mut billing) = traced_server(
        collector_addr,
        &[
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_TRACES_SAMPLER", "parentbased_always_off"),
        ],
        &[],
    )
    .await;
    for _ in 0..20 {
        billing
            .crypto
            .encrypt(encrypt_request(None))
            .await
            .expect("encrypt");
    }
    let unsampled = format!("00-{SDK_TRACE_ID}-{PARENT_ID}-00");
    billing
        .crypto
        .encrypt(encrypt_request(Some(&unsampled)))
        .await
        .expect("encrypt");
    let sampled = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    billing
        .crypto
        .encrypt(encrypt_request(Some(&sampled)))
        .await
        .expect("encrypt");

    let spans = collector.0.clone();
    common::eventually("the sampled call's audit write", || {
        let spans = spans.clone();
        async move {
            let spans = spans.lock().expect("spans");
            spans
                .iter()
                .any(|span| span.name == "audit.write")
                .then_some(())
        }
    })
    .await;
    // Whatever else was queued went out with it (one schedule delay).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let spans = collector.0.lock().expect("spans").clone();
    assert!(
        spans.iter().all(|span| hex(&span.trace_id) == TRACE_ID),
        "only the sampled trace: {:?}",
        spans
            .iter()
            .map(|s| (&s.name, hex(&s.trace_id)))
            .collect::<Vec<_>>()
    );
    let call = spans
        .iter()
        .find(|span| span.name == "tresor.v1.Crypto/Encrypt")
        .expect("the sampled call");
    assert_eq!(hex(&call.parent_span_id), PARENT_ID);
    assert!(
        spans
            .iter()
            .filter(|span| span.span_id != call.span_id)
            .all(|span| span.parent_span_id == call.span_id),
        "every other span is a child of the call"
    );
    assert!(server.terminate().success());
}

/// A collector that never answers: requests are served all the same, the
/// bounded queue drops what does not fit, and the metric counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_export_queue_drops_spans_counts_them_and_never_holds_a_request() {
    // Accepts connections and never answers: every export waits.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let (_fixture, server, mut billing) = traced_server(
        silent_addr,
        &[
            ("OTEL_TRACES_SAMPLER", "always_on"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "8"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "60000"),
        ],
        &["--metrics-listen", "127.0.0.1:0"],
    )
    .await;
    for _ in 0..50 {
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            billing.crypto.encrypt(encrypt_request(None)),
        )
        .await
        .expect("a request never waits for the exporter")
        .expect("encrypt");
    }
    let metrics_addr = server.metrics_addr().await;
    let samples = common::metrics::scrape(metrics_addr).await;
    let dropped = common::metrics::metric(&samples, "tresor_trace_spans_dropped_total");
    // 51 calls make over 100 spans; at most 8 wait and 4 are being exported.
    assert!(dropped >= 80.0, "dropped {dropped}");
}

/// A sampler or queue setting tresor cannot honour stops `serve` before
/// it listens, saying which variable is wrong.
#[test]
fn unknown_sampling_settings_stop_the_server_with_a_clear_error() {
    let fixture = Fixture::new();
    let mut flags = fixture.serve_flags();
    flags.extend([
        "--otlp-endpoint".to_owned(),
        "http://127.0.0.1:4317".to_owned(),
    ]);
    for (name, value) in [
        ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tresor"))
            .args(&flags)
            .env("OTEL_TRACES_SAMPLER", "traceidratio")
            .env(name, value)
            .output()
            .expect("run tresor serve");
        assert_eq!(output.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name), "{name}={value}: {stderr}");
    }
}
