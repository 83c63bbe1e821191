//! Secret material: keys and secret byte strings.
//!
//! Both types zeroize their memory on drop, redact themselves under `Debug`,
//! and deliberately implement neither `Display` nor `PartialEq` (comparing
//! secrets with `==` is not constant time, and a printable secret ends up in
//! a log sooner or later). Compare keys with `subtle::ConstantTimeEq`. [`SecretKey`] is not `Clone` either: share it with
//! `Arc`.

use std::fmt;

use hmac::{Hmac, KeyInit};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::live::{self, Live};
use crate::CryptoError;

/// Length in bytes of every symmetric key tresor handles.
const KEY_LEN: usize = 32;

/// A 32-byte symmetric key (master, root or data-encryption key).
///
/// The bytes live on the heap so that moving a `SecretKey` never leaves a
/// copy behind on the stack, and they are overwritten with zeros on drop.
/// Beside them sits the key's HMAC-SHA256 state with the key already
/// absorbed, which the v2 key schedule starts from on every message (saving
/// two SHA-256 blocks per message); it is key-equivalent and zeroized on
/// drop too (the `zeroize` features of `hmac` and `sha2`).
/// `Debug` prints `SecretKey(REDACTED)`. Each live key is counted
/// ([`live_secrets`](super::live_secrets) of
/// [`SecretKind::Key`](super::SecretKind::Key)).
pub struct SecretKey {
    bytes: Box<[u8; KEY_LEN]>,
    prf: Box<Hmac<Sha256>>,
    _live: Live<{ live::KEY }>,
}

/// Compares two keys in time that does not depend on where they differ
/// (`subtle`), for the few places that must check a key against another.
impl ConstantTimeEq for SecretKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.bytes[..].ct_eq(&other.bytes[..])
    }
}

impl SecretKey {
    /// Generates a fresh key from the operating system's CSPRNG.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Rng`] if the system random number generator fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Box::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(&mut bytes[..])
            .map_err(|_| CryptoError::Rng)?;
        Self::from_boxed(bytes)
    }

    fn from_boxed(bytes: Box<[u8; KEY_LEN]>) -> Result<Self, CryptoError> {
        // HMAC takes keys of any length; this never fails for 32 bytes.
        let prf = Hmac::<Sha256>::new_from_slice(&bytes[..])
            .map_err(|_| CryptoError::InvalidKeyLength)?;
        Ok(Self {
            bytes,
            prf: Box::new(prf),
            _live: Live::new(),
        })
    }

    /// Copies key material into a new key.
    ///
    /// The caller remains responsible for wiping its own copy of `bytes`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::InvalidKeyLength`] unless `bytes` is exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: &[u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| CryptoError::InvalidKeyLength)?;
        let mut bytes = Box::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(array);
        Self::from_boxed(bytes)
    }

    /// The raw key bytes.
    ///
    /// Only for wrapping a key under another key and for writing the master
    /// key file. Never log, compare with `==`, or keep copies of the result.
    #[must_use]
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// HMAC-SHA256 keyed with this key, ready for input: clone it per use.
    pub(crate) fn prf(&self) -> &Hmac<Sha256> {
        &self.prf
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        // `prf` zeroizes itself when it drops.
        self.bytes.zeroize();
    }
}

impl ZeroizeOnDrop for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(REDACTED)")
    }
}

/// Variable-length secret bytes: decrypted plaintext, plaintext data keys.
///
/// Zeroized on drop; `Debug` prints only the length. Each live value is
/// counted ([`SecretKind::Bytes`](super::SecretKind::Bytes)).
pub struct SecretBytes(Zeroizing<Vec<u8>>, Live<{ live::BYTES }>);

impl SecretBytes {
    /// Takes ownership of `v`; it will be zeroized when this value drops.
    #[must_use]
    pub fn new(v: Vec<u8>) -> Self {
        Self::from_zeroizing(Zeroizing::new(v))
    }

    /// Wraps a buffer that is already zeroizing.
    pub(crate) fn from_zeroizing(v: Zeroizing<Vec<u8>>) -> Self {
        Self(v, Live::new())
    }

