#!/usr/bin/env bash
# The demo (CONTRIBUTING.md, "Scripts"): a whole S3 Batch Operations job on this machine, no AWS account.
#
#   scripts/demo.sh [NUMBER_OF_OBJECTS]      (default 300)
#
# 1. installs cargo-lambda and moto into .venv (scripts/setup.sh) and builds the runner and
#    examples/copy_rename;
# 2. starts a local S3 (moto) unless AWS_ENDPOINT_URL points at one already;
# 3. uploads objects with awkward keys (spaces, +, %, unicode, /, ..) and a manifest for them;
# 4. serves examples/copy_rename with `cargo lambda watch`;
# 5. runs the job with `cargo s3batch run` (schema 2.0, destBucket as a user argument) and
#    prints the summary; the completion report goes to target/s3batch-demo/report/.
# Every process it starts is stopped on exit.
#
# Its second part, scripts/lifecycle.sh, runs a job the way S3 runs it (submit, status --watch,
# report, retry of the failures) against the local S3 Control endpoint `cargo s3batch serve`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
count=${1:-300}
venv="$root/.venv/bin"
out="$root/target/s3batch-demo"

scripts/setup.sh
echo "demo: building the runner and examples/copy_rename (the first build takes a few minutes)"
cargo build --quiet -p cargo-s3batch -p copy_rename

source "$root/scripts/lib.sh" # stops what it starts on exit; start_moto, start_watch

mkdir -p "$out"
if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
  start_moto "$out/moto.log"
  export AWS_ENDPOINT_URL="$s3"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  echo "demo: local S3 (moto) at $AWS_ENDPOINT_URL"
else
  echo "demo: using the S3 at AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"
fi
export AWS_REGION=${AWS_REGION:-us-east-1} AWS_EC2_METADATA_DISABLED=true

run_id=$(date +%s)
src="s3batch-demo-src-$run_id" dest="s3batch-demo-dest-$run_id"
"$venv/python" - "$count" "$src" "$dest" <<'PY'
import sys, urllib.parse, boto3
from botocore.config import Config
count, src, dest = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
for b in (src, dest):
    s3.create_bucket(Bucket=b)
awkward = ["plain", "with space", "a+plus", "100% sure", "café/ünïcödé", "emoji 😀",
           "dir/sub dir/../file", "../../etc/passwd", "q?x=1&y=2#frag", "comma, \"quoted\"",
           "%2B literal", "日本語/キー", "~tilde*star!"]
rows = []
for i in range(count):
    key = f"{awkward[i % len(awkward)]}/{i:04}.txt"
    s3.put_object(Bucket=src, Key=key, Body=key.encode())
    rows.append(f"{src},{urllib.parse.quote(key, safe='/')}")
s3.put_object(Bucket=src, Key="manifest.csv", Body=("\n".join(rows) + "\n").encode())
print(f"demo: uploaded {count} objects with awkward keys and s3://{src}/manifest.csv")
PY

start_watch "$out/watch.log" 120 --package copy_rename --concurrency 4 \
  --env-var "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" --env-var "AWS_REGION=$AWS_REGION" \
  --env-var "AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-}" --env-var "AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-}" \
  --env-var AWS_EC2_METADATA_DISABLED=true
echo "demo: examples/copy_rename served by cargo lambda watch on port $watch_port"
echo

status=0
"${CARGO_TARGET_DIR:-$root/target}/debug/cargo-s3batch" s3batch run \
  --manifest "s3://$src/manifest.csv" \
  --function copy_rename \
  --endpoint-url "http://127.0.0.1:$watch_port" \
  --schema 2.0 --user-arg "destBucket=$dest" \
  --concurrency 4 \
  --report "$out/report" || status=$?

copies=$("$venv/python" - "$dest" <<'PY'
import sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
n = sum(p.get("KeyCount", 0) for p in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[1]))
print(n)
PY
)
echo "demo: s3://$dest now holds $copies copies (keys + _new_suffix)"
exit $status
