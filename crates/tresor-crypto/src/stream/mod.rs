//! The stream envelope: payloads of any size sealed in fixed-size chunks
//! under one data key, with the STREAM construction (Hoang, Reyhanitabar,
//! Rogaway, Vizár 2015) over AES-256-GCM. Pure: no I/O, no async.
//!
//! `docs/FORMAT.md` ("Stream envelope") describes every byte. In short:
//!
//! ```text
//! header  = "TRSS" || 0x01 || u32be(chunk size) || u16be(len(key id))
//!           || u16be(len(wrapped key)) || salt (32, random per stream)
//!           || key id || wrapped key || commitment (32)
//! stream key = HMAC-SHA256(data key, u32be(20) || "tresor/stream v1 key"
//!                || header without the commitment || canonical context)
//! commitment = SHA-256("tresor/stream v1 commitment" || stream key)
//! chunk i = AES-256-GCM(stream key, nonce = u88be(i) || last flag, aad = "",
//!                       plaintext chunk i) (ciphertext || 16-byte tag)
//! ```
//!
//! Every chunk holds exactly `chunk size` plaintext bytes except the last,
//! which holds 0 to `chunk size` bytes and is the only one sealed with the
//! last flag 1. Since each chunk's position and "last or not" are in its
//! nonce, reordering, dropping, truncating at any point, appending after the
//! last chunk, and splicing chunks of another stream (another salt, hence
//! another stream key) all fail authentication.
//!
//! The header is bound through the key derivation rather than as GCM
//! additional data: any change to it (salt, chunk size, key id, wrapped key)
//! changes the stream key, and the opener checks the commitment before any
//! chunk is decrypted. The fresh salt makes the stream key unique per
//! stream even when one data key seals many streams (a data-key cache), so
//! chunk counters may start at 0 in every stream.
//!
//! Use [`StreamSealer`] to write (header, then [`StreamSealer::seal_chunk`]
//! for each full chunk, then [`StreamSealer::seal_last`]) and
//! [`StreamHeader`] with [`StreamOpener`] to read. Both transform one chunk
//! in place in a caller's buffer; callers keep plaintext in a zeroizing
//! buffer (`zeroize::Zeroizing<Vec<u8>>`) with room for the tag, so sealing
//! and opening never reallocate. Errors are coarse like the rest of this
//! module: [`CryptoError::Malformed`] for a header this build cannot parse,
//! [`CryptoError::Unauthentic`] for every other failure while opening.

use std::fmt;

use subtle::ConstantTimeEq;

use super::format::{COMMITMENT_LEN, SALT_LEN, TAG_LEN};
use super::{Context, SecretKey, salt};
use crate::CryptoError;
use cipher::ChunkCipher;
use header::bound_header;

mod cipher;
mod fuzz;
mod header;
#[cfg(test)]
mod tests;

pub use fuzz::fuzz_stream;
pub use header::{StreamHeader, StreamVersion};

/// Length of the fixed part of the header: magic, version, chunk size, the
/// two lengths and the salt.
pub const STREAM_FIXED_HEADER_LEN: usize = 4 + 1 + 4 + 2 + 2 + SALT_LEN;
/// The longest key id a stream header may carry (tresor's own key ids are
/// at most 128 bytes; the format leaves room).
pub const MAX_STREAM_KEY_ID_LEN: usize = 1024;
/// The longest wrapped data key a stream header may carry (a format v2
/// wrapped key is 120 bytes).
pub const MAX_WRAPPED_KEY_LEN: usize = 1024;
/// The longest header: what an opener must be ready to buffer.
pub const MAX_STREAM_HEADER_LEN: usize =
    STREAM_FIXED_HEADER_LEN + MAX_STREAM_KEY_ID_LEN + MAX_WRAPPED_KEY_LEN + COMMITMENT_LEN;
/// Bytes a chunk's ciphertext is longer than its plaintext (the GCM tag).
pub const STREAM_CHUNK_OVERHEAD: usize = TAG_LEN;
/// The most chunks one stream may have (2^32: 256 TiB at the default chunk
/// size, 64 PiB at the largest). The nonce has room for 2^88; the bound
/// keeps the data under one stream key well inside AES-GCM's limits.
pub const MAX_STREAM_CHUNKS: u64 = 1 << 32;

