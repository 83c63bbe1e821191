//! The MAC token (format 0x21) parser and verifier under a fixed test key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tresor_crypto::fuzz_mac_token(data);
});
