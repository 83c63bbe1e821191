//! Audit lines: peek, decode and re-encode one line, and offline verification of a whole file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tresor::audit::fuzz_audit(data);
});
