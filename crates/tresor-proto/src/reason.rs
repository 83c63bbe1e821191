//! Machine-readable reasons for refusals, sent with the status in the
//! `x-tresor-reason` metadata entry, so clients in any language can act on
//! the cause without parsing the human message. The values are part of the
//! wire contract: new ones may be added, existing ones never change.

use tonic::Status;
use tonic::metadata::MetadataValue;

/// The metadata key carrying the reason.
pub const REASON_HEADER: &str = "x-tresor-reason";

/// Why a call was refused, beyond its status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The key is disabled (FAILED_PRECONDITION).
    KeyDisabled,
    /// The key is scheduled for deletion (FAILED_PRECONDITION).
    KeyPendingDeletion,
    /// The ciphertext's key version is below the key's minimum decryption
    /// version (FAILED_PRECONDITION).
    KeyVersionBelowMinimum,
    /// The ciphertext's key version was destroyed (FAILED_PRECONDITION).
    KeyVersionDestroyed,
    /// The ciphertext is malformed, tampered with, or was made with another
    /// key or context (INVALID_ARGUMENT).
    InvalidCiphertext,
    /// Decrypt was given a wrapped data key, which only DecryptDataKey
    /// opens (INVALID_ARGUMENT).
    WrappedDataKey,
    /// The key's stored record fails its integrity check: it was changed
    /// outside tresor (DATA_LOSS).
    KeyRecordTampered,
    /// The service is sealed; nothing was done (UNAVAILABLE).
    Sealed,
    /// The keystore cannot be reached (UNAVAILABLE).
    KeystoreUnavailable,
    /// The call's audit record could not be written, so it was refused,
    /// possibly after its change was made (UNAVAILABLE).
    AuditUnavailable,
    /// The caller exceeded its rate limit (RESOURCE_EXHAUSTED).
    RateLimited,
    /// The key's purpose does not serve the operation: Encrypt on a MAC
    /// key, Mac on an encryption key... (FAILED_PRECONDITION).
    WrongKeyPurpose,
}

impl Reason {
    /// Every reason, for parsing.
    pub const ALL: [Self; 12] = [
        Self::KeyDisabled,
        Self::KeyPendingDeletion,
        Self::KeyVersionBelowMinimum,
        Self::KeyVersionDestroyed,
        Self::InvalidCiphertext,
        Self::WrappedDataKey,
        Self::KeyRecordTampered,
        Self::Sealed,
        Self::KeystoreUnavailable,
        Self::AuditUnavailable,
        Self::RateLimited,
        Self::WrongKeyPurpose,
    ];

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KeyDisabled => "KEY_DISABLED",
            Self::KeyPendingDeletion => "KEY_PENDING_DELETION",
            Self::KeyVersionBelowMinimum => "KEY_VERSION_BELOW_MINIMUM",
            Self::KeyVersionDestroyed => "KEY_VERSION_DESTROYED",
            Self::InvalidCiphertext => "INVALID_CIPHERTEXT",
            Self::WrappedDataKey => "WRAPPED_DATA_KEY",
            Self::KeyRecordTampered => "KEY_RECORD_TAMPERED",
            Self::Sealed => "SEALED",
            Self::KeystoreUnavailable => "KEYSTORE_UNAVAILABLE",
            Self::AuditUnavailable => "AUDIT_UNAVAILABLE",
            Self::RateLimited => "RATE_LIMITED",
            Self::WrongKeyPurpose => "WRONG_KEY_PURPOSE",
        }
    }

    /// The reason a status carries, if any (and if this build knows it).
    pub fn of(status: &Status) -> Option<Self> {
        let value = status.metadata().get(REASON_HEADER)?.to_str().ok()?;
        Self::ALL
            .into_iter()
            .find(|reason| reason.as_str() == value)
    }

    /// Tags `status` with this reason.
    pub fn tag(self, mut status: Status) -> Status {
        status
            .metadata_mut()
            .insert(REASON_HEADER, MetadataValue::from_static(self.as_str()));
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_through_a_status() {
        for reason in Reason::ALL {
            let status = reason.tag(Status::unavailable("x"));
            assert_eq!(Reason::of(&status), Some(reason));
        }
        assert_eq!(Reason::of(&Status::unavailable("x")), None);
    }
}
