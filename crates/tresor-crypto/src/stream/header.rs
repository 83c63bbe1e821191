//! The stream header: its versions, parsing and encoding.

use std::fmt;

use super::{
    COMMITMENT_LEN, ChunkSize, MAX_STREAM_KEY_ID_LEN, MAX_WRAPPED_KEY_LEN, SALT_LEN,
    STREAM_FIXED_HEADER_LEN,
};
use crate::CryptoError;

/// The magic bytes a stream envelope starts with.
const MAGIC: [u8; 4] = *b"TRSS";

/// A stream envelope version: the header's fifth byte. It is bound into the
/// stream key like the rest of the header, and it says what kind of
/// ciphertext the header's wrapped data key is, hence how tresor must be
/// asked to unwrap it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamVersion {
    /// Version 1 (read, no longer written): the wrapped key is an ordinary
    /// data ciphertext, unwrapped with Decrypt. Anyone allowed to Encrypt
    /// under the key can make such a "wrapped key" around a data key of its
    /// choosing, so a version 1 stream proves nothing about who sealed it:
    /// the SDK opens one only when told to accept legacy streams.
    V1,
    /// Version 2 (written): the wrapped key comes from GenerateDataKey, in
    /// a purpose of its own that only DecryptDataKey opens, so nobody but a
    /// GenerateDataKey caller can make one.
    V2,
}

impl StreamVersion {
    /// The version new streams are written in.
    pub const CURRENT: Self = Self::V2;

    /// The header byte.
    #[must_use]
    pub const fn byte(self) -> u8 {
        match self {
            Self::V1 => 0x01,
            Self::V2 => 0x02,
        }
    }

    /// The version of a header byte, if this build knows it.
    #[must_use]
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x01 => Some(Self::V1),
            0x02 => Some(Self::V2),
            _ => None,
        }
    }
}

/// A parsed, borrowed view of a stream header. Parsing checks the
/// structure only; [`StreamOpener::new`](super::StreamOpener::new) decides authenticity.
#[derive(Clone, Copy)]
pub struct StreamHeader<'a> {
    bytes: &'a [u8],
    version: StreamVersion,
    chunk_size: ChunkSize,
    key_id: &'a str,
    wrapped_key: &'a [u8],
    commitment: &'a [u8; COMMITMENT_LEN],
}

impl<'a> StreamHeader<'a> {
    /// The whole header's length, read from its first
    /// [`STREAM_FIXED_HEADER_LEN`] bytes, so that a reader knows how much
    /// more to read (at most [`MAX_STREAM_HEADER_LEN`](super::MAX_STREAM_HEADER_LEN) in all).
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] if `fixed` is shorter than
    /// [`STREAM_FIXED_HEADER_LEN`], the magic or version is wrong, the
    /// chunk size is out of range, or a length exceeds its maximum.
    pub fn total_len(fixed: &[u8]) -> Result<usize, CryptoError> {
        Fixed::parse(fixed).map(|f| f.total_len())
    }

    /// Splits `bytes` into the header and what follows it.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] as [`StreamHeader::total_len`], if
    /// `bytes` ends inside the header, or if the key id is not UTF-8.
    pub fn parse(bytes: &'a [u8]) -> Result<(Self, &'a [u8]), CryptoError> {
        const M: CryptoError = CryptoError::Malformed;
        let fixed = Fixed::parse(bytes)?;
        let (header, rest) = bytes.split_at_checked(fixed.total_len()).ok_or(M)?;
        let body = &header[STREAM_FIXED_HEADER_LEN..];
        let (key_id, body) = body.split_at_checked(fixed.key_id_len).ok_or(M)?;
        let (wrapped_key, commitment) = body.split_at_checked(fixed.wrapped_len).ok_or(M)?;
        Ok((
            Self {
                bytes: header,
                version: fixed.version,
                chunk_size: fixed.chunk_size,
                key_id: std::str::from_utf8(key_id).map_err(|_| M)?,
                wrapped_key,
                commitment: commitment.try_into().map_err(|_| M)?,
            },
            rest,
        ))
    }

    /// The whole header, as written.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The stream version (not yet authenticated): it says how the wrapped
    /// key must be unwrapped.
    #[must_use]
    pub fn version(&self) -> StreamVersion {
        self.version
    }

    /// The chunk size (not yet authenticated).
    #[must_use]
    pub fn chunk_size(&self) -> ChunkSize {
        self.chunk_size
    }

    /// The key id to unwrap the data key under (not yet authenticated).
    #[must_use]
    pub fn key_id(&self) -> &'a str {
        self.key_id
    }

    /// The wrapped data key (not yet authenticated).
    #[must_use]
    pub fn wrapped_key(&self) -> &'a [u8] {
        self.wrapped_key
    }

    /// The commitment the opener checks (the header's last bytes).
    pub(super) fn commitment(&self) -> &'a [u8; COMMITMENT_LEN] {
        self.commitment
    }

    /// The header without its commitment: what the derivation binds.
    pub(super) fn bound(&self) -> &'a [u8] {
        &self.bytes[..self.bytes.len() - COMMITMENT_LEN]
    }

    /// The salt (the last field of the fixed part).
    pub(super) fn salt(&self) -> Option<&'a [u8; SALT_LEN]> {
        self.bytes
            .get(STREAM_FIXED_HEADER_LEN - SALT_LEN..STREAM_FIXED_HEADER_LEN)?
            .try_into()
            .ok()
    }
}

