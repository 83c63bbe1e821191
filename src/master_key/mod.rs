//! Master-key providers: the key outside the keystore that wraps the root
//! key. Only start-up and unseal call a provider; the request path never
//! does.
//!
//! [`MasterKey`] is the capability; [`FileMasterKey`] keeps the key in a
//! local 32-byte file (AWS KMS comes as another implementation).

mod file;

use async_trait::async_trait;

use crate::crypto::SecretKey;
use crate::error::MasterKeyError;

pub use file::FileMasterKey;

/// Wraps and unwraps the keystore's root key.
#[async_trait]
pub trait MasterKey: Send + Sync + 'static {
    /// Short provider name stored beside the wrapped root key (`file`).
    fn provider(&self) -> &'static str;

    /// Human description for logs (a path or a KMS key id; never key bytes).
    fn describe(&self) -> String;

    /// Wraps `root` for the keystore `keystore_id`.
    async fn wrap_root_key(
        &self,
        root: &SecretKey,
        keystore_id: &str,
    ) -> Result<Vec<u8>, MasterKeyError>;

    /// Unwraps a root key wrapped by [`MasterKey::wrap_root_key`] for the same
    /// keystore.
    async fn unwrap_root_key(
        &self,
        wrapped: &[u8],
        keystore_id: &str,
    ) -> Result<SecretKey, MasterKeyError>;
}
