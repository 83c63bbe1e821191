//! Blind indexes: MAC tokens under MAC keys (Mac, VerifyMac,
//! MacAllVersions, MacBatch). The token format is `tresor-crypto`'s
//! (`mac_token.rs`, format 0x21); here are the checks every call makes
//! (authorization, state, purpose, versions) and the batch.

use super::Service;
use super::data::{BatchItem, KeyScope, key_binding};
use crate::error::{CryptoError, Error};
use crate::identity::Identity;
use crate::model::{KeyId, KeyMetadata, KeyPurpose, KeyVersion, Operation};
use tresor_crypto::{self as crypto, Context, MacLength, Purpose};

/// A MAC token and the version that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacToken {
    /// The key that made it (the alias's target when an alias was given).
    pub key_id: KeyId,
    /// The token (header and HMAC bytes).
    pub mac: Vec<u8>,
    /// The version that made it.
    pub key_version: KeyVersion,
}

/// What VerifyMac found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacVerdict {
    /// The key checked (the alias's target when an alias was given).
    pub key_id: KeyId,
    /// The token's version when it is valid; `None` when it is not.
    pub valid_version: Option<KeyVersion>,
}

/// One MacBatch item as the edge passes it on: validated with its length,
/// or the reason it is not.
pub type MacInput<'a> = Result<(BatchItem<'a>, MacLength), Error>;

const MAC_KEYS: &[KeyPurpose] = &[KeyPurpose::Mac];

impl KeyScope<'_> {
    /// A usable MAC key and a message within the size limit.
    async fn mac_key(
        &mut self,
        key_id: &KeyId,
        message: &[u8],
        context: &Context,
        operation: &'static str,
    ) -> Result<std::sync::Arc<KeyMetadata>, Error> {
        let key = self.usable(key_id, context).await?;
        key.purpose.require(MAC_KEYS, operation)?;
        self.service.check_size("message", message)?;
        Ok(key)
    }

    /// The token of `message` under one version of `key`.
    async fn token(
        &mut self,
        key: &KeyMetadata,
        version: KeyVersion,
        message: &[u8],
        context: &Context,
        length: MacLength,
    ) -> Result<MacToken, Error> {
        let dek = self.dek(key, version).await?;
        let binding = key_binding(Purpose::Data, &key.id, version, context);
        Ok(MacToken {
            key_id: key.id.clone(),
            mac: crypto::mac_token(&dek, &binding, length, message)?,
            key_version: version,
        })
    }

    /// Mac: the token under the primary version.
    async fn mac(
        &mut self,
        key_id: &KeyId,
        message: &[u8],
        context: &Context,
        length: MacLength,
    ) -> Result<MacToken, Error> {
        let key = self.mac_key(key_id, message, context, "Mac").await?;
        self.token(&key, key.primary_version, message, context, length)
            .await
    }
}

impl Service {
    /// The MAC token of `message` under the primary version of a MAC key,
    /// keeping `length` HMAC bytes. Needs the MAC operation.
    pub async fn mac(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        message: &[u8],
        context: &Context,
        length: MacLength,
    ) -> Result<MacToken, Error> {
        self.key_scope(identity, Operation::Mac)?
            .mac(key_id, message, context, length)
            .await
    }

    /// Whether `token` is the MAC token of `message` under a MAC key, of
    /// any version the key may still verify with and exactly `length`
    /// HMAC bytes: the version when it is, `None` when it is not. Needs
    /// the VERIFY_MAC operation. Bytes that are no MAC token at all are
    /// an invalid ciphertext; a destroyed version or one below the
    /// minimum decryption version is a failed precondition, as in Decrypt.
    pub async fn verify_mac(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        message: &[u8],
        token: &[u8],
        context: &Context,
        length: MacLength,
    ) -> Result<MacVerdict, Error> {
        let mut scope = self.key_scope(identity, Operation::VerifyMac)?;
        let key = scope.mac_key(key_id, message, context, "VerifyMac").await?;
        let (raw_version, token_length) = crypto::mac_token_header(token)?;
        let (reread, version) = scope.named_version(&key, raw_version, context).await?;
        let key = reread.unwrap_or(key);
        let verdict = |valid_version| MacVerdict {
            key_id: key.id.clone(),
            valid_version,
        };
        let Some(version) = version else {
            return Ok(verdict(None));
        };
        if token_length != length {
            return Ok(verdict(None));
        }
        let dek = scope.dek(&key, version).await?;
        let binding = key_binding(Purpose::Data, &key.id, version, context);
        match crypto::verify_mac_token(&dek, &binding, message, token) {
            Ok(()) => Ok(verdict(Some(version))),
            Err(CryptoError::Unauthentic) => Ok(verdict(None)),
            Err(other) => Err(other.into()),
        }
    }

    /// The tokens of `message` under every live version of a MAC key (at
    /// or above the minimum decryption version, not destroyed), primary
    /// first then descending. Needs the MAC operation.
    pub async fn mac_all_versions(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        message: &[u8],
        context: &Context,
        length: MacLength,
    ) -> Result<Vec<MacToken>, Error> {
        let mut scope = self.key_scope(identity, Operation::Mac)?;
        let key = scope
            .mac_key(key_id, message, context, "MacAllVersions")
            .await?;
        let mut live: Vec<KeyVersion> = key
            .versions
            .iter()
            .filter(|info| info.destroyed_at.is_none())
            .map(|info| info.version)
            .filter(|version| *version >= key.min_decryption_version)
            .filter(|version| *version <= key.primary_version)
            .collect();
        live.sort_unstable_by(|a, b| b.cmp(a));
        let mut tokens = Vec::with_capacity(live.len());
        for version in live {
            tokens.push(scope.token(&key, version, message, context, length).await?);
        }
        Ok(tokens)
    }

    /// Mac for every item, each with its own result, in order; as
    /// [`Service::encrypt_batch`] otherwise.
    pub async fn mac_batch<'a>(
        &self,
        identity: &Identity,
        items: impl ExactSizeIterator<Item = MacInput<'a>>,
    ) -> Result<Vec<Result<MacToken, Error>>, Error> {
        self.check_batch_size(items.len())?;
        let mut scope = self.key_scope(identity, Operation::Mac)?;
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            results.push(match item {
                Ok((item, length)) => {
                    scope
                        .mac(&item.key_id, item.data, &item.context, length)
                        .await
                }
                Err(refused) => Err(refused),
            });
        }
        Ok(results)
    }
}
