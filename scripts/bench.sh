#!/usr/bin/env bash
# The network benchmark: four real validators on loopback with RocksDB syncing as in
# production, pre-signed 1 KiB messages from eight collectors, an offered-load sweep and a
# saturation run, the same-run Ed25519 ceiling, CPU and storage per message, proof reads,
# catch-up and SIGKILL rejoin. The logic is in Rust (tests/src/bench); results (Markdown,
# JSON, PNG plot) go to results/. The last line of the output is the JSON.
#
#   scripts/bench.sh            the full run (a few minutes)
#   scripts/bench.sh --quick    a short run, under a minute of measuring
#   scripts/bench.sh --keep     also keep the validators' folders for inspection
#   scripts/bench.sh --profile  also profile the validators with perf during saturation
#
# The validators log at `warn` into node.log in their folders; set CUSTOS_BENCH_LOG (for
# example to `info`) for more, with --keep to read it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
  case "$arg" in
    --quick|--keep|--profile) ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
setup=()
for arg in "$@"; do [ "$arg" = --profile ] && setup+=(--perf); done
scripts/setup.sh "${setup[@]}" >&2
target="${CARGO_TARGET_DIR:-target}"
echo "bench: building custos and the bench (release)" >&2
cargo build --release -p custos-node --bin custos -p custos-tests --bin bench >&2
exec "$target/release/bench" --custos "$target/release/custos" --out results "$@"
