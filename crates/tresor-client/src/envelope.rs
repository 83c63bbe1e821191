//! Streaming envelope encryption: payloads of any size sealed on the
//! client under a data key from tresor, in the stream envelope format of
//! [`tresor_crypto::StreamSealer`] (`docs/FORMAT.md`, "Stream envelope").
//!
//! Sealing costs one GenerateDataKey call per stream and opening one
//! DecryptDataKey call (of the 120-byte wrapped data key): the payload
//! never leaves the client.
//!
//! **Opening checks who could have sealed.** [`Client::open_stream`] takes
//! the key ids the caller expects and refuses a stream that names another
//! key before asking tresor anything, so a stream wrapped under a key some
//! other tenant controls (and granted you Decrypt on) is not accepted as
//! yours. Streams are written in version 2, whose wrapped key only
//! GenerateDataKey can make; version 1 streams (whose wrapped key any
//! Encrypt caller could make) open only on a client
//! [`accepting legacy streams`](Client::accepting_legacy_streams). Memory stays at one chunk buffer (64 KiB by default)
//! plus whatever the reader and writer buffer, whatever the payload size.
//!
//! **Opening writes as it goes.** [`Client::open_stream`] writes each chunk
//! as soon as it is authenticated, so when it fails (a tampered or
//! truncated stream) the writer has already received a prefix of the
//! plaintext. Each chunk written is authentic, but the whole is not until
//! `open_stream` returns `Ok`: discard the output on error, for example by
//! writing to a temporary file and renaming it only on success (as
//! `examples/stream_file.rs` does).

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use super::{Client, ClientError};
use tresor_crypto::CryptoError;
use tresor_crypto::{
    ChunkSize, Context, STREAM_CHUNK_OVERHEAD, STREAM_FIXED_HEADER_LEN, SecretBytes, SecretKey,
    StreamHeader, StreamOpener, StreamParams, StreamSealer, StreamVersion,
};

/// Why sealing or opening a stream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The input is not a stream envelope this build can read: wrong magic
    /// or version, a header cut short, a chunk size out of range.
    #[error("not a tresor stream envelope (or of a version this build cannot read)")]
    Malformed,
    /// The stream names a key that is not among those the caller said it
    /// expects; nothing was asked of tresor.
    #[error("the stream was sealed under key {found:?}, which is not one this call accepts")]
    UnexpectedKey {
        /// The key id the stream's header names (not secret).
        found: String,
    },
    /// A version 1 stream, refused because its wrapped key could have been
    /// made by anyone allowed to Encrypt under the key (see
    /// [`Client::accepting_legacy_streams`]).
    #[error(
        "a version 1 stream: its data key is not proven to come from GenerateDataKey; open it with a client accepting legacy streams only if you trust who sealed it, then re-seal it"
    )]
    LegacyStream,
    /// The stream does not open under this context: it was changed,
    /// truncated, reordered or spliced, or the context is wrong. Any output
    /// already written must be discarded.
    #[error(
        "the stream does not authenticate under this context (tampered with, truncated, or the wrong context); discard any output already written"
    )]
    Unauthentic,
    /// tresor refused the data-key call (permission, key state) or could
    /// not be reached.
    #[error(transparent)]
    Service(#[from] ClientError),
    /// Reading the input or writing the output failed.
    #[error("stream I/O: {0}")]
    Io(#[from] io::Error),
    /// A local cryptographic failure: the random generator failed, or the
    /// stream exceeded its chunk limit.
    #[error("stream crypto: {0}")]
    Crypto(CryptoError),
}

impl From<CryptoError> for StreamError {
    fn from(err: CryptoError) -> Self {
        match err {
            CryptoError::Malformed => Self::Malformed,
            CryptoError::Unauthentic => Self::Unauthentic,
            other => Self::Crypto(other),
        }
    }
}

/// What one sealed or opened stream amounted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSummary {
    /// Bytes read from the reader (plaintext when sealing, the stream when
    /// opening).
    pub bytes_in: u64,
    /// Bytes written to the writer.
    pub bytes_out: u64,
    /// Chunks sealed or opened, the last one included.
    pub chunks: u64,
    /// The version of the tresor key that wrapped the data key.
    pub key_version: u32,
}

