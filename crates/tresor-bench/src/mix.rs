//! `--mix`: which operations the load generator sends, with integer
//! weights (`encrypt=3,decrypt=1`), and a small deterministic generator
//! that picks among them.

use std::fmt;

/// Largest weight accepted for one operation.
const MAX_WEIGHT: u32 = 100;

/// One kind of request the load generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// Encrypt `--payload` bytes.
    Encrypt,
    /// Decrypt a ciphertext of `--payload` bytes encrypted during set-up.
    Decrypt,
    /// Generate a data key (32 bytes, returned in clear and wrapped).
    GenerateDataKey,
    /// One EncryptBatch of `--batch-size` items of `--payload` bytes.
    EncryptBatch,
    /// One DecryptBatch of `--batch-size` ciphertexts made during set-up.
    DecryptBatch,
    /// Mac of `--payload` bytes (the keys must be MAC keys).
    Mac,
    /// One MacBatch of `--batch-size` items of `--payload` bytes.
    MacBatch,
}

/// Size of a data key from GenerateDataKey.
const DATA_KEY_BYTES: usize = 32;

impl Op {
    /// Every operation, in the order the CLI lists them.
    pub const ALL: [Op; 7] = [
        Op::Encrypt,
        Op::Decrypt,
        Op::GenerateDataKey,
        Op::EncryptBatch,
        Op::DecryptBatch,
        Op::Mac,
        Op::MacBatch,
    ];

    /// The name used in `--mix` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::Encrypt => "encrypt",
            Op::Decrypt => "decrypt",
            Op::GenerateDataKey => "generate-data-key",
            Op::EncryptBatch => "encrypt-batch",
            Op::DecryptBatch => "decrypt-batch",
            Op::Mac => "mac",
            Op::MacBatch => "mac-batch",
        }
    }

    /// Whether one request of this kind carries `--batch-size` items.
    pub fn is_batch(self) -> bool {
        matches!(self, Op::EncryptBatch | Op::DecryptBatch | Op::MacBatch)
    }

    /// Whether this operation needs MAC keys (the others need encryption
    /// keys, so one run cannot mix the two).
    pub fn needs_mac_keys(self) -> bool {
        matches!(self, Op::Mac | Op::MacBatch)
    }

    /// Items one request of this kind handles (what items/s counts): the
    /// batch size for a batch, 1 for a single call.
    pub fn items(self, batch_size: usize) -> usize {
        if self.is_batch() { batch_size } else { 1 }
    }

    /// Plaintext bytes one request of this kind handles (what bytes/s
    /// counts): the payload for encrypt and decrypt, the data key for
    /// generate-data-key, payload × batch size for a batch.
    pub fn plaintext_bytes(self, payload: usize, batch_size: usize) -> usize {
        match self {
            Op::Encrypt | Op::Decrypt | Op::Mac => payload,
            Op::GenerateDataKey => DATA_KEY_BYTES,
            Op::EncryptBatch | Op::DecryptBatch | Op::MacBatch => {
                payload.saturating_mul(batch_size)
            }
        }
    }

    fn parse(name: &str) -> Result<Self, String> {
        if let Some(op) = Op::ALL.into_iter().find(|op| op.name() == name) {
            return Ok(op);
        }
        Err(format!(
            "unknown operation {name:?}: expected {}",
            Op::ALL.map(Op::name).join(", ")
        ))
    }
}

/// Operations with positive weights, and the schedule the picker draws
/// from (each operation repeated by its weight, divided by the weights'
/// greatest common divisor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    weights: Vec<(Op, u32)>,
    schedule: Vec<Op>,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            weights: vec![(Op::Encrypt, 1)],
            schedule: vec![Op::Encrypt],
        }
    }
}

