//! The stream envelope: header parsing and re-encoding, chunk opening, and a seal/open round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tresor_crypto::fuzz_stream(data);
});
