//! Data keys: GenerateDataKey and DecryptDataKey, and the one place the
//! envelopes get their data keys (fresh or from the [`DataKeyCache`]).

use std::collections::HashMap;
use std::sync::Arc;

use zeroize::Zeroize;

use super::{Client, ClientError, DataKey, Idempotency, proto, protocol_error};
use tresor_crypto::{SecretKey, StreamVersion};

/// The data key length GenerateDataKey uses unless asked otherwise.
pub const DEFAULT_KEY_BYTES: u32 = 32;

fn data_key_request(
    key_id: &str,
    context: &HashMap<String, String>,
    key_bytes: u32,
) -> proto::GenerateDataKeyRequest {
    proto::GenerateDataKeyRequest {
        key_id: key_id.to_owned(),
        context: context.clone(),
        key_bytes,
    }
}

impl Client {
    /// A fresh 32-byte data key, in clear and wrapped.
    pub async fn generate_data_key(
        &self,
        key_id: &str,
        context: &HashMap<String, String>,
    ) -> Result<proto::GenerateDataKeyResponse, ClientError> {
        self.generate_data_key_of(key_id, context, DEFAULT_KEY_BYTES)
            .await
    }

    /// A fresh data key of `key_bytes` bytes (16 or 32), in clear and
    /// wrapped.
    pub async fn generate_data_key_of(
        &self,
        key_id: &str,
        context: &HashMap<String, String>,
        key_bytes: u32,
    ) -> Result<proto::GenerateDataKeyResponse, ClientError> {
        let request = data_key_request(key_id, context, key_bytes);
        self.crypto_rpc(Idempotency::Safe, request, |mut c, r| async move {
            c.generate_data_key(r).await
        })
        .await
    }

    /// A fresh data key of `key_bytes` bytes (16 or 32), wrapped only: for
    /// provisioning keys this process must never see (whoever holds the
    /// Decrypt grant opens it with [`Client::decrypt_data_key`]).
    pub async fn generate_data_key_without_plaintext(
        &self,
        key_id: &str,
        context: &HashMap<String, String>,
        key_bytes: u32,
    ) -> Result<proto::GenerateDataKeyWithoutPlaintextResponse, ClientError> {
        let request = data_key_request(key_id, context, key_bytes);
        self.crypto_rpc(Idempotency::Safe, request, |mut c, r| async move {
            c.generate_data_key_without_plaintext(r).await
        })
        .await
    }

    /// Opens a wrapped data key made by GenerateDataKey (needs the Decrypt
    /// grant on the key, and the context it was made with). An Encrypt
    /// ciphertext is refused as [`ClientError::InvalidCiphertext`].
    pub async fn decrypt_data_key(
        &self,
        key_id: &str,
        wrapped_key: &[u8],
        context: &HashMap<String, String>,
    ) -> Result<proto::DecryptDataKeyResponse, ClientError> {
        let request = proto::DecryptDataKeyRequest {
            key_id: key_id.to_owned(),
            wrapped_key: wrapped_key.to_vec(),
            context: context.clone(),
        };
        self.crypto_rpc(Idempotency::Safe, request, |mut c, r| async move {
            c.decrypt_data_key(r).await
        })
        .await
    }

    /// A data key for encrypting one message locally. Every envelope gets
    /// its data key here and nowhere else: from the cache when one is
    /// configured, the message's length `known_len` is known, and a cached
    /// key may take it; else a fresh one from GenerateDataKey (cached for
    /// the next messages when the cache is on and the length known). The
    /// envelope formats stay safe when a data key is reused: each message
    /// draws its own salt and so its own key.
    pub(crate) async fn data_key_for_encryption(
        &self,
        key_id: &str,
        context: &HashMap<String, String>,
        known_len: Option<u64>,
    ) -> Result<Arc<DataKey>, ClientError> {
        let cache = self.data_keys.as_ref().zip(known_len);
        if let Some(cached) =
            cache.and_then(|(cache, bytes)| cache.take_sealing(key_id, context, bytes))
        {
            return Ok(cached);
        }
        let mut generated = self.generate_data_key(key_id, context).await?;
        let key = SecretKey::from_bytes(&generated.plaintext_key);
        generated.plaintext_key.zeroize();
        let fresh = DataKey {
            key: key.map_err(|_| protocol_error("the data key is not 32 bytes"))?,
            wrapped: generated.wrapped_key,
            key_version: generated.key_version,
        };
        Ok(match cache {
            Some((cache, bytes)) => cache.put_sealing(key_id, context, bytes, fresh),
            None => Arc::new(fresh),
        })
    }

    /// The data key inside the wrapped key of a stream of `version`, and
    /// the key version that wrapped it: for version 2, unwrapped by the
    /// server with DecryptDataKey (or taken from the cache when one is
    /// configured); for version 1 (legacy; the caller checked it is
    /// allowed), with Decrypt and never cached, so a key opened the legacy
    /// way can never be reused for a version 2 stream. Anything but a
    /// 32-byte key inside is [`ClientError::InvalidCiphertext`].
    pub(crate) async fn unwrap_data_key(
        &self,
        key_id: &str,
        context: &HashMap<String, String>,
        wrapped: &[u8],
        version: StreamVersion,
    ) -> Result<(Arc<SecretKey>, u32), ClientError> {
        if version == StreamVersion::V1 {
            let mut opened = self.decrypt(key_id, wrapped, context).await?;
            let key = take_key(&mut opened.plaintext)?;
            return Ok((Arc::new(key), opened.key_version));
        }
        if let Some(cached) = self
            .data_keys
            .as_ref()
            .and_then(|cache| cache.get_opening(key_id, context, wrapped))
        {
            return Ok(cached);
        }
        let mut opened = self.decrypt_data_key(key_id, wrapped, context).await?;
        let key = take_key(&mut opened.plaintext_key)?;
        let version = opened.key_version;
        Ok(match &self.data_keys {
            Some(cache) => (
                cache.put_opening(key_id, context, wrapped, key, version),
                version,
            ),
            None => (Arc::new(key), version),
        })
    }
}

/// The data key in an unwrapped plaintext, which is wiped: anything but 32
/// bytes means another ciphertext was put in the wrapped key's place.
fn take_key(plaintext: &mut Vec<u8>) -> Result<SecretKey, ClientError> {
    let key = SecretKey::from_bytes(plaintext);
    plaintext.zeroize();
    key.map_err(|_| ClientError::InvalidCiphertext)
}
