//! Data-plane operations: what microservices call.

use std::collections::HashMap;
use std::sync::Arc;
use tracing::Instrument;

use super::authz;
use super::keyring::Keyring;
use super::{MAX_CONTEXT_BYTES, MAX_CONTEXT_PAIRS, Service, lifecycle};
use crate::error::{CryptoError, Error, Precondition};
use crate::identity::Identity;
use crate::model::{KeyId, KeyMetadata, KeyPurpose, KeyVersion, Operation};
use tresor_crypto::{self as crypto, Binding, Context, Envelope, Purpose, SecretBytes, SecretKey};

/// Length of a generated data key.
pub const DATA_KEY_BYTES: usize = 32;

/// How long a data key is: GenerateDataKey's `key_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataKeySize {
    /// 16 bytes, for AES-128.
    Aes128,
    /// 32 bytes, for AES-256 (the default).
    #[default]
    Aes256,
}

impl DataKeySize {
    /// The size a request asks for: 0 (unset) or 32 is AES-256, 16 is
    /// AES-128; `None` for anything else.
    pub fn from_requested(bytes: u32) -> Option<Self> {
        match bytes {
            0 | 32 => Some(Self::Aes256),
            16 => Some(Self::Aes128),
            _ => None,
        }
    }

    /// Its length in bytes.
    pub fn bytes(self) -> usize {
        match self {
            Self::Aes128 => 16,
            Self::Aes256 => DATA_KEY_BYTES,
        }
    }
}

/// A fresh ciphertext.
#[derive(Debug)]
pub struct Encrypted {
    /// The key that made it (the alias's target when an alias was given).
    pub key_id: KeyId,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
    /// The version that encrypted it.
    pub key_version: KeyVersion,
}

/// An opened ciphertext.
#[derive(Debug)]
pub struct Decrypted {
    /// The key that opened it (the alias's target when an alias was given).
    pub key_id: KeyId,
    /// The plaintext (zeroized on drop).
    pub plaintext: SecretBytes,
    /// The version the ciphertext was made with.
    pub key_version: KeyVersion,
}

/// A generated data key.
#[derive(Debug)]
pub struct DataKey {
    /// The key that wrapped it (the alias's target when an alias was given).
    pub key_id: KeyId,
    /// The key for the caller's own encryption (zeroized on drop).
    pub plaintext_key: SecretBytes,
    /// The same key encrypted under the KMS key.
    pub wrapped_key: Vec<u8>,
    /// The version that wrapped it.
    pub key_version: KeyVersion,
}

/// One item of a batch call, validated at the edge.
pub struct BatchItem<'a> {
    /// The key to use.
    pub key_id: KeyId,
    /// The plaintext (EncryptBatch) or the ciphertext (DecryptBatch).
    pub data: &'a [u8],
    /// The encryption context.
    pub context: Context,
}

impl std::fmt::Debug for BatchItem<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchItem")
            .field("key_id", &self.key_id)
            .field("data_bytes", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// A batch item as the edge passes it on: validated, or the reason it is
/// not (answered as that item's result).
pub type BatchInput<'a> = Result<BatchItem<'a>, Error>;

/// The purposes that encrypt and decrypt data.
const ENCRYPTING: &[KeyPurpose] = &[KeyPurpose::EncryptDecrypt, KeyPurpose::Deterministic];
/// The purpose that makes and opens data keys.
const DATA_KEYS: &[KeyPurpose] = &[KeyPurpose::EncryptDecrypt];

/// The version a ciphertext (or MAC token) names, if `key` has it and it
/// may still be used to decrypt or verify: `None` for a version the key
/// does not have (the caller answers as for an unauthentic input),
/// FAILED_PRECONDITION for a destroyed version or one below the minimum
/// decryption version.
pub(super) fn decryptable_version(
    key: &KeyMetadata,
    raw: u32,
) -> Result<Option<KeyVersion>, Error> {
    let Ok(version) = KeyVersion::new(raw) else {
        return Ok(None);
    };
    if !key.has_version(version) {
        return Ok(None);
    }
    if key.is_destroyed(version) {
        return Err(Error::FailedPrecondition(Precondition::VersionDestroyed {
            version: version.get(),
        }));
    }
    if version < key.min_decryption_version {
        return Err(Error::FailedPrecondition(
            Precondition::BelowMinDecryptionVersion {
                version: version.get(),
                min: key.min_decryption_version.get(),
            },
        ));
    }
    Ok(Some(version))
}

/// What a ciphertext of `key_id` is bound to: `purpose` is
/// [`Purpose::Data`] for Encrypt's ciphertexts and [`Purpose::DataKey`] for
/// GenerateDataKey's wrapped keys, so neither opens as the other.
pub(super) fn key_binding<'a>(
    purpose: Purpose,
    key_id: &'a KeyId,
    version: KeyVersion,
    context: &'a Context,
) -> Binding<'a> {
    Binding {
        purpose,
        key_id: key_id.as_str(),
        key_version: version.get(),
        context,
    }
}

