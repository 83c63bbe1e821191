//! The `tresor.v1.Crypto` service: data-plane handlers.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use zeroize::Zeroize;

use super::proto::crypto_server::Crypto;
use super::proto::{
    DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, GenerateDataKeyRequest,
    GenerateDataKeyResponse, ReEncryptRequest,
};
use super::{caller_identity, convert};
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
        let identity = caller_identity(&request);
        let mut req = request.into_inner();
        let outcome = async {
            let identity = identity?;
            let key_id = convert::key_id(&req.key_id)?;
            let context = convert::context(std::mem::take(&mut req.context));
            Ok::<_, Status>(
                self.service
                    .encrypt(&identity, &key_id, &req.plaintext, &context)
                    .await?,
            )
        }
        .await;
        req.plaintext.zeroize();
        let encrypted = outcome?;
        Ok(Response::new(EncryptResponse {
            ciphertext: encrypted.ciphertext,
            key_version: encrypted.key_version.get(),
        }))
    }

    async fn decrypt(
        &self,
        request: Request<DecryptRequest>,
    ) -> Result<Response<DecryptResponse>, Status> {
        let identity = caller_identity(&request)?;
        let req = request.into_inner();
        let key_id = convert::key_id(&req.key_id)?;
        let context = convert::context(req.context);
        let decrypted = self
            .service
            .decrypt(&identity, &key_id, &req.ciphertext, &context)
            .await?;
        Ok(Response::new(DecryptResponse {
            key_version: decrypted.key_version.get(),
            plaintext: decrypted.plaintext.into_vec(),
        }))
    }

    async fn re_encrypt(
        &self,
        request: Request<ReEncryptRequest>,
    ) -> Result<Response<EncryptResponse>, Status> {
        let identity = caller_identity(&request)?;
        let req = request.into_inner();
        let key_id = convert::key_id(&req.key_id)?;
        let context = convert::context(req.context);
        let encrypted = self
            .service
            .re_encrypt(&identity, &key_id, &req.ciphertext, &context)
            .await?;
        Ok(Response::new(EncryptResponse {
            ciphertext: encrypted.ciphertext,
            key_version: encrypted.key_version.get(),
        }))
    }

    async fn generate_data_key(
        &self,
        request: Request<GenerateDataKeyRequest>,
    ) -> Result<Response<GenerateDataKeyResponse>, Status> {
        let identity = caller_identity(&request)?;
        let req = request.into_inner();
        let key_id = convert::key_id(&req.key_id)?;
        let context = convert::context(req.context);
        let data_key = self
            .service
            .generate_data_key(&identity, &key_id, &context)
            .await?;
        Ok(Response::new(GenerateDataKeyResponse {
            key_version: data_key.key_version.get(),
            wrapped_key: data_key.wrapped_key,
            plaintext_key: data_key.plaintext_key.into_vec(),
        }))
    }
}
