//! Per-purpose key material: what a MAC or deterministic key's version
//! actually computes with, derived from its stored 32-byte DEK so that no
//! bytes ever serve two purposes.
//!
//! The DEK of every version is 32 uniformly random bytes, so it is used
//! directly as an HKDF-SHA256 pseudorandom key (RFC 5869 allows skipping
//! the extract step for such input) and expanded with a label naming the
//! purpose and the algorithm:
//!
//! ```text
//! K_mac = HKDF-Expand(PRK = DEK, info = "tresor/v1 key purpose: MAC hmac-sha256", L = 32)
//! K_siv = HKDF-Expand(PRK = DEK, info = "tresor/v1 key purpose: DETERMINISTIC aes-256-siv", L = 64)
//! ```
//!
//! Encryption keys (purpose ENCRYPT_DECRYPT) use the DEK as the HMAC key of
//! their message-key schedule, whose inputs start with `tresor/v2 message
//! key` (`sealing.rs`); HKDF-Expand's first block is HMAC(DEK, info || 1),
//! and no info above starts like a message-key input, so the three uses
//! never compute the same function of the DEK.

use ring::hkdf;
use zeroize::Zeroizing;

use super::SecretKey;
use crate::CryptoError;

/// The HKDF info of a MAC key's HMAC key.
pub(crate) const MAC_PURPOSE_LABEL: &[u8] = b"tresor/v1 key purpose: MAC hmac-sha256";
/// The HKDF info of a deterministic key's AES-SIV key.
pub(crate) const DETERMINISTIC_PURPOSE_LABEL: &[u8] =
    b"tresor/v1 key purpose: DETERMINISTIC aes-256-siv";

/// An HKDF output length.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// `N` bytes of key material for the purpose `label`, from `dek`.
pub(crate) fn derive<const N: usize>(
    dek: &SecretKey,
    label: &[u8],
) -> Result<Zeroizing<[u8; N]>, CryptoError> {
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, dek.expose());
    let info = [label];
    let okm = prk
        .expand(&info, Len(N))
        .map_err(|_| CryptoError::InvalidKeyLength)?;
    let mut out = Zeroizing::new([0u8; N]);
    okm.fill(out.as_mut())
        .map_err(|_| CryptoError::InvalidKeyLength)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_purpose_gets_its_own_bytes() {
        let dek = SecretKey::generate().expect("key");
        let mac: Zeroizing<[u8; 32]> = derive(&dek, MAC_PURPOSE_LABEL).expect("mac");
        let siv: Zeroizing<[u8; 64]> = derive(&dek, DETERMINISTIC_PURPOSE_LABEL).expect("siv");
        assert_ne!(mac.as_slice(), &siv[..32]);
        assert_ne!(mac.as_slice(), &dek.expose()[..]);
        assert_ne!(&siv[..32], &dek.expose()[..]);
        assert_ne!(&siv[..32], &siv[32..]);
    }
}
