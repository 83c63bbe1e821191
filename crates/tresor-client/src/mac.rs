//! The blind-index calls of [`Client`]: MAC tokens under MAC keys, for
//! looking rows up by an encrypted column's value.
//!
//! ```no_run
//! # async fn demo(client: &tresor_client::Client) -> Result<(), tresor_client::ClientError> {
//! use std::collections::HashMap;
//! let context = HashMap::from([("table".to_owned(), "users".to_owned())]);
//! // Store this token beside the encrypted email...
//! let token = client.mac("crm/email-index", b"a@example.com", &context).await?;
//! // ...and find the row later with every live version's token, so that
//! // rows written before a rotation are still found.
//! let tokens = client.mac_all_versions("crm/email-index", b"a@example.com", &context).await?;
//! # let _ = (token, tokens); Ok(()) }
//! ```

use std::collections::HashMap;

use super::{Client, ClientError, Idempotency, proto};

impl Client {
    /// The MAC token of `message` under a MAC key's primary version (all
    /// 32 HMAC bytes).
    pub async fn mac(
        &self,
        key_id: &str,
        message: &[u8],
        context: &HashMap<String, String>,
    ) -> Result<proto::MacResponse, ClientError> {
        self.mac_request(mac_request(key_id, message, context, 0))
            .await
    }

    /// [`Client::mac`] from a full request (`truncate_bytes`, 4 to 32).
    pub async fn mac_request(
        &self,
        request: proto::MacRequest,
    ) -> Result<proto::MacResponse, ClientError> {
        self.crypto_rpc(Idempotency::Safe, request, |mut c, r| async move {
            c.mac(r).await
        })
        .await
    }

    /// Whether `mac` is the token of `message` under the key (of any
    /// version from its minimum decryption version up), with
    /// `truncate_bytes` HMAC bytes (0: 32).
    pub async fn verify_mac(
        &self,
        key_id: &str,
        message: &[u8],
        mac: &[u8],
        context: &HashMap<String, String>,
        truncate_bytes: u32,
    ) -> Result<proto::VerifyMacResponse, ClientError> {
        let request = proto::VerifyMacRequest {
            key_id: key_id.to_owned(),
            message: message.to_vec(),
            mac: mac.to_vec(),
            context: context.clone(),
            truncate_bytes,
        };
        self.crypto_rpc(Idempotency::Safe, request, |mut c, r| async move {
            c.verify_mac(r).await
        })
        .await
    }

    /// The tokens of `message` under every live version of the key,
    /// primary first: query an index with all of them.
    pub async fn mac_all_versions(
        &self,
        key_id: &str,
        message: &[u8],
        context: &HashMap<String, String>,
    ) -> Result<Vec<proto::MacResponse>, ClientError> {
        self.mac_all_versions_request(mac_request(key_id, message, context, 0))
            .await
    }

    /// [`Client::mac_all_versions`] from a full request.
    pub async fn mac_all_versions_request(
        &self,
        request: proto::MacRequest,
    ) -> Result<Vec<proto::MacResponse>, ClientError> {
        let response = self
            .crypto_rpc(Idempotency::Safe, request, |mut c, r| async move {
                c.mac_all_versions(r).await
            })
            .await?;
        Ok(response.macs)
    }

    /// Many Mac calls in one, each item answered on its own; as
    /// [`Client::encrypt_batch`].
    pub async fn mac_batch(
        &self,
        items: Vec<proto::MacRequest>,
    ) -> Result<Vec<Result<proto::MacResponse, ClientError>>, ClientError> {
        let count = items.len();
        let request = proto::MacBatchRequest { items };
        let response = self
            .crypto_rpc(Idempotency::Safe, request, |mut c, r| async move {
                c.mac_batch(r).await
            })
            .await?;
        self.item_results(count, response.results, |result| match result.result {
            Some(proto::mac_item_result::Result::Mac(done)) => Some(Ok(done)),
            Some(proto::mac_item_result::Result::Error(status)) => Some(Err(status)),
            None => None,
        })
    }
}

/// A Mac request.
pub fn mac_request(
    key_id: &str,
    message: &[u8],
    context: &HashMap<String, String>,
    truncate_bytes: u32,
) -> proto::MacRequest {
    proto::MacRequest {
        key_id: key_id.to_owned(),
        message: message.to_vec(),
        context: context.clone(),
        truncate_bytes,
    }
}