const _: () = assert!(STREAM_FIXED_HEADER_LEN == 45);
const _: () = assert!(MAX_STREAM_KEY_ID_LEN <= u16::MAX as usize);
const _: () = assert!(MAX_WRAPPED_KEY_LEN <= u16::MAX as usize);

/// The plaintext size of every chunk but the last: a power of two from
/// 1 KiB to 16 MiB. Checked when built and when read from a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSize(u32);

impl ChunkSize {
    /// The smallest chunk size, 1 KiB.
    pub const MIN: Self = Self(1 << 10);
    /// The largest chunk size, 16 MiB.
    pub const MAX: Self = Self(1 << 24);
    /// The default chunk size, 64 KiB: the tag costs 0.02 %, and the SDK's
    /// one chunk buffer stays small.
    pub const DEFAULT: Self = Self(1 << 16);

    /// A chunk size of `bytes`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] unless `bytes` is a power of two from
    /// [`ChunkSize::MIN`] to [`ChunkSize::MAX`].
    pub fn new(bytes: u32) -> Result<Self, CryptoError> {
        if bytes.is_power_of_two() && (Self::MIN.0..=Self::MAX.0).contains(&bytes) {
            Ok(Self(bytes))
        } else {
            Err(CryptoError::Malformed)
        }
    }

    /// Plaintext bytes per full chunk.
    #[must_use]
    pub fn bytes(self) -> usize {
        // At most 2^24: fits every usize tresor builds for (32 bits up).
        self.0 as usize
    }

    /// Ciphertext bytes per full chunk (plaintext and tag).
    #[must_use]
    pub fn sealed_bytes(self) -> usize {
        self.bytes() + STREAM_CHUNK_OVERHEAD
    }
}

impl Default for ChunkSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a new stream is sealed with, besides the data key.
#[derive(Debug, Clone, Copy)]
pub struct StreamParams<'a> {
    /// The id of the tresor key that wrapped the data key (public: the
    /// opener asks tresor to unwrap under it).
    pub key_id: &'a str,
    /// The data key wrapped by tresor (GenerateDataKey's `wrapped_key`).
    pub wrapped_key: &'a [u8],
    /// The encryption context; opening needs exactly the same pairs.
    pub context: &'a Context,
    /// Plaintext bytes per chunk.
    pub chunk_size: ChunkSize,
}

/// Seals one stream, chunk by chunk.
///
/// Write [`StreamSealer::header`] first, then for every full chunk the
/// result of [`StreamSealer::seal_chunk`], and finally that of
/// [`StreamSealer::seal_last`] (which consumes the sealer, so nothing can
/// follow). `Debug` shows no key material.
pub struct StreamSealer {
    header: Vec<u8>,
    cipher: ChunkCipher,
}

impl StreamSealer {
    /// Starts a stream under `data_key` with a fresh random salt.
    ///
    /// # Errors
    ///
    /// - [`CryptoError::Rng`] if the random generator fails.
    /// - [`CryptoError::TooLarge`] if the key id or wrapped key is longer
    ///   than [`MAX_STREAM_KEY_ID_LEN`] or [`MAX_WRAPPED_KEY_LEN`], or the
    ///   context cannot be encoded.
    pub fn new(data_key: &SecretKey, params: &StreamParams<'_>) -> Result<Self, CryptoError> {
        Self::with_version(data_key, params, StreamVersion::CURRENT)
    }

    /// [`StreamSealer::new`] in another stream version. Only to test
    /// openers against old streams: [`StreamVersion::V1`] streams are
    /// accepted only where legacy streams are allowed.
    ///
    /// # Errors
    ///
    /// As [`StreamSealer::new`].
    pub fn with_version(
        data_key: &SecretKey,
        params: &StreamParams<'_>,
        version: StreamVersion,
    ) -> Result<Self, CryptoError> {
        Self::with_salt(data_key, params, version, salt::stream_salt()?)
    }

