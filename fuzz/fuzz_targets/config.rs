//! `tresor serve` flags (one per line) validated into Settings, with stand-in files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tresor::config::fuzz_serve_args(data);
});
