//! A process-wide count of live secret buffers, per kind: how many
//! [`SecretKey`](super::SecretKey)s, [`SecretBytes`](super::SecretBytes)
//! and [`MacKey`](super::MacKey)s exist right now.
//!
//! Every secret type of this module owns a zero-sized [`Live`] token that
//! counts one up when the secret is made and one down when it drops (after
//! its bytes are wiped). Tests read the counts to prove that an operation
//! such as seal really lets go of key material, instead of trusting that
//! nothing still holds an `Arc` to it.
//!
//! Always compiled: a count is one uncontended atomic add when a secret is
//! made and one when it drops. Keys are made when they are generated or
//! unwrapped (the DEK cache keeps them), not per message; `SecretBytes`
//! are made once per decryption. Next to the microseconds of a request the
//! cost does not show (measured: `docs/SECRETS.md`). A cargo feature would
//! make the count absent in exactly the builds one would want to check.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A kind of secret buffer that is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretKind {
    /// A [`SecretKey`](super::SecretKey): master, root, data-encryption,
    /// audit, backup or SDK data key, and the key inside every `MacKey`.
    Key,
    /// [`SecretBytes`](super::SecretBytes): decrypted plaintext and
    /// plaintext data keys on their way out.
    Bytes,
    /// A [`MacKey`](super::MacKey) (each also holds one counted `Key`).
    MacKey,
}

impl SecretKind {
    /// Every kind, in a fixed order.
    pub const ALL: [SecretKind; 3] = [SecretKind::Key, SecretKind::Bytes, SecretKind::MacKey];

    const fn index(self) -> usize {
        match self {
            SecretKind::Key => KEY,
            SecretKind::Bytes => BYTES,
            SecretKind::MacKey => MAC_KEY,
        }
    }
}

/// Index of [`SecretKind::Key`] in [`LIVE`].
pub(crate) const KEY: usize = 0;
/// Index of [`SecretKind::Bytes`] in [`LIVE`].
pub(crate) const BYTES: usize = 1;
/// Index of [`SecretKind::MacKey`] in [`LIVE`].
pub(crate) const MAC_KEY: usize = 2;

static LIVE: [AtomicUsize; 3] = [
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
];

/// How many secrets of `kind` are alive in this process now.
///
/// Process-wide: a test that asserts exact numbers must own the process
/// (one test in its own test binary), or compare before and after within
/// code that nothing else runs beside.
#[must_use]
pub fn live_secrets(kind: SecretKind) -> usize {
    LIVE[kind.index()].load(Ordering::Acquire)
}

/// Counts one live secret of kind `K` (an index into [`LIVE`]) for as long
/// as it exists. Zero-sized; deliberately neither `Clone` nor `Default`, so
/// every token comes from [`Live::new`] and is counted.
pub(crate) struct Live<const K: usize>(());

impl<const K: usize> Live<K> {
    /// Counts one more live secret.
    pub(crate) fn new() -> Self {
        LIVE[K].fetch_add(1, Ordering::AcqRel);
        Self(())
    }
}

impl<const K: usize> Drop for Live<K> {
    fn drop(&mut self) {
        LIVE[K].fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    //! Exact counts are asserted in `tests/seal_drops_secrets.rs`, which
    //! owns its process; unit tests run in parallel threads of one process,
    //! so here only the token's own effect is checked, with a kind no other
    //! code makes.

    use super::*;

    #[test]
    fn kinds_map_to_distinct_counters() {
        let indices: std::collections::BTreeSet<usize> =
            SecretKind::ALL.iter().map(|k| k.index()).collect();
        assert_eq!(indices.len(), SecretKind::ALL.len());
        assert!(indices.iter().all(|&i| i < LIVE.len()));
    }
}
