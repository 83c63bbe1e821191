//! Transport security: only clients with a certificate from the client CA get
//! in, clients verify the server, plain text is refused, reflection is served.

use crate::common;

use std::time::{Duration, SystemTime};

use common::{ADMIN, BILLING, Clients, TestServer, proto};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tresor::pki::CertificateAuthority;

const KEY: &str = "billing/records";
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A call over a connection the peer refused fails in the transport (tonic
/// reports UNKNOWN "transport error" or UNAVAILABLE), never with a code a
/// handler returns.
#[track_caller]
fn assert_transport_failure<T: std::fmt::Debug>(result: Result<T, tonic::Status>) {
    let status = result.expect_err("a call over a refused connection must fail");
    assert!(
        matches!(status.code(), Code::Unknown | Code::Unavailable),
        "expected a transport failure, got {status:?}"
    );
}

async fn server_with_billing_key() -> (TestServer, Clients) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key(KEY, BILLING).await;
    (server, admin)
}

/// A client that the server must refuse: either the connect fails, or every
/// call fails at the transport without reaching a handler.
async fn assert_refused(connected: Result<Clients, tonic::transport::Error>) {
    let mut clients = match connected {
        Err(_) => return,
        Ok(clients) => clients,
    };
    assert_transport_failure(clients.encrypt(KEY, b"should not be served", &[]).await);
    assert_transport_failure(clients.admin.seal(proto::SealRequest {}).await);
    assert_transport_failure(clients.admin.get_status(proto::StatusRequest {}).await);
}

/// The server is unharmed: a good client is served and nothing was sealed.
async fn assert_still_serving(server: &TestServer) {
    let mut admin = server.admin().await;
    let status = admin
        .admin
        .get_status(proto::StatusRequest {})
        .await
        .expect("good admin is served")
        .into_inner();
    assert!(
        !status.sealed,
        "a refused client must not have sealed the service"
    );
    let mut billing = server.client(BILLING).await;
    billing
        .round_trip(KEY, b"still here", &[])
        .await
        .expect("encrypt and decrypt");
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let (server, _admin) = server_with_billing_key().await;
    let connected = common::connect(server.addr, &server.fixture.ca.cert_pem(), None).await;
    assert_refused(connected).await;
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let (server, _admin) = server_with_billing_key().await;
    let rogue = CertificateAuthority::generate("rogue CA").expect("CA");
    let cert = rogue.issue_client(ADMIN).expect("client cert");
    // The client still trusts the real server CA; only its own cert is foreign.
    let connected = common::connect(server.addr, &server.fixture.ca.cert_pem(), Some(&cert)).await;
    assert_refused(connected).await;
    let billing = rogue.issue_client(BILLING).expect("client cert");
    let connected =
        common::connect(server.addr, &server.fixture.ca.cert_pem(), Some(&billing)).await;
    assert_refused(connected).await;
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn an_expired_client_certificate_is_refused() {
    let (server, _admin) = server_with_billing_key().await;
    let now = SystemTime::now();
    let expired = server
        .fixture
        .ca
        .issue_client_with_validity(
            ADMIN,
            tresor::pki::Validity::between(now - 30 * DAY, now - DAY),
        )
        .expect("expired cert");
    let connected =
        common::connect(server.addr, &server.fixture.ca.cert_pem(), Some(&expired)).await;
    assert_refused(connected).await;
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_client_certificate_that_is_not_yet_valid_is_refused() {
    let (server, _admin) = server_with_billing_key().await;
    let now = SystemTime::now();
    let future = server
        .fixture
        .ca
        .issue_client_with_validity(
            ADMIN,
            tresor::pki::Validity::between(now + DAY, now + 30 * DAY),
        )
        .expect("future cert");
    let connected =
        common::connect(server.addr, &server.fixture.ca.cert_pem(), Some(&future)).await;
    assert_refused(connected).await;
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_server_certificate_is_not_accepted_as_a_client_certificate() {
    // Same CA, but EKU serverAuth only: not a client certificate.
    let (server, _admin) = server_with_billing_key().await;
    let server_cert = server
        .fixture
        .ca
        .issue_server(&["localhost".to_owned()], &[])
        .expect("server cert");
    let connected = common::connect(
        server.addr,
        &server.fixture.ca.cert_pem(),
        Some(&server_cert),
    )
    .await;
    assert_refused(connected).await;
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_server_ca_fails() {
    let (server, _admin) = server_with_billing_key().await;
    let other = CertificateAuthority::generate("other trust root").expect("CA");
    // A valid client certificate from the real CA, but the wrong trust root.
    let cert = server.fixture.ca.issue_client(ADMIN).expect("client cert");
    match common::connect(server.addr, &other.cert_pem(), Some(&cert)).await {
        Err(_) => {}
        Ok(mut clients) => {
            assert_transport_failure(clients.admin.get_status(proto::StatusRequest {}).await);
            assert_transport_failure(clients.encrypt(KEY, b"x", &[]).await);
        }
    }
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn plain_text_http2_is_refused() {
    let (server, _admin) = server_with_billing_key().await;
    let endpoint = Channel::from_shared(format!("http://127.0.0.1:{}", server.addr.port()))
        .expect("uri")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5));
    match endpoint.connect().await {
        Err(_) => {}
        Ok(channel) => {
            let mut admin = tresor_proto::v1::admin_client::AdminClient::new(channel.clone());
            assert_transport_failure(admin.get_status(proto::StatusRequest {}).await);
            let mut crypto = tresor_proto::v1::crypto_client::CryptoClient::new(channel);
            let result = crypto
                .encrypt(proto::EncryptRequest {
                    key_id: KEY.into(),
                    plaintext: b"x".to_vec(),
                    context: Default::default(),
                })
                .await;
            assert_transport_failure(result);
        }
    }
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn grpc_reflection_lists_the_services() {
    let (server, admin) = server_with_billing_key().await;
    let mut reflection = ServerReflectionClient::new(admin.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection stream")
        .into_inner();
    let response = responses
        .next()
        .await
        .expect("one response")
        .expect("response ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a ListServices response, got {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in [
        "tresor.v1.Crypto",
        "tresor.v1.Admin",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} missing from {names:?}"
        );
    }
    // A service identity may use reflection too, over mTLS.
    let billing = server.client(BILLING).await;
    let mut reflection = ServerReflectionClient::new(billing.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "tresor.v1.Crypto".into(),
        )),
    };
    let response = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection stream")
        .into_inner()
        .next()
        .await
        .expect("one response")
        .expect("response ok");
    let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
        panic!("expected a file descriptor, got {response:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}
