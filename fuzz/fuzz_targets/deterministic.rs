//! The deterministic ciphertext (format 0x11) parser and opener under a fixed test key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tresor_crypto::fuzz_deterministic(data);
});
