//! Every dependency's licence is on the allow-list
//! (`scripts/licences-allowed.txt`), checked offline from Cargo.lock by
//! `scripts/licences.sh --check` (`cargo metadata --offline --locked`, for
//! the host platform: what a build here has downloaded).
//! `docs/DEPENDENCIES.md` holds the table it prints for every platform.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the licence check, with `allow` as the allow-list if given.
fn check(allow: Option<&Path>) -> Output {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut command = Command::new("bash");
    command
        .arg(Path::new(root).join("scripts/licences.sh"))
        .arg("--check")
        .env("CARGO", env!("CARGO"));
    if let Some(allow) = allow {
        command.env("ALLOW", allow);
    }
    command
        .output()
        .expect("run scripts/licences.sh (needs bash and python3)")
}

#[test]
fn every_dependency_has_an_allowed_licence() {
    let out = check(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with("| licence | allowed | packages |"),
        "{table}"
    );
    // The table covers the whole lock file, not a part of it.
    for package in ["ring 0.17.14", "tokio ", "tonic ", "zeroize "] {
        assert!(table.contains(package), "{package} missing from\n{table}");
    }
    assert!(!table.contains("**NO**"), "{table}");
}

#[test]
fn a_licence_off_the_list_fails_the_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let allow = dir.path().join("allowed.txt");
    let full = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/licences-allowed.txt"),
    )
    .expect("read allow-list");
    // Without Unicode-3.0, the ICU crates (Unicode-3.0 alone) and
    // unicode-ident (`(MIT OR Apache-2.0) AND Unicode-3.0`) are refused;
    // crates that also offer MIT are not.
    let without: String = full
        .lines()
        .filter(|line| *line != "Unicode-3.0")
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(without, full, "the allow-list has Unicode-3.0");
    std::fs::write(&allow, without).expect("write allow-list");
    let out = check(Some(&allow));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unicode-ident "), "{stderr}");
    assert!(stderr.contains("icu_collections "), "{stderr}");
    assert!(!stderr.contains("tokio "), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("**NO**"));
}
