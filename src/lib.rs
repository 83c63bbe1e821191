//! tresor: an envelope-encryption key-management service.
//!
//! # Layout
//! Each module has one responsibility; arrows in `../shared/DESIGN.md` say
//! which may import which (nothing imports upward).
//!
//! | module        | responsibility |
//! |---------------|----------------|
//! | [`crypto`]    | secret types and their live counts, the ciphertext format, seal/open, the chunked stream envelope, context canonicalisation (pure, no I/O) |
//! | [`error`]     | one error enum per concern |
//! | [`identity`]  | the caller identity derived from an mTLS client certificate |
//! | [`model`]     | domain values: key ids, versions, states, operations, key metadata |
//! | [`store`]     | the `KeyStore` trait, the sled and PostgreSQL backends, their conformance suite, offline sled compaction, the bucketed sled layout |
//! | [`master_key`]| the `MasterKey` trait and the local key-file provider |
//! | [`metrics`]   | Prometheus metrics of one server (prometheus-client) |
//! | [`service`]   | domain operations, key lifecycle (automatic and usage-based rotation, version destruction), the single authorization check, seal |
//! | [`grpc`]      | tonic handlers and proto conversion (the only module naming tonic/prost) |
//! | [`anomaly`]   | per-identity rate limits and anomaly alerts (pure counting) |
//! | [`audit`]     | the tamper-evident audit log: record format, group-commit writer, offline verification |
//! | [`backup`]    | the backup file format: a versioned, MAC-protected keystore snapshot |
//! | [`backup_schedule`] | scheduled backups with retention |
//! | [`config`]    | `tresor serve` flags validated into `Settings` |
//! | [`ops_http`]  | plain-HTTP side channels: Prometheus endpoint, alert webhook |
//! | [`hardening`] | process hardening at start: no core dumps, not dumpable, memory locked where permitted |
//! | [`server`]    | wiring, mTLS, connection limits, health, reflection, graceful shutdown |
//! | [`pki`]       | certificate authority and certificate issuing (rcgen) |
//! | [`client`]    | the Rust SDK: an mTLS client with typed errors and retries, streaming envelope encryption of payloads of any size, a bounded data-key cache |
//! | [`cli`]       | the `tresor` command line (`serve`, `dev`, `certs`, `master-key`) |
//!
//! Key hierarchy: master key (outside) → root key (one per keystore) → one
//! DEK per key version → per-message keys derived in [`crypto`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod anomaly;
pub mod audit;
pub mod backup;
pub mod backup_schedule;
pub mod cli;
pub mod config;
pub mod error;
pub mod grpc;
pub mod hardening;
pub mod identity;
pub mod master_key;
pub mod metrics;
pub mod model;
pub mod ops_http;
pub mod pki;
#[cfg(test)]
mod secret_inventory;
pub mod server;
pub mod service;
pub mod store;
