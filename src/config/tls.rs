//! Where a gRPC listener's TLS comes from: the `tresor serve` flags
//! ([`ServeTlsArgs`]) and their validated form ([`TlsSettings`]): files
//! (certificate, key, client CA bundle, CRLs) followed while serving, or a
//! SPIFFE Workload API endpoint; and which SPIFFE trust domains may call.

use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use super::{ConfigError, ConfigFiles, HostFiles, config_error, interval_of_at_least, read_pem};
use crate::identity::TrustDomains;

/// The environment variable SPIFFE workloads find their Workload API in.
pub const SPIFFE_ENDPOINT_ENV: &str = "SPIFFE_ENDPOINT_SOCKET";

/// Smallest `--tls-reload-interval` (tests use short ones).
pub const MIN_TLS_RELOAD_INTERVAL: Duration = Duration::from_millis(100);

/// The certificate files of a gRPC listener, as flags (`tresor serve`,
/// and the bench echo server that must serve exactly as tresor does).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsFileArgs {
    /// Server certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// CA certificate(s) (PEM) that client certificates must chain to.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Certificate revocation list (PEM or DER) of a client CA
    /// (repeatable): a client certificate it lists is refused at the
    /// handshake. Followed like the other files.
    #[arg(long = "client-crl", value_name = "FILE")]
    pub client_crls: Vec<PathBuf>,
}

impl TlsFileArgs {
    /// The files, when the three of certificate, key and client CA are
    /// given; `None` when none is (and no CRL).
    pub fn files(&self) -> Result<Option<TlsFiles>, ConfigError> {
        match (&self.tls_cert, &self.tls_key, &self.client_ca) {
            (Some(cert), Some(key), Some(client_ca)) => Ok(Some(TlsFiles {
                tls_cert: cert.clone(),
                tls_key: key.clone(),
                client_ca: client_ca.clone(),
                client_crls: self.client_crls.clone(),
            })),
            (None, None, None) if self.client_crls.is_empty() => Ok(None),
            (None, _, _) => Err(missing("--tls-cert")),
            (_, None, _) => Err(missing("--tls-key")),
            (_, _, None) => Err(missing("--client-ca")),
        }
    }

    /// Reads the files, which must be given.
    pub fn read(&self) -> Result<TlsMaterial, ConfigError> {
        self.files()?.ok_or_else(|| missing("--tls-cert"))?.read()
    }
}

fn missing(flag: &'static str) -> ConfigError {
    config_error(
        flag,
        "give --tls-cert, --tls-key and --client-ca together (or --spiffe-endpoint)",
    )
}

/// TLS flags of `tresor serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeTlsArgs {
    /// Server certificate, key, client CA and CRLs.
    #[command(flatten)]
    pub files: TlsFileArgs,
    /// How often the TLS files are checked and, when their content changed,
    /// reloaded while serving (new handshakes get the new set; a bad set is
    /// refused and the old one keeps serving); `off` stops the watch.
    /// SIGHUP reloads at once either way.
    #[arg(long, default_value = "5s", value_name = "INTERVAL")]
    pub tls_reload_interval: String,
    /// Take the server's X.509-SVID and the trust bundles from this SPIFFE
    /// Workload API (unix:///run/spire/agent.sock) instead of files, and
    /// follow its updates. Without TLS files, SPIFFE_ENDPOINT_SOCKET is
    /// used when set.
    #[arg(long, value_name = "URI")]
    pub spiffe_endpoint: Option<String>,
    /// Accept only clients whose SPIFFE id is in this trust domain
    /// (repeatable), even if a configured CA or bundle would verify
    /// another. Without it, any client the CAs verify.
    #[arg(long = "trust-domain", value_name = "NAME")]
    pub trust_domains: Vec<String>,
}

/// Where a listener's certificate and trust anchors come from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM files, read at start.
    Files {
        /// What was read.
        material: TlsMaterial,
        /// Where from, to reload while serving (`None`: given directly
        /// and served as it is).
        reload: Option<TlsReload>,
    },
    /// A SPIFFE Workload API endpoint (`unix:///path` or `tcp://IP:PORT`).
    Spiffe {
        /// The endpoint.
        endpoint: String,
    },
}

/// Validated TLS settings of `tresor serve`.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Where the certificate and trust anchors come from.
    pub source: TlsSource,
    /// Which trust domains' clients may connect.
    pub trust_domains: TrustDomains,
}

impl TlsSettings {
    /// Files served as they are, without reloading, for any trust domain.
    pub fn fixed(material: TlsMaterial) -> Self {
        Self {
            source: TlsSource::Files {
                material,
                reload: None,
            },
            trust_domains: TrustDomains::any(),
        }
    }

