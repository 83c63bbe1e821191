//! The connector tonic opens every connection with: TCP (with
//! `TCP_NODELAY`, as tonic's own connector sets by default), then a rustls
//! handshake with the configuration current at that moment
//! ([`Material::config`]). tonic reconnects lazily, after the server closed
//! a connection (idle, restarted) or it broke, so every new connection
//! presents the newest client certificate and trusts the newest CAs.
//!
//! The channel's endpoint URI is `http://host:port` (tonic's own TLS would
//! refuse an `https` URI without its TLS configuration), and its origin
//! `https://host:port`, so requests still carry the `https` scheme.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector as RustlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::transport::Endpoint;
use tower_service::Service;

use crate::ClientError;
use crate::tls::Material;

/// Where the client connects: the builder's endpoint, parsed.
pub(crate) struct Address {
    /// `http://host:port`: what tonic hands the connector.
    dial: Uri,
    /// `https://host:port`: the requests' scheme and authority.
    origin: Uri,
    server_name: ServerName<'static>,
}

impl Address {
    /// `endpoint` is `https://host:port` or `host:port`; the server
    /// certificate must name `server_name`, or else the host.
    pub(crate) fn parse(endpoint: &str, server_name: Option<&str>) -> Result<Self, ClientError> {
        let invalid = |why: &dyn std::fmt::Display| {
            ClientError::Config(format!("invalid address {endpoint:?}: {why}"))
        };
        let url = if endpoint.contains("://") {
            endpoint.to_owned()
        } else {
            format!("https://{endpoint}")
        };
        let uri: Uri = url.parse().map_err(|e| invalid(&e))?;
        if uri.scheme_str() != Some("https") {
            return Err(invalid(
                &"tresor is served over TLS only: give https://HOST:PORT or HOST:PORT",
            ));
        }
        let (Some(authority), Some(host)) = (uri.authority(), uri.host()) else {
            return Err(invalid(&"no host"));
        };
        let with_scheme = |scheme: &str| {
            Uri::builder()
                .scheme(scheme)
                .authority(authority.clone())
                .path_and_query("/")
                .build()
                .map_err(|e| invalid(&e))
        };
        let name = server_name.unwrap_or(unbracketed(host));
        Ok(Self {
            dial: with_scheme("http")?,
            origin: with_scheme("https")?,
            server_name: ServerName::try_from(name.to_owned())
                .map_err(|e| ClientError::Config(format!("invalid server name {name:?}: {e}")))?,
        })
    }

    /// tonic's endpoint for this address, with the per-call and connect
    /// timeouts.
    pub(crate) fn endpoint(&self, timeout: Duration, connect_timeout: Duration) -> Endpoint {
        Endpoint::from(self.dial.clone())
            .origin(self.origin.clone())
            .timeout(timeout)
            .connect_timeout(connect_timeout)
    }

    /// The connector to this address with `material`.
    pub(crate) fn connector(&self, material: Material) -> Connector {
        Connector {
            material: Arc::new(material),
            server_name: self.server_name.clone(),
        }
    }
}

/// A URI's host without the brackets of an IPv6 literal.
fn unbracketed(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Opens TLS connections with the current material.
#[derive(Clone)]
pub(crate) struct Connector {
    material: Arc<Material>,
    /// The name the server certificate must carry (and SNI).
    server_name: ServerName<'static>,
}

impl Connector {
    async fn connect(self, uri: Uri) -> Result<TokioIo<TlsStream<TcpStream>>, ConnectFailure> {
        let address = uri
            .authority()
            .map_or_else(String::new, ToString::to_string);
        let failure = |step: &'static str| {
            let address = address.clone();
            move |source: Box<dyn std::error::Error + Send + Sync>| ConnectFailure {
                step,
                address,
                source,
            }
        };
        let config = self
            .material
            .config()
            .await
            .map_err(|why| failure("no TLS material to connect to")(why.into()))?;
        let host = unbracketed(uri.host().unwrap_or_default());
        let port = uri.port_u16().unwrap_or(443);
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| failure("TCP connection to")(e.into()))?;
        tcp.set_nodelay(true)
            .map_err(|e| failure("TCP_NODELAY on the connection to")(e.into()))?;
        let tls = RustlsConnector::from(config)
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| failure("TLS handshake with")(e.into()))?;
        Ok(TokioIo::new(tls))
    }
}

impl Service<Uri> for Connector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = ConnectFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

/// A connection that could not be opened: which step failed, where, and
/// the cause as its source (so `describe_chain` shows each once).
#[derive(Debug, thiserror::Error)]
#[error("{step} {address}")]
pub(crate) struct ConnectFailure {
    step: &'static str,
    address: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}
