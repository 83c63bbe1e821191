//! tresor's benchmark tooling: the load generator of `tresor bench`, its
//! report, and the gRPC echo baseline.
//!
//! `tresor bench --compare-echo` runs the same load against tresor and
//! against an echo service served with exactly tresor's transport (same
//! tonic, same rustls mutual TLS, same limits), so tresor's figures divided
//! by the echo's show what tresor itself adds. The command's flags and its
//! echo process are the `tresor` crate's `cli::bench`; the end-to-end
//! scripts are in `scripts/bench-*.sh`; the criterion benches sit beside
//! the code they measure (`cargo bench -p tresor-crypto`, `cargo bench -p
//! tresor`).
//!
//! # Layout
//!
//! | module | responsibility |
//! |--------|----------------|
//! | [`mix`] | the operation mix (`--mix encrypt:8,decrypt:2`) and the draws that pick from it |
//! | [`load`] | the closed-loop load: workers, warm-up, the measured window, [`load::Stats`] |
//! | [`report`] | single runs and tresor-versus-echo comparisons, as JSON or for people |
//! | [`error`] | [`BenchError`] |
//! | [`proto`] | generated code of `tresor.bench.v1.Echo` |
//! | [`echo_service`] | [`EchoApi`], the handler: returns the payload, nothing else |
//! | [`echo_client`] | [`EchoClient`], shaped like the SDK's Encrypt call |

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod echo_client;
pub mod echo_service;
pub mod error;
pub mod load;
pub mod mix;
pub mod report;

pub use echo_client::EchoClient;
pub use echo_service::{EchoApi, echo_server};
pub use error::BenchError;
pub use load::Connect;

/// Generated protobuf and tonic code for `tresor.bench.v1`, the bench echo
/// service (not served by tresor, not in its reflection).
pub mod proto {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("tresor.bench.v1");
}
