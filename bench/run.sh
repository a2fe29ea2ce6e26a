#!/usr/bin/env bash
# Runs every s3batch benchmark and writes BENCHMARKS.md at the workspace root:
#   1. warm envelope overhead (criterion, benches/envelope.rs)
#   2. cold start through a local Runtime API stand-in (src/bin/runtime_api.rs), against
#      hand-written Rust and Python
#   3. stripped binary size (cargo lambda build --release) and peak RSS
#   2 and 3 for two pairs: with an S3 client (s3batch's `Client` parameter against a
#   hand-written handler with aws-config + Client), and without one (s3batch built without
#   its `s3` feature, bench/no-s3, against a hand-written lambda_runtime handler)
#   4. 100 tasks x 10 ms of I/O in one invocation (criterion, benches/concurrency.rs)
#   5. instruction counts per invocation (callgrind), the repeatable view of 1.
#   BENCHMARKS.md also includes bench/streaming.md (bench/streaming.sh's figures) and
#   bench/distributed-map.md (written by bench/distributed-map.sh); this script runs neither.
# Usage: bench/run.sh            (COLD_RUNS=N to change the cold-start runs, default 21)
#        SECTIONS="2 3" bench/run.sh   runs only those sections (1 and 4 are one criterion run,
#        as are 2 and 3) and writes no BENCHMARKS.md, which needs them all; the figures stay in
#        $CARGO_TARGET_DIR/bench (default target/bench)
#        SECTIONS=5 VARIANTS="s3batch s3batch+metrics" BUILDS=lambda bench/run.sh   counts
#        only those variants of section 5 (names as in instructions.tsv) in those builds, and
#        builds only the driver; no cold-start counts (the metrics rows of BENCHMARKS.md)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=$(cd "$root" && mkdir -p "${CARGO_TARGET_DIR:-target}" && cd "${CARGO_TARGET_DIR:-target}" && pwd)
out="$target/bench"
mkdir -p "$out"
cold_runs=${COLD_RUNS:-21}
sections=${SECTIONS:-1 2 3 4 5}
want() { for s in $sections; do [ "$s" = "$1" ] && return 0; done; return 1; }
variants=${VARIANTS:-s3batch s3batch+metrics handwritten serde_floor s3batch+tracing handwritten+tracing}
builds=${BUILDS:-lambda release}
has() { local x=$1; shift; for v in "$@"; do [ "$v" = "$x" ] && return 0; done; return 1; }
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

if [ -z "${VARIANTS:-}" ] || want 2 || want 3; then
log "build: cargo lambda build --release (the deployable bootstrap binaries)"
cargo lambda build --release -p s3batch-bench --bin framework --bin handwritten
# Its own build: within one, cargo would turn on s3batch's `s3` feature for this package too.
cargo lambda build --release -p s3batch-bench-no-s3 --bin framework_no_client --bin handwritten_no_client
fi
log "build: the Runtime API stand-in and the callgrind driver (as deployed, and in the workspace's release profile)"
if [ -z "${VARIANTS:-}" ] || has release $builds || want 2 || want 3; then
  cargo build --release -p s3batch-bench --bin runtime_api --bin envelope_once
fi
cargo lambda build --release -p s3batch-bench --bin envelope_once

if want 1 || want 4; then
log "1 + 4: criterion (cargo bench)"
cargo bench -p s3batch-bench --bench envelope --bench concurrency
fi

