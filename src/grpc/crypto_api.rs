//! The `tresor.v1.Crypto` service: data-plane handlers.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};
use zeroize::Zeroize;

use super::audited::{
    Answer, BatchAnswer, BatchItemRequest, BatchRequest, Handled, ItemOutcome, Subject, audited,
    audited_batch, audited_scrubbing, audited_with_detail,
};
use super::convert;
use crate::error::Error;
use crate::model::Rpc;
use crate::service::{BatchInput, DataKey, Decrypted, Encrypted, ReEncryptItem, Service};
use tresor_proto::v1::crypto_server::Crypto;
use tresor_proto::v1::{
    DecryptBatchRequest, DecryptBatchResponse, DecryptDataKeyRequest, DecryptDataKeyResponse,
    DecryptItemResult, DecryptRequest, DecryptResponse, EncryptBatchRequest, EncryptBatchResponse,
    EncryptItemResult, EncryptRequest, EncryptResponse, GenerateDataKeyRequest,
    GenerateDataKeyResponse, GenerateDataKeyWithoutPlaintextResponse, ItemStatus,
    MacAllVersionsResponse, MacBatchRequest, MacBatchResponse, MacRequest, MacResponse,
    ReEncryptBatchRequest, ReEncryptRequest, VerifyMacRequest, VerifyMacResponse,
    decrypt_item_result, encrypt_item_result,
};

/// Handlers of the data plane.
#[derive(Debug, Clone)]
pub struct CryptoApi {
    service: Arc<Service>,
}

impl CryptoApi {
    /// Handlers over `service`.
    pub fn new(service: Arc<Service>) -> Self {
        Self { service }
    }

    /// The service the handlers call.
    pub(super) fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// A ReEncrypt: under the same key, or moved to `destination_key_id`.
    async fn re_encrypted(
        &self,
        identity: &crate::identity::Identity,
        req: ReEncryptRequest,
    ) -> Handled<EncryptResponse> {
        let key_id = convert::key_id(&req.key_id)?;
        let context = convert::context(req.context);
        let encrypted = if req.destination_key_id.is_empty() {
            if !req.destination_context.is_empty() {
                return Err(Status::invalid_argument(
                    "destination_context is given without destination_key_id",
                ));
            }
            self.service
                .re_encrypt(identity, &key_id, &req.ciphertext, &context)
                .await?
        } else {
            let destination = convert::key_id(&req.destination_key_id)?;
            let destination_context = convert::context(req.destination_context);
            self.service
                .re_encrypt_to(
                    identity,
                    (&key_id, &context),
                    &req.ciphertext,
                    (&destination, &destination_context),
                )
                .await?
        };
        Ok(encrypted_answer(encrypted))
    }

    /// The data key a GenerateDataKey request asks for.
    async fn new_data_key(
        &self,
        identity: &crate::identity::Identity,
        req: GenerateDataKeyRequest,
    ) -> Result<DataKey, Status> {
        let key_id = convert::key_id(&req.key_id)?;
        let size = convert::data_key_size(req.key_bytes)?;
        let context = convert::context(req.context);
        Ok(self
            .service
            .generate_data_key(identity, &key_id, &context, size)
            .await?)
    }
}

/// The items of the two batch requests, which differ only in whether
/// their data is a plaintext or a ciphertext.
macro_rules! batch_request {
    ($request:ty, $item:ty, $data:ident) => {
        impl BatchItemRequest for $item {
            fn key_id(&self) -> &str {
                &self.key_id
            }

            fn context(&self) -> &HashMap<String, String> {
                &self.context
            }

            fn input(&mut self) -> BatchInput<'_> {
                convert::batch_item(&self.key_id, &self.$data, &mut self.context)
            }

            fn scrub(&mut self) {
                self.$data.zeroize();
            }
        }

        impl BatchRequest for $request {
            type Item = $item;

            fn items(&mut self) -> &mut [$item] {
                &mut self.items
            }
        }
    };
}

batch_request!(EncryptBatchRequest, EncryptRequest, plaintext);
batch_request!(DecryptBatchRequest, DecryptRequest, ciphertext);
batch_request!(ReEncryptBatchRequest, ReEncryptRequest, ciphertext);

/// One ReEncryptBatch item as the service takes it, or why it is refused.
fn re_encrypt_item(item: &mut ReEncryptRequest) -> Result<ReEncryptItem<'_>, Error> {
    let destination = if item.destination_key_id.is_empty() {
        if !item.destination_context.is_empty() {
            return Err(Error::InvalidArgument(
                "destination_context is given without destination_key_id".into(),
            ));
        }
        None
    } else {
        let key_id = crate::model::KeyId::parse(&item.destination_key_id)?;
        let context = convert::context(std::mem::take(&mut item.destination_context));
        Some((key_id, context))
    };
    Ok(ReEncryptItem {
        source: item.input()?,
        destination,
    })
}

