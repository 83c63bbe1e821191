//! The encryption context and its canonical byte encoding.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use crate::CryptoError;

/// An encryption context: a map from string keys to string values that a
/// ciphertext is bound to. Decryption succeeds only with exactly the same
/// pairs (in any order).
///
/// The context is not secret (like AWS KMS, tresor may log it), so `Debug`
/// prints it.
///
/// Its one canonical byte encoding ([`Context::canonical_bytes`]) is:
///
/// ```text
/// u32 BE   number of pairs
/// then, for each pair in byte-wise ascending order of the key's UTF-8 bytes:
///   u32 BE   length of key in bytes,   key bytes (UTF-8)
///   u32 BE   length of value in bytes, value bytes (UTF-8)
/// ```
///
/// Keys are unique (inserting an existing key replaces its value), so the
/// order is total and the encoding does not depend on insertion order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context(BTreeMap<String, String>);

impl Context {
    /// An empty context.
    #[must_use]
    pub fn new() -> Self {
        Self(BTreeMap::new())
    }

    /// Adds a pair, replacing the value if `k` is already present.
    pub fn insert(&mut self, k: impl Into<String>, v: impl Into<String>) {
        self.0.insert(k.into(), v.into());
    }

    /// Number of pairs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the context has no pairs.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key`, if the context has it.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The pairs in canonical (byte-wise ascending key) order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The canonical encoding described on [`Context`].
    ///
    /// # Panics
    ///
    /// If the context has more than `u32::MAX` pairs or a key or value is
    /// longer than `u32::MAX` bytes (4 GiB), which the encoding cannot
    /// represent. [`seal`](super::seal) and [`open`](super::open) check this
    /// and return an error instead of panicking.
    #[must_use]
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let capacity = self.0.iter().fold(4usize, |acc, (k, v)| {
            acc.saturating_add(8 + k.len() + v.len())
        });
        let mut out = Vec::with_capacity(capacity);
        if self.encode(|chunk| out.extend_from_slice(chunk)).is_err() {
            panic!("encryption context too large to encode (a field exceeds 4 GiB)");
        }
        out
    }

    /// SHA-256 of [`Context::canonical_bytes`], computed without building the
    /// encoding in memory. This is what the v1 key schedule binds to (v2
    /// feeds the encoding itself to its HMAC).
    ///
    /// # Errors
    ///
    /// [`CryptoError::TooLarge`] if the context cannot be encoded (see
    /// [`Context::canonical_bytes`]).
    pub(crate) fn digest(&self) -> Result<[u8; 32], CryptoError> {
        // The `sha2` crate: ring's digest costs about twice as much for
        // inputs this small (one or two blocks), and this runs for every v1
        // ciphertext opened.
        let mut hasher = Sha256::new();
        self.encode(|chunk| hasher.update(chunk))?;
        Ok(hasher.finalize().into())
    }

    /// Feeds the canonical encoding, piece by piece, to `sink`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::TooLarge`] if the context cannot be encoded.
    pub(crate) fn encode(&self, mut sink: impl FnMut(&[u8])) -> Result<(), CryptoError> {
        sink(&len_u32(self.0.len())?);
        // BTreeMap<String, _> iterates in `str` order, which is byte-wise
        // lexicographic order of the UTF-8 encoding.
        for (k, v) in &self.0 {
            sink(&len_u32(k.len())?);
            sink(k.as_bytes());
            sink(&len_u32(v.len())?);
            sink(v.as_bytes());
        }
        Ok(())
    }
}

/// A length as the 4-byte big-endian prefix of the canonical encoding.
fn len_u32(n: usize) -> Result<[u8; 4], CryptoError> {
    u32::try_from(n)
        .map(u32::to_be_bytes)
        .map_err(|_| CryptoError::TooLarge)
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Context {
    /// Collects pairs; a later pair with an existing key replaces the value.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl From<HashMap<String, String>> for Context {
    fn from(map: HashMap<String, String>) -> Self {
        Self(map.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_context_encodes_to_zero_count() {
        assert_eq!(Context::new().canonical_bytes(), vec![0, 0, 0, 0]);
    }

    #[test]
    fn canonical_bytes_golden() {
        let ctx: Context = [("b", "22"), ("a", "1")].into_iter().collect();
        let expected: &[u8] = &[
            0, 0, 0, 2, // pair count
            0, 0, 0, 1, b'a', // key "a"
            0, 0, 0, 1, b'1', // value "1"
            0, 0, 0, 1, b'b', // key "b"
            0, 0, 0, 2, b'2', b'2', // value "22"
        ];
        assert_eq!(ctx.canonical_bytes(), expected);
    }

    #[test]
    fn order_is_bytewise_not_insertion() {
        let mut a = Context::new();
        a.insert("z", "1");
        a.insert("é", "2"); // 0xC3 0xA9 sorts after 'z' (0x7A)
        a.insert("A", "3");
        let mut b = Context::new();
        b.insert("A", "3");
        b.insert("é", "2");
        b.insert("z", "1");
        assert_eq!(a, b);
        assert_eq!(a.canonical_bytes(), b.canonical_bytes());
        let keys: Vec<&str> = a.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["A", "z", "é"]);
    }

    #[test]
    fn encoding_is_unambiguous_across_boundaries() {
        let a: Context = [("ab", "c")].into_iter().collect();
        let b: Context = [("a", "bc")].into_iter().collect();
        let c: Context = [("a", ""), ("b", "c")].into_iter().collect();
        assert_ne!(a.canonical_bytes(), b.canonical_bytes());
        assert_ne!(a.canonical_bytes(), c.canonical_bytes());
        assert_ne!(b.canonical_bytes(), c.canonical_bytes());
    }

    #[test]
    fn insert_replaces_and_hashmap_converts() {
        let mut a = Context::new();
        a.insert("k", "old");
        a.insert("k", "new");
        assert_eq!(a.len(), 1);
        let map: HashMap<String, String> = [("k".to_owned(), "new".to_owned())].into();
        assert_eq!(Context::from(map), a);
        assert!(Context::default().is_empty());
    }

    #[test]
    fn digest_is_sha256_of_canonical_bytes() {
        let ctx: Context = [("tenant", "acme"), ("région", "Zürich")]
            .into_iter()
            .collect();
        let expected = ring::digest::digest(&ring::digest::SHA256, &ctx.canonical_bytes());
        assert_eq!(ctx.digest().expect("small"), expected.as_ref());
    }
}
