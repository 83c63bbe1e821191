//! Everything that rotates, in one place:
//!
//! - [`schedule`]: customer keys whose rotation period has passed get a new
//!   version, by the server itself, one replica per key.
//! - [`usage`]: encryptions counted per key version, and rotation once a
//!   version reaches `--max-encryptions-per-version`.
//! - [`root_key`]: root-key rotation, with every DEK re-wrapped in the
//!   background from a crash-safe cursor.
//!
//! The transitions themselves (a new primary version, manual rotation) are
//! pure functions in [`super::lifecycle`]; master-key rotation re-wraps the
//! one root key and lives with the root key in `service/root.rs`.

pub mod root_key;
pub mod schedule;
pub mod usage;
