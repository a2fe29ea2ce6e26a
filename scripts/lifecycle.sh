#!/usr/bin/env bash
# The whole life of an S3 Batch Operations job on this machine, no AWS account:
#
#   scripts/lifecycle.sh
#
# 1. starts a local S3 (moto), examples/chaos under `cargo lambda watch`, and the local
#    S3 Control endpoint `cargo s3batch serve`;
# 2. uploads objects and a manifest whose keys fail on purpose: temporarily once (S3's redrive
#    retries them and they succeed), temporarily always, permanently, by a panic, and four
#    objects that are listed but missing (a 404);
# 3. `cargo s3batch submit` creates the job (CreateJob), `status --watch` follows it;
# 4. `cargo s3batch report` reads the completion report from the bucket: counts by status,
#    code and message;
# 5. the missing objects are uploaded (the "fix"), `report --failed-manifest --message`
#    writes a manifest of just the rows that failed for that reason, and a second
#    `submit` + `status --watch` runs them again: every one succeeds.
# Every process it starts is stopped on exit; logs are in target/s3batch-lifecycle/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="$root/.venv/bin"
out="$root/target/s3batch-lifecycle"
account=123456789012

scripts/setup.sh
echo "lifecycle: building the runner and examples/chaos (the first build takes a few minutes)"
cargo build --quiet -p cargo-s3batch -p chaos
cli="$root/target/debug/cargo-s3batch"

source "$root/scripts/lib.sh" # stops what it starts on exit; start_moto, start_watch

rm -rf "$out" && mkdir -p "$out"
start_moto "$out/moto.log"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_ENDPOINT_URL AWS_PROFILE

start_watch "$out/watch.log" 120 --package chaos --concurrency 4 \
  --env-var "AWS_ENDPOINT_URL=$s3" --env-var AWS_REGION=us-east-1 \
  --env-var AWS_ACCESS_KEY_ID=testing --env-var AWS_SECRET_ACCESS_KEY=testing \
  --env-var AWS_EC2_METADATA_DISABLED=true

cport=$(free_port)
"$cli" s3batch serve --port "$cport" --s3-endpoint-url "$s3" \
  --lambda-endpoint-url "http://127.0.0.1:$watch_port" --state-dir "$out/state" >"$out/serve.log" 2>&1 &
pids+=($!)
wait_port "$cport" "cargo s3batch serve" 60
control="http://127.0.0.1:$cport"
echo "lifecycle: S3 (moto) $s3, chaos under cargo lambda watch :$watch_port, S3 Control (serve) $control"

"$venv/python" - "$s3" "$out/manifest.csv" <<'PY'
import sys, urllib.parse, boto3
from botocore.config import Config
endpoint, manifest = sys.argv[1:3]
s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
for b in ("photos", "jobs", "reports"):
    s3.create_bucket(Bucket=b)
keys = [f"ok/{i:03} summer+é.jpg" for i in range(40)]
keys += [f"temp-once/{i}.jpg" for i in range(3)]     # temporary once: S3 redrives, then ok
keys += [f"temp-always/{i}.jpg" for i in range(2)]   # temporary every time
keys += [f"perm/{i}.jpg" for i in range(2)]          # permanent
keys += [f"panic/{i}.jpg" for i in range(2)]         # the task panics
missing = [f"late/{i} arrival.jpg" for i in range(4)]  # listed, not there yet: 404
for k in keys:
    s3.put_object(Bucket="photos", Key=k, Body=k.encode())
with open(manifest, "w") as f:
    for k in keys + missing:
        f.write(f"photos,{urllib.parse.quote_plus(k, safe='/')}\n")
print(f"lifecycle: {len(keys)} objects in s3://photos, {len(keys) + len(missing)} rows in the manifest "
      f"({len(missing)} of them missing)")
PY

common=(--endpoint-url "$control" --account-id "$account" --region us-east-1)
submit() { # manifest, extra options...
  "$cli" s3batch submit "${common[@]}" --s3-endpoint-url "$s3" --manifest "$@" \
    --function-arn "arn:aws:lambda:us-east-1:$account:function:chaos" \
    --role-arn "arn:aws:iam::$account:role/s3batch-demo" \
    --report s3://reports/batch
}

echo
echo "\$ cargo s3batch submit --manifest manifest.csv --manifest-upload s3://jobs/manifest.csv …"
job=$(submit "$out/manifest.csv" --manifest-upload s3://jobs/manifest.csv --description "lifecycle demo")
echo "$job"
echo "\$ cargo s3batch status $job --watch"
status=0
"$cli" s3batch status "$job" --watch --interval 0.5 "${common[@]}" || status=$?
echo "(exit $status)"

echo
echo "\$ cargo s3batch report s3://reports/batch/job-$job/manifest.json"
"$cli" s3batch report "s3://reports/batch/job-$job/manifest.json" --s3-endpoint-url "$s3"

echo
echo "lifecycle: the fix: upload the four missing objects, then run only the rows that failed with a 404"
"$venv/python" - "$s3" <<'PY'
import sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], config=Config(s3={"addressing_style": "path"}))
for i in range(4):
    k = f"late/{i} arrival.jpg"
    s3.put_object(Bucket="photos", Key=k, Body=k.encode())
PY
echo "\$ cargo s3batch report s3://reports/batch/job-$job/manifest.json --failed-manifest s3://jobs/retry.csv --message '404|[Nn]ot ?[Ff]ound'"
"$cli" s3batch report "s3://reports/batch/job-$job/manifest.json" --s3-endpoint-url "$s3" \
  --failed-manifest s3://jobs/retry.csv --message '404|[Nn]ot ?[Ff]ound'
echo "\$ cargo s3batch submit --manifest s3://jobs/retry.csv …"
retry=$(submit s3://jobs/retry.csv --description "lifecycle demo: retry")
echo "$retry"
echo "\$ cargo s3batch status $retry --watch"
"$cli" s3batch status "$retry" --watch --interval 0.5 "${common[@]}"
echo "\$ cargo s3batch report s3://reports/batch/job-$retry/manifest.json"
"$cli" s3batch report "s3://reports/batch/job-$retry/manifest.json" --s3-endpoint-url "$s3"
echo
echo "\$ cargo s3batch list"
"$cli" s3batch list "${common[@]}"
