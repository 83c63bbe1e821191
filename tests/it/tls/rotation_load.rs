//! Rotation under load: 30-second server certificates rewritten ten times
//! (certificate, then key: two steps) while 8 client tasks call Encrypt
//! and Decrypt through established and new connections. No call fails,
//! and once a rotation is applied every new handshake gets its serial.

use super::*;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::BILLING;
use tresor::pki::Validity;

/// What new handshakes must get: `Some(serial)` once a rotation is
/// applied, `None` while one is being written.
type Expected = Arc<Mutex<Option<String>>>;

fn expected(state: &Expected) -> Option<String> {
    state.lock().expect("expected serial").clone()
}

/// One client task: calls until stopped (see [`round_trip_in_round`]),
/// and every fifth time checks the certificate of a raw new handshake
/// against `state`. Returns what went wrong.
async fn caller(
    server: Arc<TestServer>,
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    state: Expected,
) -> Vec<String> {
    let root = server.fixture.ca.cert_pem();
    let cert = server
        .fixture
        .ca
        .issue_client(BILLING)
        .expect("client cert");
    let mut problems = Vec::new();
    let mut established = server.client(BILLING).await;
    let mut round = 0usize;
    while Load::running(&stop) {
        round += 1;
        let called = round_trip_in_round(round, &mut established, server.addr, &root, &cert).await;
        calls.fetch_add(1, Ordering::Relaxed);
        problems.extend(called.err());
        if round.is_multiple_of(5) {
            let before = expected(&state);
            let served = served_serial_with(server.addr, &root, &cert).await;
            match (served, before) {
                (Err(e), _) => problems.push(format!("handshake failed: {e}")),
                (Ok(served), Some(newest)) if expected(&state).as_ref() == Some(&newest) => {
                    if served != newest {
                        problems.push(format!("served {served}, newest is {newest}"));
                    }
                }
                // A rotation was being written during the handshake.
                (Ok(_), _) => {}
            }
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_rotations_of_30_second_certificates_under_load_fail_no_call() {
    let (server, files) = server_watching_its_files().await;
    server.admin().await.create_key(KEY, BILLING).await;
    let server = Arc::new(server);
    let state: Expected = Arc::new(Mutex::new(Some(serial_of_pem(
        &server.fixture.server_cert.cert_pem,
    ))));
    let mut load = Load::new();
    for _ in 0..8 {
        let (stop, calls) = (load.stop.clone(), load.calls.clone());
        load.spawn(caller(server.clone(), stop, calls, state.clone()));
    }

    let rotations = 10;
    for _ in 0..rotations {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let next = server
            .fixture
            .ca
            .issue_server_with_validity(
                &["localhost".to_owned()],
                &["127.0.0.1".parse().expect("ip")],
                Validity::from_now(Duration::from_secs(30)),
            )
            .expect("30-second certificate");
        let serial = serial_of_pem(&next.cert_pem);
        *state.lock().expect("expected serial") = None;
        let files_ref = &files;
        tokio::task::block_in_place(|| files_ref.install(&next));
        until_served(&server, &serial).await;
        *state.lock().expect("expected serial") = Some(serial);
    }
    let (calls, problems) = load.stop().await;
    assert!(
        problems.is_empty(),
        "{} problems in {calls} calls: {problems:#?}",
        problems.len()
    );
    assert!(calls >= 8 * rotations, "only {calls} calls");
    assert!(
        until_audited(&server, "tls_reloaded", rotations)
            .await
            .len()
            >= rotations
    );
}
