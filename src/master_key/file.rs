//! [`FileMasterKey`]: a 32-byte master key in a local file with mode 0600.
//!
//! The file is read at every wrap/unwrap (start-up and unseal), so the master
//! key itself is not kept in memory while serving.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::MasterKey;
use crate::error::{CryptoError, MasterKeyError};
use tresor_crypto::{self as crypto, Binding, Context, Purpose, SecretKey};

/// The generation that wrappings written before the generation was bound
/// carry, whatever their root key's generation.
const UNBOUND_GENERATION: u32 = 1;

/// Master key held in a local file.
#[derive(Debug, Clone)]
pub struct FileMasterKey {
    path: PathBuf,
}

impl FileMasterKey {
    /// Uses the key in `path`, checking now that it is readable, private and
    /// 32 bytes long, so a bad file stops the server before it binds a port.
    pub fn open(path: &Path) -> Result<Self, MasterKeyError> {
        let master = Self {
            path: path.to_owned(),
        };
        master.read_key()?;
        Ok(master)
    }

    /// Creates a new random master key file with mode 0600. Refuses to
    /// overwrite an existing file.
    pub fn generate(path: &Path) -> Result<Self, MasterKeyError> {
        let key = SecretKey::generate()?;
        crate::fs::write_private_file(path, key.expose(), false).map_err(|source| {
            MasterKeyError::Io {
                path: path.display().to_string(),
                source,
            }
        })?;
        Ok(Self {
            path: path.to_owned(),
        })
    }

    fn read_key(&self) -> Result<SecretKey, MasterKeyError> {
        let shown = self.path.display().to_string();
        let io = |source| MasterKeyError::Io {
            path: shown.clone(),
            source,
        };
        let metadata = std::fs::metadata(&self.path).map_err(io)?;
        check_private(&metadata, &shown)?;
        let bytes = zeroize::Zeroizing::new(std::fs::read(&self.path).map_err(io)?);
        SecretKey::from_bytes(&bytes).map_err(|_| MasterKeyError::BadLength {
            path: shown.clone(),
            len: bytes.len(),
        })
    }
}

#[cfg(unix)]
fn check_private(metadata: &std::fs::Metadata, path: &str) -> Result<(), MasterKeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(MasterKeyError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &std::fs::Metadata, _: &str) -> Result<(), MasterKeyError> {
    Ok(())
}

fn binding<'a>(keystore_id: &'a str, generation: u32, context: &'a Context) -> Binding<'a> {
    Binding {
        purpose: Purpose::WrapRootKey,
        key_id: keystore_id,
        key_version: generation,
        context,
    }
}

#[async_trait]
impl MasterKey for FileMasterKey {
    fn provider(&self) -> &'static str {
        "file"
    }

    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }

    async fn wrap_root_key(
        &self,
        root: &SecretKey,
        keystore_id: &str,
        generation: u32,
    ) -> Result<Vec<u8>, MasterKeyError> {
        let master = self.read_key()?;
        let context = Context::new();
        Ok(crypto::seal(
            &master,
            &binding(keystore_id, generation, &context),
            root.expose(),
        )?)
    }

    async fn unwrap_root_key(
        &self,
        wrapped: &[u8],
        keystore_id: &str,
        generation: u32,
    ) -> Result<SecretKey, MasterKeyError> {
        let master = self.read_key()?;
        let context = Context::new();
        let open = |generation| {
            crypto::open(
                &master,
                &binding(keystore_id, generation, &context),
                wrapped,
            )
        };
        let root = open(generation)
            .or_else(|err| match err {
                CryptoError::Malformed | CryptoError::Unauthentic
                    if generation != UNBOUND_GENERATION =>
                {
                    open(UNBOUND_GENERATION)
                }
                other => Err(other),
            })
            .map_err(|err| match err {
                CryptoError::Malformed | CryptoError::Unauthentic => MasterKeyError::WrongMasterKey,
                other => MasterKeyError::Crypto(other),
            })?;
        Ok(SecretKey::from_bytes(root.expose())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wraps_and_unwraps_only_with_the_same_file_and_keystore() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        let master = FileMasterKey::generate(&path).expect("generate");
        let root = SecretKey::generate().expect("root");
        let wrapped = master.wrap_root_key(&root, "ks", 1).await.expect("wrap");
        let back = master
            .unwrap_root_key(&wrapped, "ks", 1)
            .await
            .expect("unwrap");
        assert_eq!(back.expose(), root.expose());
        assert!(matches!(
            master.unwrap_root_key(&wrapped, "other", 1).await,
            Err(MasterKeyError::WrongMasterKey)
        ));
        let other = FileMasterKey::generate(&dir.path().join("other.key")).expect("generate");
        assert!(matches!(
            other.unwrap_root_key(&wrapped, "ks", 1).await,
            Err(MasterKeyError::WrongMasterKey)
        ));
        assert!(
            FileMasterKey::generate(&path).is_err(),
            "must not overwrite"
        );
    }

    /// The security review's finding: every wrapping bound the constant
    /// generation 1, so an old root key's wrapping could be put back as the
    /// current generation's.
    #[tokio::test]
    async fn a_wrapping_opens_only_as_its_own_generation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = FileMasterKey::generate(&dir.path().join("m.key")).expect("generate");
        let old = SecretKey::generate().expect("root");
        let old_wrapped = master.wrap_root_key(&old, "ks", 2).await.expect("wrap");
        let current = master.wrap_root_key(&old, "ks", 3).await.expect("wrap");
        assert!(master.unwrap_root_key(&current, "ks", 3).await.is_ok());
        for (wrapped, generation) in [(&old_wrapped, 3), (&current, 2), (&current, 4)] {
            assert!(
                matches!(
                    master.unwrap_root_key(wrapped, "ks", generation).await,
                    Err(MasterKeyError::WrongMasterKey)
                ),
                "opened as generation {generation}"
            );
        }
    }

    /// Keystores written before the binding (every wrapping bound to
    /// generation 1) keep opening, at any generation.
    #[tokio::test]
    async fn wrappings_from_before_the_binding_still_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = FileMasterKey::generate(&dir.path().join("m.key")).expect("generate");
        let root = SecretKey::generate().expect("root");
        let unbound = master.wrap_root_key(&root, "ks", 1).await.expect("wrap");
        let back = master
            .unwrap_root_key(&unbound, "ks", 4)
            .await
            .expect("an unbound wrapping opens");
        assert_eq!(back.expose(), root.expose());
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_file_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        FileMasterKey::generate(&path).expect("generate");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = FileMasterKey::open(&path).expect_err("must refuse");
        assert!(matches!(
            err,
            MasterKeyError::InsecurePermissions { mode: 0o644, .. }
        ));
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn refuses_a_file_of_the_wrong_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("short.key");
        crate::fs::write_private_file(&path, &[1; 16], false).expect("write");
        assert!(matches!(
            FileMasterKey::open(&path),
            Err(MasterKeyError::BadLength { len: 16, .. })
        ));
    }
}