/// The keys and data keys of one data-plane call on one keyring: each
/// distinct key id is looked up once and each DEK version fetched once,
/// however many items of a batch name them. Authorization and key state are
/// checked for every item (pure checks on the remembered metadata). A single
/// call is a scope used once.
pub(super) struct KeyScope<'s> {
    pub(super) service: &'s Service,
    identity: &'s Identity,
    operation: Operation,
    keyring: Arc<Keyring>,
    /// Metadata looked up so far (`None`: no such live key). Lookups that
    /// failed are not remembered: the next item tries again.
    keys: HashMap<KeyId, Option<Arc<KeyMetadata>>>,
    /// DEKs fetched so far, by key id and version.
    deks: HashMap<(KeyId, KeyVersion), Arc<SecretKey>>,
}

impl KeyScope<'_> {
    /// Context size, authorization and key state for one item, in that
    /// order (so a caller without access learns nothing about state).
    pub(super) async fn usable(
        &mut self,
        key_id: &KeyId,
        context: &Context,
    ) -> Result<Arc<KeyMetadata>, Error> {
        Service::check_context(context)?;
        let key = match self.keys.get(key_id) {
            Some(known) => known.clone(),
            None => {
                let found = self.service.live_key_or_alias(key_id).await?;
                self.keys.insert(key_id.clone(), found.clone());
                found
            }
        };
        let allowed = authz::authorize_use(
            self.service.data_plane_caller(self.identity),
            self.operation,
            key.as_deref(),
            context,
            self.service.clock.now(),
        )
        .inspect_err(|_| {
            if let Some(key) = key.as_deref()
                && let Some(index) = authz::closest_grant(key, self.identity, self.operation)
            {
                super::allowances::note_closest(key, index, self.identity.as_str());
            }
        })?;
        let key = key.ok_or(Error::PermissionDenied)?;
        super::allowances::note(&key, &allowed, self.identity.as_str());
        lifecycle::ensure_usable(&key)?;
        Ok(key)
    }

    /// The version `raw` of `key` that a ciphertext or MAC token names, as
    /// [`decryptable_version`] decides. A version newer than `key`'s primary
    /// may be one another replica has just rotated in, so the key's
    /// metadata is read again (and the caller authorized again) before it
    /// is refused; the metadata read again is returned with the version.
    pub(super) async fn named_version(
        &mut self,
        key: &KeyMetadata,
        raw: u32,
        context: &Context,
    ) -> Result<(Option<Arc<KeyMetadata>>, Option<KeyVersion>), Error> {
        let known = decryptable_version(key, raw)?;
        if known.is_some() || raw <= key.primary_version.get() {
            return Ok((None, known));
        }
        self.service.forget_metadata(&key.id);
        self.keys.remove(&key.id);
        let reread = self.usable(&key.id, context).await?;
        let version = decryptable_version(&reread, raw)?;
        Ok((Some(reread), version))
    }

    /// The unwrapped DEK of one version.
    pub(super) async fn dek(
        &mut self,
        key: &KeyMetadata,
        version: KeyVersion,
    ) -> Result<Arc<SecretKey>, Error> {
        let slot = (key.id.clone(), version);
        if let Some(dek) = self.deks.get(&slot) {
            return Ok(Arc::clone(dek));
        }
        let dek = self.service.dek(&self.keyring, key, version).await?;
        self.deks.insert(slot, Arc::clone(&dek));
        Ok(dek)
    }

    async fn seal_under_primary(
        &mut self,
        key: &KeyMetadata,
        purpose: Purpose,
        plaintext: &[u8],
        context: &Context,
    ) -> Result<Encrypted, Error> {
        let version = key.primary_version;
        let dek = self.dek(key, version).await?;
        let binding = key_binding(purpose, &key.id, version, context);
        let ciphertext = crypto::seal(&dek, &binding, plaintext)?;
        self.service.count_encryption(&key.id, version);
        Ok(Encrypted {
            key_id: key.id.clone(),
            ciphertext,
            key_version: version,
        })
    }

    /// Opens a ciphertext of `key` made for `purpose`, after the checks
    /// every version must pass (exists, not destroyed, not below the
    /// minimum decryption version).
    async fn open_ciphertext(
        &mut self,
        key: &KeyMetadata,
        purpose: Purpose,
        ciphertext: &[u8],
        context: &Context,
    ) -> Result<Decrypted, Error> {
        let max_plaintext = self.service.options.max_plaintext_bytes;
        if ciphertext.len() > max_plaintext + crypto::CIPHERTEXT_OVERHEAD {
            return Err(Error::InvalidArgument(
                "ciphertext is larger than any this server produces".into(),
            ));
        }
        let deterministic = key.purpose == KeyPurpose::Deterministic;
        let raw_version = if deterministic {
            crypto::deterministic_key_version(ciphertext)?
        } else {
            Envelope::parse(ciphertext)?.key_version()
        };
        let (reread, version) = self.named_version(key, raw_version, context).await?;
        let key = reread.as_deref().unwrap_or(key);
        let version = version.ok_or(Error::InvalidCiphertext(CryptoError::Unauthentic))?;
        let dek = self.dek(key, version).await?;
        let binding = key_binding(purpose, &key.id, version, context);
        let plaintext = if deterministic {
            crypto::open_deterministic(&dek, &binding, ciphertext)?
        } else {
            crypto::open(&dek, &binding, ciphertext)?
        };
        Ok(Decrypted {
            key_id: key.id.clone(),
            plaintext,
            key_version: version,
        })
    }

    /// Seals data under the key's primary version as its purpose says:
    /// randomized for encryption keys, deterministic for deterministic
    /// keys; MAC keys do not encrypt.
    async fn seal_data(
        &mut self,
        key: &KeyMetadata,
        plaintext: &[u8],
        context: &Context,
        operation: &'static str,
    ) -> Result<Encrypted, Error> {
        key.purpose.require(ENCRYPTING, operation)?;
        if key.purpose != KeyPurpose::Deterministic {
            return self
                .seal_under_primary(key, Purpose::Data, plaintext, context)
                .await;
        }
        let version = key.primary_version;
        let dek = self.dek(key, version).await?;
        let binding = key_binding(Purpose::Data, &key.id, version, context);
        Ok(Encrypted {
            key_id: key.id.clone(),
            ciphertext: crypto::seal_deterministic(&dek, &binding, plaintext)?,
            key_version: version,
        })
    }

    /// Encrypts one plaintext under its key's primary version.
    async fn encrypt(
        &mut self,
        key_id: &KeyId,
        plaintext: &[u8],
        context: &Context,
    ) -> Result<Encrypted, Error> {
        let key = self.usable(key_id, context).await?;
        self.service.check_plaintext(plaintext)?;
        self.seal_data(&key, plaintext, context, "Encrypt").await
    }

    /// Opens one data ciphertext. A wrapped data key (sealed for
    /// [`Purpose::DataKey`]) does not open here; the caller is told to use
    /// DecryptDataKey rather than "invalid ciphertext".
    async fn decrypt(
        &mut self,
        key_id: &KeyId,
        ciphertext: &[u8],
        context: &Context,
    ) -> Result<Decrypted, Error> {
        let key = self.usable(key_id, context).await?;
        key.purpose.require(ENCRYPTING, "Decrypt")?;
        match self
            .open_ciphertext(&key, Purpose::Data, ciphertext, context)
            .await
        {
            // Deterministic keys make no data keys.
            Err(e) if key.purpose == KeyPurpose::Deterministic => Err(e),
            Err(Error::InvalidCiphertext(CryptoError::Unauthentic))
                if self
                    .open_ciphertext(&key, Purpose::DataKey, ciphertext, context)
                    .await
                    .is_ok() =>
            {
                Err(Error::WrappedDataKey)
            }
            other => other,
        }
    }

    /// Seals what ReEncrypt opened, for the same purpose: a wrapped data
    /// key stays one (only encryption keys hold those), data is sealed as
    /// the key's purpose says.
    async fn reseal(
        &mut self,
        key: &KeyMetadata,
        purpose: Purpose,
        plaintext: &[u8],
        context: &Context,
    ) -> Result<Encrypted, Error> {
        if purpose == Purpose::DataKey {
            key.purpose
                .require(DATA_KEYS, "ReEncrypt of a wrapped data key")?;
            return self
                .seal_under_primary(key, purpose, plaintext, context)
                .await;
        }
        self.seal_data(key, plaintext, context, "ReEncrypt").await
    }

    /// Opens `ciphertext` as whichever of `purposes` it was made for (the
    /// first that opens), and says which.
    async fn open_any(
        &mut self,
        key: &KeyMetadata,
        purposes: &[Purpose],
        ciphertext: &[u8],
        context: &Context,
    ) -> Result<(Decrypted, Purpose), Error> {
        for &purpose in purposes {
            match self
                .open_ciphertext(key, purpose, ciphertext, context)
                .await
            {
                Ok(opened) => return Ok((opened, purpose)),
                Err(Error::InvalidCiphertext(CryptoError::Unauthentic)) => {}
                Err(other) => return Err(other),
            }
        }
        Err(Error::InvalidCiphertext(CryptoError::Unauthentic))
    }
}

