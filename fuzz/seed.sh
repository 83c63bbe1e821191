#!/usr/bin/env bash
# Rewrites fuzz/seeds/ from keystore-fixtures/ and the README's `tresor
# serve` examples. The seeds are made by the ignored test `write_seeds` in
# tests/it/fuzz_smoke.rs, so that `cargo test` can check the committed seeds
# are still what the fixtures make (committed_seeds_are_made_from_the_fixtures).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo test --locked --test it -- --ignored --exact fuzz_smoke::write_seeds
ls fuzz/seeds/*
