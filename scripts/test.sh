#!/usr/bin/env bash
# Sets up the machine and runs every check CI runs: formatting, lints, all tests.
# Everything builds with the release profile, the one profile this project uses, so
# RocksDB's C++ compiles once.
set -euo pipefail
cd "$(dirname "$0")/.."

# --anvil: the anchoring tests run a real local EVM node (node/tests/anchor.rs).
scripts/setup.sh --anvil

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (release, all targets, warnings are errors)"
cargo clippy --release --workspace --all-targets -- -D warnings

step "cargo test (release)"
cargo test --release --workspace
