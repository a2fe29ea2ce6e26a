#!/usr/bin/env bash
# Fuzzes the envelope for a bounded time: raw bytes → Event → Handler → Response, with a task
# that always succeeds (fuzz/fuzz_targets/envelope.rs). Not part of scripts/test.sh.
#
#   scripts/fuzz.sh [seconds] [extra libFuzzer flags...]     (default 300 seconds)
#
# Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz --locked
# The corpus starts from the sample events and the contract vectors; crashes land in
# fuzz/artifacts/envelope/. libFuzzer prints the number of executions at the end
# (stat::number_of_executed_units).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
shift || true
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain: run \`rustup toolchain install nightly\`" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is missing: run \`cargo install cargo-fuzz --locked\`" >&2
  exit 1
fi
corpus=fuzz/corpus/envelope
mkdir -p "$corpus"
cp examples/events/*.json tests/fixtures/vectors/*.json fuzz/regressions/* "$corpus"/
cd fuzz
cargo +nightly fuzz run envelope "corpus/envelope" -- \
  -max_total_time="$seconds" -print_final_stats=1 -max_len=65536 -timeout=10 "$@"
