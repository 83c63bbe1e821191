//! The server on the wire: a raw tonic client (the generated one, which
//! adds no header of its own) for what SPIRE refuses and what a response
//! holds, the `spiffe` crate's `WorkloadApiClient` for the bundle stream,
//! and shutdown.

mod common;

use std::error::Error;
use std::path::PathBuf;

use common::{BOUND, SPIFFE_ID, TRUST_DOMAIN, parse, serial_of, start};
use ring::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use spiffe::{TrustDomain, WorkloadApiClient};
use tokio_stream::StreamExt as _;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Code, Request};
use tresor_test_spiffe::proto::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use tresor_test_spiffe::proto::{
    JwtBundlesRequest, JwtsvidRequest, X509BundlesRequest, X509svidRequest, X509svidResponse,
};
use tresor_test_spiffe::{SECURITY_HEADER, TrustDomainCa};

type TestResult = Result<(), Box<dyn Error>>;

/// A raw client on the socket at `path`.
async fn raw_client(path: PathBuf) -> Result<SpiffeWorkloadApiClient<Channel>, Box<dyn Error>> {
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await?;
    Ok(SpiffeWorkloadApiClient::new(channel))
}

/// `message` with the security header set to `value`.
fn with_header<T>(message: T, value: &'static str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(SECURITY_HEADER, value.parse().expect("ASCII"));
    request
}

/// The first `FetchX509SVID` message, with the header.
async fn first_svid_response(
    client: &mut SpiffeWorkloadApiClient<Channel>,
) -> Result<X509svidResponse, Box<dyn Error>> {
    let mut stream = client
        .fetch_x509svid(with_header(X509svidRequest {}, "true"))
        .await?
        .into_inner();
    Ok(stream.message().await?.expect("a first message"))
}

#[tokio::test]
async fn calls_without_the_security_header_are_refused_like_spire() -> TestResult {
    let dir = tempfile::tempdir()?;
    let api = start(dir.path()).await;
    let mut client = raw_client(api.socket_path().to_owned()).await?;

    let refusals = [
        client
            .fetch_x509svid(X509svidRequest {})
            .await
            .map(drop)
            .expect_err("FetchX509SVID without the header"),
        client
            .fetch_x509_bundles(X509BundlesRequest {})
            .await
            .map(drop)
            .expect_err("FetchX509Bundles without the header"),
        client
            .fetch_x509svid(with_header(X509svidRequest {}, "false"))
            .await
            .map(drop)
            .expect_err("FetchX509SVID with the header not `true`"),
        client
            .fetch_jwt_bundles(JwtBundlesRequest {})
            .await
            .map(drop)
            .expect_err("FetchJWTBundles without the header"),
    ];
    for status in refusals {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(status.message(), "security header missing from request");
    }
    Ok(())
}

#[tokio::test]
async fn jwt_methods_are_unimplemented() -> TestResult {
    let dir = tempfile::tempdir()?;
    let api = start(dir.path()).await;
    let mut client = raw_client(api.socket_path().to_owned()).await?;

    let request = JwtsvidRequest {
        audience: vec!["tresor".to_owned()],
        spiffe_id: String::new(),
    };
    let status = client
        .fetch_jwtsvid(with_header(request, "true"))
        .await
        .expect_err("FetchJWTSVID");
    assert_eq!(status.code(), Code::Unimplemented);
    Ok(())
}

#[tokio::test]
async fn an_svid_response_holds_a_usable_identity_and_the_bundles() -> TestResult {
    let dir = tempfile::tempdir()?;
    let api = start(dir.path()).await;
    let other = TrustDomainCa::new("other.test");
    api.federate_with(&other);
    let mut client = raw_client(api.socket_path().to_owned()).await?;

    let response = first_svid_response(&mut client).await?;
    assert_eq!(response.svids.len(), 1);
    let svid = &response.svids[0];
    assert_eq!(svid.spiffe_id, SPIFFE_ID);
    assert_eq!(serial_of(&svid.x509_svid), api.serial_hex());
    assert_eq!(svid.bundle, parse_pem_der(&api.ca_pem()));
    assert_eq!(
        response.federated_bundles.get("spiffe://other.test"),
        Some(&other.cert_der().to_vec()),
        "keyed by trust domain SPIFFE ID, as SPIRE does"
    );

    // The key is the certificate's: what it signs verifies with the
    // certificate's public key.
    let key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &svid.x509_svid_key,
        &ring::rand::SystemRandom::new(),
    )
    .expect("a P-256 PKCS#8 key");
    let signature = key
        .sign(&ring::rand::SystemRandom::new(), b"proof")
        .expect("signing");
    let leaf = parse(&svid.x509_svid);
    let public_key = leaf.public_key().subject_public_key.data.to_vec();
    ring::signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key)
        .verify(b"proof", signature.as_ref())
        .expect("the key is the certificate's");
    Ok(())
}

/// The DER of the one certificate in `pem`.
fn parse_pem_der(pem: &str) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM");
    pem.contents
}

/// The stream's next item, which must come within [`BOUND`].
async fn next<S: tokio_stream::Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(BOUND, stream.next())
        .await
        .expect("an update in time")
        .expect("the stream is open")
}

#[tokio::test]
async fn the_bundle_stream_pushes_every_bundle_change() -> TestResult {
    let dir = tempfile::tempdir()?;
    let api = start(dir.path()).await;
    let client = WorkloadApiClient::connect_to(api.endpoint()).await?;
    let mut bundles = client.stream_x509_bundles().await?;
    let own = TrustDomain::new(TRUST_DOMAIN)?;
    let other = TrustDomain::new("other.test")?;

    let set = next(&mut bundles).await?;
    assert_eq!(set.len(), 1);
    assert_eq!(set.get(&own).expect("own bundle").authorities().len(), 1);

    api.roll_ca();
    let set = next(&mut bundles).await?;
    assert_eq!(set.get(&own).expect("own bundle").authorities().len(), 2);

    api.federate_with(&TrustDomainCa::new("other.test"));
    let set = next(&mut bundles).await?;
    assert_eq!(set.len(), 2);
    assert!(set.get(&other).is_some());
    Ok(())
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_removes_the_socket() -> TestResult {
    let dir = tempfile::tempdir()?;
    let api = start(dir.path()).await;
    let socket = api.socket_path().to_owned();
    assert_eq!(api.endpoint(), format!("unix://{}", socket.display()));
    let client = WorkloadApiClient::connect_to(api.endpoint()).await?;
    let mut contexts = client.stream_x509_contexts().await?;
    next(&mut contexts).await?;

    tokio::time::timeout(BOUND, api.shutdown()).await?;
    let after = tokio::time::timeout(BOUND, contexts.next()).await?;
    assert!(after.is_none(), "the stream ended cleanly: {after:?}");
    assert!(!socket.exists());
    assert!(
        WorkloadApiClient::connect_to(format!("unix://{}", socket.display()))
            .await
            .is_err()
    );
    Ok(())
}
