//! The keystore flags of `tresor serve` (`--data-dir`, `--store`,
//! `--store-file`, `TRESOR_STORE`, `--store-ca`) turned into a checked
//! [`StoreSpec`]. The PostgreSQL connection rules themselves (TLS with a CA
//! or to any remote host) live with the backend, in
//! [`crate::store::check_store_url`].

use std::path::{Path, PathBuf};

use super::{
    ConfigError, ConfigFiles, HostFiles, StoreSpec, config_error, default_replica_name, read_pem,
};

/// The environment variable that may hold the `--store` URL.
pub const STORE_ENV: &str = "TRESOR_STORE";

/// The keystore flags as given.
pub(super) struct StoreFlags<'a> {
    pub data_dir: Option<PathBuf>,
    pub store: Option<String>,
    pub store_file: Option<&'a Path>,
    pub store_ca: Option<&'a Path>,
    pub replica_name: Option<String>,
}

impl StoreFlags<'_> {
    /// Where the keystore is, with the PostgreSQL URL read and checked.
    pub(super) fn spec(self, files: &dyn ConfigFiles) -> Result<StoreSpec, ConfigError> {
        let on_command_line = self
            .store
            .as_ref()
            .is_some_and(|url| std::env::var(STORE_ENV).ok().as_deref() != Some(url.as_str()));
        let url = match (self.store, self.store_file) {
            (url, None) => url,
            (None, Some(path)) => Some(read_url(files, path)?),
            (Some(_), Some(_)) => {
                return Err(config_error(
                    "--store-file",
                    format!("give the URL once: --store-file or --store/{STORE_ENV}, not both"),
                ));
            }
        };
        let url = match (self.data_dir, url) {
            (Some(dir), None) if self.store_ca.is_none() => return Ok(StoreSpec::Sled(dir)),
            (Some(_), None) => {
                return Err(config_error(
                    "--store-ca",
                    "only for a PostgreSQL keystore (--store-file or --store)",
                ));
            }
            (None, Some(url))
                if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
            {
                url
            }
            (None, Some(_)) => {
                return Err(config_error(
                    "--store",
                    "must be a postgres:// URL (use --data-dir DIR for the embedded store)",
                ));
            }
            _ => {
                return Err(config_error(
                    "--data-dir",
                    "give exactly one of --data-dir DIR and --store-file FILE (or --store postgres://...)",
                ));
            }
        };
        let ca_pem = self
            .store_ca
            .map(|path| read_pem(files, "--store-ca", path, "CERTIFICATE"))
            .transpose()?;
        crate::store::check_store_url(&url, ca_pem.is_some())
            .map_err(|e| config_error(e.flag(), e.to_string()))?;
        if on_command_line && crate::store::store_url_has_password(&url) {
            tracing::warn!(
                "the --store URL holds a password, which every user of this host can read \
                 in the process list: put the URL in --store-file FILE or {STORE_ENV}"
            );
        }
        Ok(StoreSpec::Postgres {
            url,
            replica: self
                .replica_name
                .unwrap_or_else(|| default_replica_name(files)),
            ca_pem,
        })
    }
}

/// The keystore of an offline command (`tresor keystore compact`,
/// `tresor backup restore`): the same flags, files and rules as
/// `tresor serve`.
///
/// # Errors
///
/// A [`ConfigError`] naming the flag to fix.
pub fn offline_store_spec(
    data_dir: Option<PathBuf>,
    store: Option<String>,
    store_file: Option<&Path>,
    store_ca: Option<&Path>,
) -> Result<StoreSpec, ConfigError> {
    StoreFlags {
        data_dir,
        store,
        store_file,
        store_ca,
        replica_name: Some("offline".to_owned()),
    }
    .spec(&HostFiles)
}