/// What ReEncrypt may find in a ciphertext of `key`: data, and for
/// encryption keys also wrapped data keys.
fn openable(key: &KeyMetadata) -> &'static [Purpose] {
    if key.purpose == KeyPurpose::EncryptDecrypt {
        &[Purpose::Data, Purpose::DataKey]
    } else {
        &[Purpose::Data]
    }
}

/// Whether a context of `count` pairs, these, is within
/// [`MAX_CONTEXT_PAIRS`] and [`MAX_CONTEXT_BYTES`]. Cheap enough to run
/// before anything else on any request: a count, then a sum that stops at
/// the byte limit.
pub fn context_within_limits<'a>(
    count: usize,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> bool {
    if count > MAX_CONTEXT_PAIRS {
        return false;
    }
    let mut size = 0usize;
    for (k, v) in pairs {
        size = size.saturating_add(k.len()).saturating_add(v.len());
        if size > MAX_CONTEXT_BYTES {
            return false;
        }
    }
    true
}

/// The refusal of a context over the limits.
pub fn context_too_large() -> Error {
    Error::InvalidArgument(format!(
        "context is too large: at most {MAX_CONTEXT_PAIRS} pairs and {MAX_CONTEXT_BYTES} bytes"
    ))
}

impl Service {
    /// Checks a context's size.
    fn check_context(context: &Context) -> Result<(), Error> {
        if !context_within_limits(context.len(), context.iter()) {
            return Err(context_too_large());
        }
        Ok(())
    }

