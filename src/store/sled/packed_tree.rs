//! [`PackedTree`]: an ordered map stored in a sled tree as buckets of
//! entries, so that sled holds one entry per bucket instead of one per key.
//!
//! Why: sled 0.34 keeps one page-table entry per tree node in memory and
//! rebuilds the whole table when it opens, and its leaves split at 16
//! entries (hard-coded). A keystore with a million keys (a key record and a
//! wrapped DEK each) therefore had well over 100,000 pages, all read before
//! the first request (docs/BENCHMARKS.md, "Scale").
//! Packing about 4 KiB of entries into each sled value divides the number of
//! sled entries, and so of pages, by the number of entries per bucket.
//!
//! Layout: each sled entry is a bucket. Its sled key is the bucket's lower
//! bound (the first bucket's is empty, so every key has a bucket); its value
//! holds its exclusive upper bound (the next bucket's lower bound, none for
//! the last) and its entries in key order. A bucket that grows past its
//! size budget splits in the same transaction that grew it. Buckets emptied
//! by removals stay (an empty bucket is a few bytes) until the keystore is
//! compacted.
//!
//! Writers stage changes with [`PackedChanges`] (plain reads, buckets
//! changed in memory and split), then write the resulting buckets in a sled
//! transaction. This is sound because every keystore mutation in the
//! process runs under one mutex (`SledKeyStore::write`): nothing changes
//! between staging and commit.
//!
//! Readers take no lock of ours. Each bucket carries its upper bound, and a
//! reader that lands on a bucket whose bound excludes its key (a split it
//! saw half applied) looks again; sled 0.34 applies a transaction under its
//! own global lock, so this is a second line of defence.

use std::collections::BTreeMap;

use prost::bytes::Buf;
use sled::transaction::{TransactionalTree, UnabortableTransactionError};

use crate::error::StoreError;

/// The on-disk format byte of a bucket.
const BUCKET_FORMAT: u8 = 1;

/// How many times a reader looks again after landing on a bucket that a
/// concurrent split has just narrowed before it reports corruption.
const MAX_LOOKUPS: usize = 64;

/// A sled error as a store error.
pub(super) fn backend(err: sled::Error) -> StoreError {
    StoreError::Backend(err.to_string())
}

/// A sled transaction's outcome as a store result: an abort carries the
/// store error to return as is.
pub(super) fn tx_result<T>(
    result: Result<T, sled::transaction::TransactionError<StoreError>>,
) -> Result<T, StoreError> {
    result.map_err(|err| match err {
        sled::transaction::TransactionError::Abort(inner) => inner,
        sled::transaction::TransactionError::Storage(e) => backend(e),
    })
}

fn corrupt(detail: &str) -> StoreError {
    StoreError::Corrupt(format!("packed bucket: {detail}"))
}

/// A bucket's entries in key order.
type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

/// One entry borrowed from an encoded bucket: key and value.
type EntryRef<'a> = (&'a [u8], &'a [u8]);

/// One bucket, decoded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Bucket {
    /// The exclusive upper bound (none: the last bucket).
    upper: Option<Vec<u8>>,
    entries: Entries,
}

impl Bucket {
    fn covers(&self, key: &[u8]) -> bool {
        self.upper.as_deref().is_none_or(|upper| key < upper)
    }

