//! Per-message salts from a per-thread ChaCha12 generator seeded by the
//! operating system, and once-per-stream salts from the operating system
//! itself.
//!
//! A salt is public (it is written into the ciphertext header) and only has
//! to be unique: two messages under one key with the same salt and binding
//! would share a message key and, with the constant nonce, break GCM. 256
//! bits from a cryptographic generator make a repeat practically
//! impossible. Asking the kernel for every salt costs a system call, a
//! large part of a small seal, and even in blocks its generator cost a
//! noticeable part (docs/BENCHMARKS.md, "Figures behind design choices"); rand's `StdRng` (ChaCha12, the generator behind
//! `rand::rng()`) seeded from the kernel and reseeded every [`RESEED_AFTER`]
//! salts costs far less. Unlike `rand::rng()`, a seeding failure
//! here is an error, not a panic.
//!
//! Fork safety: a `fork` without `exec` copies the generator into the
//! child, and parent and child would then hand out the same salts (same
//! message keys, GCM key-stream reuse and forgeries). Applications that use
//! the SDK may fork with a data key cached, so every draw compares the
//! process id the generator was seeded in with the current one
//! ([`rustix::process::getpid`], a system call that cannot fail) and
//! reseeds from the kernel when they differ. A stream draws one salt and
//! then seals any amount of data, so [`stream_salt`] skips the generator and
//! asks the kernel every time: no copied state can repeat it, even if a
//! process id is reused.

use std::cell::RefCell;

use rand::rngs::{StdRng, SysRng};
use rand::{Rng, SeedableRng};
use ring::rand::SecureRandom;
use rustix::process::{Pid, getpid};

use super::format::SALT_LEN;
use crate::CryptoError;

/// Salts drawn before the generator is reseeded from the kernel (64 KiB of
/// output, as `rand::rng()` does).
const RESEED_AFTER: u32 = 2048;

/// One thread's generator, the process it was seeded in, and how many
/// salts it has left before a reseed.
struct Generator {
    rng: StdRng,
    pid: Pid,
    left: u32,
}

thread_local! {
    static GENERATOR: RefCell<Option<Generator>> = const { RefCell::new(None) };
}

/// A fresh salt for one message, from this thread's generator.
///
/// # Errors
///
/// [`CryptoError::Rng`] if the system random number generator fails.
pub(crate) fn fresh_salt() -> Result<[u8; SALT_LEN], CryptoError> {
    let pid = getpid();
    GENERATOR.with_borrow_mut(|slot| {
        let generator = match slot {
            Some(generator) if generator.left > 0 && generator.pid == pid => generator,
            _ => slot.insert(Generator {
                rng: StdRng::try_from_rng(&mut SysRng).map_err(|_| CryptoError::Rng)?,
                pid,
                left: RESEED_AFTER,
            }),
        };
        generator.left -= 1;
        let mut salt = [0u8; SALT_LEN];
        generator.rng.fill_bytes(&mut salt);
        Ok(salt)
    })
}

/// A fresh salt for one stream, straight from the kernel's generator.
///
/// # Errors
///
/// [`CryptoError::Rng`] if the system random number generator fails.
pub(crate) fn stream_salt() -> Result<[u8; SALT_LEN], CryptoError> {
    let mut salt = [0u8; SALT_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| CryptoError::Rng)?;
    Ok(salt)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn salts_never_repeat_across_reseeds_and_threads() {
        let draw = || {
            (0..3 * RESEED_AFTER)
                .map(|_| fresh_salt().expect("rng"))
                .collect::<Vec<_>>()
        };
        let other = std::thread::spawn(draw).join().expect("thread");
        let mine = draw();
        let all: HashSet<[u8; SALT_LEN]> = mine.iter().chain(&other).copied().collect();
        assert_eq!(all.len(), mine.len() + other.len());
        assert!(!all.contains(&[0u8; SALT_LEN]));
    }

    #[test]
    fn stream_salts_never_repeat() {
        let salts: HashSet<[u8; SALT_LEN]> = (0..64).map(|_| stream_salt().expect("rng")).collect();
        assert_eq!(salts.len(), 64);
        assert!(!salts.contains(&[0u8; SALT_LEN]));
    }
}
