//! The one error enum of the cryptographic layer. Every variant displays a
//! short message for a human and never carries key material or plaintext.

/// Errors from the pure cryptographic layer.
///
/// Decryption failures are deliberately coarse: an attacker learns that a
/// ciphertext did not open, never which check failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[non_exhaustive]
pub enum CryptoError {
    /// The bytes are not a ciphertext of a format version this build knows.
    #[error("malformed ciphertext")]
    Malformed,
    /// The ciphertext does not open under this key, key id, version and
    /// context: it was tampered with, or the wrong key or context was given.
    #[error("ciphertext does not authenticate under this key and context")]
    Unauthentic,
    /// Key material of the wrong length was supplied.
    #[error("key material must be exactly 32 bytes")]
    InvalidKeyLength,
    /// The operating system's random number generator failed.
    #[error("system random number generator failed")]
    Rng,
    /// The plaintext is too large for the format.
    #[error("plaintext too large")]
    TooLarge,
}
