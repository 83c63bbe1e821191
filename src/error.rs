//! Error enums, one per concern. Every variant is documented and displays a
//! short message meant for a human. None of them ever carries key material or
//! plaintext.

use std::fmt;

pub use tresor_client::describe_chain;
pub use tresor_crypto::CryptoError;

/// Errors from a keystore backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (I/O, corruption reported by the engine, ...).
    #[error("keystore backend error: {0}")]
    Backend(String),
    /// A stored record could not be decoded.
    #[error("keystore record is corrupt: {0}")]
    Corrupt(String),
    /// A key with this id already exists.
    #[error("key already exists")]
    AlreadyExists,
    /// The key does not exist.
    #[error("key not found")]
    NotFound,
    /// The database is unreachable or refused the call; callers fail
    /// closed with UNAVAILABLE.
    #[error("keystore unavailable: {0}")]
    Unavailable(String),
    /// A restore target already holds a keystore.
    #[error(
        "the target keystore is not empty; restore into an empty one, or pass --force to replace it"
    )]
    NotEmpty,
    /// A compare-and-swap found the record changed by someone else.
    #[error("the record changed concurrently; retry")]
    Conflict,
    /// The keystore has not been initialised with a root key.
    #[error("keystore is not initialised")]
    NotInitialised,
    /// An audit checkpoint would move the stored one backwards (or replace
    /// it with a different record of the same sequence number): stored
    /// checkpoints only move forward.
    #[error(
        "the keystore's audit checkpoint is record {stored}; it does not move back to record {offered}"
    )]
    AuditMarkBehind {
        /// The sequence number the keystore holds.
        stored: u64,
        /// The sequence number offered.
        offered: u64,
    },
    /// An update function refused the change; carries the domain error.
    #[error(transparent)]
    Rejected(Box<Error>),
}

/// Errors from a master-key provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MasterKeyError {
    /// The master key file could not be read or written.
    #[error("master key file {path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The master key file is readable or writable by group or others.
    #[error(
        "master key file {path} has mode {mode:o}; it must not be accessible by group or others (run: chmod 600 {path})"
    )]
    InsecurePermissions {
        /// The file concerned.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The master key file does not hold exactly 32 bytes.
    #[error("master key file {path} must hold exactly 32 bytes, found {len}")]
    BadLength {
        /// The file concerned.
        path: String,
        /// Its length.
        len: usize,
    },
    /// The wrapped root key does not open under this master key.
    #[error("the root key does not unwrap with this master key (wrong master key file?)")]
    WrongMasterKey,
    /// A cryptographic failure while wrapping.
    #[error("master key crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// The root key does not unwrap with the master key given at start-up.
    #[error(
        "the root key does not unwrap with {given}; this keystore's root key is wrapped by {wrapped_by}"
    )]
    Mismatch {
        /// The master key that was tried.
        given: String,
        /// The master key recorded as wrapping the root key.
        wrapped_by: String,
    },
    /// AWS KMS denied the call. Real KMS also says this when the ciphertext
    /// was made under another key that this identity may not use (moto does
    /// it for any other key), so the service tells the two apart by the
    /// master key recorded in the keystore.
    #[error(
        "AWS KMS key {key}: access denied: the server's AWS identity needs kms:Encrypt, kms:Decrypt and kms:DescribeKey on this key{detail}"
    )]
    KmsAccessDenied {
        /// The KMS key id, ARN or alias.
        key: String,
        /// KMS's own message, prefixed with `: ` (or empty).
        detail: String,
    },
    /// AWS KMS refused or could not be reached; `reason` names the cause
    /// and what to check.
    #[error("AWS KMS key {key}: {reason}")]
    Kms {
        /// The KMS key id, ARN or alias.
        key: String,
        /// The cause, for a human.
        reason: String,
    },
    /// The master key specification is not one tresor understands.
    #[error("{0}")]
    InvalidSpec(String),
}

/// Which key-state rule refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Precondition {
    /// The key is disabled.
    Disabled,
    /// The key is pending deletion.
    PendingDeletion,
    /// The ciphertext's version is below the key's minimum decryption version.
    BelowMinDecryptionVersion {
        /// The ciphertext's version.
        version: u32,
        /// The key's minimum decryption version.
        min: u32,
    },
    /// The ciphertext's key version was destroyed (DestroyKeyVersion).
    VersionDestroyed {
        /// The ciphertext's version.
        version: u32,
    },
    /// An automatic rotation found the key no longer due (another replica
    /// rotated it first, or its period or state changed). Never sent to
    /// callers.
    RotationNotDue,
    /// RotateKey on a key that already has the most versions allowed
    /// (`--max-key-versions`, counting versions not destroyed).
    TooManyVersions {
        /// The cap.
        max: u32,
    },
    /// The key's purpose does not serve the operation (Encrypt on a MAC
    /// key, Mac on an encryption key...).
    WrongKeyPurpose {
        /// The key's purpose, as the API names it.
        purpose: &'static str,
        /// The operation asked for.
        operation: &'static str,
    },
    /// Any other state rule, explained.
    Other(String),
}

