//! Operating signals under real load: rate limits answer
//! RESOURCE_EXHAUSTED; an anomaly alert shows in the JSON log
//! (`event=anomaly`), the metrics endpoint, the webhook and the audit log;
//! no secret reaches the log; seal on a severe alert.

use crate::common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::metrics::{metric, scrape};
use common::{ADMIN, BILLING, Fixture, SHIPPING, ServeProcess, TestServer, assert_code};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tonic::Code;

const KEY: &str = "billing/records";
const MARKER: &str = "PLAINTEXT-MARKER-93be";
const CONTEXT_SECRET: &str = "context-secret-5521";

/// A local HTTP server that keeps every request body it receives.
async fn webhook_receiver() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let kept = kept.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let kept = kept.clone();
                        async move {
                            let body = request.into_body().collect().await?.to_bytes();
                            kept.lock()
                                .expect("bodies")
                                .push(String::from_utf8_lossy(&body).into_owned());
                            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(
                                Bytes::from_static(b"ok"),
                            )))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, bodies)
}

/// [`common::eventually_within`] 20 s, for a check that needs no awaiting.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    common::eventually_within(
        what,
        Duration::from_secs(20),
        || std::future::ready(check()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_triggers_limits_and_alerts_seen_in_log_metrics_webhook_and_audit() {
    let fixture = Fixture::new();
    let (webhook, bodies) = webhook_receiver().await;
    let mut flags = fixture.serve_flags();
    flags.extend(
        [
            "--log-format",
            "json",
            "--metrics-listen",
            "127.0.0.1:0",
            "--alert-webhook",
            &format!("http://{webhook}/alerts"),
            "--anomaly-bucket",
            "1s",
            "--anomaly-decrypt-floor",
            "40",
            "--rate-limit",
            &format!("{SHIPPING}=20/s"),
        ]
        .map(str::to_owned),
    );
    let server = ServeProcess::start_with(&flags, &[("TRESOR_LOG", "debug")]);
    let metrics_addr = server.metrics_addr().await;

    let mut admin = fixture.client_at(server.addr, ADMIN).await;
    admin.create_key(KEY, BILLING).await;
    let billing = fixture.client_at(server.addr, BILLING).await;
    let context = [("tenant", CONTEXT_SECRET)];
    let sealed = billing
        .clone()
        .encrypt(KEY, MARKER.as_bytes(), &context)
        .await
        .expect("encrypt")
        .ciphertext;

    // A quiet baseline: a few decrypts a second.
    for _ in 0..3 {
        for _ in 0..3 {
            billing
                .clone()
                .decrypt(KEY, &sealed, &context)
                .await
                .expect("decrypt");
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // Then a burst far above it.
    let burst: Vec<_> = (0..300)
        .map(|_| {
            let mut client = billing.clone();
            let sealed = sealed.clone();
            tokio::spawn(async move { client.decrypt(KEY, &sealed, &context).await })
        })
        .collect();
    for call in burst {
        call.await.expect("join").expect("decrypt");
    }

    // Shipping is limited to 20/s: a fast burst is partly refused.
    let shipping = fixture.client_at(server.addr, SHIPPING).await;
    let calls: Vec<_> = (0..60)
        .map(|_| {
            let mut client = shipping.clone();
            tokio::spawn(async move { client.encrypt(KEY, b"x", &[]).await })
        })
        .collect();
    let mut codes = HashMap::new();
    for call in calls {
        let code = call
            .await
            .expect("join")
            .err()
            .map_or(Code::Ok, |s| s.code());
        *codes.entry(code).or_insert(0) += 1;
    }
    assert!(
        codes.get(&Code::ResourceExhausted).copied().unwrap_or(0) >= 20,
        "{codes:?}"
    );
    assert!(
        codes.get(&Code::PermissionDenied).copied().unwrap_or(0) >= 1,
        "{codes:?}"
    );

    // The webhook got the alert.
    let alert = eventually("the webhook alert", || {
        bodies
            .lock()
            .expect("bodies")
            .iter()
            .map(|body| serde_json::from_str::<serde_json::Value>(body).expect("json body"))
            .find(|body| body["kind"] == "decrypt_spike")
    })
    .await;
    assert_eq!(alert["event"], "anomaly");
    assert_eq!(alert["identity"], BILLING);

    // The metrics count it, and the load.
    let samples = scrape(metrics_addr).await;
    assert!(
        metric(
            &samples,
            "tresor_anomaly_alerts_total{kind=\"decrypt_spike\"}"
        ) >= 1.0
    );
    assert!(
        metric(
            &samples,
            "tresor_requests_total{operation=\"Decrypt\",status=\"OK\"}"
        ) >= 309.0
    );
    assert!(
        metric(
            &samples,
            "tresor_requests_total{operation=\"Encrypt\",status=\"RESOURCE_EXHAUSTED\"}"
        ) >= 20.0
    );
    assert!(
        metric(
            &samples,
            "tresor_request_duration_seconds_count{operation=\"Decrypt\"}"
        ) >= 309.0
    );
    assert_eq!(metric(&samples, "tresor_keys"), 1.0);
    assert_eq!(metric(&samples, "tresor_sealed"), 0.0);
    assert_eq!(metric(&samples, "tresor_store_up"), 1.0);
    assert!(metric(&samples, "tresor_dek_cache_hit_ratio") > 0.9);
    assert!(samples.contains_key("tresor_audit_queue_depth"));

    // The log has the alert as a structured event, request ids on calls,
    // and no secret.
    let lines = server.log_lines();
    let logged: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert!(
        logged.iter().any(|l| l["level"] == "WARN"
            && l["fields"]["event"] == "anomaly"
            && l["fields"]["kind"] == "decrypt_spike"),
        "no anomaly event in the log"
    );
    assert!(
        logged
            .iter()
            .any(|l| l["span"]["request_id"].is_string() && l["span"]["operation"] == "Decrypt"),
        "no request id in the log"
    );
    for line in &lines {
        assert!(
            !line.contains(MARKER) && !line.contains(CONTEXT_SECRET),
            "secret in log: {line}"
        );
    }

    // The audit log records the alert (read after a graceful stop).
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let audit = std::fs::read_to_string(tresor::service::default_audit_file(&fixture.data_dir()))
        .expect("audit");
    assert!(
        audit
            .lines()
            .any(|line| line.contains("\"operation\":\"anomaly\"")
                && line.contains("decrypt_spike")
                && line.contains(BILLING)),
        "no anomaly record in the audit log"
    );
    assert!(audit.contains("\"status\":\"RESOURCE_EXHAUSTED\""));
    assert!(!audit.contains(MARKER) && !audit.contains(CONTEXT_SECRET));
}

#[tokio::test]
async fn a_severe_alert_seals_the_service_when_configured_and_denials_need_two_identities() {
    let fixture = Fixture::new();
    let mut settings = fixture.settings(tresor::config::DEFAULT_MAX_PLAINTEXT_BYTES);
    settings.service.guard.anomaly.denials = 5;
    settings
        .service
        .guard
        .seal_on
        .insert(tresor::anomaly::AlertKind::DenialSpike);
    let server = TestServer::start_with_settings(fixture, settings).await;
    let (mut admin, mut billing) = server.billing_key(KEY).await;
    let sealed = billing
        .encrypt(KEY, b"x", &[])
        .await
        .expect("encrypt")
        .ciphertext;
    // One identity's denial spike alerts but does not seal: any client
    // certificate holder can make its own calls fail.
    let mut shipping = server.client(SHIPPING).await;
    for _ in 0..6 {
        assert_code(
            shipping.decrypt(KEY, &sealed, &[]).await,
            Code::PermissionDenied,
        );
    }
    assert!(
        !admin.status().await.sealed,
        "one tenant alone sealed the service"
    );
    billing
        .decrypt(KEY, &sealed, &[])
        .await
        .expect("still serving after one identity's spike");
    // A second identity spiking within the bucket seals.
    let mut intruder = server.client("spiffe://test.tresor/intruder").await;
    for _ in 0..6 {
        assert_code(
            intruder.decrypt(KEY, &sealed, &[]).await,
            Code::PermissionDenied,
        );
    }
    let refused = assert_code(billing.decrypt(KEY, &sealed, &[]).await, Code::Unavailable);
    assert!(refused.message().contains("sealed"), "{refused:?}");
    let status = admin.status().await;
    assert!(status.sealed);
    admin.unseal().await;
    billing
        .decrypt(KEY, &sealed, &[])
        .await
        .expect("decrypt after unseal");
}