    /// Validates `args`, reading files from `files`; `spiffe_env` is the
    /// value of [`SPIFFE_ENDPOINT_ENV`], used when neither files nor
    /// `--spiffe-endpoint` are given.
    pub(super) fn from_args(
        args: &ServeTlsArgs,
        files: &dyn ConfigFiles,
        spiffe_env: Option<String>,
    ) -> Result<Self, ConfigError> {
        let trust_domains = TrustDomains::parse(&args.trust_domains)
            .map_err(|e| config_error("--trust-domain", e))?;
        let watch_every = tls_reload_interval(&args.tls_reload_interval)?;
        if args.spiffe_endpoint.is_some() && !args.files.client_crls.is_empty() {
            return Err(config_error(
                "--client-crl",
                "not with --spiffe-endpoint: SVIDs are short-lived instead of revoked",
            ));
        }
        let source = match (args.files.files()?, &args.spiffe_endpoint) {
            (Some(_), Some(_)) => {
                return Err(config_error(
                    "--spiffe-endpoint",
                    "give either --spiffe-endpoint or the TLS files, not both",
                ));
            }
            (Some(tls_files), None) => TlsSource::Files {
                material: tls_files.read_from(files)?,
                reload: Some(TlsReload {
                    files: tls_files,
                    watch_every,
                }),
            },
            (None, endpoint) => TlsSource::Spiffe {
                endpoint: spiffe_endpoint(endpoint.clone().or(spiffe_env))?,
            },
        };
        Ok(Self {
            source,
            trust_domains,
        })
    }
}

/// Checks a Workload API endpoint: `unix:///ABSOLUTE/PATH` or
/// `tcp://IP:PORT`, as the SPIFFE Workload Endpoint specification writes
/// them.
fn spiffe_endpoint(endpoint: Option<String>) -> Result<String, ConfigError> {
    let Some(endpoint) = endpoint else {
        return Err(config_error(
            "--tls-cert",
            format!(
                "give --tls-cert, --tls-key and --client-ca, or --spiffe-endpoint (or set {SPIFFE_ENDPOINT_ENV})"
            ),
        ));
    };
    let valid = endpoint
        .strip_prefix("unix://")
        .is_some_and(|path| path.starts_with('/') && path.len() > 1)
        || endpoint
            .strip_prefix("tcp://")
            .is_some_and(|addr| addr.parse::<std::net::SocketAddr>().is_ok());
    if !valid {
        return Err(config_error(
            "--spiffe-endpoint",
            format!("{endpoint:?} is not unix:///ABSOLUTE/PATH or tcp://IP:PORT"),
        ));
    }
    Ok(endpoint)
}

/// Parses `--tls-reload-interval`: `off`, or at least
/// [`MIN_TLS_RELOAD_INTERVAL`].
fn tls_reload_interval(text: &str) -> Result<Option<Duration>, ConfigError> {
    if text == "off" {
        return Ok(None);
    }
    interval_of_at_least(
        "--tls-reload-interval",
        text,
        "5s, or off",
        MIN_TLS_RELOAD_INTERVAL,
    )
    .map(Some)
}

/// Where a listener's TLS material comes from, so it can be reloaded while
/// serving.
#[derive(Debug, Clone)]
pub struct TlsReload {
    /// The files.
    pub files: TlsFiles,
    /// How often their content is compared with what is served (`None`:
    /// only on SIGHUP).
    pub watch_every: Option<Duration>,
}

/// The TLS files of a gRPC listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Server certificate chain (PEM).
    pub tls_cert: PathBuf,
    /// Server private key (PEM).
    pub tls_key: PathBuf,
    /// CA certificate(s) (PEM) that client certificates must chain to.
    pub client_ca: PathBuf,
    /// Revocation lists (PEM or DER) of client CAs.
    pub client_crls: Vec<PathBuf>,
}

impl TlsFiles {
    /// Reads the files.
    pub fn read(&self) -> Result<TlsMaterial, ConfigError> {
        self.read_from(&HostFiles)
    }

    fn read_from(&self, files: &dyn ConfigFiles) -> Result<TlsMaterial, ConfigError> {
        let client_crls = self
            .client_crls
            .iter()
            .map(|path| read_crl(files, path))
            .collect::<Result<_, _>>()?;
        Ok(TlsMaterial {
            client_crls,
            ..TlsMaterial::read_from(
                files,
                ("--tls-cert", &self.tls_cert),
                ("--tls-key", &self.tls_key),
                ("--client-ca", &self.client_ca),
            )?
        })
    }
}

fn read_crl(files: &dyn ConfigFiles, path: &Path) -> Result<Vec<u8>, ConfigError> {
    files.read(path).map_err(|e| {
        config_error(
            "--client-crl",
            format!("cannot read {}: {e}", path.display()),
        )
    })
}