/// An Encrypt or ReEncrypt result as the API answers it.
fn encrypt_response(encrypted: Encrypted) -> EncryptResponse {
    EncryptResponse {
        key_version: encrypted.key_version.get(),
        key_id: encrypted.key_id.to_string(),
        ciphertext: encrypted.ciphertext,
    }
}

/// [`encrypt_response`], recording the key and version used.
fn encrypted_answer(encrypted: Encrypted) -> Answer<EncryptResponse> {
    let used = (encrypted.key_id.to_string(), encrypted.key_version.get());
    Answer::new(encrypt_response(encrypted)).with_key(&used.0, used.1)
}

/// The answer of EncryptBatch and ReEncryptBatch: each item's ciphertext
/// or refusal, and its outcome for the record.
fn encrypted_batch(results: Vec<Result<Encrypted, Error>>) -> BatchAnswer<EncryptBatchResponse> {
    let (results, outcomes) = item_results(
        results,
        |encrypted| (encrypted.key_id.to_string(), encrypted.key_version.get()),
        |encrypted| EncryptItemResult {
            result: Some(encrypt_item_result::Result::Encrypted(encrypt_response(
                encrypted,
            ))),
        },
        |error| EncryptItemResult {
            result: Some(encrypt_item_result::Result::Error(error)),
        },
    );
    BatchAnswer {
        response: EncryptBatchResponse { results },
        outcomes,
    }
}

/// A Decrypt result as the API answers it.
fn decrypt_response(decrypted: Decrypted) -> DecryptResponse {
    DecryptResponse {
        key_version: decrypted.key_version.get(),
        key_id: decrypted.key_id.to_string(),
        plaintext: decrypted.plaintext.into_vec(),
    }
}

/// Per-item service results as proto results, with each item's outcome
/// for its audit record.
pub(super) fn item_results<T, R>(
    results: Vec<Result<T, Error>>,
    used: impl Fn(&T) -> (String, u32),
    success: impl Fn(T) -> R,
    failure: impl Fn(ItemStatus) -> R,
) -> (Vec<R>, Vec<ItemOutcome>) {
    results
        .into_iter()
        .map(|result| match result {
            Ok(done) => {
                let outcome = Ok(used(&done));
                (success(done), outcome)
            }
            Err(e) => {
                let status = tonic::Status::from(e);
                (failure(convert::item_status(&status)), Err(status.code()))
            }
        })
        .unzip()
}

#[tonic::async_trait]
impl Crypto for CryptoApi {
    async fn encrypt(
        &self,
        request: Request<EncryptRequest>,
    ) -> Result<Response<EncryptResponse>, Status> {
        let service = &self.service;
        audited_scrubbing(
            service,
            Rpc::Encrypt,
            request,
            |req| Subject::key_with_context(service, &req.key_id, &req.context),
            |mut req| req.plaintext.zeroize(),
            |identity, mut req| async move {
                let outcome = async {
                    let key_id = convert::key_id(&req.key_id)?;
                    let context = convert::context(std::mem::take(&mut req.context));
                    Ok::<_, Status>(
                        service
                            .encrypt(&identity, &key_id, &req.plaintext, &context)
                            .await?,
                    )
                }
                .await;
                req.plaintext.zeroize();
                let encrypted = outcome?;
                Ok(encrypted_answer(encrypted))
            },
        )
        .await
    }

    async fn decrypt(
        &self,
        request: Request<DecryptRequest>,
    ) -> Result<Response<DecryptResponse>, Status> {
        let service = &self.service;
        audited(
            service,
            Rpc::Decrypt,
            request,
            |req| Subject::key_with_context(service, &req.key_id, &req.context),
            |identity, req| async move {
                let key_id = convert::key_id(&req.key_id)?;
                let context = convert::context(req.context);
                let decrypted = service
                    .decrypt(&identity, &key_id, &req.ciphertext, &context)
                    .await?;
                let used = (decrypted.key_id.to_string(), decrypted.key_version.get());
                Ok(Answer::new(decrypt_response(decrypted)).with_key(&used.0, used.1))
            },
        )
        .await
    }

    async fn re_encrypt(
        &self,
        request: Request<ReEncryptRequest>,
    ) -> Result<Response<EncryptResponse>, Status> {
        let service = &self.service;
        audited_with_detail(
            service,
            Rpc::ReEncrypt,
            request,
            |req| Subject::key_with_context(service, &req.key_id, &req.context),
            drop,
            |identity, req| async move {
                let moved_to = (!req.destination_key_id.is_empty())
                    .then(|| format!("to {}", req.destination_key_id));
                (self.re_encrypted(&identity, req).await, moved_to)
            },
        )
        .await
    }

    async fn generate_data_key(
        &self,
        request: Request<GenerateDataKeyRequest>,
    ) -> Result<Response<GenerateDataKeyResponse>, Status> {
        let service = &self.service;
        audited(
            service,
            Rpc::GenerateDataKey,
            request,
            |req| Subject::key_with_context(service, &req.key_id, &req.context),
            |identity, req| async move {
                let data_key = self.new_data_key(&identity, req).await?;
                let version = data_key.key_version.get();
                let key_id = data_key.key_id.to_string();
                Ok(Answer::new(GenerateDataKeyResponse {
                    key_version: version,
                    wrapped_key: data_key.wrapped_key,
                    plaintext_key: data_key.plaintext_key.into_vec(),
                    key_id: key_id.clone(),
                })
                .with_key(&key_id, version))
            },
        )
        .await
    }

