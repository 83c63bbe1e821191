//! Per-message salts, drawn from the operating system's CSPRNG in blocks.
//!
//! A salt is public (it is written into the ciphertext header) and only has
//! to be unique: two messages under one key with the same salt and binding
//! would share a message key and, with the constant nonce, break GCM. 256
//! random bits make a repeat practically impossible. Asking the kernel for
//! 32 bytes costs a system call (about half a microsecond here, a quarter of
//! a 1 KiB seal), so each thread fetches [`POOL_LEN`] bytes at once and hands
//! them out in order; every byte is used once.
//!
//! Invariant: tresor never forks without exec. A plain `fork` would copy a
//! half-used pool into the child, and parent and child would hand out the
//! same salts. (`std::process::Command` execs, so the child never runs this
//! code.)

use std::cell::RefCell;

use ring::rand::{SecureRandom, SystemRandom};

use super::format::SALT_LEN;
use crate::error::CryptoError;

/// Bytes fetched from the kernel at once: 128 salts.
const POOL_LEN: usize = 128 * SALT_LEN;

/// One thread's unused random bytes: `bytes[next..]`.
struct Pool {
    bytes: [u8; POOL_LEN],
    next: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0u8; POOL_LEN], next: POOL_LEN })
    };
}

/// A fresh salt.
///
/// # Errors
///
/// [`CryptoError::Rng`] if the system random number generator fails.
pub(crate) fn fresh_salt() -> Result<[u8; SALT_LEN], CryptoError> {
    POOL.with_borrow_mut(|pool| {
        if pool.next + SALT_LEN > POOL_LEN {
            SystemRandom::new()
                .fill(&mut pool.bytes)
                .map_err(|_| CryptoError::Rng)?;
            pool.next = 0;
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&pool.bytes[pool.next..pool.next + SALT_LEN]);
        // Never hand the same bytes out twice, even if `next` were reset.
        pool.bytes[pool.next..pool.next + SALT_LEN].fill(0);
        pool.next += SALT_LEN;
        Ok(salt)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn salts_never_repeat_across_refills_and_threads() {
        let draw = || {
            (0..3 * POOL_LEN / SALT_LEN)
                .map(|_| fresh_salt().expect("rng"))
                .collect::<Vec<_>>()
        };
        let other = std::thread::spawn(draw).join().expect("thread");
        let mine = draw();
        let all: HashSet<[u8; SALT_LEN]> = mine.iter().chain(&other).copied().collect();
        assert_eq!(all.len(), mine.len() + other.len());
        assert!(!all.contains(&[0u8; SALT_LEN]));
    }
}
