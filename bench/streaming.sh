#!/usr/bin/env bash
# Peak memory of `cargo s3batch` at the size of real jobs: reports, failed manifests, S3
# Inventory manifests and `serve` read and written as streams, not held in memory.
#
#   bench/streaming.sh            # everything (about 30 minutes on 2 cores; ~12 GB of disk)
#   STEPS="inventory serve" bench/streaming.sh   # some of: report s3report inventory serve
#
# Each measured command runs under `/usr/bin/time -v` (GNU time; installed with apt-get if
# missing) and its "Maximum resident set size" is the figure; for `serve`, a long-running
# process, the kernel's high-water mark (VmHWM in /proc/PID/status) is read after each job.
# Inputs are generated in $S3BATCH_BENCH_DIR (default target/bench-streaming) and deleted as
# soon as they have been measured. Sizes can be changed through the variables below; the
# figures and what each one measures are in BENCHMARKS.md, section 5 (kept in bench/streaming.md
# and copied from its results by hand). A script, not a test: nothing here runs in scripts/test.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="$root/.venv/bin"
work=${S3BATCH_BENCH_DIR:-$root/target/bench-streaming}
steps=${STEPS:-report s3report inventory serve}
report_rows=${REPORT_ROWS:-100000000}          # a local report folder (~9 GB)
s3_report_rows=${S3_REPORT_ROWS:-10000000}     # a report in moto, which keeps it in memory
inventory_rows=${INVENTORY_ROWS:-10000000}     # an S3 Inventory, gzipped CSV data files
inventory_files=${INVENTORY_FILES:-10}
run_seconds=${RUN_SECONDS:-60}                 # a job over the inventory, then Ctrl-C
serve_rows=${SERVE_ROWS:-100000}               # a serve job run to the end
serve_big_rows=${SERVE_BIG_ROWS:-10000000}     # a serve job run for a while, then cancelled
serve_big_seconds=${SERVE_BIG_SECONDS:-120}
account=123456789012

log() { echo "streaming: $*" >&2; }
results="$work/results.txt"

scripts/setup.sh
if ! [ -x /usr/bin/time ]; then
  log "installing GNU time"
  apt-get install -y time >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y time >/dev/null; }
fi
log "building cargo-s3batch (release) and examples/hello"
cargo build --quiet --release -p cargo-s3batch
cargo build --quiet -p hello
cli="${CARGO_TARGET_DIR:-$root/target}/release/cargo-s3batch"

mkdir -p "$work"
: >"$results"
avail_gb=$(df -BG --output=avail "$work" | tail -1 | tr -dc 0-9)
log "disk free where inputs go ($work): ${avail_gb} GB"

source "$root/scripts/lib.sh" # stops what it starts on exit; start_moto, start_watch
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_ENDPOINT_URL AWS_PROFILE

# Runs a command under GNU time; records "name: peak RSS, elapsed" in the results.
measure() { # name, command...
  local name=$1; shift
  local t="$work/time-$name.txt"
  log "measuring $name: $*"
  /usr/bin/time -v -o "$t" "$@" >"$work/out-$name.txt" 2>"$work/err-$name.txt" || {
    log "$name failed:"; cat "$work/err-$name.txt" >&2; exit 1; }
  local kb elapsed
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$t")
  elapsed=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$t")
  printf '%s: peak RSS %.1f MiB, elapsed %s\n' "$name" "$(echo "$kb / 1024" | bc -l)" "$elapsed" | tee -a "$results" >&2
  sed 's/^/    /' "$work/out-$name.txt" | head -20 >&2
}

# A small job against the function under `cargo lambda watch` on port $1, not measured:
# watch builds and starts the function's instances on the first invocations.
warm_up() {
  gen manifest "$work/warm-up.csv" 64
  "$cli" s3batch run --manifest "$work/warm-up.csv" --function hello \
    --endpoint-url "http://127.0.0.1:$1" --concurrency 8 --state-dir "$work/warm-up-state" \
    --quiet >/dev/null 2>&1 || { log "the warm-up job against cargo lambda watch failed"; exit 1; }
  rm -rf "$work/warm-up.csv" "$work/warm-up-state"
}

