//! The gRPC edge: the only module that names tonic and prost. Handlers are
//! thin: establish the caller's identity, convert proto messages to domain
//! types (validating them), call the service, convert back.

mod admin_api;
mod alias_api;
mod audited;
mod convert;
mod crypto_api;
mod mac_api;
mod peer_identity;
mod role_api;
mod status;

pub use admin_api::AdminApi;
pub use audited::REQUEST_ID_HEADER;
pub use crypto_api::CryptoApi;
pub use status::{Classified, classify};

use tonic::{Request, Status};

use crate::identity::Identity;

/// The caller's identity from its verified client certificate.
///
/// TLS already rejected clients without a certificate from the client CA;
/// this only fails if the certificate names no usable identity. The
/// certificate is parsed once per connection (see [`peer_identity`]).
pub(crate) fn caller_identity<T>(request: &Request<T>) -> Result<Identity, Status> {
    let certs = request
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    peer_identity::of_connection(&certs).map_err(|e| {
        tracing::debug!(error = %e, "client certificate names no identity");
        Status::unauthenticated(
            "the client certificate names no usable identity (exactly one URI SAN, else one DNS SAN, else with no SAN extension one CN)",
        )
    })
}
