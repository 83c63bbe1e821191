//! Keyed integrity tags for tresor's own files (backups, later the audit
//! log): HMAC-SHA256 under a key derived from a tresor key with HKDF-SHA256
//! and a purpose label, so each use has its own key.

use ring::{hkdf, hmac};

use super::SecretKey;
use super::live::{self, Live};
use crate::CryptoError;

/// Length of a tag.
pub const MAC_LEN: usize = 32;

/// The HMAC key of one purpose, derived once from a tresor key so that
/// many tags (one per audit record) cost one HMAC each, not a key
/// derivation each. The derived key is zeroized on drop like any
/// [`SecretKey`]; ring's per-call key schedule lives only for one tag
/// (ring does not wipe it). Counted as
/// [`SecretKind::MacKey`](super::SecretKind::MacKey), and its inner key as
/// a `Key`.
pub struct MacKey {
    derived: SecretKey,
    _live: Live<{ live::MAC_KEY }>,
}

// The one secret field is a `SecretKey`, which wipes itself on drop.
impl zeroize::ZeroizeOnDrop for MacKey {}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(REDACTED)")
    }
}

/// HKDF output length for a 32-byte HMAC-SHA256 key.
struct MacKeyLen;

impl hkdf::KeyType for MacKeyLen {
    fn len(&self) -> usize {
        MAC_LEN
    }
}

impl MacKey {
    /// Derives the key of purpose `label` from `key` (HKDF-SHA256).
    pub fn derive(key: &SecretKey, label: &[u8]) -> Result<Self, CryptoError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tresor/v1 mac").extract(key.expose());
        let info = [label];
        let okm = prk
            .expand(&info, MacKeyLen)
            .map_err(|_| CryptoError::InvalidKeyLength)?;
        let mut bytes = zeroize::Zeroizing::new([0u8; MAC_LEN]);
        okm.fill(bytes.as_mut())
            .map_err(|_| CryptoError::InvalidKeyLength)?;
        Ok(Self {
            derived: SecretKey::from_bytes(bytes.as_ref())?,
            _live: Live::new(),
        })
    }

    fn ring_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, self.derived.expose())
    }

    /// The tag of `data`.
    pub fn sign(&self, data: &[u8]) -> [u8; MAC_LEN] {
        let tag = hmac::sign(&self.ring_key(), data);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The tag of the concatenation of `chunks`, without building it.
    pub fn sign_chunks<'a>(&self, chunks: impl IntoIterator<Item = &'a [u8]>) -> [u8; MAC_LEN] {
        let mut context = hmac::Context::with_key(&self.ring_key());
        for chunk in chunks {
            context.update(chunk);
        }
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(context.sign().as_ref());
        out
    }

    /// Checks a tag in constant time.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
        hmac::verify(&self.ring_key(), data, tag).map_err(|_| CryptoError::Unauthentic)
    }
}

/// The tag of `data` under `key` for the purpose `label`.
pub fn mac(key: &SecretKey, label: &[u8], data: &[u8]) -> Result<[u8; MAC_LEN], CryptoError> {
    Ok(MacKey::derive(key, label)?.sign(data))
}

/// Checks a tag in constant time.
pub fn verify_mac(
    key: &SecretKey,
    label: &[u8],
    data: &[u8],
    tag: &[u8],
) -> Result<(), CryptoError> {
    MacKey::derive(key, label)?.verify(data, tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_key_label_and_data() {
        let key = SecretKey::generate().expect("key");
        let other = SecretKey::generate().expect("key");
        let tag = mac(&key, b"backup", b"data").expect("mac");
        assert!(verify_mac(&key, b"backup", b"data", &tag).is_ok());
        assert!(verify_mac(&key, b"audit", b"data", &tag).is_err());
        assert!(verify_mac(&key, b"backup", b"date", &tag).is_err());
        assert!(verify_mac(&other, b"backup", b"data", &tag).is_err());
        assert!(verify_mac(&key, b"backup", b"data", &tag[..31]).is_err());
    }
}
