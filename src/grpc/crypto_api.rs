//! The `tresor.v1.Crypto` service: data-plane handlers.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use zeroize::Zeroize;

use super::audited::{Subject, audited, audited_scrubbing};
use super::convert;
use super::proto::crypto_server::Crypto;
use super::proto::{
    DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, GenerateDataKeyRequest,
    GenerateDataKeyResponse, ReEncryptRequest,
};
use crate::service::Service;

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
            "Encrypt",
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
                let version = encrypted.key_version.get();
                Ok((
                    EncryptResponse {
                        ciphertext: encrypted.ciphertext,
                        key_version: version,
                    },
                    Some(version),
                ))
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
            "Decrypt",
            request,
            |req| Subject::key_with_context(service, &req.key_id, &req.context),
            |identity, req| async move {
                let key_id = convert::key_id(&req.key_id)?;
                let context = convert::context(req.context);
                let decrypted = service
                    .decrypt(&identity, &key_id, &req.ciphertext, &context)
                    .await?;
                let version = decrypted.key_version.get();
                Ok((
                    DecryptResponse {
                        key_version: version,
                        plaintext: decrypted.plaintext.into_vec(),
                    },
                    Some(version),
                ))
            },
        )
        .await
    }

    async fn re_encrypt(
        &self,
        request: Request<ReEncryptRequest>,
    ) -> Result<Response<EncryptResponse>, Status> {
        let service = &self.service;
        audited(
            service,
            "ReEncrypt",
            request,
            |req| Subject::key_with_context(service, &req.key_id, &req.context),
            |identity, req| async move {
                let key_id = convert::key_id(&req.key_id)?;
                let context = convert::context(req.context);
                let encrypted = service
                    .re_encrypt(&identity, &key_id, &req.ciphertext, &context)
                    .await?;
                let version = encrypted.key_version.get();
                Ok((
                    EncryptResponse {
                        ciphertext: encrypted.ciphertext,
                        key_version: version,
                    },
                    Some(version),
                ))
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
            "GenerateDataKey",
            request,
            |req| Subject::key_with_context(service, &req.key_id, &req.context),
            |identity, req| async move {
                let key_id = convert::key_id(&req.key_id)?;
                let context = convert::context(req.context);
                let data_key = service
                    .generate_data_key(&identity, &key_id, &context)
                    .await?;
                let version = data_key.key_version.get();
                Ok((
                    GenerateDataKeyResponse {
                        key_version: version,
                        wrapped_key: data_key.wrapped_key,
                        plaintext_key: data_key.plaintext_key.into_vec(),
                    },
                    Some(version),
                ))
            },
        )
        .await
    }
}
