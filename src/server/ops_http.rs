//! The server's plain-HTTP side channels: the Prometheus endpoint
//! (`GET /metrics`) and the anomaly webhook (a JSON POST per alert).
//! Neither carries key material or request payloads.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use crate::anomaly::Alert;
use crate::config::WebhookUrl;
use crate::service::Service;

/// How long one webhook delivery may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle metrics connection may stay open.
const METRICS_CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Most metrics connections served at once; further ones wait in the
/// listen backlog until one closes (a scraper needs one or two).
pub const MAX_METRICS_CONNECTIONS: usize = 16;

fn text_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn answer(
    service: Arc<Service>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            service
                .metrics()
                .set_trace_spans_dropped(crate::telemetry::dropped_spans());
            text_response(StatusCode::OK, service.render_metrics().await)
        }
        (&Method::GET, _) => text_response(StatusCode::NOT_FOUND, "try /metrics\n".into()),
        _ => text_response(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into()),
    })
}

/// Serves `GET /metrics` on `listener` until the task is aborted, at most
/// [`MAX_METRICS_CONNECTIONS`] connections at a time.
pub async fn serve_metrics(listener: TcpListener, service: Arc<Service>) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(metrics_addr = %addr, "metrics listening (plain HTTP, GET /metrics)");
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_METRICS_CONNECTIONS));
    loop {
        // Never closed, so acquiring fails never; stop serving if it did.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = service.clone();
        tokio::spawn(async move {
            let serve = hyper::server::conn::http1::Builder::new().serve_connection(
                TokioIo::new(stream),
                hyper::service::service_fn(move |request| answer(service.clone(), request)),
            );
            let _ = tokio::time::timeout(METRICS_CONNECTION_TIMEOUT, serve).await;
            drop(slot);
        });
    }
}

/// The JSON body of one alert.
pub fn alert_json(alert: &Alert, server: &str) -> serde_json::Value {
    serde_json::json!({
        "event": "anomaly",
        "kind": alert.kind.name(),
        "identity": alert.identity.to_string(),
        "detail": alert.detail,
        "server": server,
        "time": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
    })
}

async fn post(target: &WebhookUrl, body: Vec<u8>) -> Result<StatusCode, String> {
    let stream = TcpStream::connect(&target.authority)
        .await
        .map_err(|e| format!("connect {}: {e}", target.authority))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = Request::builder()
        .method(Method::POST)
        .uri(target.path.as_str())
        .header(hyper::header::HOST, target.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response.status())
}

/// POSTs every alert of `service` to `target` until the task is aborted.
/// A failed delivery is logged and not retried (the alert is also in the
/// log, the audit log and the metrics).
pub async fn forward_alerts(service: Arc<Service>, target: WebhookUrl, server: String) {
    let mut alerts = service.subscribe_alerts();
    drop(service);
    loop {
        let alert = match alerts.recv().await {
            Ok(alert) => alert,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "alert webhook fell behind; alerts skipped");
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let body = alert_json(&alert, &server).to_string().into_bytes();
        match tokio::time::timeout(WEBHOOK_TIMEOUT, post(&target, body)).await {
            Ok(Ok(status)) if status.is_success() => {}
            Ok(Ok(status)) => tracing::warn!(%status, "alert webhook refused an alert"),
            Ok(Err(e)) => tracing::warn!(error = %e, "alert webhook unreachable"),
            Err(_) => tracing::warn!("alert webhook timed out"),
        }
    }
}