    fn with_salt(
        data_key: &SecretKey,
        params: &StreamParams<'_>,
        version: StreamVersion,
        salt: [u8; SALT_LEN],
    ) -> Result<Self, CryptoError> {
        let mut header = bound_header(
            version,
            params.chunk_size,
            params.key_id,
            params.wrapped_key,
            &salt,
        )?;
        let (cipher, commitment) =
            ChunkCipher::derive(data_key, &header, params.context, params.chunk_size)?;
        header.extend_from_slice(&commitment);
        Ok(Self { header, cipher })
    }

    /// The header: the first bytes of the stream.
    #[must_use]
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The chunk size this stream uses.
    #[must_use]
    pub fn chunk_size(&self) -> ChunkSize {
        self.cipher.chunk_size
    }

    /// Encrypts a full, non-last chunk in place: `buf` holds exactly
    /// `chunk_size` plaintext bytes and afterwards the sealed chunk
    /// (`chunk_size + 16` bytes). Give `buf` 16 bytes of spare capacity to
    /// avoid a (wiping) reallocation.
    ///
    /// # Errors
    ///
    /// - [`CryptoError::Malformed`] if `buf` does not hold exactly one chunk
    ///   (a caller bug); `buf` is left unchanged.
    /// - [`CryptoError::TooLarge`] after [`MAX_STREAM_CHUNKS`] chunks.
    pub fn seal_chunk(&mut self, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.cipher.seal(buf, false)
    }

    /// Encrypts the last chunk (0 to `chunk_size` bytes) in place and ends
    /// the stream. A stream always has a last chunk, empty if need be.
    ///
    /// # Errors
    ///
    /// As [`StreamSealer::seal_chunk`], with `Malformed` for more than
    /// `chunk_size` bytes.
    pub fn seal_last(mut self, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.cipher.seal(buf, true)
    }
}

impl fmt::Debug for StreamSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSealer")
            .field("chunk_size", &self.cipher.chunk_size.bytes())
            .field("chunks_sealed", &self.cipher.next)
            .finish_non_exhaustive()
    }
}

/// Opens one stream, chunk by chunk, in order.
///
/// Every chunk it returns is authentic, but the stream is complete only
/// once [`StreamOpener::open_last`] succeeds: until then the plaintext
/// handed out may be a prefix of a truncated stream. `Debug` shows no key
/// material.
pub struct StreamOpener {
    cipher: ChunkCipher,
}

impl StreamOpener {
    /// Checks the header's commitment under `data_key` and `context`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Unauthentic`] if the stream was not sealed under this
    /// data key and exactly this context, or its header was changed.
    pub fn new(
        data_key: &SecretKey,
        header: &StreamHeader<'_>,
        context: &Context,
    ) -> Result<Self, CryptoError> {
        const U: CryptoError = CryptoError::Unauthentic;
        let (cipher, commitment) =
            ChunkCipher::derive(data_key, header.bound(), context, header.chunk_size())
                .map_err(|_| U)?;
        if !bool::from(commitment[..].ct_eq(&header.commitment()[..])) {
            return Err(U);
        }
        Ok(Self { cipher })
    }

    /// The chunk size of this stream.
    #[must_use]
    pub fn chunk_size(&self) -> ChunkSize {
        self.cipher.chunk_size
    }

    /// Decrypts a full, non-last chunk in place: `buf` holds exactly
    /// `chunk_size + 16` bytes and afterwards the `chunk_size` plaintext
    /// bytes. Keep `buf` in a zeroizing container.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Unauthentic`] if the chunk has the wrong length, was
    /// changed, is out of place, or is the stream's last chunk. When the
    /// tag check fails, `buf` is wiped and cleared.
    pub fn open_chunk(&mut self, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.cipher.open(buf, false)
    }

    /// Decrypts the last chunk (16 to `chunk_size + 16` bytes) in place. The
    /// stream is complete and authentic only when this succeeds.
    ///
    /// # Errors
    ///
    /// As [`StreamOpener::open_chunk`]; in particular a chunk sealed as
    /// non-last fails here (the stream was truncated).
    pub fn open_last(mut self, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.cipher.open(buf, true)
    }
}

impl fmt::Debug for StreamOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamOpener")
            .field("chunk_size", &self.cipher.chunk_size.bytes())
            .field("chunks_opened", &self.cipher.next)
            .finish_non_exhaustive()
    }
}
