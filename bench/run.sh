#!/usr/bin/env bash
# Runs every s3batch benchmark and writes BENCHMARKS.md at the workspace root:
#   1. warm envelope overhead (criterion, benches/envelope.rs)
#   2. cold start through a local Runtime API stand-in (src/bin/runtime_api.rs), against
#      hand-written Rust and Python
#   3. stripped binary size (cargo lambda build --release) and peak RSS
#   4. 100 tasks x 10 ms of I/O in one invocation (criterion, benches/concurrency.rs)
#   5. instruction counts per invocation (callgrind), the repeatable view of 1.
# Usage: bench/run.sh            (COLD_RUNS=N to change the cold-start runs, default 21)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out="$root/target/bench"
mkdir -p "$out"
cold_runs=${COLD_RUNS:-21}
log() { printf '\n== %s\n' "$*" >&2; }

log "tools: cargo-lambda (scripts/setup.sh), Python baseline venv (bench/python/requirements.txt)"
scripts/setup.sh
py="$root/bench/python/.venv"
if ! cmp -s "$root/bench/python/requirements.txt" "$py/.requirements" 2>/dev/null; then
  python3 -m venv "$py"
  "$py/bin/pip" install --quiet --disable-pip-version-check -r "$root/bench/python/requirements.txt"
  cp "$root/bench/python/requirements.txt" "$py/.requirements"
fi
# cargo lambda finds zig through `python3 -m ziglang`; the setup venv has it.
export PATH="$root/.venv/bin:$PATH"

log "build: cargo lambda build --release (the deployable bootstrap binaries)"
cargo lambda build --release -p s3batch-bench --bin framework --bin handwritten
log "build: the Runtime API stand-in and the callgrind driver"
cargo build --release -p s3batch-bench --bin runtime_api --bin envelope_once

log "1 + 4: criterion (cargo bench)"
cargo bench -p s3batch-bench --bench envelope --bench concurrency

log "5: callgrind instruction counts"
: > "$out/instructions.tsv"
count() { # VARIANT TASKS ITERATIONS [tracing]
  BENCH_TRACING=${4:+1} valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$root/target/release/envelope_once" "$1" "$2" "$3" > /dev/null 2> "$out/callgrind.log"
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/callgrind.log"
}
for tasks in 1 100; do
  for iters in 0 200; do
    for variant in s3batch handwritten serde_floor; do
      printf '%s\t%s\t%s\t%s\n' "$variant" "$tasks" "$iters" "$(count "$variant" "$tasks" "$iters")" >> "$out/instructions.tsv"
    done
    # With Lambda's INFO subscriber installed: what recording the per-task span costs.
    for variant in s3batch handwritten; do
      printf '%s\t%s\t%s\t%s\n' "$variant+tracing" "$tasks" "$iters" "$(count "$variant" "$tasks" "$iters" tracing)" >> "$out/instructions.tsv"
    done
  done
done

# Cold start in instructions: process start to exit with the Runtime API unreachable (init,
# the S3 client, one failed poll), so the figure does not depend on the machine's load.
for bin in framework handwritten; do
  env -i PATH="$PATH" HOME="$out" AWS_LAMBDA_RUNTIME_API=127.0.0.1:9 AWS_LAMBDA_FUNCTION_NAME=s3batch-bench \
    AWS_LAMBDA_FUNCTION_VERSION='$LATEST' AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=AKIDBENCHMARK AWS_SECRET_ACCESS_KEY=benchmark AWS_SESSION_TOKEN=benchmark \
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$root/target/lambda/$bin/bootstrap" \
    > /dev/null 2> "$out/callgrind.log" || true
  printf '%s\t%s\n' "$bin" "$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/callgrind.log")"
done > "$out/coldstart-instructions.tsv"

log "2 + 3: cold start and peak RSS, $cold_runs interleaved runs each (+1 warm-up)"
lambda="$root/target/lambda"
"$root/target/release/runtime_api" --tasks 1 --runs "$cold_runs" \
  --program "s3batch::$lambda/framework/bootstrap" \
  --program "handwritten::$lambda/handwritten/bootstrap" \
  --program "python:$root/bench/python:$py/bin/python -m awslambdaric handler.lambda_handler" \
  > "$out/coldstart.json"
# The same two Rust programs with the TLS roots read from the one bundle file only, as on
# Lambda's Amazon Linux (this Debian box also has ~150 files in /etc/ssl/certs, which
# rustls-native-certs reads one by one when the S3 client is built).
mkdir -p "$out/empty-cert-dir"
"$root/target/release/runtime_api" --tasks 1 --runs "$cold_runs" \
  --program "s3batch::SSL_CERT_DIR=$out/empty-cert-dir $lambda/framework/bootstrap" \
  --program "handwritten::SSL_CERT_DIR=$out/empty-cert-dir $lambda/handwritten/bootstrap" \
  > "$out/coldstart-bundle.json"

log "report: BENCHMARKS.md"
python3 "$root/bench/report.py" "$out" > "$root/BENCHMARKS.md"
cat "$root/BENCHMARKS.md"
