//! `ClientBuilder::ca_file` and `ClientBuilder::identity_files`: one client,
//! kept across certificate rotations, presents the certificate on disk at
//! each new connection, and keeps the last good pair through a rotation
//! written halfway.

mod common;

use std::path::{Path, PathBuf};

use common::{Ca, Issued, Logs, Server, call};
use tresor_client::{Client, ClientError, ConnectHint};

/// The files a client is pointed at.
struct Files {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Files {
    fn new(ca_pem: &str, client: &Issued) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = Self {
            ca: dir.path().join("ca.pem"),
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            _dir: dir,
        };
        write(&files.ca, ca_pem);
        files.write_identity(client);
        files
    }

    fn write_identity(&self, client: &Issued) {
        write(&self.cert, &client.cert_pem);
        write(&self.key, &client.key_pem);
    }

    async fn client(&self, server: &Server) -> Result<Client, ClientError> {
        Client::builder()
            .endpoint(server.endpoint())
            .ca_file(&self.ca)
            .identity_files(&self.cert, &self.key)
            .build()
            .await
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write PEM file");
}

/// A server, and a client of it whose CA and first identity are in files.
struct Rotating {
    ca: Ca,
    server: Server,
    first: Issued,
    files: Files,
    client: Client,
}

impl Rotating {
    async fn start() -> Self {
        let ca = Ca::new("test CA");
        let server = Server::start(&ca.server(&["localhost"]), &ca.pem).await;
        let first = ca.client();
        let files = Files::new(&ca.pem, &first);
        let client = files.client(&server).await.expect("client");
        Self {
            ca,
            server,
            first,
            files,
            client,
        }
    }

    /// A call that succeeds, on a new connection.
    async fn call(&self) {
        call(&self.client).await.expect("call");
    }
}

#[tokio::test]
async fn a_renewed_identity_file_is_presented_on_the_next_connection() {
    let t = Rotating::start().await;
    t.call().await;
    assert_eq!(t.server.seen(), std::slice::from_ref(&t.first.der));

    let renewed = t.ca.client();
    t.files.write_identity(&renewed);
    t.call().await;
    assert_eq!(t.server.seen(), [t.first.der.clone(), renewed.der]);
}

#[tokio::test]
async fn a_half_written_rotation_keeps_the_last_good_pair_until_the_key_follows() {
    let t = Rotating::start().await;
    let (logs, _guard) = Logs::capture();
    t.call().await;

    // The new certificate is in place, its key not yet.
    let renewed = t.ca.client();
    write(&t.files.cert, &renewed.cert_pem);
    t.call().await;
    t.call().await;
    assert_eq!(
        t.server.seen(),
        vec![t.first.der.clone(); 3],
        "the old pair, on new connections"
    );
    let warned = logs.text();
    assert_eq!(
        warned.matches("WARN").count(),
        1,
        "one warning while the reason stays the same: {warned}"
    );
    assert!(
        warned.contains("does not match") && warned.contains(&t.files.key.display().to_string()),
        "the warning names the key file: {warned}"
    );
    assert!(
        !warned.contains("PRIVATE KEY"),
        "no key in the logs: {warned}"
    );

    write(&t.files.key, &renewed.key_pem);
    t.call().await;
    assert_eq!(t.server.seen().last(), Some(&renewed.der));
}

#[tokio::test]
async fn a_rotated_ca_file_is_trusted_on_the_next_connection() {
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let user = old_ca.client();
    let server = Server::start(&old_ca.server(&["localhost"]), &old_ca.pem).await;
    let files = Files::new(&old_ca.pem, &user);
    // Mixed: the CA from a file, the identity given as PEM.
    let client = Client::builder()
        .endpoint(server.endpoint())
        .ca_file(&files.ca)
        .identity(user.cert_pem.clone(), user.key_pem.clone())
        .build()
        .await
        .expect("client");
    call(&client).await.expect("call");

    server.set_identity(&new_ca.server(&["localhost"]), &old_ca.pem);
    write(&files.ca, &new_ca.pem);
    call(&client).await.expect("call");
    assert_eq!(server.seen(), vec![user.der.clone(); 2]);
}

#[tokio::test]
async fn build_names_the_file_that_does_not_load() {
    let ca = Ca::new("test CA");
    let server = Server::start(&ca.server(&["localhost"]), &ca.pem).await;
    let files = Files::new(&ca.pem, &ca.client());

    let missing = files.key.with_file_name("missing.pem");
    let result = Client::builder()
        .endpoint(server.endpoint())
        .ca_file(&files.ca)
        .identity_files(&files.cert, &missing)
        .build()
        .await;
    let Err(ClientError::Config(message)) = result else {
        panic!("expected a configuration error, got {result:?}");
    };
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );

    write(&files.key, &ca.client().key_pem);
    let result = files.client(&server).await;
    let Err(ClientError::Config(message)) = result else {
        panic!("expected a configuration error, got {result:?}");
    };
    assert!(
        message.contains("does not match") && message.contains(&files.cert.display().to_string()),
        "{message}"
    );
    assert!(server.seen().is_empty(), "no connection was made");
}

#[tokio::test]
async fn server_name_overrides_the_host_of_the_endpoint() {
    let ca = Ca::new("test CA");
    let user = ca.client();
    let server = Server::start(&ca.server(&["tresor.test"]), &ca.pem).await;
    let builder = || {
        Client::builder()
            .endpoint(format!("127.0.0.1:{}", server.addr.port()))
            .ca(ca.pem.clone())
            .identity(user.cert_pem.clone(), user.key_pem.clone())
    };

    match builder().build().await {
        Err(ClientError::Connect { hint, .. }) => assert_eq!(hint, ConnectHint::NameMismatch),
        other => panic!("expected a name mismatch, got {other:?}"),
    }
    let client = builder()
        .server_name("tresor.test")
        .build()
        .await
        .expect("client");
    call(&client).await.expect("call");
    assert_eq!(server.seen().last(), Some(&user.der));
}

#[test]
fn the_builder_shows_no_key() {
    let ca = Ca::new("test CA");
    let user = ca.client();
    let shown = format!(
        "{:?}",
        Client::builder()
            .endpoint("https://localhost:1")
            .ca(ca.pem.clone())
            .identity(user.cert_pem, user.key_pem.clone())
    );
    assert!(shown.contains("REDACTED"), "{shown}");
    let key_body = user.key_pem.lines().nth(1).expect("a base64 line");
    assert!(!shown.contains(key_body), "{shown}");
}
