//! The per-stream AEAD: stream key derivation and chunk sealing/opening.

use hmac::Mac;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::{COMMITMENT_LEN, ChunkSize, Context, MAX_STREAM_CHUNKS, SecretKey, TAG_LEN};
use crate::CryptoError;

/// The label opening the HMAC input that derives the stream key (every
/// stream version: the version byte is in the header the key binds).
const KEY_LABEL: &[u8] = b"tresor/stream v1 key";
/// The label hashed in front of the stream key to make its commitment.
const COMMIT_LABEL: &[u8] = b"tresor/stream v1 commitment";

/// The per-stream AEAD key and chunk counter, shared by sealer and opener.
pub(super) struct ChunkCipher {
    key: LessSafeKey,
    pub(super) chunk_size: ChunkSize,
    /// Index of the next chunk.
    pub(super) next: u64,
}

impl ChunkCipher {
    /// Derives the stream key and its commitment from the data key, the
    /// header without commitment, and the context.
    pub(super) fn derive(
        data_key: &SecretKey,
        bound_header: &[u8],
        context: &Context,
        chunk_size: ChunkSize,
    ) -> Result<(Self, [u8; COMMITMENT_LEN]), CryptoError> {
        let label_len = u32::try_from(KEY_LABEL.len())
            .map_err(|_| CryptoError::TooLarge)?
            .to_be_bytes();
        let mut prf = data_key.prf().clone();
        prf.update(&label_len);
        prf.update(KEY_LABEL);
        prf.update(bound_header);
        context.encode(|part| prf.update(part))?;
        let stream_key = Zeroizing::new(<[u8; 32]>::from(prf.finalize().into_bytes()));
        let commitment: [u8; COMMITMENT_LEN] = Sha256::new()
            .chain_update(COMMIT_LABEL)
            .chain_update(&stream_key[..])
            .finalize()
            .into();
        let key = UnboundKey::new(&AES_256_GCM, &stream_key[..])
            .map_err(|_| CryptoError::InvalidKeyLength)?;
        let cipher = Self {
            key: LessSafeKey::new(key),
            chunk_size,
            next: 0,
        };
        Ok((cipher, commitment))
    }

    /// The nonce of the next chunk (11-byte big-endian index, then the last
    /// flag), and advances the counter.
    fn next_nonce(&mut self, last: bool) -> Result<Nonce, CryptoError> {
        if self.next >= MAX_STREAM_CHUNKS {
            return Err(CryptoError::TooLarge);
        }
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&self.next.to_be_bytes());
        nonce[11] = u8::from(last);
        self.next += 1;
        Ok(Nonce::assume_unique_for_key(nonce))
    }

    pub(super) fn seal(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<(), CryptoError> {
        let full = self.chunk_size.bytes();
        let ok_len = if last {
            buf.len() <= full
        } else {
            buf.len() == full
        };
        if !ok_len {
            return Err(CryptoError::Malformed);
        }
        let nonce = self.next_nonce(last)?;
        reserve_zeroizing(buf, TAG_LEN);
        self.key
            .seal_in_place_append_tag(nonce, Aad::empty(), buf)
            // Only for inputs beyond GCM's limit, far above 16 MiB.
            .map_err(|_| CryptoError::TooLarge)
    }

    pub(super) fn open(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<(), CryptoError> {
        const U: CryptoError = CryptoError::Unauthentic;
        let full = self.chunk_size.sealed_bytes();
        let ok_len = if last {
            (TAG_LEN..=full).contains(&buf.len())
        } else {
            buf.len() == full
        };
        if !ok_len {
            return Err(U);
        }
        let nonce = self.next_nonce(last).map_err(|_| U)?;
        match self.key.open_in_place(nonce, Aad::empty(), &mut buf[..]) {
            Ok(plaintext) => {
                let n = plaintext.len();
                buf.truncate(n);
                Ok(())
            }
            Err(_) => {
                buf.zeroize();
                Err(U)
            }
        }
    }
}

/// Makes room for `extra` more bytes without leaving an unwiped copy of the
/// old contents behind: a reallocation copies into a fresh buffer and wipes
/// the old one. Callers that size their buffers for the tag never pay it.
fn reserve_zeroizing(buf: &mut Vec<u8>, extra: usize) {
    if buf.capacity() - buf.len() >= extra {
        return;
    }
    let mut bigger = Vec::with_capacity(buf.len() + extra);
    bigger.extend_from_slice(buf);
    buf.zeroize();
    *buf = bigger;
}