if want 5; then
log "5: callgrind instruction counts"
: > "$out/instructions.tsv"
count() { # BINARY VARIANT TASKS ITERATIONS [tracing]
  # A fixed, minimal environment: glibc's malloc, and so every count, depends on the process's
  # start-up state (see the notes).
  env -i PATH=/usr/bin:/bin ${5:+BENCH_TRACING=1} valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$1" "$2" "$3" "$4" > /dev/null 2> "$out/callgrind.log"
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/callgrind.log"
}
# Per invocation in the steady state: the difference between a run of 3N invocations and one
# of N, over 2N. The first invocations of a process are cheaper than the later ones (glibc's
# malloc settles its bins over the first few hundred), so N = 0 would flatter both sides.
# glibc's malloc also settles differently with the process's start-up allocations: the length
# of the program's own path alone moves the hand-written handler's count at 100 tasks by 13 %
# (see the notes). So each count is taken under eight paths of different lengths (symlinks to
# the same binary) and the report gives their mean, minimum and maximum.
layouts="1 9 17 25 33 41 49 57"
mkdir -p "$out/layout"
for build in $builds; do
  bin="$target/release/envelope_once"
  [ "$build" = lambda ] && bin="$target/lambda/envelope_once/bootstrap"
  for k in $layouts; do
    ln -sf "$bin" "$out/layout/$build-$(printf '%*s' "$k" '' | tr ' ' x)"
  done
  for tasks in 1 100; do
    n=$(( tasks == 1 ? 1000 : 200 ))
    for k in $layouts; do
      path="$out/layout/$build-$(printf '%*s' "$k" '' | tr ' ' x)"
      for iters in "$n" $(( 3 * n )); do
        # s3batch+metrics: s3batch with CloudWatch metrics on (its EMF document to stdout).
        for variant in s3batch s3batch+metrics handwritten serde_floor; do
          has "$variant" $variants || continue
          printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$build" "$variant" "$tasks" "$k" "$iters" "$(count "$path" "$variant" "$tasks" "$iters")" >> "$out/instructions.tsv"
        done
        # With Lambda's INFO subscriber installed: what the per-task span costs.
        for variant in s3batch handwritten; do
          has "$variant+tracing" $variants || continue
          printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$build" "$variant+tracing" "$tasks" "$k" "$iters" "$(count "$path" "$variant" "$tasks" "$iters" tracing)" >> "$out/instructions.tsv"
        done
      done
    done
  done
done

# Cold start in instructions: process start to exit with the Runtime API unreachable (init,
# the S3 client, one failed poll), so the figure does not depend on the machine's load.
[ -n "${VARIANTS:-}" ] || for bin in framework handwritten framework_no_client handwritten_no_client; do
  env -i PATH="$PATH" HOME="$out" AWS_LAMBDA_RUNTIME_API=127.0.0.1:9 AWS_LAMBDA_FUNCTION_NAME=s3batch-bench \
    AWS_LAMBDA_FUNCTION_VERSION='$LATEST' AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=AKIDBENCHMARK AWS_SECRET_ACCESS_KEY=benchmark AWS_SESSION_TOKEN=benchmark \
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$target/lambda/$bin/bootstrap" \
    > /dev/null 2> "$out/callgrind.log" || true
  printf '%s\t%s\n' "$bin" "$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/callgrind.log")"
done > "$out/coldstart-instructions.tsv"
fi

if want 2 || want 3; then
log "2 + 3: cold start and peak RSS, $cold_runs interleaved runs each (+1 warm-up)"
lambda="$target/lambda"
"$target/release/runtime_api" --tasks 1 --runs "$cold_runs" \
  --program "s3batch::$lambda/framework/bootstrap" \
  --program "handwritten::$lambda/handwritten/bootstrap" \
  --program "python:$root/bench/python:$py/bin/python -m awslambdaric handler.lambda_handler" \
  > "$out/coldstart.json"
# The same two Rust programs with the TLS roots read from the one bundle file only, as on
# Lambda's Amazon Linux (this Debian box also has ~150 files in /etc/ssl/certs, which
# rustls-native-certs reads one by one when the S3 client is built).
mkdir -p "$out/empty-cert-dir"
"$target/release/runtime_api" --tasks 1 --runs "$cold_runs" \
  --program "s3batch::SSL_CERT_DIR=$out/empty-cert-dir $lambda/framework/bootstrap" \
  --program "handwritten::SSL_CERT_DIR=$out/empty-cert-dir $lambda/handwritten/bootstrap" \
  > "$out/coldstart-bundle.json"
# The pair without an S3 client, interleaved with each other.
"$target/release/runtime_api" --tasks 1 --runs "$cold_runs" \
  --program "s3batch::$lambda/framework_no_client/bootstrap" \
  --program "handwritten::$lambda/handwritten_no_client/bootstrap" \
  > "$out/coldstart-no-client.json"
fi

if [ "$sections" != "1 2 3 4 5" ]; then
  log "SECTIONS=\"$sections\": no BENCHMARKS.md (it needs every section); the figures are in $out"
  exit 0
fi
log "report: BENCHMARKS.md"
python3 "$root/bench/report.py" "$out" > "$root/BENCHMARKS.md"
cat "$root/BENCHMARKS.md"
