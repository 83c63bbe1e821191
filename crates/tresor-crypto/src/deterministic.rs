//! Deterministic encryption (purpose DETERMINISTIC): AES-SIV (RFC 5297)
//! with a 512-bit key, format version 0x11. The only module that knows its
//! wire layout; `docs/FORMAT.md` documents every byte.
//!
//! ```text
//! offset len  field
//! 0      3    magic "TRS"
//! 3      1    format version 0x11 (deterministic v1)
//! 4      4    key version, u32 big-endian
//! 8      16   synthetic IV (the SIV tag)
//! 24     n    AES-CTR ciphertext (n = plaintext length)
//! ```
//!
//! The associated data is the vector (S2V components, in order): the 8
//! header bytes, the purpose code (0x01 for data), the key id, and the
//! canonical context encoding. The same plaintext under the same key,
//! version, key id and context always gives the same bytes, which is the
//! point (equality search); anything else gives unrelated bytes.

use aes_siv::aead::KeyInit;
use aes_siv::siv::Aes256Siv;

use super::format::{MAGIC, header_prefix, purpose_code};
use super::purpose_keys::{self, DETERMINISTIC_PURPOSE_LABEL};
use super::{Binding, SecretBytes, SecretKey};
use crate::CryptoError;

/// Format version of deterministic ciphertexts.
pub(crate) const FORMAT_DETERMINISTIC_V1: u8 = 0x11;
/// Length of the header (magic, format version, key version).
const PREFIX_LEN: usize = 8;
/// Length of the synthetic IV.
const SIV_LEN: usize = 16;

/// Number of bytes a deterministic ciphertext is longer than its plaintext.
pub const DETERMINISTIC_OVERHEAD: usize = PREFIX_LEN + SIV_LEN;

/// The AES-SIV cipher of one key version, from its DEK.
fn cipher(dek: &SecretKey) -> Result<Aes256Siv, CryptoError> {
    let key = purpose_keys::derive::<64>(dek, DETERMINISTIC_PURPOSE_LABEL)?;
    Aes256Siv::new_from_slice(key.as_slice()).map_err(|_| CryptoError::InvalidKeyLength)
}

/// The associated data of a ciphertext with header `prefix`.
fn associated_data(prefix: &[u8; PREFIX_LEN], binding: &Binding<'_>) -> [Vec<u8>; 4] {
    [
        prefix.to_vec(),
        vec![purpose_code(binding.purpose)],
        binding.key_id.as_bytes().to_vec(),
        binding.context.canonical_bytes(),
    ]
}

/// Checks that the context can be encoded (the canonical encoding panics
/// on a field over 4 GiB, which no caller can send; be safe anyway).
fn check_context(binding: &Binding<'_>) -> Result<(), CryptoError> {
    binding.context.encode(|_| {})
}

/// Encrypts `plaintext` deterministically under the DEK of
/// `binding.key_version`.
///
/// # Errors
///
/// [`CryptoError::InvalidKeyLength`] if the key derivation fails,
/// [`CryptoError::TooLarge`] if the context cannot be encoded.
pub fn seal_deterministic(
    dek: &SecretKey,
    binding: &Binding<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    check_context(binding)?;
    let prefix = header_prefix(FORMAT_DETERMINISTIC_V1, binding.key_version);
    let mut out = Vec::with_capacity(DETERMINISTIC_OVERHEAD + plaintext.len());
    out.extend_from_slice(&prefix);
    out.extend_from_slice(&[0u8; SIV_LEN]);
    out.extend_from_slice(plaintext);
    let body = out.get_mut(DETERMINISTIC_OVERHEAD..).unwrap_or_default();
    let siv = cipher(dek)?
        .encrypt_inout_detached(associated_data(&prefix, binding), body.into())
        .map_err(|_| CryptoError::TooLarge)?;
    out[PREFIX_LEN..DETERMINISTIC_OVERHEAD].copy_from_slice(siv.as_slice());
    Ok(out)
}

/// The key version a deterministic ciphertext names, after checking its
/// structure (not its authenticity).
///
/// # Errors
///
/// [`CryptoError::Malformed`] unless `ciphertext` starts with the magic and
/// format version 0x11 and is at least [`DETERMINISTIC_OVERHEAD`] long.
pub fn deterministic_key_version(ciphertext: &[u8]) -> Result<u32, CryptoError> {
    let prefix: &[u8; PREFIX_LEN] = ciphertext
        .first_chunk()
        .filter(|_| ciphertext.len() >= DETERMINISTIC_OVERHEAD)
        .ok_or(CryptoError::Malformed)?;
    if prefix[..3] != MAGIC || prefix[3] != FORMAT_DETERMINISTIC_V1 {
        return Err(CryptoError::Malformed);
    }
    let version: [u8; 4] = prefix[4..].try_into().map_err(|_| CryptoError::Malformed)?;
    Ok(u32::from_be_bytes(version))
}