/// The URL in the `--store-file` at `path`, without surrounding
/// whitespace. The message never shows the file's contents.
fn read_url(files: &dyn ConfigFiles, path: &Path) -> Result<String, ConfigError> {
    let text = files.read_to_string(path).map_err(|e| {
        config_error(
            "--store-file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let url = text.trim();
    if url.is_empty() {
        return Err(config_error(
            "--store-file",
            format!(
                "{} is empty: it should hold the postgres:// URL",
                path.display()
            ),
        ));
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "hunter2";

    /// Files by path; anything else is missing.
    struct Files(HashMap<PathBuf, String>);

    impl ConfigFiles for Files {
        fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
            self.0
                .get(path)
                .cloned()
                .ok_or_else(|| std::io::ErrorKind::NotFound.into())
        }

        fn is_file(&self, path: &Path) -> bool {
            self.0.contains_key(path)
        }
    }

    fn files() -> Files {
        Files(HashMap::from([
            (
                PathBuf::from("/run/secrets/store"),
                format!("  postgres://tresor:{SECRET}@db.internal/tresor\n"),
            ),
            (
                PathBuf::from("/run/secrets/local"),
                format!("postgres://tresor:{SECRET}@127.0.0.1/tresor\n"),
            ),
            (PathBuf::from("/run/secrets/empty"), "\n".to_owned()),
            (
                PathBuf::from("/etc/tresor/db-ca.pem"),
                "-----BEGIN CERTIFICATE-----\n".to_owned(),
            ),
        ]))
    }

    fn flags<'a>(
        store: Option<&str>,
        file: Option<&'a str>,
        ca: Option<&'a str>,
    ) -> StoreFlags<'a> {
        StoreFlags {
            data_dir: None,
            store: store.map(str::to_owned),
            store_file: file.map(Path::new),
            store_ca: ca.map(Path::new),
            replica_name: Some("a".to_owned()),
        }
    }

    fn url_of(spec: StoreSpec) -> String {
        match spec {
            StoreSpec::Postgres { url, .. } => url,
            StoreSpec::Sled(_) => panic!("expected PostgreSQL"),
        }
    }

    #[test]
    fn the_url_comes_from_a_store_file() {
        let ca = Some("/etc/tresor/db-ca.pem");
        let spec = flags(None, Some("/run/secrets/store"), ca)
            .spec(&files())
            .expect("settings");
        assert_eq!(
            url_of(spec),
            format!("postgres://tresor:{SECRET}@db.internal/tresor")
        );
        let local = flags(None, Some("/run/secrets/local"), None).spec(&files());
        assert!(local.is_ok());

        for (file, says) in [
            ("/run/secrets/empty", "is empty"),
            ("/run/secrets/missing", "cannot read /run/secrets/missing"),
        ] {
            let err = flags(None, Some(file), None)
                .spec(&files())
                .expect_err(file);
            assert_eq!(err.flag, "--store-file");
            assert!(err.message.contains(says), "{}", err.message);
        }
        let both = flags(
            Some("postgres://localhost/t"),
            Some("/run/secrets/local"),
            None,
        );
        assert_eq!(both.spec(&files()).expect_err("both").flag, "--store-file");
    }

    #[test]
    fn a_remote_database_needs_a_ca_and_a_ca_needs_tls() {
        let err = flags(None, Some("/run/secrets/store"), None)
            .spec(&files())
            .expect_err("remote without CA");
        assert_eq!(err.flag, "--store");
        assert!(
            err.message.contains("db.internal is not on this machine"),
            "{}",
            err.message
        );
        assert!(!err.message.contains(SECRET), "{}", err.message);

        let ca = Some("/etc/tresor/db-ca.pem");
        for mode in ["prefer", "disable"] {
            let url = format!("postgres://tresor@db.internal/tresor?sslmode={mode}");
            let err = flags(Some(&url), None, ca).spec(&files()).expect_err(&url);
            assert_eq!(err.flag, "--store");
            assert!(
                err.message.contains(&format!("sslmode={mode} allows")),
                "{}",
                err.message
            );
        }
        let plain_tls = flags(Some("postgres://127.0.0.1/t?sslmode=require"), None, None);
        assert_eq!(
            plain_tls.spec(&files()).expect_err("no CA").flag,
            "--store-ca"
        );

        let sled_with_ca = StoreFlags {
            data_dir: Some(PathBuf::from("/var/lib/tresor")),
            ..flags(None, None, ca)
        };
        assert_eq!(
            sled_with_ca.spec(&files()).expect_err("sled").flag,
            "--store-ca"
        );
    }
}
