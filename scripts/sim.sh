#!/usr/bin/env bash
# Seed sweep of the deterministic consensus simulator.
#
#   scripts/sim.sh --seeds N [--validators 4|7] [--first-seed S] [--jobs J] [--planted-bug NAME]
#   scripts/sim.sh --seed S [--validators 4|7] [--trace] [--planted-bug NAME]
#
# A sweep prints each failing seed with the command that reproduces it and ends with one
# line `seeds=N violations=V stalls=S`; the exit status is non-zero if V or S is. The logic
# lives in tests/src/bin/sim.rs; this script only builds and runs it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
cargo build --quiet --release --manifest-path "$repo/Cargo.toml" -p custos-tests --bin sim
exec "$target/release/sim" "$@"