    fn encoded_len(&self) -> usize {
        let varint = |n: usize| prost::encoding::encoded_len_varint(n as u64);
        let upper = self.upper.as_ref().map_or(0, |u| varint(u.len()) + u.len());
        2 + upper
            + varint(self.entries.len())
            + self
                .entries
                .iter()
                .map(|(k, v)| varint(k.len()) + k.len() + varint(v.len()) + v.len())
                .sum::<usize>()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        let put = |out: &mut Vec<u8>, bytes: &[u8]| {
            prost::encoding::encode_varint(bytes.len() as u64, out);
            out.extend_from_slice(bytes);
        };
        out.push(BUCKET_FORMAT);
        match &self.upper {
            Some(upper) => {
                out.push(1);
                put(&mut out, upper);
            }
            None => out.push(0),
        }
        prost::encoding::encode_varint(self.entries.len() as u64, &mut out);
        for (key, value) in &self.entries {
            put(&mut out, key);
            put(&mut out, value);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let mut reader = BucketReader::new(bytes)?;
        let upper = reader.upper.map(<[u8]>::to_vec);
        let mut entries = BTreeMap::new();
        while let Some((key, value)) = reader.next_entry()? {
            entries.insert(key.to_vec(), value.to_vec());
        }
        Ok(Self { upper, entries })
    }

    /// Splits a bucket over `budget` bytes into buckets of about half the
    /// budget each, as (lower bound, bucket) pairs; the first keeps `lower`.
    fn split(self, lower: Vec<u8>, budget: usize) -> Vec<(Vec<u8>, Bucket)> {
        if self.entries.len() < 2 || self.encoded_len() <= budget {
            return vec![(lower, self)];
        }
        let mut chunks: Vec<(Vec<u8>, Entries)> = vec![(lower, BTreeMap::new())];
        let mut size = 0;
        for (key, value) in self.entries {
            let entry = key.len() + value.len() + 4;
            let current = chunks.last_mut().map(|(_, c)| c);
            if size + entry > budget / 2 && current.is_some_and(|c| !c.is_empty()) {
                chunks.push((key.clone(), BTreeMap::new()));
                size = 0;
            }
            size += entry;
            if let Some((_, chunk)) = chunks.last_mut() {
                chunk.insert(key, value);
            }
        }
        let uppers: Vec<Option<Vec<u8>>> = chunks
            .iter()
            .skip(1)
            .map(|(lower, _)| Some(lower.clone()))
            .chain(std::iter::once(self.upper))
            .collect();
        chunks
            .into_iter()
            .zip(uppers)
            .map(|((lower, entries), upper)| (lower, Bucket { upper, entries }))
            .collect()
    }
}

/// Reads a bucket's entries in place, without copying them.
struct BucketReader<'a> {
    upper: Option<&'a [u8]>,
    remaining: u64,
    rest: &'a [u8],
}

impl<'a> BucketReader<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, StoreError> {
        let (&format, mut rest) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
        if format != BUCKET_FORMAT {
            return Err(corrupt("unknown format"));
        }
        let (&has_upper, after) = rest.split_first().ok_or_else(|| corrupt("truncated"))?;
        rest = after;
        let upper = match has_upper {
            0 => None,
            1 => Some(take(&mut rest)?),
            _ => return Err(corrupt("bad upper-bound flag")),
        };
        let remaining = prost::encoding::decode_varint(&mut rest).map_err(|_| corrupt("count"))?;
        Ok(Self {
            upper,
            remaining,
            rest,
        })
    }

    fn covers(&self, key: &[u8]) -> bool {
        self.upper.is_none_or(|upper| key < upper)
    }

    fn next_entry(&mut self) -> Result<Option<EntryRef<'a>>, StoreError> {
        if self.remaining == 0 {
            return if self.rest.is_empty() {
                Ok(None)
            } else {
                Err(corrupt("trailing bytes"))
            };
        }
        self.remaining -= 1;
        let key = take(&mut self.rest)?;
        let value = take(&mut self.rest)?;
        Ok(Some((key, value)))
    }
}

/// Takes one length-prefixed byte string off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], StoreError> {
    let len = prost::encoding::decode_varint(rest).map_err(|_| corrupt("length"))?;
    let len = usize::try_from(len).map_err(|_| corrupt("length"))?;
    if rest.remaining() < len {
        return Err(corrupt("truncated"));
    }
    let (bytes, after) = rest.split_at(len);
    *rest = after;
    Ok(bytes)
}

/// An ordered byte map packed into buckets of a sled tree; see the module
/// documentation.
#[derive(Clone)]
pub struct PackedTree {
    tree: sled::Tree,
    /// A bucket that grows past this many encoded bytes splits.
    budget: usize,
}

