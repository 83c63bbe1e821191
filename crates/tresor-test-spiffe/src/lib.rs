//! A real SPIFFE Workload API server for tresor's integration tests: the
//! public `SpiffeWorkloadAPI` gRPC service (tonic) on a Unix socket, with
//! its own CA (rcgen), behaving towards a client as a SPIRE agent does. Test
//! only (see Cargo.toml): nothing here is part of tresor.
//!
//! # Layout
//!
//! | module    | responsibility |
//! |-----------|----------------|
//! | [`server`] | [`WorkloadApi`]: start the server, rotate the SVID, roll the CA, federate, shut down |
//! | [`ca`]     | [`TrustDomainCa`], a trust domain's CA, and the [`Svid`]s it issues (also for a foreign trust domain) |
//! | `service`  | the gRPC service: the security header check, the two streaming X.509 methods |
//! | [`proto`]  | the code generated from `proto/workload.proto` (copied from the `spiffe` crate, Apache-2.0) |
//!
//! # Use from a test
//!
//! ```ignore
//! use std::time::Duration;
//! use tresor_test_spiffe::{TrustDomainCa, WorkloadApi};
//!
//! let dir = tempfile::tempdir()?;
//! let api = WorkloadApi::start(
//!     dir.path(),
//!     "example.test",
//!     "spiffe://example.test/tresor",
//!     Duration::from_secs(3600),
//! )
//! .await;
//! // Point the code under test at it: SPIFFE_ENDPOINT_SOCKET=unix:///…/api.sock
//! let endpoint = api.endpoint();
//! let (client_cert_pem, client_key_pem) =
//!     api.issue_client("spiffe://example.test/client", Duration::from_secs(600));
//! let new_serial = api.rotate(); // pushed to every open FetchX509SVID stream
//! api.roll_ca(); // bundle now has old + new CA; later SVIDs come from the new one
//! let foreign = TrustDomainCa::new("other.test");
//! let (foreign_cert_pem, foreign_key_pem) =
//!     foreign.issue("spiffe://other.test/intruder", Duration::from_secs(600));
//! api.federate_with(&foreign); // now trusted, under spiffe://other.test
//! api.shutdown().await; // or drop it
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ca;
pub mod server;
mod service;

pub use ca::{Svid, TrustDomainCa};
pub use server::{SOCKET_NAME, WorkloadApi};
pub use service::SECURITY_HEADER;

/// Code generated from `proto/workload.proto`: the messages, the
/// `SpiffeWorkloadAPI` server this crate implements, and its client (for
/// tests that need to speak the protocol directly, e.g. without the
/// security header).
pub mod proto {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("_");
}
