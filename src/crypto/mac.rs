//! Keyed integrity tags for tresor's own files (backups, later the audit
//! log): HMAC-SHA256 under a key derived from a tresor key with HKDF-SHA256
//! and a purpose label, so each use has its own key.

use ring::{hkdf, hmac};

use super::SecretKey;
use crate::error::CryptoError;

/// Length of a tag.
pub const MAC_LEN: usize = 32;

fn mac_key(key: &SecretKey, label: &[u8]) -> Result<hmac::Key, CryptoError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tresor/v1 mac").extract(key.expose());
    let info = [label];
    let okm = prk
        .expand(&info, hmac::HMAC_SHA256)
        .map_err(|_| CryptoError::InvalidKeyLength)?;
    Ok(hmac::Key::from(okm))
}

/// The tag of `data` under `key` for the purpose `label`.
pub fn mac(key: &SecretKey, label: &[u8], data: &[u8]) -> Result<[u8; MAC_LEN], CryptoError> {
    let tag = hmac::sign(&mac_key(key, label)?, data);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(tag.as_ref());
    Ok(out)
}

/// Checks a tag in constant time.
pub fn verify_mac(
    key: &SecretKey,
    label: &[u8],
    data: &[u8],
    tag: &[u8],
) -> Result<(), CryptoError> {
    hmac::verify(&mac_key(key, label)?, data, tag).map_err(|_| CryptoError::Unauthentic)
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
