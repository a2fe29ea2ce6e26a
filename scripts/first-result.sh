#!/usr/bin/env bash
# The on-ramp, timed (CONTRIBUTING.md, "Scripts"): how long a new user waits, on this machine,
# from `git clone` to
#   1. the template's first passing test (`cargo test` in a crate made from templates/task), and
#   2. the first completion report of a local job over that crate (`cargo s3batch run`
#      against `cargo lambda watch`),
# following the README's quick start as written, with nothing built before: a fresh clone, its
# own target folder, the task crate's own target folder, `cargo s3batch` installed into a
# fresh folder. What is shared with this machine, and so not timed: the crates already
# downloaded into ~/.cargo (the first `cargo` on a new machine also downloads them) and pip's
# cache (setup.sh downloads cargo-lambda, zig, moto and the AWS CLI).
#
#   scripts/first-result.sh [REV]        (default HEAD; ~20-30 minutes on 2 cores)
#
# Prints one line per step with its time, and the two totals. A long-running check, not a
# test: run it on an idle machine, its figures go to docs (CONTRIBUTING.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rev=${1:-HEAD}
work=$(mktemp -d /tmp/s3batch-first-result.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

start=$(date +%s)
last=$start
step() { # name
  local now; now=$(date +%s)
  printf 'first-result: %-58s %4d s   (total %d min %02d s)\n' "$1" $((now - last)) \
    $(((now - start) / 60)) $(((now - start) % 60))
  last=$now
}

unset CARGO_TARGET_DIR AWS_ENDPOINT_URL AWS_PROFILE
export CARGO_INSTALL_ROOT="$work/cargo-install"
git clone --quiet "$root" "$work/s3batch"
(cd "$work/s3batch" && git checkout --quiet "$rev")
step "git clone"
cd "$work/s3batch"
scripts/setup.sh >/dev/null
export PATH="$PWD/.venv/bin:$CARGO_INSTALL_ROOT/bin:$PATH"
step "scripts/setup.sh"

s3batch_dir="$PWD"
(cd "$work" && cargo lambda new my-task --no-interactive --template "$s3batch_dir/templates/task" \
  --render-var s3batch_path="$s3batch_dir" >/dev/null)
step "cargo lambda new my-task"
(cd "$work/my-task" && cargo test --quiet >"$work/test.log" 2>&1) || { cat "$work/test.log"; exit 1; }
step "cargo test (the template's first test passes)"
first_test=$(( $(date +%s) - start ))

cargo install --quiet --path cargo-s3batch --locked
step "cargo install --path cargo-s3batch --locked"
cd "$work/my-task"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
setsid cargo lambda watch --concurrency 4 -A 127.0.0.1 -P "$port" >"$work/watch.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 3000); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
printf 'example-bucket,photos/a+b.jpg\nexample-bucket,reports/\n' >manifest.csv
cargo s3batch run --manifest manifest.csv --function my-task \
  --endpoint-url "http://127.0.0.1:$port" --schema 2.0 --user-arg greeting=hi \
  --job-id first --report ./report >"$work/run.log" 2>&1 || { cat "$work/run.log"; exit 1; }
test -f report/job-first/manifest.json
step "cargo lambda watch + cargo s3batch run (the first report)"
first_job=$(( $(date +%s) - start ))

printf '\nfirst-result: from git clone to the first passing test: %d min %02d s (goal: 5 min)\n' \
  $((first_test / 60)) $((first_test % 60))
printf 'first-result: from git clone to the first local job report: %d min %02d s (goal: 10 min)\n' \
  $((first_job / 60)) $((first_job % 60))
# `cargo lambda watch` still writes into the task's target folder until it is stopped.
cleanup
pids=()
wait 2>/dev/null || true
rm -rf "$work"
