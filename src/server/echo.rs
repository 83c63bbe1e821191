//! The bench echo server: `tresor.bench.v1.Echo` (from the `tresor-bench`
//! crate) alone, on exactly the transport tresor serves with by default
//! ([`super::transport`] and [`super::tls_incoming`]: same tonic, same rustls
//! mutual TLS requiring a client certificate from the client CA, same
//! default timeouts, keep-alive, connection and stream limits, TCP_NODELAY
//! and message limits). `tresor echo-serve` runs it in its own process for
//! `tresor bench --compare-echo`.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::{LiveTls, ServerError, ServingSet, max_message_bytes, tls_incoming, transport};
use crate::config::{DEFAULT_MAX_PLAINTEXT_BYTES, TlsMaterial, TransportLimits};
use crate::identity::TrustDomains;

/// Serves the echo service on `listener` with `tls` until `shutdown`
/// completes, then drains.
pub async fn serve(
    listener: TcpListener,
    tls: &TlsMaterial,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let max_message = max_message_bytes(DEFAULT_MAX_PLAINTEXT_BYTES);
    let echo = tresor_bench::echo_server(max_message);
    let limits = TransportLimits::default();
    let set = ServingSet::from_material(tls)?;
    let tls = Arc::new(LiveTls::new(set, TrustDomains::any(), &limits)?);
    let connections = tls_incoming(listener, &limits, tls, Arc::new(|_| {}));
    transport(&limits)
        .add_service(echo)
        .serve_with_incoming_shutdown(connections, shutdown)
        .await?;
    Ok(())
}
