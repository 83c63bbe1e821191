//! GenerateDataKey's key lengths and GenerateDataKeyWithoutPlaintext (issue
//! 21): an orchestrator that may only generate data keys provisions one it
//! never sees, and whoever may decrypt opens it.

use crate::common;

use common::proto::{self, Operation};
use common::{SHIPPING, TestServer, assert_code};
use tonic::Code;

const KEY: &str = "billing/data-keys";

fn request(key_bytes: u32) -> proto::GenerateDataKeyRequest {
    proto::GenerateDataKeyRequest {
        key_id: KEY.into(),
        context: common::ctx(&[("tenant", "42")]),
        key_bytes,
    }
}

/// Opens `wrapped_key` as `clients`.
async fn open(clients: &mut common::Clients, wrapped_key: &[u8]) -> Result<Vec<u8>, tonic::Status> {
    clients
        .crypto
        .decrypt_data_key(proto::DecryptDataKeyRequest {
            key_id: KEY.into(),
            wrapped_key: wrapped_key.to_vec(),
            context: common::ctx(&[("tenant", "42")]),
        })
        .await
        .map(|answer| answer.into_inner().plaintext_key)
}

#[tokio::test]
async fn data_keys_are_16_or_32_bytes_and_other_lengths_are_refused() {
    let (_server, _admin, mut billing) = TestServer::with_billing_key(KEY).await;
    for (asked, expected) in [(0, 32), (32, 32), (16, 16)] {
        let key = billing
            .crypto
            .generate_data_key(request(asked))
            .await
            .expect("data key")
            .into_inner();
        assert_eq!(key.plaintext_key.len(), expected, "key_bytes {asked}");
        assert_eq!(
            open(&mut billing, &key.wrapped_key).await.expect("open"),
            key.plaintext_key
        );
    }
    for bad in [1, 24, 33, 64] {
        let refused = assert_code(
            billing.crypto.generate_data_key(request(bad)).await,
            Code::InvalidArgument,
        );
        assert!(refused.message().contains("16 or 32"), "{refused:?}");
    }
}

#[tokio::test]
async fn a_data_key_without_plaintext_is_opened_only_by_whoever_may_decrypt() {
    let (server, mut admin, mut billing) = TestServer::with_billing_key(KEY).await;
    // The orchestrator may generate data keys, nothing else.
    admin
        .admin
        .create_grant(proto::GrantRequest {
            key_id: KEY.into(),
            grantee: SHIPPING.into(),
            operations: vec![Operation::GenerateDataKey as i32],
            ..Default::default()
        })
        .await
        .expect("grant");
    let mut orchestrator = server.client(SHIPPING).await;
    let provisioned = orchestrator
        .crypto
        .generate_data_key_without_plaintext(request(16))
        .await
        .expect("wrapped key")
        .into_inner();
    assert_eq!(provisioned.key_version, 1);
    assert_code(
        open(&mut orchestrator, &provisioned.wrapped_key).await,
        Code::PermissionDenied,
    );
    let opened = open(&mut billing, &provisioned.wrapped_key)
        .await
        .expect("the owner opens it");
    assert_eq!(opened.len(), 16);

    // Encrypt alone is not enough to provision data keys.
    let grant = |operation: Operation| proto::GrantRequest {
        key_id: KEY.into(),
        grantee: SHIPPING.into(),
        operations: vec![operation as i32],
        ..Default::default()
    };
    admin
        .admin
        .revoke_grant(grant(Operation::GenerateDataKey))
        .await
        .expect("revoke");
    admin
        .admin
        .create_grant(grant(Operation::Encrypt))
        .await
        .expect("grant");
    assert_code(
        orchestrator
            .crypto
            .generate_data_key_without_plaintext(request(0))
            .await,
        Code::PermissionDenied,
    );

    let audit = common::audit_records(&tresor::service::default_audit_file(
        &server.fixture.data_dir(),
    ));
    let provisioned_record = audit
        .iter()
        .find(|r| r["operation"] == "GenerateDataKeyWithoutPlaintext" && r["identity"] == SHIPPING)
        .expect("audited");
    assert_eq!(provisioned_record["key_id"], KEY, "{provisioned_record:#}");
}
