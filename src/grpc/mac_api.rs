//! The blind-index calls of `tresor.v1.Crypto` (Mac, VerifyMac,
//! MacAllVersions, MacBatch): the handlers' bodies, kept apart from the
//! encryption calls. The messages are secrets (an email address to
//! index), wiped like plaintexts.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};
use zeroize::{Zeroize, Zeroizing};

use super::audited::{
    Answer, BatchAnswer, BatchItemRequest, BatchRequest, Handled, Subject, audited_batch,
    audited_scrubbing, audited_with_detail,
};
use super::convert;
use super::crypto_api::{CryptoApi, item_results};
use crate::identity::Identity;
use crate::model::Rpc;
use crate::service::{BatchInput, MacToken, Service};
use tresor_proto::v1::{
    MacAllVersionsResponse, MacBatchRequest, MacBatchResponse, MacItemResult, MacRequest,
    MacResponse, VerifyMacRequest, VerifyMacResponse, mac_item_result,
};

impl BatchItemRequest for MacRequest {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn context(&self) -> &HashMap<String, String> {
        &self.context
    }

    fn input(&mut self) -> BatchInput<'_> {
        convert::batch_item(&self.key_id, &self.message, &mut self.context)
    }

    fn scrub(&mut self) {
        self.message.zeroize();
    }
}

impl BatchRequest for MacBatchRequest {
    type Item = MacRequest;

    fn items(&mut self) -> &mut [MacRequest] {
        &mut self.items
    }
}

/// The validated fields of a Mac, MacAllVersions or VerifyMac request
/// (its message is taken out separately, into a buffer that wipes itself).
struct MacCall {
    key_id: crate::model::KeyId,
    length: tresor_crypto::MacLength,
    context: tresor_crypto::Context,
}

impl MacCall {
    /// Validates the fields; the context is moved out of the request.
    fn parse(
        key_id: &str,
        truncate_bytes: u32,
        context: &mut HashMap<String, String>,
    ) -> Result<Self, Status> {
        Ok(Self {
            key_id: convert::key_id(key_id)?,
            length: convert::mac_length(truncate_bytes)?,
            context: convert::context(std::mem::take(context)),
        })
    }
}

fn mac_response(token: MacToken) -> MacResponse {
    MacResponse {
        mac: token.mac,
        key_version: token.key_version.get(),
        key_id: token.key_id.to_string(),
    }
}

impl CryptoApi {
    /// A Mac or MacAllVersions call: recorded, its fields validated, and
    /// its message handed to `act` in a buffer that wipes itself.
    async fn audited_mac<Resp, Fut>(
        &self,
        rpc: Rpc,
        request: Request<MacRequest>,
        act: impl FnOnce(Arc<Service>, Identity, MacCall, Zeroizing<Vec<u8>>) -> Fut,
    ) -> Result<Response<Resp>, Status>
    where
        Fut: std::future::Future<Output = Handled<Resp>>,
    {
        let service = self.service();
        audited_scrubbing(
            service,
            rpc,
            request,
            |req| Subject::key_with_context(service, &req.key_id, &req.context),
            |mut req| req.message.zeroize(),
            |identity, mut req| async move {
                let message = Zeroizing::new(std::mem::take(&mut req.message));
                let call = MacCall::parse(&req.key_id, req.truncate_bytes, &mut req.context)?;
                act(Arc::clone(service), identity, call, message).await
            },
        )
        .await
    }

    /// Mac.
    pub(super) async fn handle_mac(
        &self,
        request: Request<MacRequest>,
    ) -> Result<Response<MacResponse>, Status> {
        self.audited_mac(
            Rpc::Mac,
            request,
            |service, identity, call, message| async move {
                let token = service
                    .mac(
                        &identity,
                        &call.key_id,
                        &message,
                        &call.context,
                        call.length,
                    )
                    .await?;
                let used = (token.key_id.to_string(), token.key_version.get());
                Ok(Answer::new(mac_response(token)).with_key(&used.0, used.1))
            },
        )
        .await
    }

    /// MacAllVersions.
    pub(super) async fn handle_mac_all_versions(
        &self,
        request: Request<MacRequest>,
    ) -> Result<Response<MacAllVersionsResponse>, Status> {
        self.audited_mac(
            Rpc::MacAllVersions,
            request,
            |service, identity, call, message| async move {
                let tokens = service
                    .mac_all_versions(
                        &identity,
                        &call.key_id,
                        &message,
                        &call.context,
                        call.length,
                    )
                    .await?;
                let used_key_id = tokens.first().map(|token| token.key_id.to_string());
                Ok(Answer {
                    used_key_id,
                    ..Answer::new(MacAllVersionsResponse {
                        macs: tokens.into_iter().map(mac_response).collect(),
                    })
                })
            },
        )
        .await
    }

    /// VerifyMac; the record's detail says whether the token was valid.
    pub(super) async fn handle_verify_mac(
        &self,
        request: Request<VerifyMacRequest>,
    ) -> Result<Response<VerifyMacResponse>, Status> {
        let service = self.service();
        audited_with_detail(
            service,
            Rpc::VerifyMac,
            request,
            |req| Subject::key_with_context(service, &req.key_id, &req.context),
            |mut req| req.message.zeroize(),
            |identity, mut req| async move {
                let message = Zeroizing::new(std::mem::take(&mut req.message));
                let outcome = async {
                    let call = MacCall::parse(&req.key_id, req.truncate_bytes, &mut req.context)?;
                    let (key_id, token) = (&call.key_id, &req.mac);
                    Ok::<_, Status>(
                        service
                            .verify_mac(
                                &identity,
                                key_id,
                                &message,
                                token,
                                &call.context,
                                call.length,
                            )
                            .await?,
                    )
                }
                .await;
                let detail = outcome
                    .as_ref()
                    .ok()
                    .map(|verdict| match verdict.valid_version {
                        Some(_) => "valid".to_owned(),
                        None => "invalid".to_owned(),
                    });
                let answer = outcome.map(|verdict| {
                    let key_id = verdict.key_id.to_string();
                    let version = verdict.valid_version.map_or(0, |v| v.get());
                    let answer = Answer::new(VerifyMacResponse {
                        valid: version != 0,
                        key_version: version,
                        key_id: key_id.clone(),
                    });
                    Answer {
                        used_key_id: Some(key_id),
                        key_version: (version != 0).then_some(version),
                        ..answer
                    }
                });
                (answer, detail)
            },
        )
        .await
    }

    /// MacBatch.
    pub(super) async fn handle_mac_batch(
        &self,
        request: Request<MacBatchRequest>,
    ) -> Result<Response<MacBatchResponse>, Status> {
        let service = self.service();
        audited_batch(
            service,
            Rpc::MacBatch,
            request,
            |identity, mut req| async move {
                let items = req.items.iter_mut().map(|item| {
                    let length = convert::mac_length_of_item(item.truncate_bytes);
                    item.input().and_then(|input| Ok((input, length?)))
                });
                let outcome = service.mac_batch(&identity, items).await;
                req.items.iter_mut().for_each(BatchItemRequest::scrub);
                let (results, outcomes) = item_results(
                    outcome?,
                    |token| (token.key_id.to_string(), token.key_version.get()),
                    |token| MacItemResult {
                        result: Some(mac_item_result::Result::Mac(mac_response(token))),
                    },
                    |error| MacItemResult {
                        result: Some(mac_item_result::Result::Error(error)),
                    },
                );
                Ok(BatchAnswer {
                    response: MacBatchResponse { results },
                    outcomes,
                })
            },
        )
        .await
    }
}