impl Client {
    /// Seals everything `reader` yields into `writer` as one stream under a
    /// fresh data key of `key_id`, bound to `context`, in chunks of
    /// [`ChunkSize::DEFAULT`] (64 KiB). Flushes `writer` at the end but
    /// does not shut it down.
    ///
    /// # Errors
    ///
    /// [`StreamError::Service`] if tresor refuses the data key (no
    /// GenerateDataKey grant, key disabled...), [`StreamError::Io`] if
    /// reading or writing fails.
    pub async fn seal_stream<R, W>(
        &self,
        key_id: &str,
        context: &HashMap<String, String>,
        reader: R,
        writer: W,
    ) -> Result<StreamSummary, StreamError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        self.seal_stream_chunked(key_id, context, ChunkSize::DEFAULT, reader, writer)
            .await
    }

    /// [`Client::seal_stream`] with another chunk size (1 KiB to 16 MiB; the
    /// opener uses whatever the header says).
    ///
    /// # Errors
    ///
    /// As [`Client::seal_stream`].
    pub async fn seal_stream_chunked<R, W>(
        &self,
        key_id: &str,
        context: &HashMap<String, String>,
        chunk_size: ChunkSize,
        reader: R,
        writer: W,
    ) -> Result<StreamSummary, StreamError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        self.seal_with(key_id, context, chunk_size, None, reader, writer)
            .await
    }

    /// Seals a stream whose length is `known_len` when given (so that a
    /// cached data key may serve it, see [`super::DataKeyCache`]); a stream
    /// of unknown length always gets a fresh data key.
    async fn seal_with<R, W>(
        &self,
        key_id: &str,
        context: &HashMap<String, String>,
        chunk_size: ChunkSize,
        known_len: Option<u64>,
        mut reader: R,
        mut writer: W,
    ) -> Result<StreamSummary, StreamError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let data_key = self
            .data_key_for_encryption(key_id, context, known_len)
            .await?;
        let (wrapped_key, key_version) = (&data_key.wrapped, data_key.key_version);
        let crypto_context = to_context(context);
        let sealer = StreamSealer::new(
            &data_key.key,
            &StreamParams {
                key_id,
                wrapped_key,
                context: &crypto_context,
                chunk_size,
            },
        )?;
        drop(data_key);
        writer.write_all(sealer.header()).await?;
        let mut summary = StreamSummary {
            bytes_in: 0,
            bytes_out: len_u64(sealer.header().len()),
            chunks: 0,
            key_version,
        };
        pump(
            sealer,
            chunk_size.bytes(),
            &mut reader,
            &mut writer,
            &mut summary,
        )
        .await?;
        Ok(summary)
    }

    /// Opens a stream made by [`Client::seal_stream`] from `reader` into
    /// `writer`: reads the header, checks that the key id it names is one
    /// of `key_ids` (the keys the caller expects its data under), has
    /// tresor unwrap the data key under it (one DecryptDataKey call, which
    /// needs the Decrypt grant on that key and exactly the sealing
    /// `context`), then decrypts chunk by chunk. Flushes `writer` at the
    /// end but does not shut it down.
    ///
    /// **Writes as it goes**: on error the writer has received a prefix of
    /// the plaintext (authentic chunks, but maybe not all of them), which
    /// must be discarded: write to a temporary file and rename it on
    /// success (as `examples/stream_file.rs` does).
    ///
    /// # Errors
    ///
    /// - [`StreamError::Malformed`] if the input is not a stream envelope.
    /// - [`StreamError::UnexpectedKey`] if it names a key not in `key_ids`.
    /// - [`StreamError::LegacyStream`] if it is a version 1 stream and this
    ///   client does not accept legacy streams.
    /// - [`StreamError::Unauthentic`] if it was changed, truncated,
    ///   reordered or spliced, or `context` is not the sealing context
    ///   (including when tresor refuses to unwrap the data key because of
    ///   it: an INVALID_ARGUMENT answer).
    /// - [`StreamError::Service`] if tresor refuses otherwise (permission,
    ///   key state) or cannot be reached; [`StreamError::Io`] for I/O.
    pub async fn open_stream<R, W>(
        &self,
        key_ids: &[&str],
        context: &HashMap<String, String>,
        mut reader: R,
        mut writer: W,
    ) -> Result<StreamSummary, StreamError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut head = vec![0u8; STREAM_FIXED_HEADER_LEN];
        read_header_part(&mut reader, &mut head).await?;
        head.resize(StreamHeader::total_len(&head)?, 0);
        read_header_part(&mut reader, &mut head[STREAM_FIXED_HEADER_LEN..]).await?;
        let (header, _) = StreamHeader::parse(&head)?;
        if !key_ids.contains(&header.key_id()) {
            return Err(StreamError::UnexpectedKey {
                found: header.key_id().to_owned(),
            });
        }
        if header.version() == StreamVersion::V1 && !self.legacy_streams {
            return Err(StreamError::LegacyStream);
        }

        let (data_key, key_version) = self.unwrap_stream_key(&header, context).await?;
        let opener = StreamOpener::new(&data_key, &header, &to_context(context))?;
        drop(data_key);
        let mut summary = StreamSummary {
            bytes_in: len_u64(head.len()),
            bytes_out: 0,
            chunks: 0,
            key_version,
        };
        let sealed = opener.chunk_size().sealed_bytes();
        pump(opener, sealed, &mut reader, &mut writer, &mut summary).await?;
        Ok(summary)
    }

    /// Seals a payload held in memory as one stream (as
    /// [`Client::seal_stream`]).
    ///
    /// # Errors
    ///
    /// As [`Client::seal_stream`].
    pub async fn seal_bytes(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &HashMap<String, String>,
    ) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::new();
        let len = u64::try_from(plaintext.len()).unwrap_or(u64::MAX);
        self.seal_with(
            key_id,
            context,
            ChunkSize::DEFAULT,
            Some(len),
            plaintext,
            &mut out,
        )
        .await?;
        Ok(out)
    }

    /// Opens a stream held in memory; the plaintext comes back zeroizing,
    /// and nothing of it survives an error.
    ///
    /// # Errors
    ///
    /// As [`Client::open_stream`].
    pub async fn open_bytes(
        &self,
        key_ids: &[&str],
        stream: &[u8],
        context: &HashMap<String, String>,
    ) -> Result<SecretBytes, StreamError> {
        // The plaintext is shorter than the stream: no reallocation leaves
        // an unwiped copy behind.
        let mut out = Zeroizing::new(Vec::with_capacity(stream.len()));
        self.open_stream(key_ids, context, stream, &mut *out)
            .await?;
        Ok(SecretBytes::new(std::mem::take(&mut *out)))
    }

    /// Has tresor unwrap a stream's data key; a refusal for invalid input
    /// (tampered wrapped key, wrong context) means the stream does not
    /// authenticate.
    async fn unwrap_stream_key(
        &self,
        header: &StreamHeader<'_>,
        context: &HashMap<String, String>,
    ) -> Result<(Arc<SecretKey>, u32), StreamError> {
        let unwrapped = self
            .unwrap_data_key(
                header.key_id(),
                context,
                header.wrapped_key(),
                header.version(),
            )
            .await;
        match unwrapped {
            Ok(unwrapped) => Ok(unwrapped),
            Err(ClientError::InvalidCiphertext | ClientError::InvalidArgument(_)) => {
                Err(StreamError::Unauthentic)
            }
            Err(other) => Err(other.into()),
        }
    }
}