# The generators: plain Python, written for speed (rows joined in blocks).
gen() { "$venv/python" - "$@" <<'PY'
import gzip, json, os, sys
mode, out, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
BLOCK = 200_000
def key(i): return f"photos/2026/11/24/{i:09d}.jpg"
if mode == "report":
    # A report folder as S3 writes it: job-<id>/manifest.json and two results files; every
    # other row failed, each failed row's message naming its key (so distinct messages run
    # into the analysis' cap, its worst case). manifest.json gives bucket keys: argument 4
    # is the report's prefix in its bucket.
    prefix = sys.argv[4] if len(sys.argv) > 4 else ""
    job = os.path.join(out, "job-bench")
    os.makedirs(os.path.join(job, "results"), exist_ok=True)
    names = {"succeeded": "results/0-succeeded.csv", "failed": "results/1-failed.csv"}
    with open(os.path.join(job, names["succeeded"]), "w") as ok, open(os.path.join(job, names["failed"]), "w") as bad:
        for start in range(0, rows, BLOCK):
            end = min(rows, start + BLOCK)
            ok.write("".join(f"bench-bucket,{key(i)},,succeeded,,200,ok\n" for i in range(start, end, 2)))
            bad.write("".join(
                f"bench-bucket,{key(i)},,failed,PermanentFailure,200,404 Not Found: {key(i)}\n"
                for i in range(start + 1, end, 2)))
    with open(os.path.join(job, "manifest.json"), "w") as m:
        json.dump({"Format": "Report_CSV_20180820", "ReportCreationDate": "2026-11-24T00:00:00.000Z",
                   "Results": [{"TaskExecutionStatus": s, "Bucket": "", "MD5Checksum": "",
                                "Key": prefix + "job-bench/" + n} for s, n in names.items()],
                   "ReportSchema": "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"}, m)
elif mode == "inventory":
    # An S3 Inventory copy as `aws s3 sync` leaves it: <config>/<date>/manifest.json and
    # <config>/data/*.csv.gz, fields quoted as S3 writes them.
    files = int(sys.argv[4])
    cfg = os.path.join(out, "inv", "bench-bucket", "cfg")
    os.makedirs(os.path.join(cfg, "data"), exist_ok=True)
    os.makedirs(os.path.join(cfg, "2026-11-24T01-00Z"), exist_ok=True)
    listed = []
    per = -(-rows // files)
    for f in range(files):
        name = f"inv/bench-bucket/cfg/data/{f:04d}.csv.gz"
        with gzip.open(os.path.join(out, name), "wt", compresslevel=1) as g:
            for start in range(f * per, min(rows, (f + 1) * per), BLOCK):
                end = min(rows, (f + 1) * per, start + BLOCK)
                g.write("".join(f'"bench-bucket","{key(i)}","{1000 + i % 977}"\n' for i in range(start, end)))
        listed.append({"key": name, "size": os.path.getsize(os.path.join(out, name))})
    with open(os.path.join(cfg, "2026-11-24T01-00Z", "manifest.json"), "w") as m:
        json.dump({"sourceBucket": "bench-bucket", "destinationBucket": "arn:aws:s3:::bench-inventory",
                   "version": "2016-11-30", "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size",
                   "files": listed}, m)
elif mode == "manifest":
    with open(out, "w") as m:
        for start in range(0, rows, BLOCK):
            m.write("".join(f"bench-bucket,{key(i)}\n" for i in range(start, min(rows, start + BLOCK))))
PY
}

# Uploads local files to moto with boto3 (multipart for the large ones).
upload() { # bucket, then pairs of: local-path key
  "$venv/python" - "$s3" "$@" <<'PY'
import sys, boto3
from botocore.config import Config
endpoint, bucket, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
try:
    s3.create_bucket(Bucket=bucket)
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
for path, key in zip(rest[::2], rest[1::2]):
    s3.upload_file(path, bucket, key)
PY
}
object_info() { # bucket key: size and ETag
  "$venv/python" - "$s3" "$1" "$2" <<'PY'
import sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], config=Config(s3={"addressing_style": "path"}))
h = s3.head_object(Bucket=sys.argv[2], Key=sys.argv[3])
print(f"s3://{sys.argv[2]}/{sys.argv[3]}: {h['ContentLength']} bytes, ETag {h['ETag']}")
PY
}

