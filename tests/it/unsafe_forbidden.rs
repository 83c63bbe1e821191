//! `unsafe` stays forbidden everywhere: every crate root says so, and the
//! workspace lint table, which every crate's Cargo.toml takes, extends it
//! to examples, benches, tests and build scripts. (The compiler enforces
//! the lint; this test keeps anyone from quietly lifting it.) The one
//! exception is `crates/tresor-test-fork`, a dev-only helper whose whole
//! point is one `fork(2)` call.

use std::path::Path;

/// The workspace's crates that forbid `unsafe`, by directory.
const CRATES: [&str; 5] = [
    ".",
    "crates/tresor-proto",
    "crates/tresor-crypto",
    "crates/tresor-client",
    "crates/tresor-bench",
];

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative))
        .unwrap_or_else(|e| panic!("read {relative}: {e}"))
}

fn compact(line: &str) -> String {
    line.split_whitespace().collect()
}

#[test]
fn crate_roots_forbid_unsafe_code() {
    let roots = CRATES
        .iter()
        .map(|dir| format!("{dir}/src/lib.rs"))
        .chain(["src/main.rs".to_owned()]);
    for root in roots {
        assert!(
            read(&root)
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
        .find(|section| section.starts_with("workspace.lints.rust]"))
        .expect("a [workspace.lints.rust] table in Cargo.toml");
    assert!(
        table
            .lines()
            .any(|line| compact(line) == "unsafe_code=\"forbid\""),
        "[workspace.lints.rust] must set unsafe_code = \"forbid\":\n{table}"
    );
    let members: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("crates"))
            .expect("crates/")
            .map(|entry| {
                format!(
                    "crates/{}",
                    entry.expect("entry").file_name().to_string_lossy()
                )
            })
            .filter(|dir| dir != "crates/tresor-test-fork")
            .collect();
    for dir in CRATES.iter().skip(1) {
        assert!(members.iter().any(|m| m == dir), "{dir} is not in crates/");
    }
    for dir in CRATES.iter().map(|d| d.to_string()).chain(members) {
        let manifest = read(&format!("{dir}/Cargo.toml"));
        let lints = manifest
            .split("\n[")
            .find(|section| section.starts_with("lints]"))
            .unwrap_or_else(|| panic!("{dir}/Cargo.toml has no [lints] table"));
        assert!(
            lints.lines().any(|line| compact(line) == "workspace=true"),
            "{dir}/Cargo.toml must take the workspace lints ([lints] workspace = true)"
        );
    }
}
