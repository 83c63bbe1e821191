//! tresor's wire contract, nothing else: the generated gRPC/protobuf code of
//! `tresor.v1` ([`v1`], from `proto/tresor/v1/tresor.proto`) and the
//! machine-readable refusal reasons sent in the `x-tresor-reason` metadata
//! entry ([`Reason`]).
//!
//! The server (`tresor`) and every SDK speak exactly this. SDKs in other
//! languages generate their stubs from the same `.proto` file and read the
//! same reason strings; none of them parses error message text.
//!
//! # Layout
//!
//! | module     | responsibility |
//! |------------|----------------|
//! | [`v1`]     | generated messages, the `Crypto` and `Admin` services' clients and servers, the descriptor set served by reflection |
//! | [`reason`] | the `x-tresor-reason` vocabulary: [`Reason`], [`REASON_HEADER`] |

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod reason;

pub use reason::{REASON_HEADER, Reason};

/// Generated protobuf and tonic code for `tresor.v1`.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("tresor.v1");

    /// Encoded file descriptor set, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/tresor_descriptor.bin"));
}
