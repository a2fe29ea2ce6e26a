#!/usr/bin/env bash
# Measures the local job runner (the s3batch-job engine, and cargo-s3batch over it) and
# writes docs/runner-benchmarks.md:
#   1. in-process: a no-op task over many objects (LocalJob::run_in_process);
#   2. through `cargo lambda watch`: `cargo s3batch run` over examples/hello (no S3 calls);
#   3. the baseline: a plain loop of `cargo lambda invoke` calls on the same function.
# Everything is a release build. Usage: scripts/bench-runner.sh [WATCH_TASKS] [INVOKE_CALLS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tasks=${1:-3000}
calls=${2:-200}
inproc=${INPROC_TASKS:-200000}
conc=${CONCURRENCY:-8}
venv="$root/.venv/bin"
work="$root/target/s3batch-bench"
mkdir -p "$work" docs
export AWS_EC2_METADATA_DISABLED=true

scripts/setup.sh
cargo build --quiet --release -p s3batch-job --example noop_in_process
cargo build --quiet --release -p cargo-s3batch
cargo build --quiet --release -p hello
runner="$root/target/release/cargo-s3batch"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

echo "bench: in-process"
inproc_1=$("$root/target/release/examples/noop_in_process" "$inproc" 64)
inproc_2=$("$root/target/release/examples/noop_in_process" "$inproc" 1)

port=$("$venv/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$venv/cargo-lambda" lambda watch --release --ignore-changes --quiet -A 127.0.0.1 -P "$port" \
  --package hello --concurrency "$conc" >"$work/watch.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 1200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

seq 0 $((tasks - 1)) | sed 's|^|bench-bucket,dir%20|; s|$|/key%2B.txt|' >"$work/manifest.csv"
head -n $((conc * 2)) "$work/manifest.csv" >"$work/warm.csv"
run() { "$runner" s3batch run -q --function hello --endpoint-url "http://127.0.0.1:$port" "$@"; }
run --manifest "$work/warm.csv" --concurrency "$conc" >/dev/null   # start every instance

echo "bench: cargo s3batch run through cargo lambda watch"
watch_n=$(run --manifest "$work/manifest.csv" --concurrency "$conc" | grep 'time:')
watch_1=$(run --manifest "$work/manifest.csv" --concurrency 1 | grep 'time:')

echo "bench: cargo lambda invoke loop"
printf '%s' '{"invocationSchemaVersion":"1.0","invocationId":"i","job":{"id":"j"},"tasks":[{"taskId":"t","s3Key":"dir+1/key%2B.txt","s3VersionId":null,"s3BucketArn":"arn:aws:s3:::bench-bucket"}]}' >"$work/event.json"
invoke() { "$venv/cargo-lambda" lambda invoke -A 127.0.0.1 -P "$port" --data-file "$work/event.json" hello >/dev/null; }
export -f invoke; export venv port work
start=$(date +%s.%N)
for _ in $(seq 1 "$calls"); do invoke; done
end=$(date +%s.%N)
loop_1=$(echo "$start $end $calls" | awk '{printf "%.2f s, %.1f calls/s", $2-$1, $3/($2-$1)}')
start=$(date +%s.%N)
seq 1 "$calls" | xargs -P "$conc" -I{} bash -c invoke
end=$(date +%s.%N)
loop_n=$(echo "$start $end $calls" | awk '{printf "%.2f s, %.1f calls/s", $2-$1, $3/($2-$1)}')

cat >docs/runner-benchmarks.md <<MD
# Local job runner benchmarks

Produced by \`scripts/bench-runner.sh $tasks $calls\` on $(date -u +%Y-%m-%d), $(nproc) cores,
$(rustc --version | cut -d' ' -f1-2), $("$venv/cargo-lambda" lambda --version | head -1 | cut -d' ' -f1-2); release builds.
The function is a no-op: in-process an \`async fn\` returning \`Ok(())\`, otherwise
\`examples/hello\` (formats a string, no S3 calls) served by \`cargo lambda watch --release
--concurrency $conc\`, with its instances started before measuring.

| what | command | result |
|---|---|---|
| runner in-process, concurrency 64 | \`target/release/examples/noop_in_process $inproc 64\` | ${inproc_1#*: } |
| runner in-process, concurrency 1 | \`target/release/examples/noop_in_process $inproc 1\` | ${inproc_2#*: } |
| \`cargo s3batch run\` through watch, concurrency $conc | \`cargo s3batch run --manifest $tasks-rows.csv --function hello --endpoint-url http://127.0.0.1:PORT -j $conc\` | ${watch_n#*time: } |
| \`cargo s3batch run\` through watch, concurrency 1 | same, \`-j 1\` | ${watch_1#*time: } |
| loop of \`cargo lambda invoke\`, one at a time | \`for i in \$(seq $calls); do cargo lambda invoke -P PORT --data-file event.json hello; done\` | $loop_1 |
| \`cargo lambda invoke\`, $conc at a time | \`seq $calls \| xargs -P $conc …cargo lambda invoke…\` | $loop_n |

Reading it: the in-process rows are the runner's own ceiling (manifest, event building,
response parsing, bookkeeping and the s3batch handler, no network). Through
\`cargo lambda watch\` the time goes to the emulator and the function process; the runner
keeps $conc invocations in flight over one HTTP connection pool, while each
\`cargo lambda invoke\` pays a process start and a new connection.
MD
cat docs/runner-benchmarks.md
