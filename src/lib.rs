//! tresor: an envelope-encryption key-management service. This crate is
//! the server and the `tresor` command line; the wire contract, the
//! cryptography, the Rust SDK and the bench baseline are crates of their
//! own (`crates/`, each opening with its module map). `docs/ARCHITECTURE.md`
//! draws the arrows: which module and crate may import which.
//!
//! # Layout
//!
//! | module | responsibility |
//! |--------|----------------|
//! | [`cli`] | the `tresor` command line: `serve`, `dev`, `certs`, `master-key`, the admin and data commands, `bench` |
//! | [`config`] | `tresor serve` flags validated into `Settings`, one file per concern (transport, store, unseal) |
//! | [`server`] | wiring, mTLS, connection limits, health, reflection, graceful shutdown; the ops HTTP listener (metrics, alert webhook), process hardening, the bench echo server |
//! | [`grpc`] | the gRPC edge: tonic handlers, proto ↔ domain conversion, the one error → status mapping ([`grpc::classify`]) |
//! | [`service`] | domain operations, the single authorization check (`service::authz`), key purposes and blind indexes (`service::mac`), aliases (`service::aliases`), key lifecycle, rotation (`service::rotation`), seal and unseal, metrics |
//! | [`anomaly`] | per-identity rate limits and anomaly alerts (pure counting) |
//! | [`audit`] | the tamper-evident audit log: record format, group-commit writer, offline verification |
//! | [`backup`] | the backup file format and scheduled backups with retention |
//! | [`store`] | the `KeyStore`, `AliasStore` and `RoleStore` traits, their conformance suite, `store::sled` and `store::postgres` |
//! | [`telemetry`] | OpenTelemetry traces over OTLP (`serve --otlp-endpoint`), W3C trace context from requests |
//! | [`master_key`] | the `MasterKey` trait, the key-file and AWS KMS providers |
//! | [`pki`] | certificate authority and certificate issuing (rcgen) |
//! | [`model`], [`identity`], [`error`] | domain values (key ids, versions, states, purposes, labels, aliases, metadata), caller identities from certificates, one error enum per concern |
//! | [`fs`] | private files: 0600, fsynced, replaced atomically |
//!
//! Where to change what: how a grant is checked, `service::authz`; a new
//! RPC, the proto in `tresor-proto`, then [`grpc`] and [`service`], then
//! `tresor-client`; the ciphertext or stream format, `tresor-crypto`; a CLI
//! command, [`cli`].
//!
//! Key hierarchy: master key (outside) → root key (one per keystore) → one
//! DEK per key version → per-message keys derived in `tresor-crypto`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod anomaly;
pub mod audit;
pub mod backup;
pub mod cli;
pub mod config;
pub mod error;
pub mod fs;
pub mod grpc;
pub mod identity;
pub mod master_key;
pub mod model;
pub mod pki;
/// Test-only: the inventory of every type holding secrets, checked
/// against the sources of every crate of the workspace.
#[cfg(test)]
mod secret_inventory;
pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;