impl std::fmt::Debug for PackedTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedTree")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl PackedTree {
    /// Wraps `tree`, whose buckets split past `budget` bytes.
    pub fn new(tree: sled::Tree, budget: usize) -> Self {
        Self { tree, budget }
    }

    /// The sled tree holding the buckets, for transactions.
    pub fn sled_tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// Whether the map holds no entry.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.scan_from(&[]).next().transpose()?.is_none())
    }

    /// The committed bucket holding `key`: its lower bound and raw value.
    fn bucket_of(&self, key: &[u8]) -> Result<Option<(sled::IVec, sled::IVec)>, StoreError> {
        for _ in 0..MAX_LOOKUPS {
            let Some((lower, value)) = self
                .tree
                .range(..=key)
                .next_back()
                .transpose()
                .map_err(backend)?
            else {
                return Ok(None);
            };
            if BucketReader::new(&value)?.covers(key) {
                return Ok(Some((lower, value)));
            }
            // A split is being applied: its new bucket is not visible yet.
            std::thread::yield_now();
        }
        Err(corrupt("no bucket covers the key"))
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((_, value)) = self.bucket_of(key)? else {
            return Ok(None);
        };
        let mut reader = BucketReader::new(&value)?;
        while let Some((k, v)) = reader.next_entry()? {
            if k == key {
                return Ok(Some(v.to_vec()));
            }
        }
        Ok(None)
    }

    /// Every entry whose key is at least `from`, in key order, read bucket
    /// by bucket.
    pub fn scan_from(&self, from: &[u8]) -> PackedIter<'_> {
        PackedIter {
            tree: self,
            cursor: Some(from.to_vec()),
            pending: std::collections::VecDeque::new(),
        }
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn scan_prefix<'a>(
        &'a self,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + 'a {
        self.scan_from(prefix)
            .take_while(move |entry| entry.as_ref().map_or(true, |(k, _)| k.starts_with(prefix)))
    }

    /// Commits `writes` in a transaction of their own, for changes that
    /// touch no other tree.
    pub fn write_alone(&self, writes: &BucketWrites) -> Result<(), StoreError> {
        tx_result(self.tree.transaction(|tx| Ok(writes.apply(tx)?)))
    }

    /// Starts staging changes; see [`PackedChanges`].
    pub fn stage(&self) -> PackedChanges<'_> {
        PackedChanges {
            packed: self,
            buckets: BTreeMap::new(),
        }
    }
}

/// Iterator over a [`PackedTree`] from a key on; see [`PackedTree::scan_from`].
pub struct PackedIter<'a> {
    tree: &'a PackedTree,
    /// The next key to look from (none: the end was reached).
    cursor: Option<Vec<u8>>,
    pending: std::collections::VecDeque<(Vec<u8>, Vec<u8>)>,
}

impl Iterator for PackedIter<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.pending.pop_front() {
                return Some(Ok(entry));
            }
            let from = self.cursor.take()?;
            let (_, value) = match self.tree.bucket_of(&from) {
                Ok(Some(found)) => found,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            let mut reader = match BucketReader::new(&value) {
                Ok(reader) => reader,
                Err(e) => return Some(Err(e)),
            };
            // Buckets are read one lookup at a time (not with one sled
            // iterator), so a concurrent split can neither hide entries nor
            // show them twice: each step starts where the last bucket ended.
            self.cursor = reader.upper.map(<[u8]>::to_vec);
            loop {
                match reader.next_entry() {
                    Ok(Some((k, v))) if k >= from.as_slice() => {
                        self.pending.push_back((k.to_vec(), v.to_vec()));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => return Some(Err(e)),
                }
            }
        }
    }
}

/// Changes to a [`PackedTree`], staged in memory from plain reads, then
/// written by [`BucketWrites::apply`] inside a sled transaction.
///
/// Staging happens before the transaction because sled 0.34 takes its
/// process-wide lock for reading on every plain read and for writing for a
/// whole transaction: a plain read (needed to find a key's bucket) inside a
/// transaction deadlocks. The caller must hold the keystore's write mutex
/// from staging to commit, so that what was read is still current.
pub struct PackedChanges<'a> {
    packed: &'a PackedTree,
    /// Buckets read or changed, by lower bound, with whether they changed.
    buckets: BTreeMap<Vec<u8>, (Bucket, bool)>,
}

