//! Every integration test in one binary: one link instead of one per file
//! (each linked binary was hundreds of megabytes, and linking them was
//! most of the test step on 2 cores). Each module is what used to be
//! `tests/<name>.rs`; `cargo test --test it <module>::` runs one of them.
//!
//! Two suites stay binaries of their own because they need a process to
//! themselves: `seal_drops_secrets` counts the live secrets of the whole
//! process, and `fork_salts` forks it.

#[path = "../common/mod.rs"]
mod common;

mod aliases;
mod audit;
mod aws_kms;
mod backup;
mod batch;
mod bench;
mod blind_index;
mod blind_index_example;
mod certs_ttl;
mod cli;
mod cli_admin;
mod cli_blind_index;
mod cli_envelope;
mod cli_output_files;
mod cli_snapshots;
mod control_plane;
mod control_plane_metering;
mod data_key_cache;
mod data_key_purpose;
mod data_keys;
mod data_plane;
mod deploy_files;
mod dockerfile;
mod durability;
mod env_files;
mod envelope;
mod format_reference;
mod fuzz_smoke;
mod grant_conditions;
mod hardening;
mod health;
mod hostile_client;
mod identity;
mod key_lifecycle;
mod key_moves;
mod key_purposes;
mod licences;
mod master_key_rotation;
mod metadata_auth;
mod operations;
mod otlp;
mod policy;
mod postgres;
mod postgres_lifecycle;
mod postgres_transport;
mod purpose_stability;
mod python_client;
mod roles;
mod root_rotation;
mod sdk_retry;
mod tls;
mod transport;
mod unsafe_forbidden;
mod unseal_quorum;