    /// A scope for `operation` by `identity`, or `Sealed`.
    pub(super) fn key_scope<'s>(
        &'s self,
        identity: &'s Identity,
        operation: Operation,
    ) -> Result<KeyScope<'s>, Error> {
        Ok(KeyScope {
            service: self,
            identity,
            operation,
            keyring: self.keyring()?,
            keys: HashMap::new(),
            deks: HashMap::new(),
        })
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
        let read = self
            .store
            .version(&key.id, version)
            .instrument(tracing::info_span!("keystore.read_version"));
        let stored = read.await?.ok_or_else(|| {
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
        self.check_size("plaintext", plaintext)
    }

    /// Refuses a `field` larger than `--max-plaintext-bytes`.
    pub(super) fn check_size(&self, field: &str, data: &[u8]) -> Result<(), Error> {
        if data.len() > self.options.max_plaintext_bytes {
            return Err(Error::InvalidArgument(format!(
                "{field} is larger than the limit of {} bytes",
                self.options.max_plaintext_bytes
            )));
        }
        Ok(())
    }

    /// Refuses a batch of more than `--max-batch-items` items.
    pub(super) fn check_batch_size(&self, items: usize) -> Result<(), Error> {
        let max = self.options.max_batch_items;
        if items > max {
            return Err(Error::InvalidArgument(format!(
                "the batch has {items} items; this server takes at most {max} per call"
            )));
        }
        Ok(())
    }

    /// Encrypts `plaintext` under the key's primary version.
    pub async fn encrypt(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        plaintext: &[u8],
        context: &Context,
    ) -> Result<Encrypted, Error> {
        self.key_scope(identity, Operation::Encrypt)?
            .encrypt(key_id, plaintext, context)
            .await
    }

    /// Decrypts a ciphertext made by [`Service::encrypt`]. A wrapped data
    /// key is refused with [`Error::WrappedDataKey`]: it opens only with
    /// [`Service::decrypt_data_key`].
    pub async fn decrypt(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        ciphertext: &[u8],
        context: &Context,
    ) -> Result<Decrypted, Error> {
        self.key_scope(identity, Operation::Decrypt)?
            .decrypt(key_id, ciphertext, context)
            .await
    }

    /// Encrypts every item as [`Service::encrypt`] would, each with its own
    /// result, in order (an item refused at the edge keeps its error); each
    /// distinct key is resolved once. Fails as a whole only when sealed or
    /// given more than `--max-batch-items` items.
    pub async fn encrypt_batch<'a>(
        &self,
        identity: &Identity,
        items: impl ExactSizeIterator<Item = BatchInput<'a>>,
    ) -> Result<Vec<Result<Encrypted, Error>>, Error> {
        let mut scope = self.batch_scope(identity, Operation::Encrypt, items.len())?;
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            results.push(match item {
                Ok(item) => scope.encrypt(&item.key_id, item.data, &item.context).await,
                Err(refused) => Err(refused),
            });
        }
        Ok(results)
    }

    /// Decrypts every item as [`Service::decrypt`] would; otherwise as
    /// [`Service::encrypt_batch`].
    pub async fn decrypt_batch<'a>(
        &self,
        identity: &Identity,
        items: impl ExactSizeIterator<Item = BatchInput<'a>>,
    ) -> Result<Vec<Result<Decrypted, Error>>, Error> {
        let mut scope = self.batch_scope(identity, Operation::Decrypt, items.len())?;
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            results.push(match item {
                Ok(item) => scope.decrypt(&item.key_id, item.data, &item.context).await,
                Err(refused) => Err(refused),
            });
        }
        Ok(results)
    }

    /// The scope of a batch of `items` items, or why the whole call fails.
    fn batch_scope<'s>(
        &'s self,
        identity: &'s Identity,
        operation: Operation,
        items: usize,
    ) -> Result<KeyScope<'s>, Error> {
        self.check_batch_size(items)?;
        self.key_scope(identity, operation)
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
        let mut scope = self.key_scope(identity, Operation::ReEncrypt)?;
        let key = scope.usable(key_id, context).await?;
        key.purpose.require(ENCRYPTING, "ReEncrypt")?;
        // A wrapped data key stays one: the purpose is kept, never changed,
        // so ReEncrypt cannot turn an Encrypt ciphertext into a data key.
        let (opened, purpose) = scope
            .open_any(&key, openable(&key), ciphertext, context)
            .await?;
        scope
            .reseal(&key, purpose, opened.plaintext.expose(), context)
            .await
    }

    /// Moves a ciphertext from `source` to the primary version of
    /// `destination`, bound to `destination_context`, without the plaintext
    /// leaving tresor. Needs Decrypt on the source and, on the destination,
    /// Encrypt, or GenerateDataKey when the ciphertext is a wrapped data key
    /// (it stays one, and only a GenerateDataKey holder may make those).
    pub async fn re_encrypt_to(
        &self,
        identity: &Identity,
        source: (&KeyId, &Context),
        ciphertext: &[u8],
        destination: (&KeyId, &Context),
    ) -> Result<Encrypted, Error> {
        let (source_id, context) = source;
        let (destination_id, destination_context) = destination;
        let mut from = self.key_scope(identity, Operation::Decrypt)?;
        let source_key = from.usable(source_id, context).await?;
        source_key.purpose.require(ENCRYPTING, "ReEncrypt")?;
        // The destination is authorized before anything is opened, for
        // the weaker of the two operations; a wrapped data key also needs
        // the stronger one.
        let mut to = self.key_scope(identity, Operation::Encrypt)?;
        to.usable(destination_id, destination_context)
            .await?
            .purpose
            .require(ENCRYPTING, "ReEncrypt")?;
        let (opened, purpose) = from
            .open_any(&source_key, openable(&source_key), ciphertext, context)
            .await?;
        if purpose == Purpose::DataKey {
            to = self.key_scope(identity, Operation::GenerateDataKey)?;
        }
        let destination_key = to.usable(destination_id, destination_context).await?;
        to.reseal(
            &destination_key,
            purpose,
            opened.plaintext.expose(),
            destination_context,
        )
        .await
    }

    /// A fresh data key of `size`, in clear and wrapped (GenerateDataKey;
    /// GenerateDataKeyWithoutPlaintext drops the clear one, which wipes
    /// itself).
    pub async fn generate_data_key(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        context: &Context,
        size: DataKeySize,
    ) -> Result<DataKey, Error> {
        let mut scope = self.key_scope(identity, Operation::GenerateDataKey)?;
        let key = scope.usable(key_id, context).await?;
        key.purpose.require(DATA_KEYS, "GenerateDataKey")?;
        let plaintext_key = crypto::random_bytes(size.bytes())?;
        let wrapped = scope
            .seal_under_primary(&key, Purpose::DataKey, plaintext_key.expose(), context)
            .await?;
        Ok(DataKey {
            key_id: wrapped.key_id,
            plaintext_key,
            wrapped_key: wrapped.ciphertext,
            key_version: wrapped.key_version,
        })
    }

    /// Opens a wrapped data key made by [`Service::generate_data_key`] (and
    /// nothing else: an Encrypt ciphertext does not open here). Needs the
    /// Decrypt operation, like opening the data it protects.
    pub async fn decrypt_data_key(
        &self,
        identity: &Identity,
        key_id: &KeyId,
        wrapped_key: &[u8],
        context: &Context,
    ) -> Result<Decrypted, Error> {
        let mut scope = self.key_scope(identity, Operation::Decrypt)?;
        let key = scope.usable(key_id, context).await?;
        key.purpose.require(DATA_KEYS, "DecryptDataKey")?;
        let opened = scope
            .open_ciphertext(&key, Purpose::DataKey, wrapped_key, context)
            .await?;
        let length = opened.plaintext.expose().len();
        if [DataKeySize::Aes128, DataKeySize::Aes256]
            .iter()
            .all(|size| size.bytes() != length)
        {
            // Only GenerateDataKey seals for this purpose, 16 or 32 bytes.
            return Err(Error::InvalidCiphertext(CryptoError::Unauthentic));
        }
        Ok(opened)
    }
}