impl Mix {
    /// Parses `OP[=WEIGHT],...` (weight 0 to 100, default 1), as clap's
    /// value parser for `--mix`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut weights: Vec<(Op, u32)> = Vec::new();
        for item in text.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(format!(
                    "empty item in {text:?}: give OP=WEIGHT pairs separated by commas, for example encrypt=3,decrypt=1"
                ));
            }
            let (name, weight) = match item.split_once('=') {
                Some((name, weight)) => (name.trim(), Some(weight.trim())),
                None => (item, None),
            };
            let op = Op::parse(name)?;
            let weight = match weight {
                None => 1,
                Some(raw) => raw
                    .parse::<u32>()
                    .ok()
                    .filter(|w| *w <= MAX_WEIGHT)
                    .ok_or_else(|| {
                        format!(
                            "weight of {name} {raw:?} is not a whole number from 0 to {MAX_WEIGHT}"
                        )
                    })?,
            };
            if weights.iter().any(|(seen, _)| *seen == op) {
                return Err(format!("{name} appears twice"));
            }
            weights.push((op, weight));
        }
        weights.retain(|(_, weight)| *weight > 0);
        let mac_ops = weights.iter().filter(|(op, _)| op.needs_mac_keys()).count();
        if mac_ops != 0 && mac_ops != weights.len() {
            return Err(
                "mac and mac-batch need MAC keys and the other operations encryption keys: run them in separate runs".into(),
            );
        }
        let divisor = weights.iter().fold(0, |g, (_, w)| gcd(g, *w));
        if divisor == 0 {
            return Err("every weight is 0: at least one operation needs a positive weight".into());
        }
        let schedule = weights
            .iter()
            .flat_map(|(op, w)| std::iter::repeat_n(*op, (*w / divisor) as usize))
            .collect();
        Ok(Self { weights, schedule })
    }

    /// The operations with a positive weight, in the order given.
    pub fn ops(&self) -> impl Iterator<Item = Op> + '_ {
        self.weights.iter().map(|(op, _)| *op)
    }

    /// Whether `op` has a positive weight.
    pub fn contains(&self, op: Op) -> bool {
        self.ops().any(|o| o == op)
    }

    /// The operation for a random draw.
    pub fn pick(&self, draw: u64) -> Op {
        // Invariant: `parse` refuses a mix without a positive weight, and
        // `Default` has one, so the schedule is never empty.
        let len = self.schedule.len().max(1) as u64;
        let index = usize::try_from(draw % len).unwrap_or(0);
        self.schedule.get(index).copied().unwrap_or(Op::Encrypt)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .weights
            .iter()
            .map(|(op, w)| format!("{}={w}", op.name()))
            .collect();
        f.write_str(&items.join(","))
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// A small, fast, deterministic generator (SplitMix64) for picking
/// operations and keys; each worker seeds its own.
#[derive(Debug, Clone)]
pub struct Draw(u64);

impl Draw {
    /// A generator for worker `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0; 0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        if n == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % n).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_operations_run_apart_from_encryption() {
        let mac = Mix::parse("mac=3,mac-batch").expect("mac mix");
        assert!(mac.ops().all(Op::needs_mac_keys));
        assert_eq!(Op::MacBatch.items(100), 100);
        assert_eq!(Op::Mac.plaintext_bytes(64, 100), 64);
        let mixed = Mix::parse("encrypt,mac").expect_err("mixed purposes");
        assert!(mixed.contains("separate runs"), "{mixed}");
        // A zero weight does not count.
        assert!(Mix::parse("encrypt,mac=0").is_ok());
    }

    #[test]
    fn weights_default_to_one_and_reduce_by_their_gcd() {
        let mix = Mix::parse("encrypt=4, decrypt=2,generate-data-key").expect("mix");
        assert_eq!(mix.to_string(), "encrypt=4,decrypt=2,generate-data-key=1");
        assert_eq!(
            mix.ops().collect::<Vec<_>>(),
            vec![Op::Encrypt, Op::Decrypt, Op::GenerateDataKey]
        );
        let picks: Vec<Op> = (0..7).map(|i| mix.pick(i)).collect();
        assert_eq!(picks.iter().filter(|op| **op == Op::Encrypt).count(), 4);
        assert_eq!(picks.iter().filter(|op| **op == Op::Decrypt).count(), 2);
        assert_eq!(
            Mix::parse("encrypt=6,decrypt=3").expect("mix").schedule,
            vec![Op::Encrypt, Op::Encrypt, Op::Decrypt]
        );
    }

    #[test]
    fn batch_operations_count_items_and_bytes_per_item() {
        let mix = Mix::parse("encrypt-batch=3,decrypt-batch=1,encrypt").expect("mix");
        assert_eq!(mix.to_string(), "encrypt-batch=3,decrypt-batch=1,encrypt=1");
        assert!(mix.contains(Op::EncryptBatch) && mix.contains(Op::DecryptBatch));
        for op in [Op::EncryptBatch, Op::DecryptBatch] {
            assert!(op.is_batch());
            assert_eq!(op.items(100), 100);
            assert_eq!(op.plaintext_bytes(64, 100), 6400);
        }
        for op in [Op::Encrypt, Op::Decrypt, Op::GenerateDataKey] {
            assert!(!op.is_batch());
            assert_eq!(op.items(100), 1);
        }
        assert_eq!(Op::Encrypt.plaintext_bytes(64, 100), 64);
        assert_eq!(Op::GenerateDataKey.plaintext_bytes(64, 100), 32);
        assert_eq!(Op::EncryptBatch.plaintext_bytes(usize::MAX, 2), usize::MAX);
    }

    #[test]
    fn zero_weights_drop_the_operation() {
        let mix = Mix::parse("encrypt=0,decrypt=1").expect("mix");
        assert!(!mix.contains(Op::Encrypt));
        assert!((0..10).all(|i| mix.pick(i) == Op::Decrypt));
        assert_eq!(Mix::default(), Mix::parse("encrypt").expect("mix"));
    }

    #[test]
    fn bad_mixes_say_what_is_wrong() {
        let error = |text: &str| Mix::parse(text).expect_err(text);
        assert!(error("").contains("empty item"));
        assert!(error("encrypt=1,").contains("empty item"));
        assert!(error("sign=1").contains("unknown operation \"sign\""));
        assert!(
            error("sign=1")
                .contains("encrypt, decrypt, generate-data-key, encrypt-batch, decrypt-batch")
        );
        assert!(error("encrypt=x").contains("not a whole number from 0 to 100"));
        assert!(error("encrypt=-1").contains("not a whole number"));
        assert!(error("encrypt=101").contains("not a whole number"));
        assert!(error("encrypt=1,encrypt=2").contains("encrypt appears twice"));
        assert!(error("encrypt=0").contains("every weight is 0"));
        assert!(error("batch=1").contains("unknown operation \"batch\""));
    }

    #[test]
    fn draws_are_deterministic_and_spread() {
        let mut a = Draw::new(7);
        let mut b = Draw::new(7);
        let first: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        assert_eq!(first, (0..4).map(|_| b.next_u64()).collect::<Vec<_>>());
        let mut counts = [0usize; 4];
        let mut draw = Draw::new(1);
        for _ in 0..4000 {
            counts[draw.below(4)] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
        assert_eq!(draw.below(0), 0);
    }
}
