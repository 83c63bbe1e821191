//! Ciphertext formats v1 and v2: the only module that knows the wire layout.
//!
//! `docs/FORMAT.md` documents every byte. Both versions share one layout and
//! differ only in the key schedule (`sealing.rs`):
//!
//! ```text
//! offset len  field
//! 0      3    magic "TRS"
//! 3      1    format version, 0x01 or 0x02 (written: 0x02)
//! 4      4    key version, u32 big-endian
//! 8      32   salt, random per message
//! 40     32   key commitment
//! 72     n    AES-256-GCM ciphertext (n = plaintext length)
//! 72+n   16   GCM tag
//! ```
//!
//! [`Envelope::parse`] and [`EnvelopeWriter`] are the one parse/encode pair.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{Binding, Context, Purpose, SecretKey};
use crate::CryptoError;

/// The magic bytes every tresor ciphertext starts with.
pub(crate) const MAGIC: [u8; 3] = *b"TRS";
/// Format version 1: HKDF-SHA256 key schedule (read only since v2).
pub(crate) const FORMAT_VERSION_V1: u8 = 0x01;
/// Format version 2: HMAC-SHA256 keyed by the long-term key (written).
pub(crate) const FORMAT_VERSION_V2: u8 = 0x02;
/// The format version [`seal`](super::seal) writes.
pub(crate) const CURRENT_FORMAT_VERSION: u8 = FORMAT_VERSION_V2;
/// Length of the header prefix (magic, format version, key version) that is
/// also fed to the key derivation.
pub(crate) const PREFIX_LEN: usize = 8;
/// Length of the per-message random salt.
pub(crate) const SALT_LEN: usize = 32;
/// Length of the key commitment.
pub(crate) const COMMITMENT_LEN: usize = 32;
/// Length of the whole header, which is also the GCM additional data.
pub(crate) const HEADER_LEN: usize = PREFIX_LEN + SALT_LEN + COMMITMENT_LEN;
/// Length of the AES-GCM tag.
pub(crate) const TAG_LEN: usize = 16;
/// Length of the AES-256-GCM message key.
pub(crate) const MESSAGE_KEY_LEN: usize = 32;
/// Number of bytes the key schedule expands to: message key, then commitment.
pub(crate) const OKM_LEN: usize = MESSAGE_KEY_LEN + COMMITMENT_LEN;
/// The GCM nonce. Constant, because every message key encrypts exactly one
/// message (see `docs/FORMAT.md`).
pub(crate) const NONCE: [u8; 12] = [0u8; 12];
/// The label that opens the HKDF `info` string of format v1.
pub(crate) const KDF_LABEL_V1: &[u8] = b"tresor/v1 message keys";
/// The label that opens the HMAC input deriving a v2 message key.
pub(crate) const KDF_LABEL_V2: &[u8] = b"tresor/v2 message key";
/// The label hashed in front of a v2 message key to make its commitment.
/// With the 32-byte key and SHA-256 padding it fits one 64-byte block.
pub(crate) const COMMIT_LABEL_V2: &[u8] = b"tresor/v2 commitment";
/// The largest plaintext AES-GCM can encrypt under one key and nonce:
/// 2^32 - 2 blocks of 16 bytes (NIST SP 800-38D).
pub(crate) const MAX_PLAINTEXT_LEN: u64 = ((1 << 32) - 2) * 16;

/// Number of bytes a ciphertext is longer than its plaintext.
pub const CIPHERTEXT_OVERHEAD: usize = HEADER_LEN + TAG_LEN;

const _: () = assert!(TAG_LEN == ring::aead::MAX_TAG_LEN);
const _: () = assert!(NONCE.len() == ring::aead::NONCE_LEN);
const _: () = assert!(CIPHERTEXT_OVERHEAD == 88);
const _: () = assert!(COMMIT_LABEL_V2.len() + MESSAGE_KEY_LEN + 9 <= 64);

/// The one-byte wire code of a purpose, fed to the key derivation.
pub(crate) const fn purpose_code(purpose: Purpose) -> u8 {
    match purpose {
        Purpose::Data => 0x01,
        Purpose::WrapDataKey => 0x02,
        Purpose::WrapRootKey => 0x03,
        Purpose::DataKey => 0x04,
    }
}

