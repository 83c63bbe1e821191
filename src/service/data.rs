//! Data-plane operations: what microservices call.

use std::sync::Arc;

use super::authz::{self, Action};
use super::keyring::Keyring;
use super::{MAX_CONTEXT_BYTES, Service, lifecycle};
use crate::crypto::{self, Binding, Context, Envelope, Purpose, SecretBytes, SecretKey};
use crate::error::{CryptoError, Error, Precondition};
use crate::identity::Identity;
use crate::model::{KeyId, KeyMetadata, KeyVersion, Operation};

/// Length of a generated data key.
pub const DATA_KEY_BYTES: usize = 32;

/// A fresh ciphertext.
#[derive(Debug)]
pub struct Encrypted {
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
    /// The version that encrypted it.
    pub key_version: KeyVersion,
}

/// An opened ciphertext.
#[derive(Debug)]
pub struct Decrypted {
    /// The plaintext (zeroized on drop).
    pub plaintext: SecretBytes,
    /// The version the ciphertext was made with.
    pub key_version: KeyVersion,
}

/// A generated data key.
#[derive(Debug)]
pub struct DataKey {
    /// The key for the caller's own encryption (zeroized on drop).
    pub plaintext_key: SecretBytes,
    /// The same key encrypted under the KMS key.
    pub wrapped_key: Vec<u8>,
    /// The version that wrapped it.
    pub key_version: KeyVersion,
}

fn data_binding<'a>(key_id: &'a KeyId, version: KeyVersion, context: &'a Context) -> Binding<'a> {
    Binding {
        purpose: Purpose::Data,
        key_id: key_id.as_str(),
        key_version: version.get(),
        context,
    }
}

impl Service {
    /// Checks a context's size.
    fn check_context(context: &Context) -> Result<(), Error> {
        let size: usize = context.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_CONTEXT_BYTES {
            return Err(Error::InvalidArgument(format!(
                "context is larger than {MAX_CONTEXT_BYTES} bytes"
            )));
        }
        Ok(())
    }

    /// Seal state, authorization and key state for a data-plane call, in
    /// that order (so a caller without access learns nothing about state).
    async fn usable_key(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        operation: Operation,
        context: &Context,
    ) -> Result<(Arc<Keyring>, Arc<KeyMetadata>), Error> {
        let keyring = self.keyring()?;
        Self::check_context(context)?;
        let key = self.live_key(key_id).await?;
        authz::authorize(
            self.caller(identity),
            Action::Use(operation),
            key.as_deref(),
        )?;
        let key = key.ok_or(Error::PermissionDenied)?;
        lifecycle::ensure_usable(&key)?;
        Ok((keyring, key))
    }

    /// The unwrapped DEK of one version, from the cache or the store.
    async fn dek(
        &self,
        keyring: &Keyring,
        key: &KeyMetadata,
        version: KeyVersion,
    ) -> Result<Arc<SecretKey>, Error> {
        if let Some(dek) = keyring.cached(&key.id, key.created_at, version) {
            self.metrics.dek_lookup(true);
            return Ok(dek);
        }
        self.metrics.dek_lookup(false);
        let stored = self.store.version(&key.id, version).await?.ok_or_else(|| {
            Error::Store(crate::error::StoreError::Corrupt(format!(
                "key {} has no stored version {version}",
                key.id
            )))
        })?;
        if keyring.root_of(stored.root_generation).is_none() {
            // Wrapped under a root key another replica rotated in.
            self.refresh_roots(keyring).await?;
        }
        let dek = Arc::new(keyring.unwrap_dek(&key.id, &stored)?);
        keyring.remember(&key.id, key.created_at, version, Arc::clone(&dek));
        Ok(dek)
    }

    fn check_plaintext(&self, plaintext: &[u8]) -> Result<(), Error> {
        if plaintext.len() > self.options.max_plaintext_bytes {
            return Err(Error::InvalidArgument(format!(
                "plaintext is larger than the limit of {} bytes",
                self.options.max_plaintext_bytes
            )));
        }
        Ok(())
    }