    /// The secret bytes. Never log or compare them with `==`.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hands the bytes out as a plain `Vec`, which is **not** zeroized on
    /// drop.
    ///
    /// From here on the caller is responsible for the secret: wipe it (for
    /// example with [`zeroize::Zeroize`]) when done, and avoid growing the
    /// `Vec`, which may leave unwiped copies behind in freed memory. Use this
    /// only at the edge, e.g. to move plaintext into a response message.
    #[must_use]
    pub fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut *self.0)
    }
}

// The `Zeroizing` field wipes the bytes when it drops.
impl ZeroizeOnDrop for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(REDACTED, {} bytes)", self.0.len())
    }
}

/// Returns `n` bytes from the operating system's CSPRNG.
///
/// # Errors
///
/// [`CryptoError::Rng`] if the system random number generator fails.
pub fn random_bytes(n: usize) -> Result<SecretBytes, CryptoError> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| CryptoError::Rng)?;
    Ok(SecretBytes::from_zeroizing(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_by_every_byte() {
        let bytes = [7u8; 32];
        let key = SecretKey::from_bytes(&bytes).expect("key");
        let same = SecretKey::from_bytes(&bytes).expect("key");
        assert!(bool::from(key.ct_eq(&same)));
        for position in 0..bytes.len() {
            let mut other = bytes;
            other[position] ^= 0x80;
            let other = SecretKey::from_bytes(&other).expect("key");
            assert!(!bool::from(key.ct_eq(&other)), "byte {position}");
        }
    }

    #[test]
    fn from_bytes_requires_exactly_32_bytes() {
        for len in [0usize, 1, 16, 31, 33, 64] {
            assert_eq!(
                SecretKey::from_bytes(&vec![7u8; len]).err(),
                Some(CryptoError::InvalidKeyLength),
                "len {len}"
            );
        }
        let key = SecretKey::from_bytes(&[7u8; 32]).expect("32 bytes");
        assert_eq!(key.expose(), &[7u8; 32]);
    }

    #[test]
    fn generated_keys_differ() {
        let a = SecretKey::generate().expect("rng");
        let b = SecretKey::generate().expect("rng");
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.expose(), &[0u8; 32]);
    }

    #[test]
    fn debug_never_shows_key_material() {
        let raw: [u8; 32] = std::array::from_fn(|i| 0xA0 ^ u8::try_from(i).expect("< 32"));
        let key = SecretKey::from_bytes(&raw).expect("32 bytes");
        let shown = format!("{key:?} {key:#?}");
        assert_eq!(format!("{key:?}"), "SecretKey(REDACTED)");
        assert!(!shown.contains(&hex::encode(raw)));
        assert!(!shown.to_lowercase().contains(&hex::encode(&raw[..4])));
        assert!(!shown.contains(&format!("{raw:?}")));
        assert!(!shown.contains(&format!("{}, {}", raw[0], raw[1])));

        let secret = SecretBytes::new(raw.to_vec());
        let shown = format!("{secret:?} {secret:#?}");
        assert_eq!(format!("{secret:?}"), "SecretBytes(REDACTED, 32 bytes)");
        assert!(!shown.contains(&hex::encode(raw)));
        assert!(!shown.contains(&format!("{raw:?}")));
        assert!(!shown.contains(&format!("{}, {}", raw[0], raw[1])));
    }

    #[test]
    fn secret_bytes_accessors() {
        let s = SecretBytes::new(b"abc".to_vec());
        assert_eq!(s.len(), 3);
        assert!(!s.is_empty());
        assert_eq!(s.expose(), b"abc");
        assert_eq!(s.into_vec(), b"abc".to_vec());
        assert!(SecretBytes::new(Vec::new()).is_empty());
    }

    #[test]
    fn random_bytes_has_requested_length() {
        assert_eq!(random_bytes(0).expect("rng").len(), 0);
        let a = random_bytes(32).expect("rng");
        let b = random_bytes(32).expect("rng");
        assert_eq!(a.len(), 32);
        assert_ne!(a.expose(), b.expose());
    }
}
