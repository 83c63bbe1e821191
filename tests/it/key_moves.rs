//! ReEncrypt with a destination key (issue 21): a ciphertext moves to
//! another key inside tresor, the plaintext never leaving it; the move
//! needs DECRYPT on the source and ENCRYPT on the destination
//! (GENERATE_DATA_KEY for a wrapped data key, which stays one).

use crate::common;

use common::proto::{self, Operation};
use common::{BILLING, SHIPPING, TestServer, assert_code, ctx};
use tonic::Code;

const SOURCE: &str = "tenant-42/old";
const DESTINATION: &str = "tenant-42/new";

fn move_request(ciphertext: &[u8], destination: &str) -> proto::ReEncryptRequest {
    proto::ReEncryptRequest {
        key_id: SOURCE.into(),
        ciphertext: ciphertext.to_vec(),
        context: ctx(&[("tenant", "42")]),
        destination_key_id: destination.into(),
        destination_context: ctx(&[("tenant", "42"), ("moved", "yes")]),
    }
}

fn grant(key_id: &str, grantee: &str, operation: Operation) -> proto::GrantRequest {
    proto::GrantRequest {
        key_id: key_id.into(),
        grantee: grantee.into(),
        operations: vec![operation as i32],
        ..Default::default()
    }
}

/// Grants `operation` on `key_id` to `grantee`, as the admin.
async fn allow(admin: &mut common::Clients, key_id: &str, grantee: &str, operation: Operation) {
    admin
        .admin
        .create_grant(grant(key_id, grantee, operation))
        .await
        .expect("grant");
}

/// Moves `ciphertext` from SOURCE to `destination` as `clients`.
async fn try_move(
    clients: &mut common::Clients,
    ciphertext: &[u8],
    destination: &str,
) -> Result<proto::EncryptResponse, tonic::Status> {
    clients
        .crypto
        .re_encrypt(move_request(ciphertext, destination))
        .await
        .map(tonic::Response::into_inner)
}

/// A server with SOURCE owned by BILLING and DESTINATION by SHIPPING, an
/// admin and a BILLING client, and a ciphertext of SOURCE (context
/// tenant=42).
async fn two_tenants_keys() -> (TestServer, common::Clients, common::Clients, Vec<u8>) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.create_key(SOURCE, BILLING).await;
    admin.create_key(DESTINATION, SHIPPING).await;
    let mut billing = server.client(BILLING).await;
    let sealed = billing
        .encrypt(SOURCE, b"card 4111", &[("tenant", "42")])
        .await
        .expect("encrypt");
    (server, admin, billing, sealed.ciphertext)
}

#[tokio::test]
async fn a_ciphertext_moves_to_another_key_and_opens_only_there() {
    let (server, mut admin, mut billing, sealed) = two_tenants_keys().await;
    allow(&mut admin, DESTINATION, BILLING, Operation::Encrypt).await;
    let moved = try_move(&mut billing, &sealed, DESTINATION)
        .await
        .expect("move");
    assert_eq!(moved.key_version, 1);

    // SHIPPING owns the destination and opens it with the new context;
    // the source key and the old context do not open it.
    let mut shipping = server.client(SHIPPING).await;
    let opened = shipping
        .decrypt(
            DESTINATION,
            &moved.ciphertext,
            &[("tenant", "42"), ("moved", "yes")],
        )
        .await
        .expect("decrypt at the destination");
    assert_eq!(opened.plaintext, b"card 4111");
    assert_code(
        shipping
            .decrypt(DESTINATION, &moved.ciphertext, &[("tenant", "42")])
            .await,
        Code::InvalidArgument,
    );
    assert_code(
        billing
            .decrypt(
                SOURCE,
                &moved.ciphertext,
                &[("tenant", "42"), ("moved", "yes")],
            )
            .await,
        Code::InvalidArgument,
    );

    let audit = common::audit_records(&tresor::service::default_audit_file(
        &server.fixture.data_dir(),
    ));
    let record = audit
        .iter()
        .find(|r| r["operation"] == "ReEncrypt" && r["kind"] != "intent")
        .expect("audited");
    assert_eq!(record["key_id"], SOURCE, "{record:#}");
    assert!(
        record["detail"]
            .as_str()
            .is_some_and(|d| d.contains(DESTINATION)),
        "{record:#}"
    );
}