/// One ReEncryptBatch item, validated at the edge: the ciphertext with its
/// key and context, and where to move it (`None`: re-encrypt under its own
/// key's primary version).
#[derive(Debug)]
pub struct ReEncryptItem<'a> {
    /// The ciphertext, its key and its context.
    pub source: BatchItem<'a>,
    /// The destination key and context of a key move.
    pub destination: Option<(KeyId, Context)>,
}

impl Service {
    /// Re-encrypts or moves every item as [`Service::re_encrypt`] or
    /// [`Service::re_encrypt_to`] would, each with its own result, in
    /// order. Fails as a whole only when sealed or given more than
    /// `--max-batch-items` items.
    pub async fn re_encrypt_batch<'a>(
        &self,
        identity: &Identity,
        items: impl ExactSizeIterator<Item = Result<ReEncryptItem<'a>, Error>>,
    ) -> Result<Vec<Result<Encrypted, Error>>, Error> {
        self.check_batch_size(items.len())?;
        self.keyring()?;
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            let result = match item {
                Ok(ReEncryptItem {
                    source,
                    destination: None,
                }) => {
                    self.re_encrypt(identity, &source.key_id, source.data, &source.context)
                        .await
                }
                Ok(ReEncryptItem {
                    source,
                    destination: Some((key_id, context)),
                }) => {
                    self.re_encrypt_to(
                        identity,
                        (&source.key_id, &source.context),
                        source.data,
                        (&key_id, &context),
                    )
                    .await
                }
                Err(refused) => Err(refused),
            };
            results.push(result);
        }
        Ok(results)
    }
}