impl fmt::Debug for StreamHeader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamHeader")
            .field("version", &self.version)
            .field("chunk_size", &self.chunk_size.bytes())
            .field("key_id", &self.key_id)
            .field("wrapped_key_len", &self.wrapped_key.len())
            .finish_non_exhaustive()
    }
}

/// The fixed part of a header, parsed.
struct Fixed {
    version: StreamVersion,
    chunk_size: ChunkSize,
    key_id_len: usize,
    wrapped_len: usize,
}

impl Fixed {
    fn parse(bytes: &[u8]) -> Result<Self, CryptoError> {
        const M: CryptoError = CryptoError::Malformed;
        let (magic, rest) = bytes.split_first_chunk::<4>().ok_or(M)?;
        let (version, rest) = rest.split_first().ok_or(M)?;
        let (chunk_size, rest) = rest.split_first_chunk::<4>().ok_or(M)?;
        let (key_id_len, rest) = rest.split_first_chunk::<2>().ok_or(M)?;
        let (wrapped_len, rest) = rest.split_first_chunk::<2>().ok_or(M)?;
        let version = StreamVersion::from_byte(*version).ok_or(M)?;
        if *magic != MAGIC || rest.len() < SALT_LEN {
            return Err(M);
        }
        let key_id_len = usize::from(u16::from_be_bytes(*key_id_len));
        let wrapped_len = usize::from(u16::from_be_bytes(*wrapped_len));
        if key_id_len > MAX_STREAM_KEY_ID_LEN || wrapped_len > MAX_WRAPPED_KEY_LEN {
            return Err(M);
        }
        Ok(Self {
            version,
            chunk_size: ChunkSize::new(u32::from_be_bytes(*chunk_size))?,
            key_id_len,
            wrapped_len,
        })
    }

    fn total_len(&self) -> usize {
        STREAM_FIXED_HEADER_LEN + self.key_id_len + self.wrapped_len + COMMITMENT_LEN
    }
}

/// Encodes a header without its commitment: what the key derivation binds
/// and what [`StreamHeader::parse`] reads back.
///
/// # Errors
///
/// [`CryptoError::TooLarge`] if the key id or wrapped key is longer than
/// [`MAX_STREAM_KEY_ID_LEN`] or [`MAX_WRAPPED_KEY_LEN`].
pub(super) fn bound_header(
    version: StreamVersion,
    chunk_size: ChunkSize,
    key_id: &str,
    wrapped_key: &[u8],
    salt: &[u8; SALT_LEN],
) -> Result<Vec<u8>, CryptoError> {
    let len16 = |n: usize, max: usize| {
        u16::try_from(n)
            .ok()
            .filter(|_| n <= max)
            .map(u16::to_be_bytes)
            .ok_or(CryptoError::TooLarge)
    };
    let key_id_len = len16(key_id.len(), MAX_STREAM_KEY_ID_LEN)?;
    let wrapped_len = len16(wrapped_key.len(), MAX_WRAPPED_KEY_LEN)?;
    let mut header = Vec::with_capacity(
        STREAM_FIXED_HEADER_LEN + key_id.len() + wrapped_key.len() + COMMITMENT_LEN,
    );
    header.extend_from_slice(&MAGIC);
    header.push(version.byte());
    header.extend_from_slice(&chunk_size.0.to_be_bytes());
    header.extend_from_slice(&key_id_len);
    header.extend_from_slice(&wrapped_len);
    header.extend_from_slice(salt);
    header.extend_from_slice(key_id.as_bytes());
    header.extend_from_slice(wrapped_key);
    Ok(header)
}