/// TLS material, read and checked.
#[derive(Clone)]
pub struct TlsMaterial {
    /// Server certificate chain, PEM.
    pub cert_pem: String,
    /// Server private key, PEM (secret).
    pub key_pem: Zeroizing<String>,
    /// Client CA bundle, PEM.
    pub client_ca_pem: String,
    /// Client CA revocation lists, each PEM or DER.
    pub client_crls: Vec<Vec<u8>>,
}

impl TlsMaterial {
    /// Reads the server certificate, its key and the client CA (without
    /// revocation lists), each given as the flag that named it and its
    /// path (the flag is named in errors).
    pub fn read(
        cert: (&'static str, &Path),
        key: (&'static str, &Path),
        client_ca: (&'static str, &Path),
    ) -> Result<Self, ConfigError> {
        Self::read_from(&HostFiles, cert, key, client_ca)
    }

    fn read_from(
        files: &dyn ConfigFiles,
        cert: (&'static str, &Path),
        key: (&'static str, &Path),
        client_ca: (&'static str, &Path),
    ) -> Result<Self, ConfigError> {
        Ok(Self::new(
            read_pem(files, cert.0, cert.1, "CERTIFICATE")?,
            Zeroizing::new(read_pem(files, key.0, key.1, "PRIVATE KEY")?),
            read_pem(files, client_ca.0, client_ca.1, "CERTIFICATE")?,
        ))
    }

    /// Material without revocation lists.
    pub fn new(cert_pem: String, key_pem: Zeroizing<String>, client_ca_pem: String) -> Self {
        Self {
            cert_pem,
            key_pem,
            client_ca_pem,
            client_crls: Vec::new(),
        }
    }
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("key_pem", &"REDACTED")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tresor serve`'s TLS flags: `files` names the three PEM files (in
    /// `dir`), `spiffe` the endpoint flag.
    fn args(dir: &Path, files: bool, spiffe: Option<&str>) -> ServeTlsArgs {
        let pem = dir.join("pem");
        std::fs::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\n",
        )
        .expect("write");
        let file = files.then(|| pem.clone());
        ServeTlsArgs {
            files: TlsFileArgs {
                tls_cert: file.clone(),
                tls_key: file.clone(),
                client_ca: file,
                client_crls: Vec::new(),
            },
            tls_reload_interval: "5s".to_owned(),
            spiffe_endpoint: spiffe.map(str::to_owned),
            trust_domains: Vec::new(),
        }
    }

    fn source(args: &ServeTlsArgs, env: Option<&str>) -> Result<TlsSource, ConfigError> {
        TlsSettings::from_args(args, &HostFiles, env.map(str::to_owned)).map(|s| s.source)
    }

    #[test]
    fn a_workload_api_endpoint_is_an_absolute_unix_path_or_tcp_ip_port() {
        let dir = tempfile::tempdir().expect("dir");
        for good in ["unix:///run/spire/agent.sock", "tcp://127.0.0.1:8081"] {
            assert!(
                matches!(source(&args(dir.path(), false, Some(good)), None), Ok(TlsSource::Spiffe { endpoint }) if endpoint == good),
                "{good}"
            );
        }
        for bad in [
            "/run/spire/agent.sock",
            "unix://relative.sock",
            "unix:///",
            "tcp://spire:8081",
            "http://127.0.0.1:1",
        ] {
            let refused = source(&args(dir.path(), false, Some(bad)), None).expect_err(bad);
            assert!(
                refused.to_string().contains("--spiffe-endpoint"),
                "{refused}"
            );
        }
    }

    #[test]
    fn files_win_over_the_environment_and_exclude_the_flag() {
        let dir = tempfile::tempdir().expect("dir");
        let env = Some("unix:///run/spire/agent.sock");
        // A SPIRE-enabled pod sets the variable for every workload: files
        // given explicitly are served anyway.
        assert!(matches!(
            source(&args(dir.path(), true, None), env),
            Ok(TlsSource::Files { .. })
        ));
        assert!(matches!(
            source(&args(dir.path(), false, None), env),
            Ok(TlsSource::Spiffe { .. })
        ));
        let both = source(&args(dir.path(), true, Some("unix:///a.sock")), None).expect_err("both");
        assert!(both.to_string().contains("not both"), "{both}");
        let neither = source(&args(dir.path(), false, None), None).expect_err("neither");
        assert!(
            neither.to_string().contains(SPIFFE_ENDPOINT_ENV),
            "{neither}"
        );
        let mut partial = args(dir.path(), true, None);
        partial.files.tls_key = None;
        let partial = source(&partial, None).expect_err("partial");
        assert!(partial.to_string().contains("--tls-key"), "{partial}");
        let mut revoking = args(dir.path(), false, Some("unix:///a.sock"));
        revoking.files.client_crls.push(dir.path().join("pem"));
        let revoking = source(&revoking, None).expect_err("CRL with SPIFFE");
        assert!(revoking.to_string().contains("--client-crl"), "{revoking}");
    }
}