for step in $steps; do
case $step in
report)
  need=$(( report_rows / 6000000 + 2 ))   # ~90 bytes a row, plus the failed manifest
  if (( avail_gb < need )); then log "report: needs ~${need} GB free, ${avail_gb} GB here"; exit 1; fi
  log "report: generating a ${report_rows}-row report folder"
  rm -rf "$work/report" && mkdir -p "$work/report"
  gen report "$work/report" "$report_rows"
  du -sh "$work/report" | tee -a "$results" >&2
  measure "report-folder-${report_rows}-rows" \
    "$cli" s3batch report "$work/report/job-bench" --failed-manifest "$work/failed.csv"
  ls -l "$work/failed.csv" | tee -a "$results" >&2
  echo "failed manifest rows: $(wc -l <"$work/failed.csv")" | tee -a "$results" >&2
  rm -rf "$work/report" "$work/failed.csv"
  ;;
s3report)
  log "s3report: generating a ${s3_report_rows}-row report and uploading it to moto"
  start_moto "$work/moto.log"
  rm -rf "$work/s3report" && mkdir -p "$work/s3report"
  gen report "$work/s3report" "$s3_report_rows" batch/
  job="$work/s3report/job-bench"
  upload bench-reports "$job/manifest.json" batch/job-bench/manifest.json \
    "$job/results/0-succeeded.csv" batch/job-bench/results/0-succeeded.csv \
    "$job/results/1-failed.csv" batch/job-bench/results/1-failed.csv
  du -sh "$work/s3report" | tee -a "$results" >&2
  rm -rf "$work/s3report"
  upload bench-jobs
  measure "report-s3-${s3_report_rows}-rows" \
    "$cli" s3batch report s3://bench-reports/batch/job-bench/ --s3-endpoint-url "$s3" \
    --failed-manifest s3://bench-jobs/retry/failed.csv
  object_info bench-jobs retry/failed.csv | tee -a "$results" >&2
  stop "$moto_pid"
  ;;
inventory)
  log "inventory: generating a ${inventory_rows}-row S3 Inventory (${inventory_files} gzipped data files)"
  rm -rf "$work/inventory" && mkdir -p "$work/inventory"
  gen inventory "$work/inventory" "$inventory_rows" "$inventory_files"
  du -sh "$work/inventory" | tee -a "$results" >&2
  inv_manifest="$work/inventory/inv/bench-bucket/cfg/2026-11-24T01-00Z/manifest.json"
  measure "inventory-local-${inventory_rows}-rows-dry-run" \
    "$cli" s3batch run --manifest "$inv_manifest" --function hello --dry-run \
    --state-dir "$work/state"
  start_moto "$work/moto.log"
  pairs=("$inv_manifest" inv/bench-bucket/cfg/2026-11-24T01-00Z/manifest.json)
  for f in "$work"/inventory/inv/bench-bucket/cfg/data/*.csv.gz; do
    pairs+=("$f" "inv/bench-bucket/cfg/data/$(basename "$f")")
  done
  upload bench-inventory "${pairs[@]}"
  measure "inventory-s3-${inventory_rows}-rows-dry-run" \
    "$cli" s3batch run --manifest s3://bench-inventory/inv/bench-bucket/cfg/2026-11-24T01-00Z/manifest.json \
    --s3-endpoint-url "$s3" --function hello --dry-run --state-dir "$work/state"
  # A job over the inventory, run for a while against examples/hello under cargo lambda
  # watch, then stopped as Ctrl-C stops it (its journal kept): the memory of a running job
  # over a streamed inventory.
  start_watch "$work/watch.log" 300 --package hello --concurrency 4
  warm_up "$watch_port"
  name="inventory-s3-${inventory_rows}-rows-run-${run_seconds}s"
  log "measuring $name"
  /usr/bin/time -v -o "$work/time-$name.txt" "$cli" s3batch run \
    --manifest s3://bench-inventory/inv/bench-bucket/cfg/2026-11-24T01-00Z/manifest.json \
    --s3-endpoint-url "$s3" --function hello --endpoint-url "http://127.0.0.1:$watch_port" \
    --concurrency 8 --job-id bench-inventory --state-dir "$work/state" --quiet \
    >"$work/out-$name.txt" 2>"$work/err-$name.txt" &
  time_pid=$!
  sleep "$run_seconds"
  run_pid=$(pgrep -P "$time_pid" || true)
  [ -n "$run_pid" ] && kill -INT "$run_pid"
  wait "$time_pid" || true
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time-$name.txt")
  printf '%s: peak RSS %.1f MiB; %s\n' "$name" "$(echo "$kb / 1024" | bc -l)" \
    "$(grep -h -m1 'tasks:' "$work/out-$name.txt" | sed 's/^ *//')" | tee -a "$results" >&2
  stop "$watch_pid"
  rm -rf "$work/inventory" "$work/state"
  stop "$moto_pid"
  ;;