/// Sealing or opening one chunk in place: what [`pump`] drives.
trait ChunkTransform: Sized {
    /// Transforms a full chunk that is not the last.
    fn chunk(&mut self, buf: &mut Vec<u8>) -> Result<(), CryptoError>;
    /// Transforms the last chunk, ending the stream.
    fn last(self, buf: &mut Vec<u8>) -> Result<(), CryptoError>;
}

impl ChunkTransform for StreamSealer {
    fn chunk(&mut self, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.seal_chunk(buf)
    }
    fn last(self, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.seal_last(buf)
    }
}

impl ChunkTransform for StreamOpener {
    fn chunk(&mut self, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.open_chunk(buf)
    }
    fn last(self, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.open_last(buf)
    }
}

/// Reads `unit`-byte chunks, transforms each in place and writes it, until
/// the reader ends; then flushes. Reads one byte ahead, so the chunk the
/// input ends with, and only that one, is the last (a payload of whole
/// chunks ends with a full last chunk, not an empty one). Holds one
/// zeroizing buffer of `unit + 16` bytes, never reallocated.
async fn pump<T, R, W>(
    transform: T,
    unit: usize,
    reader: &mut R,
    writer: &mut W,
    summary: &mut StreamSummary,
) -> Result<(), StreamError>
where
    T: ChunkTransform,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut transform = Some(transform);
    let mut buf = Zeroizing::new(Vec::with_capacity(unit + STREAM_CHUNK_OVERHEAD));
    while let Some(mut current) = transform.take() {
        fill(reader, &mut buf, unit + 1).await?;
        let lookahead = buf.get(unit).copied();
        buf.truncate(unit);
        summary.bytes_in += len_u64(buf.len());
        if lookahead.is_some() {
            current.chunk(&mut buf)?;
            transform = Some(current);
        } else {
            current.last(&mut buf)?;
        }
        writer.write_all(&buf).await?;
        summary.bytes_out += len_u64(buf.len());
        summary.chunks += 1;
        buf.clear();
        buf.extend(lookahead);
    }
    writer.flush().await?;
    Ok(())
}

/// The SDK's context map as the crypto layer's [`Context`].
fn to_context(context: &HashMap<String, String>) -> Context {
    context
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// A buffer length as a byte count (usize is at most 64 bits).
fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Reads exactly `buf.len()` header bytes; an input that ends first is not
/// a stream.
async fn read_header_part<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> Result<(), StreamError> {
    match reader.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(StreamError::Malformed),
        Err(e) => Err(e.into()),
    }
}

/// Appends from `reader` until `buf` holds `want` bytes or the reader
/// ends. `buf` must have capacity for `want` bytes: it is never
/// reallocated, so plaintext leaves no unwiped copy behind.
async fn fill<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    want: usize,
) -> io::Result<()> {
    let mut filled = buf.len();
    buf.resize(want.max(filled), 0);
    while filled < want {
        match reader.read(&mut buf[filled..]).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(())
}