/// Opens a ciphertext made by [`seal_deterministic`] with exactly this
/// binding.
///
/// # Errors
///
/// [`CryptoError::Malformed`] if the bytes are not a deterministic
/// ciphertext, [`CryptoError::Unauthentic`] for any other failure (wrong
/// key, key id, version, context or purpose, or tampering).
pub fn open_deterministic(
    dek: &SecretKey,
    binding: &Binding<'_>,
    ciphertext: &[u8],
) -> Result<SecretBytes, CryptoError> {
    let version = deterministic_key_version(ciphertext)?;
    if version != binding.key_version {
        return Err(CryptoError::Unauthentic);
    }
    check_context(binding).map_err(|_| CryptoError::Unauthentic)?;
    let prefix: [u8; PREFIX_LEN] = header_prefix(FORMAT_DETERMINISTIC_V1, version);
    let siv = aes_siv::Tag::try_from(&ciphertext[PREFIX_LEN..DETERMINISTIC_OVERHEAD])
        .map_err(|_| CryptoError::Malformed)?;
    let mut plaintext = zeroize::Zeroizing::new(ciphertext[DETERMINISTIC_OVERHEAD..].to_vec());
    cipher(dek)?
        .decrypt_inout_detached(
            associated_data(&prefix, binding),
            plaintext.as_mut_slice().into(),
            &siv,
        )
        .map_err(|_| CryptoError::Unauthentic)?;
    Ok(SecretBytes::from_zeroizing(plaintext))
}

/// Runs the deterministic parser and opener on arbitrary bytes, for the
/// fuzz target: must never panic.
pub fn fuzz_deterministic(data: &[u8]) {
    let _ = deterministic_key_version(data);
    if let Ok(dek) = SecretKey::from_bytes(&[7u8; 32]) {
        let context = crate::Context::default();
        let binding = Binding {
            purpose: crate::Purpose::Data,
            key_id: "fuzz/key",
            key_version: deterministic_key_version(data).unwrap_or(1),
            context: &context,
        };
        let _ = open_deterministic(&dek, &binding, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, Purpose};

    fn binding<'a>(key_id: &'a str, version: u32, context: &'a Context) -> Binding<'a> {
        Binding {
            purpose: Purpose::Data,
            key_id,
            key_version: version,
            context,
        }
    }

    #[test]
    fn equal_inputs_give_equal_ciphertexts_and_open() {
        let dek = SecretKey::generate().expect("key");
        let context: Context = [("tenant", "42")].into_iter().collect();
        let b = binding("app/emails", 3, &context);
        let one = seal_deterministic(&dek, &b, b"a@example.com").expect("seal");
        let two = seal_deterministic(&dek, &b, b"a@example.com").expect("seal");
        assert_eq!(one, two);
        assert_eq!(one.len(), DETERMINISTIC_OVERHEAD + 13);
        assert_eq!(deterministic_key_version(&one), Ok(3));
        let opened = open_deterministic(&dek, &b, &one).expect("opens");
        assert_eq!(opened.expose(), b"a@example.com");
        let empty = seal_deterministic(&dek, &b, b"").expect("empty plaintext");
        assert_eq!(
            open_deterministic(&dek, &b, &empty).expect("opens").len(),
            0
        );
    }

    #[test]
    fn every_binding_field_and_byte_counts() {
        let dek = SecretKey::generate().expect("key");
        let other_dek = SecretKey::generate().expect("key");
        let context: Context = [("tenant", "42")].into_iter().collect();
        let other_context: Context = [("tenant", "43")].into_iter().collect();
        let b = binding("app/emails", 3, &context);
        let sealed = seal_deterministic(&dek, &b, b"secret").expect("seal");
        let unauthentic = Err(CryptoError::Unauthentic);
        let open = |dek: &SecretKey, b: &Binding<'_>, c: &[u8]| {
            open_deterministic(dek, b, c).map(|p| p.expose().to_vec())
        };
        assert_eq!(open(&other_dek, &b, &sealed), unauthentic);
        assert_eq!(
            open(&dek, &binding("app/other", 3, &context), &sealed),
            unauthentic
        );
        assert_eq!(
            open(&dek, &binding("app/emails", 4, &context), &sealed),
            unauthentic
        );
        assert_eq!(
            open(&dek, &binding("app/emails", 3, &other_context), &sealed),
            unauthentic
        );
        let data_key = Binding {
            purpose: Purpose::DataKey,
            ..b
        };
        assert_eq!(open(&dek, &data_key, &sealed), unauthentic);
        for i in 0..sealed.len() {
            let mut bent = sealed.clone();
            bent[i] ^= 1;
            assert!(open(&dek, &b, &bent).is_err(), "byte {i}");
        }
        assert_eq!(open(&dek, &b, &sealed[..23]), Err(CryptoError::Malformed));
        // A randomized ciphertext is not a deterministic one.
        let random = crate::seal(&dek, &b, b"secret").expect("seal");
        assert_eq!(open(&dek, &b, &random), Err(CryptoError::Malformed));
    }

    #[test]
    fn fuzz_helper_survives_junk() {
        for junk in [&b""[..], b"TRS", b"TRS\x11\0\0\0\x01", &[0x54; 40]] {
            fuzz_deterministic(junk);
        }
    }
}
