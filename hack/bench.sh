#!/usr/bin/env bash
# `make bench`: build phi-guard in release mode and run the admission benchmark
# (benches/admission.rs) with the server pinned to CPU 0 and the load generator on CPU 1.
# Prints a Markdown table (copy it into BENCHMARKS.md). BENCH_SECONDS sets seconds per point.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin phi-guard
export PHI_GUARD_BIN="$PWD/target/release/phi-guard"
cargo bench --locked --bench admission --no-run
exe=$(cargo bench --locked --bench admission --no-run --message-format=json 2>/dev/null \
  | jq -r 'select(.profile.test == true and .target.name == "admission") | .executable' | tail -1)
taskset -c 1 "$exe"
