//! The ciphertext parser, the writer that re-encodes it, and open/seal under a fixed test key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tresor_crypto::fuzz_ciphertext(data);
});
