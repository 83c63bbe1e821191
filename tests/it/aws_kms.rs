//! The AWS KMS master key against a real KMS endpoint: moto's KMS server,
//! started here. Covers start-up, restart, the KMS call count (nothing on
//! the request path), wrong and unknown keys, an unreachable endpoint, and
//! rotation from a key file to KMS and back.

use crate::common;

use common::moto::{AWS_ENV, Moto};
use common::{ADMIN, BILLING, Fixture, ServeProcess, TestServer};

const KEY: &str = "billing/records";

/// `tresor serve` flags for the fixture, with an AWS KMS master key.
fn kms_flags(fixture: &Fixture, kms_key: &str, endpoint: &str) -> Vec<String> {
    let mut flags = fixture.serve_flags();
    let at = flags
        .iter()
        .position(|f| f == "--master-key-file")
        .expect("flag");
    flags.drain(at..at + 2);
    flags.extend([
        "--master-key".to_owned(),
        format!("aws-kms:{kms_key}"),
        "--aws-endpoint".to_owned(),
        endpoint.to_owned(),
    ]);
    flags
}

fn serve_fails(flags: &[String]) -> String {
    let out = common::cli::command(flags)
        .envs(AWS_ENV)
        .output()
        .expect("run tresor serve");
    assert_eq!(out.status.code(), Some(1), "start-up must fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn clients(fixture: &Fixture, process: &ServeProcess) -> (common::Clients, common::Clients) {
    let ca = fixture.ca.cert_pem();
    let admin = fixture.ca.issue_client(ADMIN).expect("cert");
    let billing = fixture.ca.issue_client(BILLING).expect("cert");
    (
        common::connect(process.addr, &ca, Some(&admin))
            .await
            .expect("admin"),
        common::connect(process.addr, &ca, Some(&billing))
            .await
            .expect("billing"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_wraps_the_root_key_and_is_never_called_on_the_request_path() {
    let Some(moto) = Moto::start() else { return };
    let kms_key = moto.create_key();
    let fixture = Fixture::new();
    let flags = kms_flags(&fixture, &kms_key, &moto.endpoint());
    moto.start_recording();

    let process = ServeProcess::start_with(&flags, &AWS_ENV);
    assert_eq!(
        moto.calls("Encrypt"),
        1,
        "one Encrypt wraps the new root key"
    );
    assert_eq!(
        moto.calls("Decrypt"),
        1,
        "one Decrypt unwraps it at start-up"
    );
    let (mut admin, mut billing) = clients(&fixture, &process).await;
    admin.create_key(KEY, BILLING).await;
    let mut sealed = Vec::new();
    for i in 0..20 {
        let out = billing
            .encrypt(KEY, format!("record {i}").as_bytes(), &[("i", "x")])
            .await
            .expect("encrypt");
        sealed.push(out.ciphertext);
        if i % 5 == 4 {
            billing.rotate(KEY).await.expect("rotate");
        }
    }
    for ciphertext in &sealed {
        billing
            .decrypt(KEY, ciphertext, &[("i", "x")])
            .await
            .expect("decrypt");
    }
    let status = admin
        .admin
        .get_status(common::proto::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.master_key, format!("aws-kms:{kms_key}"));
    assert_eq!(
        (moto.calls("Encrypt"), moto.calls("Decrypt")),
        (1, 1),
        "40 data-plane calls and 4 rotations made no KMS call"
    );
    // Unseal unwraps once more.
    admin.seal().await;
    admin.unseal().await;
    assert_eq!(moto.calls("Decrypt"), 2);
    drop((admin, billing));
    process.kill_9();

    // Restart: one Decrypt, and everything decrypts.
    let process = ServeProcess::start_with(&flags, &AWS_ENV);
    let (_admin, mut billing) = clients(&fixture, &process).await;
    for (i, ciphertext) in sealed.iter().enumerate() {
        let opened = billing
            .decrypt(KEY, ciphertext, &[("i", "x")])
            .await
            .expect("decrypt");
        assert_eq!(opened.plaintext, format!("record {i}").as_bytes());
    }
    assert_eq!((moto.calls("Encrypt"), moto.calls("Decrypt")), (1, 3));
    process.kill_9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_unknown_or_unreachable_kms_key_is_refused_clearly_and_changes_nothing() {
    let Some(moto) = Moto::start() else { return };
    let right = moto.create_key();
    let other = moto.create_key();
    let fixture = Fixture::new();
    let process =
        ServeProcess::start_with(&kms_flags(&fixture, &right, &moto.endpoint()), &AWS_ENV);
    let (mut admin, mut billing) = clients(&fixture, &process).await;
    admin.create_key(KEY, BILLING).await;
    let ciphertext = billing
        .encrypt(KEY, b"kept", &[])
        .await
        .expect("encrypt")
        .ciphertext;
    drop((admin, billing));
    process.kill_9();

    // A KMS key that did not wrap this keystore.
    let message = serve_fails(&kms_flags(&fixture, &other, &moto.endpoint()));
    assert!(
        message.contains(&format!("does not unwrap with aws-kms:{other}")),
        "{message}"
    );
    assert!(
        message.contains(&format!("wrapped by aws-kms:{right}")),
        "{message}"
    );
    // A key id KMS does not know.
    let message = serve_fails(&kms_flags(
        &fixture,
        "11111111-2222-3333-4444-555555555555",
        &moto.endpoint(),
    ));
    assert!(message.contains("key not found"), "{message}");
    // An endpoint where nothing listens: retried, then a clear error.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let message = serve_fails(&kms_flags(
        &fixture,
        &right,
        &format!("http://127.0.0.1:{closed}"),
    ));
    assert!(message.contains("KMS is unreachable"), "{message}");

    // Untouched: the right key still opens everything.
    let process =
        ServeProcess::start_with(&kms_flags(&fixture, &right, &moto.endpoint()), &AWS_ENV);
    let (_admin, mut billing) = clients(&fixture, &process).await;
    let opened = billing
        .decrypt(KEY, &ciphertext, &[])
        .await
        .expect("decrypt");
    assert_eq!(opened.plaintext, b"kept");
    process.kill_9();
}

fn rotate(args: &[&str]) {
    let out = common::cli::command(["master-key", "rotate"])
        .args(args)
        .envs(AWS_ENV)
        .output()
        .expect("run tresor master-key rotate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_key_moves_from_a_file_to_kms_and_back() {
    let Some(moto) = Moto::start() else { return };
    let kms_key = moto.create_key();
    let endpoint = moto.endpoint();
    let (server, admin, mut billing) = TestServer::with_billing_key(KEY).await;
    let ciphertext = billing
        .encrypt(KEY, b"portable", &[])
        .await
        .expect("encrypt")
        .ciphertext;
    drop((admin, billing));
    let fixture = server.stop().await;
    let data_dir = fixture.data_dir();
    let data = data_dir.to_str().expect("utf8");
    let file = fixture.master_key_file();

    rotate(&[
        "--data-dir",
        data,
        "--from-master-key-file",
        file.to_str().expect("utf8"),
        "--to",
        &format!("aws-kms:{kms_key}"),
        "--aws-endpoint",
        &endpoint,
    ]);
    let process = ServeProcess::start_with(&kms_flags(&fixture, &kms_key, &endpoint), &AWS_ENV);
    let (_admin, mut billing) = clients(&fixture, &process).await;
    billing
        .assert_decrypts(KEY, &ciphertext, &[], b"portable")
        .await;
    process.kill_9();

    let back = fixture.dir.path().join("back.key");
    tresor::master_key::FileMasterKey::generate(&back).expect("new file key");
    rotate(&[
        "--data-dir",
        data,
        "--from",
        &format!("aws-kms:{kms_key}"),
        "--aws-endpoint",
        &endpoint,
        "--to-master-key-file",
        back.to_str().expect("utf8"),
    ]);
    let mut settings = fixture.settings_with(
        1 << 20,
        tresor::master_key::MasterKeySpec::File(back.clone()),
    );
    settings.store = tresor::config::StoreSpec::Sled(data_dir.clone());
    let server = TestServer::start_with_settings(fixture, settings).await;
    let mut billing = server.client(BILLING).await;
    billing
        .assert_decrypts(KEY, &ciphertext, &[], b"portable")
        .await;
}