    async fn generate_data_key_without_plaintext(
        &self,
        request: Request<GenerateDataKeyRequest>,
    ) -> Result<Response<GenerateDataKeyWithoutPlaintextResponse>, Status> {
        let service = &self.service;
        audited(
            service,
            Rpc::GenerateDataKeyWithoutPlaintext,
            request,
            |req| Subject::key_with_context(service, &req.key_id, &req.context),
            |identity, req| async move {
                // The clear key is wiped when `data_key` drops, here.
                let data_key = self.new_data_key(&identity, req).await?;
                let version = data_key.key_version.get();
                let key_id = data_key.key_id.to_string();
                Ok(Answer::new(GenerateDataKeyWithoutPlaintextResponse {
                    key_version: version,
                    wrapped_key: data_key.wrapped_key,
                    key_id: key_id.clone(),
                })
                .with_key(&key_id, version))
            },
        )
        .await
    }

    async fn decrypt_data_key(
        &self,
        request: Request<DecryptDataKeyRequest>,
    ) -> Result<Response<DecryptDataKeyResponse>, Status> {
        let service = &self.service;
        audited(
            service,
            Rpc::DecryptDataKey,
            request,
            |req| Subject::key_with_context(service, &req.key_id, &req.context),
            |identity, req| async move {
                let key_id = convert::key_id(&req.key_id)?;
                let context = convert::context(req.context);
                let opened = service
                    .decrypt_data_key(&identity, &key_id, &req.wrapped_key, &context)
                    .await?;
                let version = opened.key_version.get();
                let key_id = opened.key_id.to_string();
                Ok(Answer::new(DecryptDataKeyResponse {
                    key_version: version,
                    plaintext_key: opened.plaintext.into_vec(),
                    key_id: key_id.clone(),
                })
                .with_key(&key_id, version))
            },
        )
        .await
    }

    async fn encrypt_batch(
        &self,
        request: Request<EncryptBatchRequest>,
    ) -> Result<Response<EncryptBatchResponse>, Status> {
        let service = &self.service;
        audited_batch(
            service,
            Rpc::EncryptBatch,
            request,
            |identity, mut req| async move {
                let items = req.items.iter_mut().map(BatchItemRequest::input);
                let outcome = service.encrypt_batch(&identity, items).await;
                req.items.iter_mut().for_each(BatchItemRequest::scrub);
                Ok(encrypted_batch(outcome?))
            },
        )
        .await
    }

    async fn mac(&self, request: Request<MacRequest>) -> Result<Response<MacResponse>, Status> {
        self.handle_mac(request).await
    }

    async fn verify_mac(
        &self,
        request: Request<VerifyMacRequest>,
    ) -> Result<Response<VerifyMacResponse>, Status> {
        self.handle_verify_mac(request).await
    }

    async fn mac_all_versions(
        &self,
        request: Request<MacRequest>,
    ) -> Result<Response<MacAllVersionsResponse>, Status> {
        self.handle_mac_all_versions(request).await
    }

    async fn mac_batch(
        &self,
        request: Request<MacBatchRequest>,
    ) -> Result<Response<MacBatchResponse>, Status> {
        self.handle_mac_batch(request).await
    }

    async fn re_encrypt_batch(
        &self,
        request: Request<ReEncryptBatchRequest>,
    ) -> Result<Response<EncryptBatchResponse>, Status> {
        let service = &self.service;
        audited_batch(
            service,
            Rpc::ReEncryptBatch,
            request,
            |identity, mut req| async move {
                let items = req.items.iter_mut().map(re_encrypt_item);
                Ok(encrypted_batch(
                    service.re_encrypt_batch(&identity, items).await?,
                ))
            },
        )
        .await
    }

    async fn decrypt_batch(
        &self,
        request: Request<DecryptBatchRequest>,
    ) -> Result<Response<DecryptBatchResponse>, Status> {
        let service = &self.service;
        audited_batch(
            service,
            Rpc::DecryptBatch,
            request,
            |identity, mut req| async move {
                let items = req.items.iter_mut().map(BatchItemRequest::input);
                let (results, outcomes) = item_results(
                    service.decrypt_batch(&identity, items).await?,
                    |decrypted| (decrypted.key_id.to_string(), decrypted.key_version.get()),
                    |decrypted| DecryptItemResult {
                        result: Some(decrypt_item_result::Result::Decrypted(decrypt_response(
                            decrypted,
                        ))),
                    },
                    |error| DecryptItemResult {
                        result: Some(decrypt_item_result::Result::Error(error)),
                    },
                );
                Ok(BatchAnswer {
                    response: DecryptBatchResponse { results },
                    outcomes,
                })
            },
        )
        .await
    }
}
