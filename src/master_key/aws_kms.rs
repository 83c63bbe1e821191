//! [`AwsKmsMasterKey`]: the root key wrapped by an AWS KMS key.
//!
//! Start-up and Unseal call KMS `Decrypt` once; creating a keystore or
//! rotating the master key calls `Encrypt` once. Nothing on the request path
//! talks to KMS. Every call carries an encryption context naming the
//! keystore, so a wrapped root key cannot be replayed into another keystore
//! (KMS refuses to decrypt under a different context). Region, credentials
//! and endpoint come from the standard AWS configuration chain; transient
//! failures (throttling, timeouts, 5xx) are retried by the SDK with
//! exponential backoff, at most [`MAX_ATTEMPTS`] attempts.

use async_trait::async_trait;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;

use super::MasterKey;
use crate::error::MasterKeyError;
use tresor_crypto::SecretKey;

/// Attempts per KMS call, first try included.
pub const MAX_ATTEMPTS: u32 = 5;
/// Encryption-context key naming the keystore.
const CONTEXT_KEYSTORE: &str = "tresor:keystore-id";
/// Encryption-context key naming what is wrapped.
const CONTEXT_PURPOSE: &str = "tresor:purpose";
const PURPOSE_ROOT_KEY: &str = "root-key";
/// Encryption-context key binding the root key's generation (absent in
/// wrappings written before it was bound).
const CONTEXT_GENERATION: &str = "tresor:root-generation";

/// Master key held by AWS KMS.
#[derive(Debug, Clone)]
pub struct AwsKmsMasterKey {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl AwsKmsMasterKey {
    /// A provider for `key_id` (key id, ARN or alias). `endpoint` overrides
    /// the KMS endpoint (`--aws-endpoint`; `AWS_ENDPOINT_URL` works too).
    pub async fn connect(key_id: &str, endpoint: Option<&str>) -> Result<Self, MasterKeyError> {
        if key_id.trim().is_empty() {
            return Err(MasterKeyError::InvalidSpec(
                "aws-kms: needs a key id, ARN or alias, for example aws-kms:alias/tresor".into(),
            ));
        }
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .retry_config(
                aws_config::retry::RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS),
            )
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(std::time::Duration::from_secs(10))
                    .connect_timeout(std::time::Duration::from_secs(5))
                    .build(),
            );
        if let Some(url) = endpoint {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(MasterKeyError::Kms {
                key: key_id.to_owned(),
                reason:
                    "no AWS region configured: set AWS_REGION (or a region in your AWS profile)"
                        .into(),
            });
        }
        Ok(Self {
            client: aws_sdk_kms::Client::new(&config),
            key_id: key_id.to_owned(),
        })
    }

    /// One KMS Decrypt of a wrapped root key, under the encryption context
    /// of `keystore_id` and, when given, of `generation`.
    async fn decrypt(
        &self,
        wrapped: &[u8],
        keystore_id: &str,
        generation: Option<u32>,
    ) -> Result<aws_sdk_kms::operation::decrypt::DecryptOutput, MasterKeyError> {
        let mut request = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped.to_vec()))
            .encryption_context(CONTEXT_KEYSTORE, keystore_id)
            .encryption_context(CONTEXT_PURPOSE, PURPOSE_ROOT_KEY);
        if let Some(generation) = generation {
            request = request.encryption_context(CONTEXT_GENERATION, generation.to_string());
        }
        request.send().await.map_err(|e| self.failure(e))
    }

    fn failure<E, R>(&self, err: SdkError<E, R>) -> MasterKeyError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let reason = match &err {
            SdkError::ServiceError(service) => {
                let inner = service.err();
                let code = inner.code().unwrap_or("unknown");
                let message = inner.message().unwrap_or("");
                match code {
                    "IncorrectKeyException" | "InvalidCiphertextException" => {
                        return MasterKeyError::WrongMasterKey;
                    }
                    "NotFoundException" => format!(
                        "key not found (check the key id, ARN or alias and the region): {message}"
                    ),
                    "AccessDeniedException" => {
                        return MasterKeyError::KmsAccessDenied {
                            key: self.key_id.clone(),
                            detail: if message.is_empty() {
                                String::new()
                            } else {
                                format!(": {message}")
                            },
                        };
                    }
                    "DisabledException" | "KMSInvalidStateException" => {
                        format!("the key is disabled or pending deletion in KMS: {message}")
                    }
                    "ThrottlingException" | "LimitExceededException" => format!(
                        "throttled by KMS after {MAX_ATTEMPTS} attempts; try again later: {message}"
                    ),
                    "UnrecognizedClientException" | "InvalidClientTokenId" => format!(
                        "AWS credentials were rejected; check AWS_ACCESS_KEY_ID/AWS_PROFILE: {message}"
                    ),
                    other => format!("KMS refused the call ({other}): {message}"),
                }
            }
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => format!(
                "KMS is unreachable after {MAX_ATTEMPTS} attempts (network, endpoint or credentials): {}",
                crate::error::describe_chain(&err)
            ),
            _ => format!("KMS call failed: {}", crate::error::describe_chain(&err)),
        };
        MasterKeyError::Kms {
            key: self.key_id.clone(),
            reason,
        }
    }
}

#[async_trait]
impl MasterKey for AwsKmsMasterKey {
    fn provider(&self) -> &'static str {
        "aws-kms"
    }

    fn describe(&self) -> String {
        format!("aws-kms:{}", self.key_id)
    }

    async fn wrap_root_key(
        &self,
        root: &SecretKey,
        keystore_id: &str,
        generation: u32,
    ) -> Result<Vec<u8>, MasterKeyError> {
        let output = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(root.expose().to_vec()))
            .encryption_context(CONTEXT_KEYSTORE, keystore_id)
            .encryption_context(CONTEXT_PURPOSE, PURPOSE_ROOT_KEY)
            .encryption_context(CONTEXT_GENERATION, generation.to_string())
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        output
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| MasterKeyError::Kms {
                key: self.key_id.clone(),
                reason: "KMS Encrypt returned no ciphertext".into(),
            })
    }

    async fn unwrap_root_key(
        &self,
        wrapped: &[u8],
        keystore_id: &str,
        generation: u32,
    ) -> Result<SecretKey, MasterKeyError> {
        let output = match self.decrypt(wrapped, keystore_id, Some(generation)).await {
            // A wrapping from before the generation was bound: one more call.
            Err(MasterKeyError::WrongMasterKey) => self.decrypt(wrapped, keystore_id, None).await?,
            other => other?,
        };
        let plaintext = zeroize::Zeroizing::new(
            output
                .plaintext
                .map(Blob::into_inner)
                .ok_or(MasterKeyError::WrongMasterKey)?,
        );
        SecretKey::from_bytes(&plaintext).map_err(|_| MasterKeyError::WrongMasterKey)
    }
}
