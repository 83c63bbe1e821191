//! Control plane over real mTLS: admin-only calls, isolation between
//! services, listing, grants, key states, minimum decryption version,
//! deletion scheduling, seal/unseal with health, concurrent rotation.

mod admin_only;
mod grants;
mod isolation;
mod key_states;
mod seal;

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{ADMIN, BILLING, Clients, SHIPPING, TestServer, assert_code, proto};
use proto::{KeyState, Operation};
use tonic::Code;
use tonic_health::ServingStatus;

const KEY: &str = "billing/records";
const MISSING: &str = "billing/no-such-key";
const DAY: i64 = 86_400;

/// A server with [`KEY`] owned by BILLING; an admin and a BILLING client.
async fn server_with_billing_key() -> (TestServer, Clients, Clients) {
    TestServer::with_billing_key(KEY).await
}

fn key_req(key_id: &str) -> proto::KeyRequest {
    proto::KeyRequest {
        key_id: key_id.into(),
    }
}

fn grant_req(key_id: &str, grantee: &str, operations: &[i32]) -> proto::GrantRequest {
    proto::GrantRequest {
        key_id: key_id.into(),
        grantee: grantee.into(),
        operations: operations.to_vec(),
        ..Default::default()
    }
}

fn ops(operations: &[Operation]) -> Vec<i32> {
    operations.iter().map(|op| *op as i32).collect()
}

fn now_unix() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after epoch")
            .as_secs(),
    )
    .expect("fits")
}

fn into_inner<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Result<T, tonic::Status> {
    result.map(tonic::Response::into_inner)
}

async fn re_encrypt(
    clients: &mut Clients,
    key_id: &str,
    ciphertext: &[u8],
) -> Result<proto::EncryptResponse, tonic::Status> {
    into_inner(
        clients
            .crypto
            .re_encrypt(proto::ReEncryptRequest {
                key_id: key_id.into(),
                ciphertext: ciphertext.to_vec(),
                context: Default::default(),
                ..Default::default()
            })
            .await,
    )
}

async fn data_key(
    clients: &mut Clients,
    key_id: &str,
) -> Result<proto::GenerateDataKeyResponse, tonic::Status> {
    into_inner(
        clients
            .crypto
            .generate_data_key(proto::GenerateDataKeyRequest {
                key_id: key_id.into(),
                ..Default::default()
            })
            .await,
    )
}

async fn status(clients: &mut Clients) -> Result<proto::SealStatus, tonic::Status> {
    into_inner(clients.admin.get_status(proto::StatusRequest {}).await)
}

async fn list(
    clients: &mut Clients,
    prefix: &str,
    page_size: u32,
    page_token: &str,
) -> Result<proto::ListKeysResponse, tonic::Status> {
    into_inner(
        clients
            .admin
            .list_keys(proto::ListKeysRequest {
                prefix: prefix.into(),
                page_size,
                page_token: page_token.into(),
                ..Default::default()
            })
            .await,
    )
}

/// Follows next_page_token until it is empty; returns the ids of each page.
async fn list_pages(clients: &mut Clients, prefix: &str, page_size: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token = String::new();
    for _ in 0..100 {
        let page = list(clients, prefix, page_size, &token)
            .await
            .expect("list keys");
        pages.push(page.keys.into_iter().map(|k| k.key_id).collect::<Vec<_>>());
        if page.next_page_token.is_empty() {
            return pages;
        }
        token = page.next_page_token;
    }
    panic!("pagination did not terminate: {pages:?}");
}

async fn schedule_deletion(
    clients: &mut Clients,
    key_id: &str,
    pending_days: u32,
) -> Result<proto::KeyInfo, tonic::Status> {
    into_inner(
        clients
            .admin
            .schedule_key_deletion(proto::ScheduleKeyDeletionRequest {
                key_id: key_id.into(),
                pending_days,
            })
            .await,
    )
}

async fn set_min_version(
    clients: &mut Clients,
    key_id: &str,
    version: u32,
) -> Result<proto::KeyInfo, tonic::Status> {
    into_inner(
        clients
            .admin
            .set_min_decryption_version(proto::SetMinDecryptionVersionRequest {
                key_id: key_id.into(),
                version,
            })
            .await,
    )
}

/// Polls the health service (every 50 ms, for up to 2 s) until `service`
/// reports `want`.
async fn wait_for_health(clients: &Clients, service: &str, want: ServingStatus) {
    let (every, within) = (Duration::from_millis(50), Duration::from_secs(2));
    common::wait_for_health(clients, service, want, every, within).await;
}