/// Whether `key_version` may appear in a ciphertext for `purpose`: data keys
/// and their wrappings are versioned from 1; the root key wrapping may use
/// any value.
pub(crate) const fn key_version_allowed(purpose: Purpose, key_version: u32) -> bool {
    match purpose {
        Purpose::Data | Purpose::DataKey | Purpose::WrapDataKey => key_version >= 1,
        Purpose::WrapRootKey => true,
    }
}

/// The first [`PREFIX_LEN`] header bytes of a ciphertext.
pub(crate) fn header_prefix(format_version: u8, key_version: u32) -> [u8; PREFIX_LEN] {
    let mut prefix = [0u8; PREFIX_LEN];
    prefix[..3].copy_from_slice(&MAGIC);
    prefix[3] = format_version;
    prefix[4..].copy_from_slice(&key_version.to_be_bytes());
    prefix
}

/// A parsed, borrowed view of a v1 or v2 ciphertext.
///
/// Parsing checks only the structure (magic, format version, lengths); it
/// says nothing about authenticity, which only [`open`](super::open) decides.
/// Callers use it to read the key version before looking up the key.
#[derive(Clone, Copy)]
pub struct Envelope<'a> {
    header: &'a [u8; HEADER_LEN],
    prefix: &'a [u8; PREFIX_LEN],
    key_version: u32,
    salt: &'a [u8; SALT_LEN],
    commitment: &'a [u8; COMMITMENT_LEN],
    ciphertext: &'a [u8],
    tag: &'a [u8; TAG_LEN],
}

impl<'a> Envelope<'a> {
    /// Splits `bytes` into the fields of a ciphertext.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] if `bytes` is shorter than
    /// [`CIPHERTEXT_OVERHEAD`], does not start with the magic, or carries a
    /// format version other than 1 or 2.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CryptoError> {
        const M: CryptoError = CryptoError::Malformed;
        let (header, rest) = bytes.split_first_chunk::<HEADER_LEN>().ok_or(M)?;
        let (ciphertext, tag) = rest.split_last_chunk::<TAG_LEN>().ok_or(M)?;

        let (prefix, rest) = header.split_first_chunk::<PREFIX_LEN>().ok_or(M)?;
        let (salt, commitment) = rest.split_first_chunk::<SALT_LEN>().ok_or(M)?;
        let commitment: &[u8; COMMITMENT_LEN] = commitment.try_into().map_err(|_| M)?;

        let (magic, rest) = prefix.split_first_chunk::<3>().ok_or(M)?;
        let (version, key_version) = rest.split_first().ok_or(M)?;
        let key_version: [u8; 4] = key_version.try_into().map_err(|_| M)?;
        if *magic != MAGIC || !matches!(*version, FORMAT_VERSION_V1 | FORMAT_VERSION_V2) {
            return Err(M);
        }

        Ok(Self {
            header,
            prefix,
            key_version: u32::from_be_bytes(key_version),
            salt,
            commitment,
            ciphertext,
            tag,
        })
    }

    /// The version of the key this ciphertext was sealed under, as written in
    /// the header (not yet authenticated).
    #[must_use]
    pub fn key_version(&self) -> u32 {
        self.key_version
    }

    /// The format version: 1 or 2 (parsing rejects others).
    #[must_use]
    pub fn format_version(&self) -> u8 {
        self.prefix[3]
    }

    /// The whole header: the GCM additional data.
    pub(crate) fn header(&self) -> &'a [u8; HEADER_LEN] {
        self.header
    }

    /// Magic, format version and key version, as fed to the key derivation.
    pub(crate) fn prefix(&self) -> &'a [u8; PREFIX_LEN] {
        self.prefix
    }

    /// The per-message salt.
    pub(crate) fn salt(&self) -> &'a [u8; SALT_LEN] {
        self.salt
    }

    /// The key commitment.
    pub(crate) fn commitment(&self) -> &'a [u8; COMMITMENT_LEN] {
        self.commitment
    }

    /// The encrypted plaintext, without the tag.
    pub(crate) fn ciphertext(&self) -> &'a [u8] {
        self.ciphertext
    }

    /// The GCM tag.
    pub(crate) fn tag(&self) -> &'a [u8; TAG_LEN] {
        self.tag
    }
}

impl fmt::Debug for Envelope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("format_version", &self.format_version())
            .field("key_version", &self.key_version)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// Builds a ciphertext in a single, exactly sized allocation: the
