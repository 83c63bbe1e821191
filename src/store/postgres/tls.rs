//! How tresor connects to PostgreSQL, and which connections it refuses.
//!
//! Key material in the database is wrapped, but metadata (owners, grants,
//! key states) is stored in clear and trusted as read, so whoever can read
//! and edit the connection in flight can grant themselves keys. Hence:
//!
//! - With a CA (`--store-ca`) every connection uses TLS, verified against
//!   that CA (certificate and host name: libpq's `verify-full`). The URL may
//!   leave `sslmode` out or say `require`; `disable` and `prefer` are
//!   refused. (`prefer` falls back to plaintext when the server, or anyone
//!   in between, answers that it has no TLS.)
//! - Without a CA, every host must be on this machine: a loopback address,
//!   `localhost`, or a Unix-socket directory. A remote host needs a CA. The
//!   URL may not ask for TLS then either: there would be nothing to verify
//!   the server with.

use std::net::IpAddr;
use std::sync::Arc;

use tokio_postgres::config::{Config, Host, SslMode};

use crate::error::StoreError;

/// Why a PostgreSQL connection URL is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreUrlError {
    /// The text does not parse as a PostgreSQL connection URL.
    #[error("not a valid PostgreSQL URL: {0}")]
    Invalid(#[source] tokio_postgres::Error),
    /// A CA is given, but the URL's sslmode allows plaintext.
    #[error(
        "sslmode={0} allows a connection in plaintext, but --store-ca asks for TLS: \
         use sslmode=require or leave sslmode out"
    )]
    WeakSslMode(&'static str),
    /// The URL asks for TLS, but no CA is given to verify the server.
    #[error(
        "the --store URL asks for TLS (sslmode=require): give the CA that issued \
         the database's certificate with --store-ca FILE"
    )]
    TlsWithoutCa,
    /// No CA is given, and a host is not on this machine.
    #[error(
        "database host {0} is not on this machine: give --store-ca FILE so that \
         the connection uses verified TLS (in plaintext, anyone on the path can \
         read and edit owners and grants)"
    )]
    RemoteWithoutTls(String),
    /// A CA is given, but a host is a Unix socket, which has no TLS.
    #[error(
        "--store-ca asks for TLS, which PostgreSQL does not offer over a Unix \
         socket: connect over TCP, or leave out --store-ca"
    )]
    TlsOverUnixSocket,
}

impl StoreUrlError {
    /// The flag to change to fix this.
    #[must_use]
    pub fn flag(&self) -> &'static str {
        match self {
            Self::TlsWithoutCa => "--store-ca",
            _ => "--store",
        }
    }
}

impl From<StoreUrlError> for StoreError {
    fn from(err: StoreUrlError) -> Self {
        Self::Backend(err.to_string())
    }
}

/// Checks `url` against the rules above, for a connection with TLS (`tls`)
/// or without. `tresor serve` calls this before it binds a port.
///
/// # Errors
///
/// A [`StoreUrlError`] naming what to change.
pub fn check_store_url(url: &str, tls: bool) -> Result<(), StoreUrlError> {
    connection_config(url, tls).map(drop)
}

/// Whether `url` holds a password (which then should not be on a command
/// line). False for a URL that does not parse.
#[must_use]
pub fn store_url_has_password(url: &str) -> bool {
    url.parse::<Config>()
        .is_ok_and(|config| config.get_password().is_some())
}

/// The connection settings of `url` with `sslmode` set to what tresor does
/// (`require` with TLS, `disable` without), after checking the rules above.
pub(super) fn connection_config(url: &str, tls: bool) -> Result<Config, StoreUrlError> {
    let mut config: Config = url.parse().map_err(StoreUrlError::Invalid)?;
    let sslmode = config.get_ssl_mode();
    if tls {
        match sslmode {
            SslMode::Disable => return Err(StoreUrlError::WeakSslMode("disable")),
            SslMode::Prefer if sslmode_given(url) => {
                return Err(StoreUrlError::WeakSslMode("prefer"));
            }
            _ => {}
        }
        if config.get_hosts().iter().any(is_unix_socket) {
            return Err(StoreUrlError::TlsOverUnixSocket);
        }
        config.ssl_mode(SslMode::Require);
    } else {
        if sslmode == SslMode::Require {
            return Err(StoreUrlError::TlsWithoutCa);
        }
        if let Some(remote) = remote_host(&config) {
            return Err(StoreUrlError::RemoteWithoutTls(remote));
        }
        config.ssl_mode(SslMode::Disable);
    }
    Ok(config)
}

fn is_unix_socket(host: &Host) -> bool {
    match host {
        Host::Tcp(_) => false,
        #[cfg(unix)]
        Host::Unix(_) => true,
    }
}

/// The first host or host address not on this machine, if any.
fn remote_host(config: &Config) -> Option<String> {
    let hosts = config.get_hosts().iter().filter_map(|host| match host {
        Host::Tcp(name) => (!is_local_name(name)).then(|| name.clone()),
        #[cfg(unix)]
        Host::Unix(_) => None,
    });
    let addrs = config
        .get_hostaddrs()
        .iter()
        .filter(|addr| !addr.is_loopback())
        .map(IpAddr::to_string);
    hosts.chain(addrs).next()
}

