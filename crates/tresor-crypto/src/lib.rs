//! Pure, synchronous cryptography for tresor: no I/O, no async, no logging.
//!
//! What lives here:
//!
//! - [`SecretKey`] and [`SecretBytes`]: secret material that is zeroized on
//!   drop, prints as `REDACTED` under `Debug`, and has no `PartialEq`, no
//!   `Display` and (for keys) no `Clone`.
//! - [`live_secrets`]: how many secrets of each [`SecretKind`] are alive in
//!   the process, so tests can prove that seal really drops key material.
//! - [`Context`]: the encryption context, a string map with one canonical,
//!   order-independent byte encoding ([`Context::canonical_bytes`]).
//! - [`Purpose`] and [`Binding`]: everything a ciphertext is bound to besides
//!   the key itself (domain separation, key id, key version, context).
//! - [`seal`] and [`open`]: authenticated, key-committing encryption with a
//!   fresh derived key per message (HKDF-SHA256 + AES-256-GCM).
//! - [`StreamSealer`] and [`StreamOpener`]: the stream envelope, payloads of
//!   any size in authenticated chunks under one data key (STREAM over
//!   AES-256-GCM, key-committing, context-bound).
//! - [`Envelope`]: the parsed view of a ciphertext. The wire layout is known
//!   only to the private `format` module; `docs/FORMAT.md` describes it byte
//!   by byte.
//!
//! Decryption errors are coarse on purpose: [`CryptoError::Malformed`] when
//! the bytes are not a ciphertext of a known format version, and
//! [`CryptoError::Unauthentic`] for every other failure, so an attacker never
//! learns which check failed.
//!
//! [`CryptoError::Malformed`]: crate::CryptoError::Malformed
//! [`CryptoError::Unauthentic`]: crate::CryptoError::Unauthentic

//!
//! # Layout
//!
//! | module | responsibility |
//! |--------|----------------|
//! | `secret`, `live` | [`SecretKey`], [`SecretBytes`], [`random_bytes`]; live counts per [`SecretKind`] |
//! | `context` | [`Context`] and its canonical encoding |
//! | `binding` | [`Purpose`] and [`Binding`]: what a ciphertext is bound to |
//! | `format` | the ciphertext wire format: [`Envelope`] (parse) and its writer, the only place that knows the bytes |
//! | `sealing` | [`seal`] and [`open`] (HKDF-SHA256 + AES-256-GCM, key-committing) |
//! | `salt` | fork-safe per-message salts |
//! | `mac` | [`MacKey`], [`mac`], [`verify_mac`] (HMAC-SHA256) |
//! | `purpose_keys` | per-purpose key material derived from a DEK (MAC, DETERMINISTIC) |
//! | `mac_token` | MAC tokens for blind indexes: [`mac_token`], [`verify_mac_token`] (format 0x21) |
//! | `deterministic` | deterministic encryption: [`seal_deterministic`], [`open_deterministic`] (AES-SIV, format 0x11) |
//! | `stream` | the stream envelope: header, chunk cipher, [`StreamSealer`], [`StreamOpener`] |
//! | `error` | [`CryptoError`] |
//!
//! Nothing here is async or does I/O; the crate depends on no runtime and
//! no gRPC, so anything can use it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod binding;
mod context;
mod deterministic;
mod error;
mod format;
mod live;
mod mac;
mod mac_token;
mod purpose_keys;
mod salt;
mod sealing;
mod secret;
mod stream;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod purpose_fixtures;
#[cfg(test)]
mod tests;

pub use binding::{Binding, Purpose};
pub use context::Context;
pub use deterministic::{
    DETERMINISTIC_OVERHEAD, deterministic_key_version, fuzz_deterministic, open_deterministic,
    seal_deterministic,
};
pub use error::CryptoError;
/// For the server crate's secret inventory (`src/secret_inventory.rs`) only.
#[cfg(feature = "inventory")]
#[doc(hidden)]
pub use format::EnvelopeWriter;
pub use format::{CIPHERTEXT_OVERHEAD, Envelope, fuzz_ciphertext};
pub use live::{SecretKind, live_secrets};
pub use mac::{MAC_LEN, MacKey, mac, verify_mac};
pub use mac_token::{
    MAC_TOKEN_HEADER_LEN, MacLength, fuzz_mac_token, mac_token, mac_token_header, verify_mac_token,
};
pub use sealing::{open, seal};
pub use secret::{SecretBytes, SecretKey, random_bytes};
pub use stream::{
    ChunkSize, MAX_STREAM_CHUNKS, MAX_STREAM_HEADER_LEN, MAX_STREAM_KEY_ID_LEN,
    MAX_WRAPPED_KEY_LEN, STREAM_CHUNK_OVERHEAD, STREAM_FIXED_HEADER_LEN, StreamHeader,
    StreamOpener, StreamParams, StreamSealer, StreamVersion, fuzz_stream,
};
