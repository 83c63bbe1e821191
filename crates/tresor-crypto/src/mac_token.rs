//! MAC tokens (purpose MAC): HMAC-SHA256 for blind indexes, format version
//! 0x21. The only module that knows their wire layout; `docs/FORMAT.md`
//! documents every byte.
//!
//! ```text
//! offset len  field
//! 0      3    magic "TRS"
//! 3      1    format version 0x21 (MAC token v1)
//! 4      4    key version, u32 big-endian
//! 8      t    the first t bytes of the HMAC-SHA256 (4 <= t <= 32)
//! ```
//!
//! The HMAC key is the version's `K_mac` (`purpose_keys.rs`); its input is
//! `"tresor/v1 mac token" || header (8 bytes) || t (1 byte) || purpose code
//! || u32 BE key id length || key id || canonical context || message`. The
//! length t is an input, so a token truncated to fewer bytes is not a
//! prefix of a longer one: shortening a token never makes it verify.

use ring::hmac;
use subtle::ConstantTimeEq;

use super::format::{MAGIC, header_prefix, purpose_code};
use super::purpose_keys::{self, MAC_PURPOSE_LABEL};
use super::{Binding, SecretKey};
use crate::CryptoError;

/// Format version of MAC tokens.
pub(crate) const FORMAT_MAC_V1: u8 = 0x21;
/// Length of the header (magic, format version, key version).
pub const MAC_TOKEN_HEADER_LEN: usize = 8;
/// The label opening every HMAC input.
const INPUT_LABEL: &[u8] = b"tresor/v1 mac token";

/// How many HMAC bytes a token keeps: 4 to 32 (the default, all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacLength(u8);

impl MacLength {
    /// The shortest length: 4 bytes.
    pub const MIN: u8 = 4;
    /// The longest length and the default: the whole HMAC-SHA256.
    pub const FULL: Self = Self(32);

    /// A length of `bytes` bytes, or `None` outside 4 to 32.
    #[must_use]
    pub fn new(bytes: u32) -> Option<Self> {
        u8::try_from(bytes)
            .ok()
            .filter(|b| (Self::MIN..=Self::FULL.0).contains(b))
            .map(Self)
    }

    /// The length in bytes.
    #[must_use]
    pub fn bytes(self) -> usize {
        usize::from(self.0)
    }
}

/// The HMAC of `message` under the version's MAC key, bound to `binding`.
fn hmac_of(
    dek: &SecretKey,
    binding: &Binding<'_>,
    length: MacLength,
    message: &[u8],
) -> Result<hmac::Tag, CryptoError> {
    let key_bytes = purpose_keys::derive::<32>(dek, MAC_PURPOSE_LABEL)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, key_bytes.as_slice());
    let key_id_len = u32::try_from(binding.key_id.len()).map_err(|_| CryptoError::TooLarge)?;
    let mut input = hmac::Context::with_key(&key);
    input.update(INPUT_LABEL);
    input.update(&header_prefix(FORMAT_MAC_V1, binding.key_version));
    input.update(&[length.0, purpose_code(binding.purpose)]);
    input.update(&key_id_len.to_be_bytes());
    input.update(binding.key_id.as_bytes());
    binding.context.encode(|chunk| input.update(chunk))?;
    input.update(message);
    Ok(input.sign())
}

/// The MAC token of `message` under the DEK of `binding.key_version`,
/// keeping `length` bytes of the HMAC.
///
/// # Errors
///
/// [`CryptoError::InvalidKeyLength`] if the key derivation fails,
/// [`CryptoError::TooLarge`] if the key id or context cannot be encoded.
pub fn mac_token(
    dek: &SecretKey,
    binding: &Binding<'_>,
    length: MacLength,
    message: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let tag = hmac_of(dek, binding, length, message)?;
    let mut token = Vec::with_capacity(MAC_TOKEN_HEADER_LEN + length.bytes());
    token.extend_from_slice(&header_prefix(FORMAT_MAC_V1, binding.key_version));
    token.extend_from_slice(&tag.as_ref()[..length.bytes()]);
    Ok(token)
}

/// The key version and length a MAC token names, after checking its
/// structure (not its authenticity).
///
/// # Errors
///
/// [`CryptoError::Malformed`] unless `token` has the magic, format version
/// 0x21 and 4 to 32 HMAC bytes.
pub fn mac_token_header(token: &[u8]) -> Result<(u32, MacLength), CryptoError> {
    let (prefix, tag) = token
        .split_first_chunk::<MAC_TOKEN_HEADER_LEN>()
        .ok_or(CryptoError::Malformed)?;
    if prefix[..3] != MAGIC || prefix[3] != FORMAT_MAC_V1 {
        return Err(CryptoError::Malformed);
    }
    let length = u32::try_from(tag.len())
        .ok()
        .and_then(MacLength::new)
        .ok_or(CryptoError::Malformed)?;
    let version: [u8; 4] = prefix[4..].try_into().map_err(|_| CryptoError::Malformed)?;
    Ok((u32::from_be_bytes(version), length))
}