impl fmt::Display for Precondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disabled => f.write_str("key is disabled"),
            Self::PendingDeletion => f.write_str("key is pending deletion"),
            Self::BelowMinDecryptionVersion { version, min } => write!(
                f,
                "key version {version} is below the minimum decryption version {min}"
            ),
            Self::VersionDestroyed { version } => write!(f, "key version {version} was destroyed"),
            Self::RotationNotDue => f.write_str("automatic rotation is not due"),
            Self::TooManyVersions { max } => write!(
                f,
                "key already has {max} versions, the most allowed; raise the minimum decryption version and destroy old versions to make room"
            ),
            Self::WrongKeyPurpose { purpose, operation } => write!(
                f,
                "the key's purpose is {purpose}, which {operation} does not serve"
            ),
            Self::Other(why) => f.write_str(why),
        }
    }
}

/// The audit log could not take a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Writing, syncing or rotating the audit file failed (disk full,
    /// permissions...); the message names the file and the cause.
    #[error("audit log: {0}")]
    Write(String),
    /// The audit writer has stopped (the server is shutting down).
    #[error("audit log is closed")]
    Closed,
    /// At start, the log does not continue the keystore's checkpoint
    /// (records removed, or damaged); the message says what and what to do.
    #[error("audit log cannot be continued: {0}")]
    Resume(String),
}

/// Errors of the service layer: what a caller of tresor can be told.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed; the message says which field and why.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The ciphertext is malformed, tampered with, or was made with another
    /// key or context.
    #[error("invalid ciphertext: {0}")]
    InvalidCiphertext(CryptoError),
    /// Decrypt was given a wrapped data key from GenerateDataKey: those open
    /// only with DecryptDataKey (their own purpose, so that an Encrypt
    /// ciphertext can never pass for a data key).
    #[error("this is a wrapped data key: open it with DecryptDataKey, not Decrypt")]
    WrappedDataKey,
    /// The key's stored record fails its integrity check: it was changed
    /// outside tresor (database write access). It is refused, not used.
    #[error("key record {0} fails its integrity check")]
    TamperedKeyRecord(crate::model::KeyId),
    /// The caller may not do this (or, for non-admins, the key does not exist).
    #[error("permission denied")]
    PermissionDenied,
    /// Separation of duties: an admin tried to give itself data-plane use
    /// of a key it does not own (a grant covering itself, or the key's
    /// ownership); another admin must do it.
    #[error("an admin cannot give itself use of a key it does not own")]
    SelfGrant,
    /// Separation of duties: an admin tried to give itself a role it does
    /// not hold (a binding whose grantee covers it); another admin must.
    #[error("an admin cannot give itself a role it does not hold")]
    SelfRole,
    /// AddRoleBinding of a role already bound to that grantee.
    #[error("this role is already bound to this identity or pattern")]
    RoleBindingExists,
    /// RemoveRoleBinding of a binding there is not.
    #[error("no such role binding")]
    NoSuchRoleBinding,
    /// An admin named a key that does not exist.
    #[error("key not found")]
    NotFound,
    /// The key id is taken.
    #[error("key already exists")]
    AlreadyExists,
    /// The key's state forbids the operation.
    #[error("{0}")]
    FailedPrecondition(Precondition),
    /// The service is sealed.
    #[error("service is sealed")]
    Sealed,
    /// Storage failed; details are logged, not returned.
    #[error("internal error: {0}")]
    Store(#[from] StoreError),
    /// The master key failed; details are logged, not returned.
    #[error("master key error: {0}")]
    MasterKey(#[from] MasterKeyError),
    /// A cryptographic primitive failed outside decryption (RNG, ...).
    #[error("crypto error: {0}")]
    Crypto(CryptoError),
    /// The request's audit record could not be written, so the request is
    /// refused (fail closed); details are logged.
    #[error("{0}")]
    Audit(#[from] AuditError),
    /// A caller exceeded its request rate.
    #[error("rate limit exceeded: {0}")]
    RateLimited(String),
}

impl From<CryptoError> for Error {
    fn from(err: CryptoError) -> Self {
        match err {
            CryptoError::Malformed | CryptoError::Unauthentic => Self::InvalidCiphertext(err),
            CryptoError::TooLarge => Self::InvalidArgument("plaintext too large".into()),
            other => Self::Crypto(other),
        }
    }
}

/// Result alias for the service layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
