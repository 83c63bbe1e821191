//! Sealing and opening messages (format v1).
//!
//! Per message: a random 256-bit salt; HKDF-SHA256 over the key, salt and
//! binding yields a one-time AES-256-GCM key and a key commitment; the whole
//! header is the GCM additional data. See `docs/FORMAT.md`.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::format::{
    self, COMMITMENT_LEN, EnvelopeWriter, KDF_LABEL, MESSAGE_KEY_LEN, NONCE, OKM_LEN, PREFIX_LEN,
    SALT_LEN,
};
use super::{Binding, Envelope, Purpose, SecretBytes, SecretKey};
use crate::error::CryptoError;

/// Encrypts `plaintext` under `key`, bound to `binding`.
///
/// Every call draws a fresh random salt, so sealing the same plaintext twice
/// gives different ciphertexts. The result is
/// `plaintext.len() + CIPHERTEXT_OVERHEAD` bytes long.
///
/// # Errors
///
/// - [`CryptoError::Rng`] if the system random number generator fails.
/// - [`CryptoError::TooLarge`] if the plaintext is larger than AES-GCM allows
///   (about 64 GiB), or the key id or a context field is longer than 4 GiB.
/// - [`CryptoError::Malformed`] if `binding.key_version` is 0 for
///   [`Purpose::Data`] or [`Purpose::WrapDataKey`]: such a ciphertext would
///   violate the format (this is a caller bug).
pub fn seal(
    key: &SecretKey,
    binding: &Binding<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if !format::key_version_allowed(binding.purpose, binding.key_version) {
        return Err(CryptoError::Malformed);
    }
    let context_digest = binding.context.digest()?;
    let prefix = format::header_prefix(binding.key_version);
    let mut salt = [0u8; SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| CryptoError::Rng)?;

    let keys = MessageKeys::derive(
        key,
        binding.purpose,
        &prefix,
        &salt,
        binding.key_id,
        &context_digest,
    )?;
    let mut writer = EnvelopeWriter::new(&prefix, &salt, &keys.commitment, plaintext)?;
    let (header, body) = writer.header_and_body();
    let tag = keys
        .aead
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(NONCE), Aad::from(header), body)
        // ring refuses only inputs longer than the GCM limit, which
        // `EnvelopeWriter::new` has already checked.
        .map_err(|_| CryptoError::TooLarge)?;
    Ok(writer.finish(&tag))
}

/// Decrypts and authenticates `ciphertext` made by [`seal`] under `key` and
/// exactly this `binding`.
///
/// Callers read the key version with
/// [`Envelope::parse`](super::Envelope::parse), look up that key version,
/// and pass the same version in `binding`.
///
/// # Errors
///
/// - [`CryptoError::Malformed`] if the bytes do not parse as a ciphertext of
///   a known format version.
/// - [`CryptoError::Unauthentic`] for every other failure: wrong key, key id,
///   key version, context or purpose, or any tampering. Deliberately coarse.
pub fn open(
    key: &SecretKey,
    binding: &Binding<'_>,
    ciphertext: &[u8],
) -> Result<SecretBytes, CryptoError> {
    const U: CryptoError = CryptoError::Unauthentic;
    let envelope = Envelope::parse(ciphertext)?;
    if envelope.key_version() != binding.key_version
        || !format::key_version_allowed(binding.purpose, binding.key_version)
    {
        return Err(U);
    }
    // A context or key id too large to encode cannot have been sealed.
    let context_digest = binding.context.digest().map_err(|_| U)?;
    let keys = MessageKeys::derive(
        key,
        binding.purpose,
        envelope.prefix(),
        envelope.salt(),
        binding.key_id,
        &context_digest,
    )
    .map_err(|_| U)?;

    // Key commitment first: a ciphertext opens under exactly one key.
    if !constant_time_eq(&keys.commitment, envelope.commitment()) {
        return Err(U);
    }

    let mut buf = Zeroizing::new(envelope.ciphertext().to_vec());
    keys.aead
        .open_in_place_separate_tag(
            Nonce::assume_unique_for_key(NONCE),
            Aad::from(envelope.header()),
            Tag::from(*envelope.tag()),
            &mut buf,
            0..,
        )
        .map_err(|_| U)?;
    Ok(SecretBytes::from_zeroizing(buf))
}

/// The keys derived for one message.
pub(crate) struct MessageKeys {
    /// The one-time AES-256-GCM key.
    pub(crate) aead: LessSafeKey,
    /// The key commitment written to (or expected in) the header.
    pub(crate) commitment: [u8; COMMITMENT_LEN],
}

impl MessageKeys {
    /// The v1 key schedule:
    ///
    /// ```text
    /// PRK  = HKDF-Extract(salt, key)
    /// info = u32be(len(label)) || label || purpose code (1 byte)
    ///        || header prefix (8 bytes: magic, format version, key version)
    ///        || u32be(len(key_id)) || key_id
    ///        || SHA-256(canonical context bytes)
    /// OKM  = HKDF-Expand(PRK, info, 64)
    /// message key = OKM[0..32], commitment = OKM[32..64]
    /// ```
    ///
    /// # Errors
    ///
    /// [`CryptoError::TooLarge`] if the key id is longer than `u32::MAX`
    /// bytes.
    pub(crate) fn derive(
        key: &SecretKey,
        purpose: Purpose,
        prefix: &[u8; PREFIX_LEN],
        salt: &[u8; SALT_LEN],
        key_id: &str,
        context_digest: &[u8; 32],
    ) -> Result<Self, CryptoError> {
        // `KDF_LABEL` is a short constant: its length always fits in a u32.
        let label_len = u32::try_from(KDF_LABEL.len())
            .map_err(|_| CryptoError::TooLarge)?
            .to_be_bytes();
        let key_id_len = u32::try_from(key_id.len())
            .map_err(|_| CryptoError::TooLarge)?
            .to_be_bytes();
        let purpose_code = [format::purpose_code(purpose)];
        let info: [&[u8]; 7] = [
            &label_len,
            KDF_LABEL,
            &purpose_code,
            prefix,
            &key_id_len,
            key_id.as_bytes(),
            context_digest,
        ];

        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(key.expose());
        let mut okm = Zeroizing::new([0u8; OKM_LEN]);
        // Expanding fails only if the requested length exceeds 255 * 32
        // bytes; OKM_LEN is 64. Map it anyway rather than panic.
        prk.expand(&info, OkmLen)
            .and_then(|expanded| expanded.fill(&mut okm[..]))
            .map_err(|_| CryptoError::TooLarge)?;

        let (message_key, commitment) = okm.split_at(MESSAGE_KEY_LEN);
        let aead = UnboundKey::new(&AES_256_GCM, message_key)
            .map_err(|_| CryptoError::InvalidKeyLength)?;
        let mut out = Self {
            aead: LessSafeKey::new(aead),
            commitment: [0u8; COMMITMENT_LEN],
        };
        out.commitment.copy_from_slice(commitment);
        Ok(out)
    }
}

/// The HKDF output length of the v1 key schedule.
struct OkmLen;

impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        OKM_LEN
    }
}

/// Compares two commitments without an early exit, so the time taken does
/// not depend on where they differ. (`ring::constant_time` is deprecated.)
fn constant_time_eq(a: &[u8; COMMITMENT_LEN], b: &[u8; COMMITMENT_LEN]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
