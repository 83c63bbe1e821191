//! What a key is for ([`KeyPurpose`]), fixed at creation for its life.

use std::fmt;

use crate::error::{Error, Precondition};

/// A key's purpose: which operations its versions serve. Each purpose
/// derives its own key material from a version's DEK (docs/FORMAT.md), so
/// no bytes ever serve two purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyPurpose {
    /// Randomized, key-committing encryption and data keys (every key made
    /// before purposes existed).
    #[default]
    EncryptDecrypt,
    /// HMAC-SHA256 MAC tokens for blind indexes (Mac, VerifyMac,
    /// MacAllVersions, MacBatch).
    Mac,
    /// Deterministic encryption with AES-SIV (Encrypt, Decrypt, their
    /// batches and ReEncrypt), for equality search.
    Deterministic,
}

impl KeyPurpose {
    /// Every purpose, in a fixed order.
    pub const ALL: [Self; 3] = [Self::EncryptDecrypt, Self::Mac, Self::Deterministic];

    /// The stored code (0 for encryption, which old records omit).
    pub fn code(self) -> u8 {
        match self {
            Self::EncryptDecrypt => 0,
            Self::Mac => 1,
            Self::Deterministic => 2,
        }
    }

    /// The purpose of a stored code; `None` for a code this build does not
    /// know.
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|p| u32::from(p.code()) == code)
    }

    /// The name the API, the CLI and the logs use.
    pub fn name(self) -> &'static str {
        match self {
            Self::EncryptDecrypt => "ENCRYPT_DECRYPT",
            Self::Mac => "MAC",
            Self::Deterministic => "DETERMINISTIC",
        }
    }

    /// Refuses an operation meant for keys of `wanted` purposes.
    pub fn require(self, wanted: &[Self], operation: &'static str) -> Result<(), Error> {
        if wanted.contains(&self) {
            Ok(())
        } else {
            Err(Error::FailedPrecondition(Precondition::WrongKeyPurpose {
                purpose: self.name(),
                operation,
            }))
        }
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_refused() {
        for purpose in KeyPurpose::ALL {
            assert_eq!(
                KeyPurpose::from_code(u32::from(purpose.code())),
                Some(purpose)
            );
        }
        assert_eq!(KeyPurpose::from_code(3), None);
        assert_eq!(KeyPurpose::default(), KeyPurpose::EncryptDecrypt);
    }

    #[test]
    fn the_wrong_purpose_is_a_precondition() {
        assert!(KeyPurpose::Mac.require(&[KeyPurpose::Mac], "Mac").is_ok());
        assert!(matches!(
            KeyPurpose::Mac.require(&[KeyPurpose::EncryptDecrypt], "Encrypt"),
            Err(Error::FailedPrecondition(
                Precondition::WrongKeyPurpose { .. }
            ))
        ));
    }
}