/// encoding counterpart of [`Envelope::parse`].
///
/// [`EnvelopeWriter::new`] writes the header followed by the *plaintext*;
/// the caller encrypts the body in place through
/// [`EnvelopeWriter::header_and_body`] and then calls
/// [`EnvelopeWriter::finish`] with the tag. A writer dropped before `finish`
/// zeroizes its buffer, so a failed seal never leaks plaintext.
pub struct EnvelopeWriter {
    buf: Vec<u8>,
}

impl EnvelopeWriter {
    /// Allocates the ciphertext and writes header and plaintext into it.
    ///
    /// # Errors
    ///
    /// [`CryptoError::TooLarge`] if the plaintext exceeds what AES-GCM can
    /// encrypt under one nonce, or the ciphertext length overflows `usize`.
    pub(crate) fn new(
        prefix: &[u8; PREFIX_LEN],
        salt: &[u8; SALT_LEN],
        commitment: &[u8; COMMITMENT_LEN],
        plaintext: &[u8],
    ) -> Result<Self, CryptoError> {
        let too_large = u64::try_from(plaintext.len()).map_or(true, |n| n > MAX_PLAINTEXT_LEN);
        let total = plaintext
            .len()
            .checked_add(CIPHERTEXT_OVERHEAD)
            .filter(|_| !too_large)
            .ok_or(CryptoError::TooLarge)?;
        let mut buf = Vec::with_capacity(total);
        buf.extend_from_slice(prefix);
        buf.extend_from_slice(salt);
        buf.extend_from_slice(commitment);
        buf.extend_from_slice(plaintext);
        Ok(Self { buf })
    }

    /// The header (GCM additional data) and the body to encrypt in place.
    pub(crate) fn header_and_body(&mut self) -> (&[u8], &mut [u8]) {
        let (header, body) = self.buf.split_at_mut(HEADER_LEN);
        (header, body)
    }

    /// Appends the tag and returns the finished ciphertext. The buffer was
    /// allocated with room for the tag, so this never reallocates.
    pub(crate) fn finish(mut self, tag: &ring::aead::Tag) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(tag.as_ref());
        buf
    }
}

impl Drop for EnvelopeWriter {
    fn drop(&mut self) {
        // Empty after `finish`; holds plaintext if sealing failed midway.
        self.buf.zeroize();
    }
}

impl ZeroizeOnDrop for EnvelopeWriter {}

/// The fixed, public test key the crypto fuzz helpers open and seal with.
/// Never a real key: it is in the source.
pub(crate) fn fuzz_key() -> SecretKey {
    // Invariant: 32 bytes is the one length `from_bytes` accepts.
    SecretKey::from_bytes(&[0x42; 32]).expect("a 32-byte key")
}