#[tokio::test]
async fn a_move_needs_decrypt_on_the_source_and_encrypt_on_the_destination() {
    let (server, mut admin, mut billing, sealed) = two_tenants_keys().await;
    // SHIPPING owns the destination but may not decrypt the source: even
    // REENCRYPT on the source does not let it move the data out.
    let mut shipping = server.client(SHIPPING).await;
    allow(&mut admin, SOURCE, SHIPPING, Operation::Reencrypt).await;
    assert_code(
        try_move(&mut shipping, &sealed, DESTINATION).await,
        Code::PermissionDenied,
    );
    allow(&mut admin, SOURCE, SHIPPING, Operation::Decrypt).await;
    try_move(&mut shipping, &sealed, DESTINATION)
        .await
        .expect("move with decrypt on the source");

    // BILLING may decrypt the source but not encrypt under the
    // destination; a missing destination looks the same.
    let forbidden = assert_code(
        try_move(&mut billing, &sealed, DESTINATION).await,
        Code::PermissionDenied,
    );
    let missing = assert_code(
        try_move(&mut billing, &sealed, "tenant-42/none").await,
        Code::PermissionDenied,
    );
    assert_eq!(
        forbidden.message().replace(DESTINATION, "KEY"),
        missing.message().replace("tenant-42/none", "KEY")
    );

    // A destination context without a destination is a mistake.
    assert_code(
        try_move(&mut billing, &sealed, "").await,
        Code::InvalidArgument,
    );
}

