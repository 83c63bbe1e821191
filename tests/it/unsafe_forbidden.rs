//! `unsafe` stays forbidden everywhere: the crate roots say so, and
//! Cargo.toml's lint table extends it to examples, benches, tests and the
//! build script. (The compiler enforces the lint; this test keeps anyone
//! from quietly lifting it.)

use std::path::Path;

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative))
        .unwrap_or_else(|e| panic!("read {relative}: {e}"))
}

#[test]
fn crate_roots_forbid_unsafe_code() {
    for root in ["src/lib.rs", "src/main.rs"] {
        assert!(
            read(root)
                .lines()
                .any(|line| line.trim() == "#![forbid(unsafe_code)]"),
            "{root} must start with #![forbid(unsafe_code)]"
        );
    }
}

#[test]
fn every_target_forbids_unsafe_code() {
    let manifest = read("Cargo.toml");
    let table = manifest
        .split("\n[")
        .find(|section| section.starts_with("lints.rust]"))
        .expect("a [lints.rust] table in Cargo.toml");
    assert!(
        table
            .lines()
            .any(|line| line.split_whitespace().collect::<String>() == "unsafe_code=\"forbid\""),
        "[lints.rust] must set unsafe_code = \"forbid\":\n{table}"
    );
}