/// Fuzz entry point of the ciphertext parser, for `fuzz/fuzz_targets/ciphertext.rs`
/// and the proptest smoke test `tests/it/fuzz_smoke.rs` (nothing else calls it).
///
/// Runs [`Envelope::parse`] on `data` and checks that it accepts exactly the
/// well-formed layouts, that re-encoding the parsed fields with the writer
/// gives `data` back, and that [`open`](super::open) under a fixed, public
/// test key reports `Malformed` for what does not parse and `Unauthentic`
/// for what does (for every purpose). Then it seals `data` as a plaintext
/// under that key and checks that it opens to `data` again.
///
/// # Panics
///
/// Only when the library breaks one of these properties: a bug the fuzzer
/// reports. No input is expected to panic.
pub fn fuzz_ciphertext(data: &[u8]) {
    let well_formed = data.len() >= CIPHERTEXT_OVERHEAD
        && data.starts_with(&MAGIC)
        && matches!(data[3], FORMAT_VERSION_V1 | FORMAT_VERSION_V2);
    match Envelope::parse(data) {
        Ok(envelope) => {
            assert!(well_formed, "parse accepted a malformed ciphertext");
            assert_eq!(envelope.key_version().to_be_bytes(), data[4..PREFIX_LEN]);
            assert_eq!(envelope.format_version(), data[3]);
            let writer = EnvelopeWriter::new(
                envelope.prefix(),
                envelope.salt(),
                envelope.commitment(),
                envelope.ciphertext(),
            );
            let Ok(writer) = writer else {
                panic!("the writer refused the body of a parsed ciphertext");
            };
            let rebuilt = writer.finish(&ring::aead::Tag::from(*envelope.tag()));
            assert_eq!(rebuilt, data, "re-encoding changed the ciphertext");
            assert!(!format!("{envelope:?}").is_empty());
        }
        Err(e) => {
            assert_eq!(e, CryptoError::Malformed);
            assert!(!well_formed, "parse refused a well-formed ciphertext");
        }
    }

    let key = fuzz_key();
    let context = Context::new();
    let key_version = data
        .get(4..PREFIX_LEN)
        .and_then(|b| b.try_into().ok())
        .map_or(1, u32::from_be_bytes);
    for purpose in Purpose::ALL {
        let binding = Binding {
            purpose,
            key_id: "fuzz",
            key_version,
            context: &context,
        };
        match super::open(&key, &binding, data) {
            // Sealed under the public fuzz key: only a test can make that.
            Ok(_) => {}
            Err(CryptoError::Malformed) => assert!(!well_formed),
            Err(CryptoError::Unauthentic) => assert!(well_formed),
            Err(other) => panic!("open failed with {other:?}"),
        }
    }

    let binding = Binding {
        purpose: Purpose::Data,
        key_id: "fuzz",
        key_version: 1,
        context: &context,
    };
    match super::seal(&key, &binding, data) {
        Ok(sealed) => {
            assert_eq!(sealed.len(), data.len() + CIPHERTEXT_OVERHEAD);
            match super::open(&key, &binding, &sealed) {
                Ok(opened) => assert_eq!(opened.expose(), data, "round trip changed the plaintext"),
                Err(e) => panic!("a fresh ciphertext does not open: {e:?}"),
            }
        }
        // The system random generator failed: not the parser's concern.
        Err(CryptoError::Rng) => {}
        Err(e) => panic!("seal failed with {e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_layout() {
        assert_eq!(
            header_prefix(FORMAT_VERSION_V1, 0x0102_0304),
            [0x54, 0x52, 0x53, 0x01, 0x01, 0x02, 0x03, 0x04]
        );
        assert_eq!(
            header_prefix(FORMAT_VERSION_V2, 9),
            [0x54, 0x52, 0x53, 0x02, 0, 0, 0, 9]
        );
        assert_eq!(HEADER_LEN, 72);
        assert_eq!(OKM_LEN, 64);
        assert_eq!(MAX_PLAINTEXT_LEN, (1u64 << 36) - 32);
    }

    #[test]
    fn parse_splits_fields() {
        let mut bytes = header_prefix(FORMAT_VERSION_V1, 7).to_vec();
        bytes.extend_from_slice(&[0x11; SALT_LEN]);
        bytes.extend_from_slice(&[0x22; COMMITMENT_LEN]);
        bytes.extend_from_slice(b"body");
        bytes.extend_from_slice(&[0x33; TAG_LEN]);
        let env = Envelope::parse(&bytes).expect("well-formed");
        assert_eq!(env.key_version(), 7);
        assert_eq!(env.format_version(), 1);
        assert_eq!(env.salt(), &[0x11; SALT_LEN]);
        assert_eq!(env.commitment(), &[0x22; COMMITMENT_LEN]);
        assert_eq!(env.ciphertext(), b"body");
        assert_eq!(env.tag(), &[0x33; TAG_LEN]);
        assert_eq!(&env.header()[..], &bytes[..HEADER_LEN]);
        assert_eq!(env.prefix(), &header_prefix(FORMAT_VERSION_V1, 7));
        assert!(!format!("{env:?}").contains("17, 17"));
    }

    #[test]
    fn parse_rejects_bad_structure() {
        let mut good = header_prefix(FORMAT_VERSION_V2, 1).to_vec();
        good.resize(CIPHERTEXT_OVERHEAD, 0);
        assert!(Envelope::parse(&good).is_ok(), "empty body is fine");
        let mut v1 = good.clone();
        v1[3] = FORMAT_VERSION_V1;
        assert!(Envelope::parse(&v1).is_ok(), "v1 still parses");
        for len in 0..CIPHERTEXT_OVERHEAD {
            assert_eq!(
                Envelope::parse(&good[..len]).err(),
                Some(CryptoError::Malformed)
            );
        }
        for (i, bad) in [(0, b'X'), (1, b'X'), (2, b'X'), (3, 0x00), (3, 0x03)] {
            let mut b = good.clone();
            b[i] = bad;
            assert_eq!(Envelope::parse(&b).err(), Some(CryptoError::Malformed));
        }
    }
}
