//! What a ciphertext is bound to besides its key.

use super::Context;

/// What a sealed message is for.
///
/// The purpose is mixed into the per-message key derivation (domain
/// separation), so a wrapped data key can never be presented as a data
/// ciphertext, a wrapped root key as a wrapped DEK, and so on: opening
/// under any other purpose fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Customer data encrypted under a data-encryption key (DEK).
    Data,
    /// A DEK version wrapped under the root key.
    WrapDataKey,
    /// The root key wrapped under the master key.
    WrapRootKey,
    /// A data key from GenerateDataKey wrapped under a DEK (the stream
    /// envelope's wrapped key since stream version 2). Kept apart from
    /// [`Purpose::Data`] so that a caller allowed only to Encrypt cannot
    /// make a "wrapped data key" of its choosing: Encrypt seals under
    /// `Data`, and DecryptDataKey opens only `DataKey`.
    DataKey,
}

impl Purpose {
    /// Every purpose, for tests and fuzzing that must cover them all.
    pub const ALL: [Self; 4] = [
        Self::Data,
        Self::WrapDataKey,
        Self::WrapRootKey,
        Self::DataKey,
    ];
}

/// Everything a ciphertext is bound to besides the key itself.
///
/// [`open`](super::open) succeeds only with exactly the binding that
/// [`seal`](super::seal) was given.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// What the message is for.
    pub purpose: Purpose,
    /// The id of the key (for [`Purpose::Data`], the customer-visible key id).
    pub key_id: &'a str,
    /// The key version. It is also written in clear in the ciphertext header
    /// (see [`Envelope::key_version`](super::Envelope::key_version)); it must
    /// be at least 1 for [`Purpose::Data`], [`Purpose::DataKey`] and
    /// [`Purpose::WrapDataKey`], while
    /// [`Purpose::WrapRootKey`] may use any value.
    pub key_version: u32,
    /// The encryption context.
    pub context: &'a Context,
}
