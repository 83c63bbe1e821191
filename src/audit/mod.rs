//! The tamper-evident audit log.
//!
//! Every gRPC call and every key lifecycle event that happens without a
//! request leaves one record: a JSON line that names the caller, the
//! operation, the key and the outcome, never plaintext, key material or raw
//! context values. Records form a hash chain (each holds the SHA-256 of the
//! line before it) and each carries an HMAC under the audit key, which is
//! kept in the keystore wrapped by the root key. Without that key nobody can
//! edit, insert, remove or reorder a record unnoticed; a checkpoint the
//! keystore remembers catches a file cut short.
//!
//! - [`record`]: the record and its line format.
//! - [`writer`]: the writer thread with group commit and size rotation.
//! - [`files`]: file names, rotation order.
//! - [`resume`]: where a log continues at start, checked against the
//!   keystore's checkpoint.
//! - [`stdout_copy`]: the best-effort copy on stdout (`--audit-stdout`).
//! - [`verify`]: offline verification (`tresor audit verify`).

pub mod files;
pub mod record;
pub mod resume;
pub mod stdout_copy;
pub mod verify;
pub mod writer;

pub use record::{Entry, ItemEntry, Record, RecordKind};
pub use verify::{
    AcceptedGap, Expectations, Tampering, Verified, VerifyError, verify_files, verify_with_keys,
};
pub use writer::{AuditLog, AuditOptions, Checkpoint, DEFAULT_MAX_FILE_BYTES};

/// Fuzz entry point of the audit-record target (`fuzz/fuzz_targets/audit_record.rs`
/// and `tests/it/fuzz_smoke.rs`): [`record::fuzz_line`], then
/// [`verify::fuzz_log`], on the same input.
///
/// # Panics
///
/// Only when the library breaks a property those helpers check.
pub fn fuzz_audit(data: &[u8]) {
    record::fuzz_line(data);
    verify::fuzz_log(data);
}

#[cfg(test)]
mod tests;