    async fn seal_under_primary(
        &self,
        keyring: &Keyring,
        key: &KeyMetadata,
        plaintext: &[u8],
        context: &Context,
    ) -> Result<Encrypted, Error> {
        let version = key.primary_version;
        let dek = self.dek(keyring, key, version).await?;
        let ciphertext = crypto::seal(&dek, &data_binding(&key.id, version, context), plaintext)?;
        Ok(Encrypted {
            ciphertext,
            key_version: version,
        })
    }

    async fn open_ciphertext(
        &self,
        keyring: &Keyring,
        key: &KeyMetadata,
        ciphertext: &[u8],
        context: &Context,
    ) -> Result<Decrypted, Error> {
        if ciphertext.len() > self.options.max_plaintext_bytes + crypto::CIPHERTEXT_OVERHEAD {
            return Err(Error::InvalidArgument(
                "ciphertext is larger than any this server produces".into(),
            ));
        }
        let envelope = Envelope::parse(ciphertext)?;
        let version = KeyVersion::new(envelope.key_version())
            .map_err(|_| Error::InvalidCiphertext(CryptoError::Malformed))?;
        if !key.has_version(version) {
            return Err(Error::InvalidCiphertext(CryptoError::Unauthentic));
        }
        if version < key.min_decryption_version {
            return Err(Error::FailedPrecondition(
                Precondition::BelowMinDecryptionVersion {
                    version: version.get(),
                    min: key.min_decryption_version.get(),
                },
            ));
        }
        let dek = self.dek(keyring, key, version).await?;
        let plaintext = crypto::open(&dek, &data_binding(&key.id, version, context), ciphertext)?;
        Ok(Decrypted {
            plaintext,
            key_version: version,
        })
    }

    /// Encrypts `plaintext` under the key's primary version.
    pub async fn encrypt(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        plaintext: &[u8],
        context: &Context,
    ) -> Result<Encrypted, Error> {
        let (keyring, key) = self
            .usable_key(identity, key_id, Operation::Encrypt, context)
            .await?;
        self.check_plaintext(plaintext)?;
        self.seal_under_primary(&keyring, &key, plaintext, context)
            .await
    }

    /// Decrypts a ciphertext made by [`Service::encrypt`] or a wrapped data
    /// key.
    pub async fn decrypt(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        ciphertext: &[u8],
        context: &Context,
    ) -> Result<Decrypted, Error> {
        let (keyring, key) = self
            .usable_key(identity, key_id, Operation::Decrypt, context)
            .await?;
        self.open_ciphertext(&keyring, &key, ciphertext, context)
            .await
    }

    /// Re-encrypts under the primary version without revealing the
    /// plaintext.
    pub async fn re_encrypt(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        ciphertext: &[u8],
        context: &Context,
    ) -> Result<Encrypted, Error> {
        let (keyring, key) = self
            .usable_key(identity, key_id, Operation::ReEncrypt, context)
            .await?;
        let opened = self
            .open_ciphertext(&keyring, &key, ciphertext, context)
            .await?;
        self.seal_under_primary(&keyring, &key, opened.plaintext.expose(), context)
            .await
    }

    /// A fresh data key, in clear and wrapped.
    pub async fn generate_data_key(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        context: &Context,
    ) -> Result<DataKey, Error> {
        let (keyring, key) = self
            .usable_key(identity, key_id, Operation::GenerateDataKey, context)
            .await?;
        let plaintext_key = crypto::random_bytes(DATA_KEY_BYTES)?;
        let wrapped = self
            .seal_under_primary(&keyring, &key, plaintext_key.expose(), context)
            .await?;
        Ok(DataKey {
            plaintext_key,
            wrapped_key: wrapped.ciphertext,
            key_version: wrapped.key_version,
        })
    }
}
