//! Keys kept in the root record sealed under the root key: the audit key
//! and the metadata key. Each is sealed like a DEK, under a key id no
//! customer key can have (customer ids may not contain `:`), created once
//! per keystore and re-sealed by a root-key rotation in the same write.

use crate::error::{Error, StoreError};
use crate::store::{KeyStore, StoredRoot};
use tresor_crypto::{self as crypto, Binding, Context, Purpose, SecretKey};

/// Which root-record secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RootSecret {
    /// The audit log's MAC key.
    Audit,
    /// The key that authenticates key metadata.
    Metadata,
}

impl RootSecret {
    /// Both, for rotation.
    pub(crate) const ALL: [Self; 2] = [Self::Audit, Self::Metadata];

    fn key_id(self) -> &'static str {
        match self {
            Self::Audit => "tresor:audit-key",
            Self::Metadata => "tresor:metadata-key",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Audit => "audit key",
            Self::Metadata => "metadata key",
        }
    }

    /// The sealed key in `root`, if any.
    pub(crate) fn get(self, root: &StoredRoot) -> Option<&Vec<u8>> {
        match self {
            Self::Audit => root.audit_key.as_ref(),
            Self::Metadata => root.metadata_key.as_ref(),
        }
    }

    /// Sets the sealed key in `root`.
    pub(crate) fn set(self, root: &mut StoredRoot, sealed: Option<Vec<u8>>) {
        match self {
            Self::Audit => root.audit_key = sealed,
            Self::Metadata => root.metadata_key = sealed,
        }
    }
}

fn binding(secret: RootSecret, context: &Context) -> Binding<'_> {
    Binding {
        purpose: Purpose::WrapDataKey,
        key_id: secret.key_id(),
        key_version: 1,
        context,
    }
}

/// Seals `key` under a root key.
pub(crate) fn seal(
    root: &SecretKey,
    secret: RootSecret,
    key: &SecretKey,
) -> Result<Vec<u8>, Error> {
    let context = Context::new();
    Ok(crypto::seal(
        root,
        &binding(secret, &context),
        key.expose(),
    )?)
}

/// Opens a sealed key with the root key it is sealed under.
pub(crate) fn open(
    root: &SecretKey,
    secret: RootSecret,
    sealed: &[u8],
) -> Result<SecretKey, Error> {
    let context = Context::new();
    let bytes = crypto::open(root, &binding(secret, &context), sealed).map_err(|e| {
        Error::Store(StoreError::Corrupt(format!(
            "the {} does not open under the root key: {e}",
            secret.name()
        )))
    })?;
    Ok(SecretKey::from_bytes(bytes.expose())?)
}

/// The keystore's `secret`, creating it on first use. `root` is the
/// current root key of the stored root record.
pub(crate) async fn load_or_create(
    store: &dyn KeyStore,
    root: &SecretKey,
    secret: RootSecret,
) -> Result<SecretKey, Error> {
    const ATTEMPTS: usize = 10;
    for _ in 0..ATTEMPTS {
        let stored = store
            .root()
            .await?
            .ok_or(Error::Store(StoreError::NotInitialised))?;
        if let Some(sealed) = secret.get(&stored) {
            return open(root, secret, sealed);
        }
        let key = SecretKey::generate()?;
        let mut with_key = stored.clone();
        secret.set(&mut with_key, Some(seal(root, secret, &key)?));
        match store.replace_root(&stored, &with_key).await {
            Ok(()) => {
                tracing::info!("created the {}", secret.name());
                return Ok(key);
            }
            // Another replica changed the root record meanwhile: read again.
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Store(StoreError::Conflict))
}

/// Every sealed key of `stored` re-sealed from root key `old` to `new`.
pub(crate) fn reseal_all(
    stored: &StoredRoot,
    old: &SecretKey,
    new: &SecretKey,
    into: &mut StoredRoot,
) -> Result<(), Error> {
    for secret in RootSecret::ALL {
        let resealed = match secret.get(stored) {
            Some(sealed) => Some(seal(new, secret, &open(old, secret, sealed)?)?),
            None => None,
        };
        secret.set(into, resealed);
    }
    Ok(())
}
