//! Whole-stream helpers for tests and the fuzz entry point.

use zeroize::Zeroizing;

use super::header::bound_header;
use super::{
    ChunkSize, Context, SALT_LEN, STREAM_FIXED_HEADER_LEN, StreamHeader, StreamOpener,
    StreamParams, StreamSealer, StreamVersion, TAG_LEN,
};
use crate::CryptoError;

/// Seals `plaintext` whole, the way the SDK does: full chunks, then a last
/// chunk of 1 to `chunk_size` bytes (empty only for an empty plaintext).
/// For tests and the fuzz helper; the SDK streams instead.
pub(super) fn seal_whole(
    mut sealer: StreamSealer,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let n = sealer.chunk_size().bytes();
    let mut out = sealer.header().to_vec();
    let full_chunks = plaintext.len().saturating_sub(1) / n;
    let (full, last) = plaintext.split_at(full_chunks * n);
    let mut buf = Zeroizing::new(Vec::with_capacity(n + TAG_LEN));
    for chunk in full.chunks(n) {
        buf.clear();
        buf.extend_from_slice(chunk);
        sealer.seal_chunk(&mut buf)?;
        out.extend_from_slice(&buf);
    }
    buf.clear();
    buf.extend_from_slice(last);
    sealer.seal_last(&mut buf)?;
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Opens the chunks that follow a header, held whole in memory: a chunk
/// is the last one when at most one sealed chunk's worth of bytes is left.
/// For tests and the fuzz helper; the SDK streams instead.
pub(super) fn open_chunks(
    mut opener: StreamOpener,
    mut rest: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let full = opener.chunk_size().sealed_bytes();
    let mut out = Vec::new();
    let mut buf = Zeroizing::new(Vec::with_capacity(full));
    while rest.len() > full {
        let (chunk, tail) = rest.split_at(full);
        buf.clear();
        buf.extend_from_slice(chunk);
        opener.open_chunk(&mut buf)?;
        out.extend_from_slice(&buf);
        rest = tail;
    }
    buf.clear();
    buf.extend_from_slice(rest);
    opener.open_last(&mut buf)?;
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Fuzz entry point of the stream parser (header and chunks), for
/// `fuzz/fuzz_targets/stream.rs` and the proptest smoke test
/// `tests/it/fuzz_smoke.rs` (nothing else calls it).
///
/// 1. Parses `data` as a stream header and checks [`StreamHeader::total_len`]
///    agrees with [`StreamHeader::parse`], and that encoding the parsed
///    fields again gives the header's bytes. If the header authenticates
///    under a fixed, public test key and an empty context, opens the chunks
///    that follow.
/// 2. Opens `data` as the chunks following a genuine header sealed under
///    that key (1 KiB chunks), so that chunk splitting and opening see
///    arbitrary input; opening must fail with `Unauthentic`.
/// 3. Seals `data` as a plaintext and checks it opens to `data` again.
///
/// # Panics
///
/// Only when the library breaks one of these properties: a bug the fuzzer
/// reports. No input is expected to panic.
pub fn fuzz_stream(data: &[u8]) {
    let key = crate::format::fuzz_key();
    let context = Context::new();
    let total = StreamHeader::total_len(data);
    match StreamHeader::parse(data) {
        Ok((header, rest)) => {
            let len = header.as_bytes().len();
            assert_eq!(total, Ok(len), "total_len disagrees with parse");
            assert_eq!(len + rest.len(), data.len());
            let Some(salt) = header.salt() else {
                panic!("a parsed header has no salt");
            };
            let bound = bound_header(
                header.version(),
                header.chunk_size(),
                header.key_id(),
                header.wrapped_key(),
                salt,
            );
            assert_eq!(
                bound.as_deref(),
                Ok(header.bound()),
                "re-encoding changed the header"
            );
            assert!(!format!("{header:?}").is_empty());
            if let Ok(opener) = StreamOpener::new(&key, &header, &context) {
                // Sealed under the public fuzz key: only a test can make that.
                let _ = open_chunks(opener, rest);
            }
        }
        Err(e) => {
            assert_eq!(e, CryptoError::Malformed);
            if let Ok(len) = total
                && len <= data.len()
            {
                // Complete, so only the key id can be wrong: not UTF-8.
                let key_id = data
                    .get(9..11)
                    .and_then(|n| n.try_into().ok())
                    .map(|n| usize::from(u16::from_be_bytes(n)))
                    .and_then(|n| data.get(STREAM_FIXED_HEADER_LEN..STREAM_FIXED_HEADER_LEN + n));
                assert!(
                    key_id.is_some_and(|id| std::str::from_utf8(id).is_err()),
                    "parse refused a complete header with a UTF-8 key id"
                );
            }
        }
    }

    let params = StreamParams {
        key_id: "fuzz",
        wrapped_key: b"wrapped",
        context: &context,
        chunk_size: ChunkSize::MIN,
    };
    let sealer = StreamSealer::with_salt(&key, &params, StreamVersion::CURRENT, [0x5a; SALT_LEN]);
    let Ok(sealer) = sealer else {
        panic!("cannot seal the fixed fuzz header");
    };
    match StreamHeader::parse(sealer.header()) {
        Ok((header, _)) => match StreamOpener::new(&key, &header, &context) {
            Ok(opener) => match open_chunks(opener, data) {
                Ok(_) | Err(CryptoError::Unauthentic) => {}
                Err(e) => panic!("opening chunks failed with {e:?}"),
            },
            Err(e) => panic!("the fixed fuzz header does not authenticate: {e:?}"),
        },
        Err(e) => panic!("the fixed fuzz header does not parse: {e:?}"),
    }

    let sealer = StreamSealer::with_salt(&key, &params, StreamVersion::CURRENT, [0xa5; SALT_LEN]);
    let sealed = sealer.and_then(|sealer| seal_whole(sealer, data));
    let opened = sealed.and_then(|stream| {
        let (header, rest) = StreamHeader::parse(&stream)?;
        open_chunks(StreamOpener::new(&key, &header, &context)?, rest)
    });
    assert_eq!(opened.as_deref(), Ok(data), "stream round trip failed");
}