serve)
  start_moto "$work/moto.log"
  start_watch "$work/watch.log" 300 --package hello --concurrency 8
  warm_up "$watch_port"
  cport=$(free_port)
  rm -rf "$work/serve-state"
  /usr/bin/time -v -o "$work/time-serve.txt" "$cli" s3batch serve --port "$cport" \
    --s3-endpoint-url "$s3" --lambda-endpoint-url "http://127.0.0.1:$watch_port" \
    --state-dir "$work/serve-state" --concurrency 8 >"$work/serve.log" 2>&1 &
  serve_time_pid=$!
  pids+=("$serve_time_pid")
  wait_port "$cport" "cargo s3batch serve" 60
  serve_pid=$(pgrep -P "$serve_time_pid")
  control="http://127.0.0.1:$cport"
  common=(--endpoint-url "$control" --account-id "$account" --region us-east-1)
  hwm() { awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$serve_pid/status"; }
  rss() { awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$serve_pid/status"; }
  submit() { # manifest key, description
    /usr/bin/time -v -o "$work/time-submit-$2.txt" "$cli" s3batch submit "${common[@]}" \
      --s3-endpoint-url "$s3" --manifest "s3://bench-jobs/$1" \
      --function-arn "arn:aws:lambda:us-east-1:$account:function:hello" \
      --role-arn "arn:aws:iam::$account:role/bench" --report s3://bench-reports/serve \
      --description "$2" 2>"$work/err-submit-$2.txt"
    awk -F': ' -v d="$2" '/Maximum resident set size/ {printf "submit (%s): peak RSS %.1f MiB\n", d, $2/1024}' \
      "$work/time-submit-$2.txt" | tee -a "$results" >&2
  }
  upload bench-reports
  log "serve: a ${serve_rows}-row job run to the end"
  gen manifest "$work/serve-small.csv" "$serve_rows"
  upload bench-jobs "$work/serve-small.csv" serve-small.csv
  small=$(submit serve-small.csv "serve-${serve_rows}-rows")
  start=$(date +%s)
  "$cli" s3batch status "$small" --watch --interval 5 "${common[@]}" >"$work/status-small.txt" 2>&1 || true
  tail -3 "$work/status-small.txt" >&2
  echo "serve, a ${serve_rows}-row job run to the end in $(( $(date +%s) - start )) s: peak RSS (VmHWM) $(hwm), now $(rss)" \
    | tee -a "$results" >&2
  log "serve: a ${serve_big_rows}-row job for ${serve_big_seconds} s, then cancelled"
  gen manifest "$work/serve-big.csv" "$serve_big_rows"
  upload bench-jobs "$work/serve-big.csv" serve-big.csv
  rm -f "$work/serve-small.csv" "$work/serve-big.csv"
  big=$(submit serve-big.csv "serve-${serve_big_rows}-rows")
  max_rss=0
  for _ in $(seq 1 $(( serve_big_seconds / 5 ))); do
    sleep 5
    kb=$(awk '/VmRSS/ {print $2}' "/proc/$serve_pid/status")
    (( kb > max_rss )) && max_rss=$kb
  done
  "$cli" s3batch status "$big" "${common[@]}" >"$work/status-big.txt" 2>&1 || true
  cat "$work/status-big.txt" >&2
  "$cli" s3batch cancel "$big" "${common[@]}" >&2 || true
  "$cli" s3batch status "$big" --watch --interval 5 "${common[@]}" >>"$work/status-big.txt" 2>&1 || true
  echo "serve, then a ${serve_big_rows}-row job for ${serve_big_seconds} s and cancelled: peak RSS (VmHWM) $(hwm); highest RSS sampled every 5 s while it ran: $(echo "$max_rss / 1024" | bc -l | xargs printf '%.1f') MiB" \
    | tee -a "$results" >&2
  grep -m1 -i "tasks\|progress" "$work/status-big.txt" | tee -a "$results" >&2 || true
  kill -TERM "$serve_pid"
  wait "$serve_time_pid" || true
  stop "$watch_pid"
  stop "$moto_pid"
  rm -rf "$work/serve-state"
  ;;
*) log "unknown step $step (report s3report inventory serve)"; exit 1 ;;
esac
done

log "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, load average $(cut -d' ' -f1-3 /proc/loadavg)" 
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results"
log "results ($results):"
cat "$results"