/// Checks, in constant time, that `token` is the MAC token of `message`
/// under this DEK and binding (of the length the token has).
///
/// # Errors
///
/// [`CryptoError::Malformed`] if the bytes are not a MAC token,
/// [`CryptoError::Unauthentic`] if it does not verify.
pub fn verify_mac_token(
    dek: &SecretKey,
    binding: &Binding<'_>,
    message: &[u8],
    token: &[u8],
) -> Result<(), CryptoError> {
    let (version, length) = mac_token_header(token)?;
    if version != binding.key_version {
        return Err(CryptoError::Unauthentic);
    }
    let expected = hmac_of(dek, binding, length, message).map_err(|_| CryptoError::Unauthentic)?;
    let given = &token[MAC_TOKEN_HEADER_LEN..];
    if bool::from(expected.as_ref()[..length.bytes()].ct_eq(given)) {
        Ok(())
    } else {
        Err(CryptoError::Unauthentic)
    }
}

/// Runs the MAC token parser and verifier on arbitrary bytes, for the fuzz
/// target: must never panic.
pub fn fuzz_mac_token(data: &[u8]) {
    let header = mac_token_header(data);
    if let Ok(dek) = SecretKey::from_bytes(&[9u8; 32]) {
        let context = crate::Context::default();
        let binding = Binding {
            purpose: crate::Purpose::Data,
            key_id: "fuzz/key",
            key_version: header.map_or(1, |(version, _)| version),
            context: &context,
        };
        let _ = verify_mac_token(&dek, &binding, b"message", data);
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
    fn tokens_are_stable_and_bound_to_everything() {
        let dek = SecretKey::generate().expect("key");
        let context: Context = [("tenant", "42")].into_iter().collect();
        let other_context = Context::default();
        let b = binding("app/email-index", 2, &context);
        let token = mac_token(&dek, &b, MacLength::FULL, b"a@example.com").expect("mac");
        assert_eq!(token.len(), 40);
        assert_eq!(
            mac_token(&dek, &b, MacLength::FULL, b"a@example.com").expect("mac"),
            token
        );
        assert_eq!(mac_token_header(&token), Ok((2, MacLength::FULL)));
        assert_eq!(verify_mac_token(&dek, &b, b"a@example.com", &token), Ok(()));
        let bad = Err(CryptoError::Unauthentic);
        assert_eq!(verify_mac_token(&dek, &b, b"b@example.com", &token), bad);
        let other = SecretKey::generate().expect("key");
        assert_eq!(verify_mac_token(&other, &b, b"a@example.com", &token), bad);
        for wrong in [
            binding("app/other", 2, &context),
            binding("app/email-index", 3, &context),
            binding("app/email-index", 2, &other_context),
        ] {
            assert_eq!(
                verify_mac_token(&dek, &wrong, b"a@example.com", &token),
                bad
            );
        }
        for i in 0..token.len() {
            let mut bent = token.clone();
            bent[i] ^= 0x40;
            assert!(verify_mac_token(&dek, &b, b"a@example.com", &bent).is_err());
        }
    }

    #[test]
    fn truncation_is_bound_into_the_tag() {
        let dek = SecretKey::generate().expect("key");
        let context = Context::default();
        let b = binding("app/idx", 1, &context);
        let short = MacLength::new(8).expect("8");
        let token = mac_token(&dek, &b, short, b"m").expect("mac");
        assert_eq!(token.len(), MAC_TOKEN_HEADER_LEN + 8);
        assert_eq!(verify_mac_token(&dek, &b, b"m", &token), Ok(()));
        let full = mac_token(&dek, &b, MacLength::FULL, b"m").expect("mac");
        // The short token is not a prefix of the full one, and the full
        // one cut short does not verify.
        assert_ne!(token[8..], full[8..16]);
        assert_eq!(
            verify_mac_token(&dek, &b, b"m", &full[..16]),
            Err(CryptoError::Unauthentic)
        );
        for bad_len in [0, 3, 33, 256] {
            assert_eq!(MacLength::new(bad_len), None);
        }
        assert_eq!(mac_token_header(&full[..11]), Err(CryptoError::Malformed));
        let mut longer = full.clone();
        longer.push(0);
        assert_eq!(mac_token_header(&longer), Err(CryptoError::Malformed));
    }

    #[test]
    fn fuzz_helper_survives_junk() {
        for junk in [&b""[..], b"TRS!\0\0\0\x01abcd", &[0x21; 50]] {
            fuzz_mac_token(junk);
        }
    }
}