impl PackedChanges<'_> {
    /// Runs `f` on the bucket holding `key`; `f` returns whether it changed
    /// the bucket.
    fn with_bucket<T>(
        &mut self,
        key: &[u8],
        f: impl FnOnce(&mut Bucket) -> (T, bool),
    ) -> Result<T, StoreError> {
        // A bucket staged here covers its keys until commit: staged splits
        // happen only in `into_writes`.
        let staged = self
            .buckets
            .range::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(key)))
            .next_back()
            .filter(|(_, (bucket, _))| bucket.covers(key))
            .map(|(lower, _)| lower.clone());
        let lower = match staged {
            Some(lower) => lower,
            None => {
                let (lower, bucket) = match self.packed.bucket_of(key)? {
                    Some((lower, value)) => (lower.to_vec(), Bucket::decode(&value)?),
                    None => (Vec::new(), Bucket::default()),
                };
                self.buckets.entry(lower.clone()).or_insert((bucket, false));
                lower
            }
        };
        let (bucket, changed) = self
            .buckets
            .get_mut(&lower)
            .ok_or_else(|| corrupt("staged bucket vanished"))?;
        let (out, did_change) = f(bucket);
        *changed |= did_change;
        Ok(out)
    }

    /// The value under `key`, with the changes staged so far.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_bucket(key, |bucket| (bucket.entries.get(key).cloned(), false))
    }

    /// Stages `value` under `key`, returning the value it replaces.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_bucket(key, |bucket| {
            (bucket.entries.insert(key.to_vec(), value.to_vec()), true)
        })
    }

    /// Stages the removal of `key`, returning its value.
    pub fn remove(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_bucket(key, |bucket| {
            let old = bucket.entries.remove(key);
            let changed = old.is_some();
            (old, changed)
        })
    }

    /// The encoded buckets to write: every changed one, split if over
    /// budget.
    pub fn into_writes(self) -> BucketWrites {
        let budget = self.packed.budget;
        BucketWrites(
            self.buckets
                .into_iter()
                .filter(|(_, (_, changed))| *changed)
                .flat_map(|(lower, (bucket, _))| bucket.split(lower, budget))
                .map(|(lower, bucket)| (lower, bucket.encode()))
                .collect(),
        )
    }
}

/// Encoded buckets ready to go into a transaction; see [`PackedChanges`].
#[derive(Debug, Default)]
pub struct BucketWrites(Vec<(Vec<u8>, Vec<u8>)>);