fn is_local_name(name: &str) -> bool {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `url` sets sslmode itself (tokio-postgres reports its default,
/// `prefer`, the same way as an explicit one).
fn sslmode_given(url: &str) -> bool {
    match url.split_once("://") {
        Some((_, rest)) => rest.split_once('?').is_some_and(|(_, query)| {
            query
                .split('&')
                .any(|pair| pair.split('=').next() == Some("sslmode"))
        }),
        // The key=value form: `host=... sslmode=prefer`, spaces allowed
        // around `=`.
        None => url
            .split_whitespace()
            .any(|token| token == "sslmode" || token.starts_with("sslmode=")),
    }
}

/// How tresor talks to PostgreSQL: in clear, or over TLS (rustls with ring)
/// verified against the given CA certificates.
#[derive(Clone)]
pub enum DbTls {
    /// No TLS: only to a database on this machine (see [`connection_config`]).
    Off,
    /// TLS, trusting these CA certificates.
    Verified(tokio_postgres_rustls::MakeRustlsConnect),
}

impl std::fmt::Debug for DbTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Off => "DbTls::Off",
            Self::Verified(_) => "DbTls::Verified",
        })
    }
}

impl DbTls {
    /// TLS that trusts the CA certificates in `ca_pem`.
    pub fn from_ca_pem(ca_pem: &str) -> Result<Self, StoreError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| StoreError::Backend(format!("--store-ca: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| StoreError::Backend(format!("--store-ca: {e}")))?;
        }
        if roots.is_empty() {
            return Err(StoreError::Backend(
                "--store-ca holds no certificate".into(),
            ));
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("database TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self::Verified(
            tokio_postgres_rustls::MakeRustlsConnect::new(config),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: bool = true;
    const NO_CA: bool = false;

    fn refused(url: &str, tls: bool) -> StoreUrlError {
        connection_config(url, tls).expect_err(url)
    }

    #[test]
    fn with_a_ca_tls_is_required_and_weaker_sslmodes_are_refused() {
        for url in [
            "postgres://tresor@db.internal/tresor",
            "postgres://tresor@db.internal/tresor?sslmode=require",
            "postgres://tresor@127.0.0.1/tresor?connect_timeout=5",
        ] {
            let config = connection_config(url, CA).expect(url);
            assert_eq!(config.get_ssl_mode(), SslMode::Require, "{url}");
        }
        for (url, mode) in [
            ("postgres://db.internal/tresor?sslmode=prefer", "prefer"),
            (
                "postgres://db.internal/tresor?connect_timeout=5&sslmode=disable",
                "disable",
            ),
            ("host=db.internal sslmode=prefer", "prefer"),
        ] {
            let err = refused(url, CA);
            assert!(
                matches!(err, StoreUrlError::WeakSslMode(m) if m == mode),
                "{url}"
            );
            assert!(err.to_string().contains("sslmode=require"), "{err}");
            assert_eq!(err.flag(), "--store");
        }
        assert!(matches!(
            refused("host=/run/postgresql dbname=tresor", CA),
            StoreUrlError::TlsOverUnixSocket
        ));
    }

    #[test]
    fn without_a_ca_only_hosts_on_this_machine_are_accepted() {
        for url in [
            "postgres://tresor@127.0.0.1:5432/tresor",
            "postgres://tresor@localhost/tresor",
            "postgres://tresor@[::1]:5432/tresor",
            "postgres://tresor@127.0.0.2/tresor?sslmode=prefer",
            "host=/run/postgresql dbname=tresor",
        ] {
            let config = connection_config(url, NO_CA).expect(url);
            assert_eq!(config.get_ssl_mode(), SslMode::Disable, "{url}");
        }
        for (url, host) in [
            ("postgres://tresor:pw@db.internal/tresor", "db.internal"),
            ("postgres://tresor@10.0.0.5/tresor", "10.0.0.5"),
            (
                "postgres://tresor@localhost,db.internal/tresor",
                "db.internal",
            ),
            ("host=localhost hostaddr=10.0.0.5 dbname=tresor", "10.0.0.5"),
        ] {
            let err = refused(url, NO_CA);
            assert!(
                matches!(&err, StoreUrlError::RemoteWithoutTls(h) if h == host),
                "{url}"
            );
            assert!(err.to_string().contains("--store-ca"), "{err}");
            assert!(!err.to_string().contains("pw"), "{err}");
        }
        let err = refused("postgres://127.0.0.1/tresor?sslmode=require", NO_CA);
        assert!(matches!(err, StoreUrlError::TlsWithoutCa));
        assert_eq!(err.flag(), "--store-ca");
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        let err = refused("postgres://tresor:hunter2@db/tresor?sslmode=maybe", CA);
        assert!(matches!(err, StoreUrlError::Invalid(_)));
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn passwords_are_detected() {
        assert!(store_url_has_password("postgres://tresor:pw@db/tresor"));
        assert!(!store_url_has_password("postgres://tresor@db/tresor"));
        assert!(!store_url_has_password("not a url"));
    }
}