#[tokio::test]
async fn a_wrapped_data_key_moves_only_for_whoever_may_make_data_keys_there() {
    let (server, mut admin, mut billing, _) = two_tenants_keys().await;
    let data_key = billing
        .crypto
        .generate_data_key(proto::GenerateDataKeyRequest {
            key_id: SOURCE.into(),
            context: ctx(&[("tenant", "42")]),
            ..Default::default()
        })
        .await
        .expect("data key")
        .into_inner();
    allow(&mut admin, DESTINATION, BILLING, Operation::Encrypt).await;
    // ENCRYPT alone would let BILLING plant a data key it knows under the
    // destination: refused.
    assert_code(
        try_move(&mut billing, &data_key.wrapped_key, DESTINATION).await,
        Code::PermissionDenied,
    );
    allow(&mut admin, DESTINATION, BILLING, Operation::GenerateDataKey).await;
    let moved = try_move(&mut billing, &data_key.wrapped_key, DESTINATION)
        .await
        .expect("move");
    let mut shipping = server.client(SHIPPING).await;
    let opened = shipping
        .crypto
        .decrypt_data_key(proto::DecryptDataKeyRequest {
            key_id: DESTINATION.into(),
            wrapped_key: moved.ciphertext.clone(),
            context: ctx(&[("tenant", "42"), ("moved", "yes")]),
        })
        .await
        .expect("still a wrapped data key")
        .into_inner();
    assert_eq!(opened.plaintext_key, data_key.plaintext_key);
    assert_code(
        shipping
            .decrypt(
                DESTINATION,
                &moved.ciphertext,
                &[("tenant", "42"), ("moved", "yes")],
            )
            .await,
        Code::InvalidArgument,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tresor_reencrypt_to_moves_a_ciphertext_from_the_command_line() {
    let (server, mut admin, _, _) = two_tenants_keys().await;
    allow(&mut admin, DESTINATION, BILLING, Operation::Encrypt).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let billing = common::cli::Tresor::new(&server, BILLING, dir.path());
    let shipping = common::cli::Tresor::new(&server, SHIPPING, dir.path());
    let sealed = billing.run_with_stdin(
        &["encrypt", SOURCE, "-c", "tenant=42", "--base64"],
        b"card 4111",
    );
    assert!(sealed.status.success());
    let moved = billing.run_with_stdin(
        &[
            "reencrypt",
            SOURCE,
            "-c",
            "tenant=42",
            "--base64",
            "--to",
            DESTINATION,
            "--to-context",
            "tenant=43",
        ],
        &sealed.stdout,
    );
    assert!(
        moved.status.success(),
        "{}",
        common::cli::text(&moved.stderr)
    );
    let opened = shipping.run_with_stdin(
        &["decrypt", DESTINATION, "-c", "tenant=43", "--base64"],
        &moved.stdout,
    );
    assert_eq!(
        opened.stdout,
        b"card 4111",
        "{}",
        common::cli::text(&opened.stderr)
    );
    // Without --to, the ciphertext stays under its key.
    let renewed = billing.run_with_stdin(
        &["reencrypt", SOURCE, "-c", "tenant=42", "--base64"],
        &sealed.stdout,
    );
    let opened = billing.run_with_stdin(
        &["decrypt", SOURCE, "-c", "tenant=42", "--base64"],
        &renewed.stdout,
    );
    assert_eq!(opened.stdout, b"card 4111");
    billing.fails(&["reencrypt", SOURCE, "--to-context", "a=b"], 2);
}

/// ReEncryptBatch: each item re-encrypted in place or moved, with its own
/// authorization and result; the moved items open only under the
/// destination, and the audit record names each item's destination.
#[tokio::test]
async fn a_batch_moves_each_item_on_its_own() {
    let (server, mut admin, mut billing, sealed) = two_tenants_keys().await;
    let item = |destination: &str| proto::ReEncryptRequest {
        destination_context: ctx(&[]),
        ..move_request(&sealed, destination)
    };
    let in_place = proto::ReEncryptRequest {
        key_id: SOURCE.into(),
        ciphertext: sealed.clone(),
        context: ctx(&[("tenant", "42")]),
        ..Default::default()
    };
    let context_alone = proto::ReEncryptRequest {
        destination_context: ctx(&[("a", "b")]),
        ..in_place.clone()
    };
    let batch = |billing: &mut common::Clients, items: Vec<proto::ReEncryptRequest>| {
        let mut billing = billing.clone();
        async move {
            billing
                .crypto
                .re_encrypt_batch(proto::ReEncryptBatchRequest { items })
                .await
                .expect("batch")
                .into_inner()
                .results
        }
    };
    // Without ENCRYPT on the destination the move is refused, the rest done.
    let results = batch(
        &mut billing,
        vec![item(DESTINATION), in_place.clone(), context_alone],
    )
    .await;
    let code = |r: &proto::EncryptItemResult| match &r.result {
        Some(proto::encrypt_item_result::Result::Encrypted(_)) => 0,
        Some(proto::encrypt_item_result::Result::Error(e)) => e.code,
        None => -1,
    };
    assert_eq!(
        results.iter().map(code).collect::<Vec<_>>(),
        [
            Code::PermissionDenied as i32,
            0,
            Code::InvalidArgument as i32
        ]
    );
    allow(&mut admin, DESTINATION, BILLING, Operation::Encrypt).await;
    let results = batch(&mut billing, vec![item(DESTINATION), item("not a key id")]).await;
    let moved = match &results[0].result {
        Some(proto::encrypt_item_result::Result::Encrypted(done)) => done.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(moved.key_id, DESTINATION);
    assert_eq!(code(&results[1]), Code::InvalidArgument as i32);
    let mut shipping = server.client(SHIPPING).await;
    shipping
        .assert_decrypts(DESTINATION, &moved.ciphertext, &[], b"card 4111")
        .await;
    let fixture = server.stop().await;
    let records = common::audit_records(&tresor::service::default_audit_file(&fixture.data_dir()));
    let last = records
        .iter()
        .rev()
        .find(|r| r["operation"] == "ReEncryptBatch")
        .expect("batch record");
    assert_eq!(last["results"][0]["key_id"], SOURCE);
    assert_eq!(last["results"][0]["resolved_key_id"], DESTINATION);
}
