//! Master-key providers: the key outside the keystore that wraps the root
//! key. Only start-up, unseal and master-key rotation call a provider; the
//! request path never does.
//!
//! [`MasterKey`] is the capability; [`FileMasterKey`] keeps the key in a
//! local 32-byte file; [`AwsKmsMasterKey`] (feature `aws-kms`, on by
//! default) keeps it in AWS KMS. [`MasterKeySpec`] names one of them the way
//! flags and requests do (`file:PATH`, `aws-kms:KEY`).

#[cfg(feature = "aws-kms")]
mod aws_kms;
mod file;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::crypto::SecretKey;
use crate::error::MasterKeyError;

#[cfg(feature = "aws-kms")]
pub use aws_kms::AwsKmsMasterKey;
pub use file::FileMasterKey;

/// Wraps and unwraps the keystore's root key.
#[async_trait]
pub trait MasterKey: Send + Sync + 'static {
    /// Short provider name (`file`, `aws-kms`).
    fn provider(&self) -> &'static str;

    /// Human description for logs and records (a path or a KMS key id; never
    /// key bytes).
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

/// Which master key to use, as flags and requests name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySpec {
    /// A local key file (`file:PATH`, or `--master-key-file PATH`).
    File(PathBuf),
    /// An AWS KMS key (`aws-kms:KEY_ID_OR_ARN_OR_ALIAS`).
    AwsKms {
        /// Key id, ARN or alias.
        key_id: String,
        /// KMS endpoint override (`--aws-endpoint`).
        endpoint: Option<String>,
    },
}

impl MasterKeySpec {
    /// Parses `file:PATH` or `aws-kms:KEY`; `endpoint` applies to AWS KMS.
    pub fn parse(spec: &str, endpoint: Option<String>) -> Result<Self, MasterKeyError> {
        if let Some(path) = spec.strip_prefix("file:") {
            if path.is_empty() {
                return Err(MasterKeyError::InvalidSpec(
                    "file: needs a path, for example file:/etc/tresor/master.key".into(),
                ));
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        if let Some(key_id) = spec.strip_prefix("aws-kms:") {
            if key_id.is_empty() {
                return Err(MasterKeyError::InvalidSpec(
                    "aws-kms: needs a key id, ARN or alias, for example aws-kms:alias/tresor"
                        .into(),
                ));
            }
            return Ok(Self::AwsKms {
                key_id: key_id.to_owned(),
                endpoint,
            });
        }
        Err(MasterKeyError::InvalidSpec(format!(
            "{spec:?} is not a master key: use aws-kms:KEY_ID_OR_ARN_OR_ALIAS or file:PATH"
        )))
    }

    /// Opens the provider, checking what can be checked without a keystore
    /// (file permissions and length; KMS configuration).
    pub async fn open(&self) -> Result<Arc<dyn MasterKey>, MasterKeyError> {
        match self {
            Self::File(path) => Ok(Arc::new(FileMasterKey::open(path)?)),
            #[cfg(feature = "aws-kms")]
            Self::AwsKms { key_id, endpoint } => Ok(Arc::new(
                AwsKmsMasterKey::connect(key_id, endpoint.as_deref()).await?,
            )),
            #[cfg(not(feature = "aws-kms"))]
            Self::AwsKms { .. } => Err(MasterKeyError::InvalidSpec(
                "this build of tresor has no AWS KMS support (built without the aws-kms feature)"
                    .into(),
            )),
        }
    }
}

impl fmt::Display for MasterKeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::AwsKms { key_id, .. } => write!(f, "aws-kms:{key_id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_display() {
        assert_eq!(
            MasterKeySpec::parse("file:/k", None).expect("file"),
            MasterKeySpec::File("/k".into())
        );
        let kms =
            MasterKeySpec::parse("aws-kms:alias/tresor", Some("http://x".into())).expect("kms");
        assert_eq!(kms.to_string(), "aws-kms:alias/tresor");
        for bad in ["", "aws-kms:", "file:", "vault:x", "/etc/key"] {
            assert!(MasterKeySpec::parse(bad, None).is_err(), "{bad}");
        }
    }
}