impl BucketWrites {
    /// Writes the buckets into the transaction on the packed tree's sled
    /// tree. Safe to repeat when sled retries the transaction.
    pub fn apply(&self, tx: &TransactionalTree) -> Result<(), UnabortableTransactionError> {
        for (lower, bucket) in &self.0 {
            tx.insert(lower.as_slice(), bucket.as_slice())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_tree(budget: usize) -> (tempfile::TempDir, PackedTree) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("open");
        let tree = db.open_tree("packed").expect("tree");
        (dir, PackedTree::new(tree, budget))
    }

    /// Stages `f`'s changes and commits them in one transaction.
    fn write(tree: &PackedTree, f: impl FnOnce(&mut PackedChanges<'_>) -> Result<(), StoreError>) {
        let mut changes = tree.stage();
        f(&mut changes).expect("stage");
        tree.write_alone(&changes.into_writes()).expect("write");
    }

    fn key(i: u32) -> Vec<u8> {
        format!("svc/key-{i:06}").into_bytes()
    }

    #[test]
    fn inserted_entries_are_read_back_and_buckets_split_to_budget() {
        let (_dir, tree) = temp_tree(512);
        for chunk in (0..2000u32).collect::<Vec<_>>().chunks(37) {
            write(&tree, |tx| {
                for &i in chunk {
                    tx.insert(&key(i), &i.to_be_bytes().repeat(8))?;
                }
                Ok(())
            });
        }
        for i in 0..2000u32 {
            assert_eq!(
                tree.get(&key(i)).expect("get"),
                Some(i.to_be_bytes().repeat(8))
            );
        }
        assert_eq!(tree.get(b"svc/key-").expect("get"), None);
        assert_eq!(tree.get(b"zzz").expect("get"), None);
        let buckets = tree.sled_tree().len();
        assert!(
            buckets > 100,
            "2000 entries of ~50 bytes in 512-byte buckets: {buckets}"
        );
        for entry in tree.sled_tree().iter() {
            let (_, value) = entry.expect("entry");
            assert!(value.len() <= 512, "bucket of {} bytes", value.len());
        }
        let all: Vec<_> = tree.scan_from(&[]).map(|e| e.expect("scan").0).collect();
        assert_eq!(all, (0..2000).map(key).collect::<Vec<_>>());
    }

    #[test]
    fn scans_start_anywhere_and_stop_at_the_prefix() {
        let (_dir, tree) = temp_tree(256);
        write(&tree, |tx| {
            for prefix in ["a/", "b/", "c/"] {
                for i in 0..50u32 {
                    tx.insert(format!("{prefix}{i:03}").as_bytes(), b"value-value-value")?;
                }
            }
            Ok(())
        });
        let b: Vec<_> = tree
            .scan_prefix(b"b/")
            .map(|e| e.expect("scan").0)
            .collect();
        assert_eq!(b.len(), 50);
        assert!(b.iter().all(|k| k.starts_with(b"b/")));
        let from: Vec<_> = tree
            .scan_from(b"b/0255")
            .map(|e| e.expect("scan").0)
            .collect();
        assert_eq!(from.first().map(Vec::as_slice), Some(&b"b/026"[..]));
        assert_eq!(from.len(), 24 + 50);
    }

    #[test]
    fn removal_and_replacement_are_seen_by_the_transaction_and_after() {
        let (_dir, tree) = temp_tree(256);
        write(&tree, |tx| {
            for i in 0..100u32 {
                tx.insert(&key(i), b"first")?;
            }
            Ok(())
        });
        write(&tree, |tx| {
            assert_eq!(tx.remove(&key(5))?, Some(b"first".to_vec()));
            assert_eq!(tx.get(&key(5))?, None);
            assert_eq!(tx.insert(&key(6), b"second")?, Some(b"first".to_vec()));
            assert_eq!(tx.get(&key(6))?, Some(b"second".to_vec()));
            assert_eq!(tx.remove(&key(1000))?, None);
            Ok(())
        });
        assert_eq!(tree.get(&key(5)).expect("get"), None);
        assert_eq!(tree.get(&key(6)).expect("get"), Some(b"second".to_vec()));
        assert_eq!(tree.scan_from(&[]).count(), 99);
        write(&tree, |tx| {
            for i in 0..100u32 {
                tx.remove(&key(i))?;
            }
            Ok(())
        });
        assert!(tree.is_empty().expect("empty"));
    }

    #[test]
    fn staged_changes_not_applied_change_nothing() {
        let (_dir, tree) = temp_tree(256);
        write(&tree, |tx| tx.insert(b"kept", b"1").map(drop));
        let mut changes = tree.stage();
        for i in 0..100u32 {
            changes.insert(&key(i), b"lost").expect("stage");
        }
        assert_eq!(changes.get(&key(7)).expect("get"), Some(b"lost".to_vec()));
        drop(changes.into_writes());
        assert_eq!(tree.scan_from(&[]).count(), 1);
        assert_eq!(tree.sled_tree().len(), 1);
    }

    #[test]
    fn a_single_entry_over_budget_stays_whole() {
        let (_dir, tree) = temp_tree(128);
        write(&tree, |tx| {
            tx.insert(b"big", &[7u8; 1000])?;
            tx.insert(b"small", b"x")?;
            Ok(())
        });
        assert_eq!(tree.get(b"big").expect("get"), Some(vec![7u8; 1000]));
        assert_eq!(tree.get(b"small").expect("get"), Some(b"x".to_vec()));
    }

    #[test]
    fn readers_racing_splits_always_find_committed_entries() {
        let (_dir, tree) = temp_tree(300);
        write(&tree, |tx| tx.insert(&key(0), b"always-here").map(drop));
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    assert_eq!(
                        tree.get(&key(0)).expect("get"),
                        Some(b"always-here".to_vec())
                    );
                    let seen: Vec<_> = tree.scan_from(&[]).map(|e| e.expect("scan").0).collect();
                    assert!(seen.windows(2).all(|w| w[0] < w[1]), "scan out of order");
                    reads += 1;
                }
                reads
            });
            for i in 1..1500u32 {
                write(&tree, |tx| {
                    tx.insert(&key(i), b"0123456789abcdef").map(drop)
                });
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(reader.join().expect("reader") > 0);
        });
    }

    /// One staged change of the model-based test.
    #[derive(Debug, Clone)]
    enum Change {
        Insert(Vec<u8>, Vec<u8>),
        Remove(Vec<u8>),
    }

    fn change() -> impl proptest::strategy::Strategy<Value = Change> {
        use proptest::prelude::*;
        // Few distinct keys, so that removals and replacements hit.
        let key = proptest::collection::vec(0u8..4, 0..6);
        prop_oneof![
            3 => (key.clone(), proptest::collection::vec(any::<u8>(), 0..120))
                .prop_map(|(k, v)| Change::Insert(k, v)),
            1 => key.prop_map(Change::Remove),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any sequence of transactions leaves the same map as a BTreeMap
        /// given the same changes, read by key and by scans from anywhere,
        /// and every bucket within budget unless it holds a single entry.
        #[test]
        fn packed_tree_behaves_like_a_btreemap(
            transactions in proptest::collection::vec(proptest::collection::vec(change(), 1..20), 1..12),
            probe in proptest::collection::vec(0u8..4, 0..6),
        ) {
            let (_dir, tree) = temp_tree(200);
            let mut model = BTreeMap::new();
            for changes in &transactions {
                write(&tree, |staged| {
                    for change in changes {
                        let (got, expected) = match change {
                            Change::Insert(k, v) => (staged.insert(k, v)?, model.insert(k.clone(), v.clone())),
                            Change::Remove(k) => (staged.remove(k)?, model.remove(k)),
                        };
                        assert_eq!(got, expected, "staged result of {change:?}");
                    }
                    Ok(())
                });
            }
            for (k, v) in &model {
                proptest::prop_assert_eq!(tree.get(k).expect("get"), Some(v.clone()));
            }
            proptest::prop_assert_eq!(tree.get(&probe).expect("get"), model.get(&probe).cloned());
            let scanned: Vec<_> = tree.scan_from(&probe).map(|e| e.expect("scan")).collect();
            let expected: Vec<_> = model.range(probe.clone()..).map(|(k, v)| (k.clone(), v.clone())).collect();
            proptest::prop_assert_eq!(scanned, expected);
            for entry in tree.sled_tree().iter() {
                let (_, value) = entry.expect("bucket");
                let bucket = Bucket::decode(&value).expect("decode");
                proptest::prop_assert!(bucket.entries.len() < 2 || value.len() <= 200);
            }
        }
    }

    #[test]
    fn damaged_buckets_are_corruption_not_panics() {
        for bytes in [
            &[][..],
            &[9],
            &[1],
            &[1, 2],
            &[1, 0, 1],
            &[1, 0, 1, 5, b'a'],
            &[1, 1, 200],
            &[1, 0, 0, 0xff],
        ] {
            assert!(
                Bucket::decode(bytes).is_err(),
                "{bytes:?} decoded as a bucket"
            );
        }
        let good = Bucket {
            upper: Some(b"m".to_vec()),
            entries: BTreeMap::from([(b"a".to_vec(), b"1".to_vec())]),
        };
        assert_eq!(Bucket::decode(&good.encode()).expect("decode"), good);
        assert_eq!(good.encode().len(), good.encoded_len());
    }
}
