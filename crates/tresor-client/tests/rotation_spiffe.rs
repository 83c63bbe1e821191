//! `ClientBuilder::spiffe`: the client presents the X.509-SVID of a real
//! SPIFFE Workload API (tresor-test-spiffe), follows its rotations and
//! bundle changes, and accepts a server only by its SPIFFE id and the
//! bundle of that id's trust domain.

mod common;

use std::time::Duration;

use common::{Issued, Server, call};
use tresor_client::{Client, ClientError};
use tresor_test_spiffe::{TrustDomainCa, WorkloadApi};

const LIFETIME: Duration = Duration::from_secs(3600);
const SERVER_ID: &str = "spiffe://test.tresor/tresor";

async fn workload_api(dir: &tempfile::TempDir) -> WorkloadApi {
    WorkloadApi::start(
        dir.path(),
        "test.tresor",
        "spiffe://test.tresor/client",
        LIFETIME,
    )
    .await
}

/// A server SVID for `id` from the Workload API's current CA.
fn server_svid(api: &WorkloadApi, id: &str) -> Issued {
    let (cert, key) = api.issue_client(id, LIFETIME);
    Issued::from_pem(&cert, &key)
}

/// A certificate for `id` issued by `ca`.
fn issued_by(ca: &TrustDomainCa, id: &str) -> Issued {
    let (cert, key) = ca.issue(id, LIFETIME);
    Issued::from_pem(&cert, &key)
}

fn builder(server: &Server, api: &WorkloadApi) -> tresor_client::ClientBuilder {
    Client::builder()
        .endpoint(server.endpoint())
        .spiffe(api.endpoint())
}

/// Calls on new connections until the server has seen `der`, for at most
/// 10 s: the Workload API pushes a rotation to the client's source on the
/// source's own task.
async fn until_presented(client: &Client, server: &Server, der: &[u8]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.seen().last().map(Vec::as_slice) != Some(der) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotated SVID was never presented"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        call(client).await.expect("call");
    }
}

#[tokio::test]
async fn spiffe_presents_the_svid_and_follows_its_rotation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let api = workload_api(&dir).await;
    let server = Server::start(&server_svid(&api, SERVER_ID), &api.ca_pem()).await;
    // The SVID names localhost, not this: DNS names are not checked.
    let client = builder(&server, &api)
        .server_spiffe_id(SERVER_ID)
        .server_name("tresor.elsewhere.test")
        .build()
        .await
        .expect("client");
    let first = api.svid().cert_der().to_vec();
    call(&client).await.expect("call");
    assert_eq!(server.seen(), std::slice::from_ref(&first));

    api.rotate();
    let rotated = api.svid().cert_der().to_vec();
    until_presented(&client, &server, &rotated).await;
    assert!(
        server
            .seen()
            .iter()
            .all(|der| *der == first || *der == rotated),
        "only the SVIDs served"
    );
}

#[tokio::test]
async fn spiffe_trusts_a_new_ca_once_the_bundle_carries_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let api = workload_api(&dir).await;
    let server = Server::start(&server_svid(&api, SERVER_ID), &api.ca_pem()).await;
    let client = builder(&server, &api).build().await.expect("client");
    call(&client).await.expect("call");

    // The server's next certificate comes from a CA the client learns of
    // only from the bundle update.
    let impostor = TrustDomainCa::new("test.tresor");
    server.set_identity(&issued_by(&impostor, SERVER_ID), &api.ca_pem());
    let refused = call(&client).await.expect_err("a CA not in the bundle");
    assert!(refused.to_string().contains("UnknownIssuer"), "{refused}");

    api.roll_ca();
    server.set_identity(&server_svid(&api, SERVER_ID), &api.ca_pem());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Err(e) = call(&client).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new CA was never trusted: {e}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The detail of the connection error `builder` fails with.
async fn refusal(builder: tresor_client::ClientBuilder) -> String {
    match builder.build().await {
        Err(ClientError::Connect { detail, .. }) => detail,
        other => panic!("expected a refused server, got {other:?}"),
    }
}

#[tokio::test]
async fn spiffe_accepts_a_server_only_by_its_id_and_its_own_trust_domain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let api = workload_api(&dir).await;
    let server = Server::start(&server_svid(&api, SERVER_ID), &api.ca_pem()).await;
    let ca = api.ca_pem();

    server.set_identity(&server_svid(&api, "spiffe://test.tresor/impostor"), &ca);
    let detail = refusal(builder(&server, &api).server_spiffe_id(SERVER_ID)).await;
    assert!(detail.contains("spiffe://test.tresor/impostor"), "{detail}");

    let other = TrustDomainCa::new("other.test");
    server.set_identity(&issued_by(&other, "spiffe://other.test/tresor"), &ca);
    let detail = refusal(builder(&server, &api)).await;
    assert!(detail.contains("no trust bundle"), "{detail}");

    // Federated, other.test vouches for its own ids, never for ours.
    api.federate_with(&other);
    builder(&server, &api)
        .build()
        .await
        .expect("a federated server of its own trust domain");
    server.set_identity(&issued_by(&other, SERVER_ID), &ca);
    let detail = refusal(builder(&server, &api)).await;
    assert!(detail.contains("UnknownIssuer"), "{detail}");
    assert_eq!(
        server.seen().len(),
        1,
        "only the federated server was accepted"
    );
}

/// The message of the configuration error `builder` fails with.
async fn config_error(builder: tresor_client::ClientBuilder) -> String {
    match builder.build().await {
        Err(ClientError::Config(message)) => message,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn spiffe_is_not_combined_with_other_material() {
    const SOCKET: &str = "unix:///nonexistent/api.sock";
    let builder = || Client::builder().endpoint("localhost:1");
    let message = config_error(builder().spiffe(SOCKET).ca("PEM")).await;
    assert!(message.contains("cannot be combined"), "{message}");
    let message = config_error(builder().ca("PEM").server_spiffe_id(SERVER_ID)).await;
    assert!(message.contains("needs ClientBuilder::spiffe"), "{message}");
    let no_agent = builder()
        .spiffe(SOCKET)
        .connect_timeout(Duration::from_millis(100));
    let message = config_error(no_agent).await;
    assert!(message.contains(SOCKET), "{message}");
}
