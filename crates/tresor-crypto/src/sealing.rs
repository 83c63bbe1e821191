//! Sealing (format v2) and opening (formats v1 and v2) messages.
//!
//! Per message: a random 256-bit salt; a PRF over the key, salt and binding
//! yields a one-time AES-256-GCM key and a key commitment; the whole header
//! is the GCM additional data. v1 derives with HKDF-SHA256 (extract with
//! the salt, then expand); v2 with one HMAC-SHA256 keyed by the long-term
//! key, whose keyed state [`SecretKey`] keeps ready, and hashes the message
//! key into the commitment. See `docs/FORMAT.md`.

use hmac::Mac;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use ring::hkdf;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::format::{
    self, COMMIT_LABEL_V2, COMMITMENT_LEN, CURRENT_FORMAT_VERSION, EnvelopeWriter,
    FORMAT_VERSION_V1, FORMAT_VERSION_V2, KDF_LABEL_V1, KDF_LABEL_V2, MESSAGE_KEY_LEN, NONCE,
    OKM_LEN, PREFIX_LEN, SALT_LEN,
};
use super::{Binding, Context, Envelope, Purpose, SecretBytes, SecretKey, salt};
use crate::CryptoError;

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
    let prefix = format::header_prefix(CURRENT_FORMAT_VERSION, binding.key_version);
    let salt = salt::fresh_salt()?;

    let keys = MessageKeys::derive(
        key,
        binding.purpose,
        &prefix,
        &salt,
        binding.key_id,
        binding.context,
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
    let keys = MessageKeys::derive(
        key,
        binding.purpose,
        envelope.prefix(),
        envelope.salt(),
        binding.key_id,
        binding.context,
    )
    .map_err(|_| U)?;

    // Key commitment first: a ciphertext opens under exactly one key.
    if !bool::from(keys.commitment[..].ct_eq(&envelope.commitment()[..])) {
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
    /// The key schedule of the format version in `prefix` (byte 3).
    ///
    /// v1:
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
    /// v2: one HMAC keyed by the long-term key, whose keyed state
    /// [`SecretKey`] keeps, over about two SHA-256 blocks; the context goes
    /// in as its canonical bytes (self-delimiting, and last), which for
    /// typical contexts is shorter than a digest and saves hashing it apart:
    ///
    /// ```text
    /// message key = HMAC-SHA256(key, u32be(len(label)) || label
    ///                 || purpose code || header prefix || salt
    ///                 || u32be(len(key_id)) || key_id
    ///                 || canonical context bytes)
    /// commitment  = SHA-256("tresor/v2 commitment" || message key)
    /// ```
    ///
    /// # Errors
    ///
    /// [`CryptoError::TooLarge`] if the key id or context cannot be encoded
    /// (a field longer than `u32::MAX` bytes); [`CryptoError::Malformed`]
    /// for an unknown format version.
    pub(crate) fn derive(
        key: &SecretKey,
        purpose: Purpose,
        prefix: &[u8; PREFIX_LEN],
        salt: &[u8; SALT_LEN],
        key_id: &str,
        context: &Context,
    ) -> Result<Self, CryptoError> {
        let label = match prefix[3] {
            FORMAT_VERSION_V1 => KDF_LABEL_V1,
            FORMAT_VERSION_V2 => KDF_LABEL_V2,
            _ => return Err(CryptoError::Malformed),
        };
        // The labels are short constants: their lengths always fit in a u32.
        let label_len = u32::try_from(label.len())
            .map_err(|_| CryptoError::TooLarge)?
            .to_be_bytes();
        let key_id_len = u32::try_from(key_id.len())
            .map_err(|_| CryptoError::TooLarge)?
            .to_be_bytes();
        let purpose_code = [format::purpose_code(purpose)];
        let mut okm = Zeroizing::new([0u8; OKM_LEN]);
        if prefix[3] == FORMAT_VERSION_V1 {
            let context_digest = context.digest()?;
            let info: [&[u8]; 7] = [
                &label_len,
                label,
                &purpose_code,
                prefix,
                &key_id_len,
                key_id.as_bytes(),
                &context_digest,
            ];
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(key.expose());
            // Expanding fails only if the requested length exceeds 255 * 32
            // bytes; OKM_LEN is 64. Map it anyway rather than panic.
            prk.expand(&info, OkmLen)
                .and_then(|expanded| expanded.fill(&mut okm[..]))
                .map_err(|_| CryptoError::TooLarge)?;
        } else {
            let mut prf = key.prf().clone();
            for part in [
                &label_len[..],
                label,
                &purpose_code,
                prefix,
                salt,
                &key_id_len,
                key_id.as_bytes(),
            ] {
                prf.update(part);
            }
            context.encode(|chunk| prf.update(chunk))?;
            let (message_key, commitment) = okm.split_at_mut(MESSAGE_KEY_LEN);
            message_key.copy_from_slice(&prf.finalize().into_bytes());
            let committed = Sha256::new()
                .chain_update(COMMIT_LABEL_V2)
                .chain_update(&*message_key)
                .finalize();
            commitment.copy_from_slice(&committed);
        }

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
