//! Snapshot tests of CLI help and usage errors (trycmd): the text users see
//! is reviewed in `tests/cmd/*.md`. Regenerate after an intended change with
//! `TRYCMD=overwrite cargo test --test it cli_snapshots`.

#[test]
fn cli_help_and_usage_snapshots() {
    trycmd::TestCases::new()
        .env("NO_COLOR", "1")
        .case("tests/cmd/*.md")
        .case("tests/cmd/*.toml");
}
