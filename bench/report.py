"""Writes BENCHMARKS.md (to stdout) from the outputs of one bench/run.sh run.

Usage: python3 bench/report.py TARGET_DIR/bench   (criterion's output is TARGET_DIR/criterion)
Standard library only. bench/analysis.md, the explanation of the figures, is appended as is.
"""

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

out = sys.argv[1]
target = os.path.dirname(out)
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
crit = os.path.join(target, "criterion")


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=root).stdout.strip()
    except OSError:
        return "?"


def estimate(group, name):
    with open(os.path.join(crit, group, name, "new", "estimates.json")) as f:
        e = json.load(f)["median"]
    ci = e["confidence_interval"]
    return e["point_estimate"], ci["lower_bound"], ci["upper_bound"]


def fmt_ns(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def verdict(ok):
    return "met" if ok else "**missed**"


cpu = "?"
try:
    with open("/proc/cpuinfo") as f:
        cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
except (OSError, StopIteration):
    pass
mem_kb = 0
with open("/proc/meminfo") as f:
    mem_kb = int(next(l.split()[1] for l in f if l.startswith("MemTotal")))
load = os.getloadavg()

# 1. warm: criterion medians, callgrind instructions
warm = {}
for tasks in (1, 100):
    for v in ("s3batch", "handwritten", "serde_floor"):
        warm[(tasks, v)] = estimate(f"envelope-{tasks}", v)
# Per invocation, steady state: (count(3N) - count(N)) / 2N, for each build, under each of
# eight start-up heap layouts (the program's path length); the mean over the layouts, and the
# range (min, max) of the per-layout figures.
irs = {"lambda": {}, "release": {}}
ir_range = {"lambda": {}, "release": {}}
ratio_range = {"lambda": {}, "release": {}}
with open(os.path.join(out, "instructions.tsv")) as f:
    rows = [l.split("\t") for l in f.read().split("\n") if l]
runs_ir = {}
for b, v, t, k, n, i in rows:
    runs_ir.setdefault((b, v, int(t), int(k)), []).append((int(n), int(i)))
per_layout = {}
for (b, v, t, k), pts in runs_ir.items():
    (n1, i1), (n2, i2) = sorted(pts)
    per_layout.setdefault((b, v, t), {})[k] = (i2 - i1) / (n2 - n1)
for (b, v, t), by_k in per_layout.items():
    xs = list(by_k.values())
    irs[b][(t, v)] = sum(xs) / len(xs)
    ir_range[b][(t, v)] = (min(xs), max(xs))
for b in irs:
    for t in (1, 100):
        s, h = per_layout[(b, "s3batch", t)], per_layout[(b, "handwritten", t)]
        rs = [s[k] / h[k] for k in s]
        ratio_range[b][t] = (min(rs), max(rs))
ir = irs["lambda"]

# 2 + 3: cold start, RSS, size
with open(os.path.join(out, "coldstart.json")) as f:
    cold = {p["label"]: p for p in json.load(f)["programs"]}
runs = len(cold["s3batch"]["ms"])
with open(os.path.join(out, "coldstart-bundle.json")) as f:
    bundle = {p["label"]: p for p in json.load(f)["programs"]}
size = {
    b: os.path.getsize(os.path.join(target, "lambda", b, "bootstrap"))
    for b in ("framework", "handwritten", "framework_no_client", "handwritten_no_client")
}
# The pair without an S3 client: s3batch without its `s3` feature against lambda_runtime alone.
with open(os.path.join(out, "coldstart-no-client.json")) as f:
    cold_nc = {p["label"]: p for p in json.load(f)["programs"]}
runs_nc = len(cold_nc["s3batch"]["ms"])

# 4: concurrency
conc = {n: estimate("io-100x10ms", n) for n in ("default-64", "concurrency-100")}

r_warm = {t: warm[(t, "s3batch")][0] / warm[(t, "handwritten")][0] for t in (1, 100)}
r_floor = {t: warm[(t, "s3batch")][0] / warm[(t, "serde_floor")][0] for t in (1, 100)}
r_ir = {t: ir[(t, "s3batch")] / ir[(t, "handwritten")] for t in (1, 100)}
r_ir_floor = {t: ir[(t, "s3batch")] / ir[(t, "serde_floor")] for t in (1, 100)}
r_ir_tr = {t: ir[(t, "s3batch+tracing")] / ir[(t, "handwritten+tracing")] for t in (1, 100)}
c_fw, c_hw, c_py = (cold[k]["median_ms"] for k in ("s3batch", "handwritten", "python"))
r_cold = c_fw / c_hw
r_py = c_py / c_fw
r_size = size["framework"] / size["handwritten"]
c_fw_nc, c_hw_nc = (cold_nc[k]["median_ms"] for k in ("s3batch", "handwritten"))
r_cold_nc = c_fw_nc / c_hw_nc
r_size_nc = size["framework_no_client"] / size["handwritten_no_client"]
rss_fw, rss_hw, rss_py = (cold[k]["median_rss_kb"] for k in ("s3batch", "handwritten", "python"))
r_rss = rss_fw / rss_hw
c64 = conc["default-64"][0] / 1e6

now = datetime.datetime.now(datetime.timezone.utc)
p = print
p("# Benchmarks: what s3batch costs")
p()
p(f"Every figure here comes from one run of `bench/run.sh`, finished {now:%Y-%m-%d %H:%M} UTC at "
  f"commit `{sh('git', 'rev-parse', '--short', 'HEAD')}`"
  # This file itself is being written: it does not count as a change.
  f"{' (with uncommitted changes in the checkout)' if sh('git', 'status', '--porcelain', '--', '.', ':!BENCHMARKS.md') else ''}. "
  "Regenerate it with `bench/run.sh` (about 15–20 minutes from a cold build on 2 cores, "
  "2–3 minutes when built). The code is in [`bench/`](bench/).")
p()
def dmap_summary_rows(path):
    """The rows of the first table of bench/distributed-map.md (its goals), as summary rows."""
    with open(path) as f:
        lines = f.read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("| measure |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append("| 6 | Distributed Map: " + line[2:])
    return rows


p("## Summary")
p()
p("| | measure | s3batch | comparison | ratio | goal | |")
p("|---|---|---|---|---|---|---|")
for t in (1, 100):
    p(f"| 1 | warm, {t} task{'s' if t > 1 else ''}: median time | {fmt_ns(warm[(t, 's3batch')][0])} | "
      f"hand-written {fmt_ns(warm[(t, 'handwritten')][0])} | {r_warm[t]:.2f}× | ≤ 1.0× | {verdict(r_warm[t] <= 1.0)} |")
    p(f"| 1 | warm, {t} task{'s' if t > 1 else ''}: median time | {fmt_ns(warm[(t, 's3batch')][0])} | "
      f"serde floor {fmt_ns(warm[(t, 'serde_floor')][0])} | {r_floor[t]:.2f}× | ≤ 1.3× | {verdict(r_floor[t] <= 1.3)} |")
for t in (1, 100):
    p(f"| 1 | warm, {t} task{'s' if t > 1 else ''}: instructions, as deployed, mean of 8 heap layouts | "
      f"{ir[(t, 's3batch')]:,.0f} | hand-written {ir[(t, 'handwritten')]:,.0f} | {r_ir[t]:.3f}× | ≤ 1.05× | "
      f"{verdict(r_ir[t] <= 1.05)} |")
# CloudWatch metrics on (issue 21): the same invocation writing its EMF document, against off.
r_metrics = {t: ir[(t, "s3batch+metrics")] / ir[(t, "s3batch")] for t in (1, 100)}
p(f"| 1 | warm, 1 task, metrics on: instructions vs metrics off, as deployed, mean of 8 heap layouts | "
  f"{ir[(1, 's3batch+metrics')]:,.0f} | metrics off {ir[(1, 's3batch')]:,.0f} | {r_metrics[1]:.3f}× | ≤ 1.05× | "
  f"{verdict(r_metrics[1] <= 1.05)} |")
p(f"| 1 | warm, 100 tasks, metrics on: instructions vs metrics off, as deployed, mean of 8 heap layouts | "
  f"{ir[(100, 's3batch+metrics')]:,.0f} | metrics off {ir[(100, 's3batch')]:,.0f} | {r_metrics[100]:.3f}× | — | |")
span = [ir[(1, "s3batch+tracing")] - ir[(1, "s3batch")], (ir[(100, "s3batch+tracing")] - ir[(100, "s3batch")]) / 100]
p(f"| 1 | the per-task span with Lambda's INFO subscriber, 1 / 100 tasks | {span[0]:,.0f} / {span[1]:,.0f} instructions "
  f"| — | — | < 2,500 | {verdict(max(span) < 2500)} |")
p(f"| 2 | cold start with an S3 client, median of {runs} | {c_fw:.2f} ms | hand-written {c_hw:.2f} ms | {r_cold:.2f}× | ≤ 1.1× | {verdict(r_cold <= 1.1)} |")
p(f"| 2 | cold start without an S3 client, median of {runs_nc} | {c_fw_nc:.2f} ms | hand-written {c_hw_nc:.2f} ms | {r_cold_nc:.2f}× | ≤ 1.1× | {verdict(r_cold_nc <= 1.1)} |")
p(f"| 2 | cold start, median of {runs} | {c_fw:.2f} ms | Python {c_py:.1f} ms | {r_py:.1f}× faster | ≥ 25× faster | {verdict(r_py >= 25)} |")
r_py_b = c_py / bundle["s3batch"]["median_ms"]
p(f"| 2 | cold start, TLS roots from one bundle (as on Lambda) | {bundle['s3batch']['median_ms']:.2f} ms | Python {c_py:.1f} ms | {r_py_b:.1f}× faster | ≥ 25× faster | {verdict(r_py_b >= 25)} |")
p(f"| 3 | stripped binary with an S3 client | {size['framework'] / 1e6:.2f} MB | hand-written {size['handwritten'] / 1e6:.2f} MB | {r_size:.3f}× | ≤ 1.05× | {verdict(r_size <= 1.05)} |")
p(f"| 3 | stripped binary without an S3 client | {size['framework_no_client'] / 1e6:.2f} MB | hand-written {size['handwritten_no_client'] / 1e6:.2f} MB | {r_size_nc:.3f}× | ≤ 1.05× | {verdict(r_size_nc <= 1.05)} |")
p(f"| 3 | peak RSS, start + one invocation | {rss_fw / 1024:.1f} MiB | hand-written {rss_hw / 1024:.1f} MiB (Python {rss_py / 1024:.1f} MiB) | {r_rss:.2f}× | — | |")
p(f"| 4 | 100 tasks × 10 ms I/O, default concurrency 64 | {c64:.1f} ms | sequential 1000 ms | {1000 / c64:.0f}× faster | well under 100 ms | {verdict(c64 < 50)} |")
# Section 6's goals, as bench/distributed-map.sh wrote them in the first table of its section.
for row in dmap_summary_rows(os.path.join(root, "bench", "distributed-map.md")):
    p(row)
p()
p("## The machine")
p()
p(f"- CPU: {cpu}, {os.cpu_count()} cores; {mem_kb / 1024 / 1024:.1f} GiB RAM; {platform.system()} {platform.release()}")
p(f"- load average when the report was written: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
  "(a shared machine: other builds may have run alongside; the callgrind counts below do not depend on that)")
p(f"- {sh('rustc', '-V')}; {sh('cargo', 'lambda', '--version').splitlines()[0] if sh('cargo', 'lambda', '--version') else 'cargo-lambda ?'}; "
  f"Python {sh(os.path.join(root, 'bench/python/.venv/bin/python'), '-c', 'import sys; print(sys.version.split()[0])')}; "
  f"{sh('valgrind', '--version')}")
p()
p("## 1. Warm envelope overhead")
p()
p("JSON bytes in, response bytes out, for one event of 1 and of 100 tasks (schema 1.0, form-encoded "
  "keys with a space and an `é`). Criterion (`cargo bench -p s3batch-bench --bench envelope`), median "
  "with its 95 % confidence interval; all three run under the same Tokio current-thread runtime, and "
  "their outputs are checked byte-identical before timing.")
p()
p("- **s3batch**: a `#[s3batch::task(main = false)]` fn returning `hello s3://{bucket}/{key}`, through "
  "`Handler::handle_bytes` and `serde_json::to_vec`.")
p("- **hand-written**: `serde_json` into `aws_lambda_events::s3::batch_job::S3BatchJobEvent`, decode each key "
  "form-style, bucket from the ARN, the same text, `S3BatchJobResponse` with `treatMissingKeysAs` set "
  "([`bench/src/handwritten.rs`](bench/src/handwritten.rs)).")
p("- **serde floor**: `serde_json` alone — parse the event into plain derived structs, serialize the "
  "finished response. No handler can do less.")
p()
p("| tasks | s3batch | hand-written | serde floor | s3batch ÷ hand-written | s3batch ÷ floor |")
p("|---|---|---|---|---|---|")
for t in (1, 100):
    cells = []
    for v in ("s3batch", "handwritten", "serde_floor"):
        m, lo, hi = warm[(t, v)]
        cells.append(f"{fmt_ns(m)} ({fmt_ns(lo)}–{fmt_ns(hi)})")
    p(f"| {t} | {' | '.join(cells)} | {r_warm[t]:.2f}× | {r_floor[t]:.2f}× |")
p()
p("Instructions per invocation, counted with `valgrind --tool=callgrind` in the steady state: a run of "
  "3N invocations minus a run of N, over 2N (N = 1,000 for one task, 200 for 100; "
  "`envelope_once VARIANT TASKS N`), in a fixed environment (`env -i`). The first few hundred "
  "invocations of a process are cheaper (glibc's malloc is still settling its bins), so a count from "
  "the first invocation flatters both sides. glibc's malloc also settles differently with the process's "
  "start-up allocations: the length of the program's own path alone moves the hand-written handler's "
  "count at 100 tasks by up to 13 % (s3batch's by 2 %), so each figure is the mean over eight paths of "
  "different lengths to the same binary, with the range of the eight in brackets. Deterministic, so "
  "this is the figure to trust on a busy machine. The driver is built as it is deployed, by "
  "`cargo lambda build --release` (thin LTO, one codegen unit, `-C target-cpu=haswell`); the second "
  "table is the same driver in the workspace's `release` profile (16 codegen units, no LTO), where the "
  "compiler inlines less.")
p()
def rng(b, t, v):
    lo, hi = ir_range[b][(t, v)]
    return f"{irs[b][(t, v)]:,.0f} ({lo:,.0f}–{hi:,.0f})"
for build, title in (("lambda", "`cargo lambda build --release`"), ("release", "`cargo build --release`")):
    irb = irs[build]
    p(f"| tasks ({title}) | s3batch | hand-written | serde floor | s3batch ÷ hand-written (range over layouts) | s3batch ÷ floor |")
    p("|---|---|---|---|---|---|")
    for t in (1, 100):
        lo, hi = ratio_range[build][t]
        p(f"| {t} | {rng(build, t, 's3batch')} | {rng(build, t, 'handwritten')} | {irb[(t, 'serde_floor')]:,.0f} | "
          f"{irb[(t, 's3batch')] / irb[(t, 'handwritten')]:.3f}× ({lo:.3f}–{hi:.3f}) | {irb[(t, 's3batch')] / irb[(t, 'serde_floor')]:.2f}× |")
    p()
p("The same with the subscriber every Lambda here installs (`lambda_runtime::tracing::init_default_subscriber`, "
  "INFO level, `BENCH_TRACING=1`): s3batch then records a span per task (job id, task id, bucket, key on every "
  "log line of the task); the hand-written handler has none.")
p()
p("| tasks (`cargo lambda build --release`) | s3batch + subscriber | hand-written + subscriber | ratio | span cost per task |")
p("|---|---|---|---|---|")
for t in (1, 100):
    p(f"| {t} | {ir[(t, 's3batch+tracing')]:,.0f} | {ir[(t, 'handwritten+tracing')]:,.0f} | {r_ir_tr[t]:.3f}× | "
      f"{(ir[(t, 's3batch+tracing')] - ir[(t, 's3batch')]) / t:,.0f} instructions |")
p()
p("## 2. Cold start")
p()
p("Time from just before `spawn` to the moment the first response has fully arrived at a local stand-in "
  "of the Lambda Runtime API ([`bench/src/bin/runtime_api.rs`](bench/src/bin/runtime_api.rs), hyper): "
  "exec and loading, runtime set-up, the S3 client built at start, the `next` poll, the handler, the "
  "`response` POST. Each process gets a fresh port and Lambda's environment (function name, memory, "
  "region, static credentials, an empty `HOME`), serves one 1-task event, and the response is checked. "
  f"{runs} runs each, interleaved and rotated (each round starts with the next program) after one discarded "
  "warm-up round, so the page cache is warm for all and Python's bytecode is compiled (on Lambda it "
  "often is not: Python's real cold start is worse).")
p()
p("- **s3batch**: [`bench/src/bin/framework.rs`](bench/src/bin/framework.rs), the trivial task with an "
  "`aws_sdk_s3::Client` parameter (so the client is built at start), the generated `main`.")
p("- **hand-written**: [`bench/src/bin/handwritten.rs`](bench/src/bin/handwritten.rs), `#[tokio::main]`, "
  "`init_default_subscriber`, `aws_config::load_defaults` + `aws_sdk_s3::Client::new`, `lambda_runtime::run`.")
p("- **s3batch, no client**: [`bench/no-s3/src/bin/framework_no_client.rs`](bench/no-s3/src/bin/framework_no_client.rs), "
  "the same task without the `Client` parameter, on s3batch built without its `s3` feature "
  "(`default-features = false`): no AWS SDK in the binary.")
p("- **hand-written, no client**: [`bench/no-s3/src/bin/handwritten_no_client.rs`](bench/no-s3/src/bin/handwritten_no_client.rs), "
  "`#[tokio::main]`, `init_default_subscriber`, `lambda_runtime::run` over the same handler.")
p("- **Python**: [`bench/python/handler.py`](bench/python/handler.py) on `awslambdaric`, a `boto3` S3 client "
  "at import, Powertools' `S3BatchOperationEvent`/`S3BatchOperationResponse`; pinned in "
  "[`bench/python/requirements.txt`](bench/python/requirements.txt).")
p()
p("| | median | min | max | ÷ hand-written |")
p("|---|---|---|---|---|")
for k in ("s3batch", "handwritten", "python"):
    c = cold[k]
    p(f"| {k} | {c['median_ms']:.2f} ms | {c['min_ms']:.2f} ms | {c['max_ms']:.2f} ms | {c['median_ms'] / c_hw:.2f}× |")
p()
p(f"Without an S3 client, the two Rust programs alone, {runs_nc} runs each, interleaved and rotated the same way:")
p()
p("| | median | min | max | ÷ hand-written |")
p("|---|---|---|---|---|")
for k, name in (("s3batch", "s3batch, no client"), ("handwritten", "hand-written, no client")):
    c = cold_nc[k]
    p(f"| {name} | {c['median_ms']:.2f} ms | {c['min_ms']:.2f} ms | {c['max_ms']:.2f} ms | {c['median_ms'] / c_hw_nc:.2f}× |")
p()
p("The same two Rust programs with `SSL_CERT_DIR` pointed at an empty directory, so the TLS roots come from "
  "the one bundle file (`/etc/ssl/certs/ca-certificates.crt`) as on Lambda's Amazon Linux, instead of that "
  "file *and* the ~150 files of this Debian machine's `/etc/ssl/certs` (see the notes):")
p()
p("| | median | min | max | ÷ hand-written | Python ÷ this |")
p("|---|---|---|---|---|---|")
for k in ("s3batch", "handwritten"):
    c = bundle[k]
    p(f"| {k} | {c['median_ms']:.2f} ms | {c['min_ms']:.2f} ms | {c['max_ms']:.2f} ms | "
      f"{c['median_ms'] / bundle['handwritten']['median_ms']:.2f}× | {c_py / c['median_ms']:.1f}× |")
p()
with open(os.path.join(out, "coldstart-instructions.tsv")) as f:
    cir = dict(l.split("\t") for l in f.read().split("\n") if l)
cir = {k: int(v) for k, v in cir.items()}
p(f"Cold start in instructions (callgrind, process start to exit with the Runtime API unreachable: init, the "
  f"S3 client, one failed poll; independent of load): s3batch {cir['framework']:,}, hand-written "
  f"{cir['handwritten']:,}, {cir['framework'] / cir['handwritten']:.3f}×; without an S3 client s3batch "
  f"{cir['framework_no_client']:,}, hand-written {cir['handwritten_no_client']:,}, "
  f"{cir['framework_no_client'] / cir['handwritten_no_client']:.3f}×.")
p()
p("All runs (ms): " + "; ".join(f"{k}: " + ", ".join(f"{x:.1f}" for x in cold[k]["ms"]) for k in cold)
  + "; without a client: " + "; ".join(f"{k}: " + ", ".join(f"{x:.1f}" for x in cold_nc[k]["ms"]) for k in cold_nc))
p()
p("## 3. Size and memory")
p()
p("The `bootstrap` binaries as `cargo lambda build --release` makes them (x86_64, its default release "
  "settings: symbols stripped, LTO, one codegen unit; `panic = \"unwind\"` from the workspace profile — see the notes), and the "
  "peak RSS (`VmHWM`) of the process at the moment its first response arrived, median of the runs above.")
p()
p("| | stripped `bootstrap` | peak RSS |")
p("|---|---|---|")
p(f"| s3batch | {size['framework']:,} B ({size['framework'] / 1e6:.2f} MB) | {rss_fw / 1024:.1f} MiB |")
p(f"| hand-written | {size['handwritten']:,} B ({size['handwritten'] / 1e6:.2f} MB) | {rss_hw / 1024:.1f} MiB |")
p(f"| Python | (interpreter + site-packages) | {rss_py / 1024:.1f} MiB |")
p(f"| s3batch ÷ hand-written | {r_size:.3f}× ({(size['framework'] - size['handwritten']) / 1024:+.0f} KiB) | {r_rss:.2f}× |")
p(f"| s3batch, no client (without the `s3` feature) | {size['framework_no_client']:,} B ({size['framework_no_client'] / 1e6:.2f} MB) | {cold_nc['s3batch']['median_rss_kb'] / 1024:.1f} MiB |")
p(f"| hand-written, no client | {size['handwritten_no_client']:,} B ({size['handwritten_no_client'] / 1e6:.2f} MB) | {cold_nc['handwritten']['median_rss_kb'] / 1024:.1f} MiB |")
p(f"| no client: s3batch ÷ hand-written | {r_size_nc:.3f}× ({(size['framework_no_client'] - size['handwritten_no_client']) / 1024:+.0f} KiB) | "
  f"{cold_nc['s3batch']['median_rss_kb'] / cold_nc['handwritten']['median_rss_kb']:.2f}× |")
p()
p("## 4. Concurrency inside an invocation")
p()
p("100 tasks that each await 10 ms (a Tokio sleep standing in for an S3 round trip) in one event, through "
  "`Handler::handle_bytes` on a multi-threaded runtime like the generated `main`'s "
  "(`cargo bench -p s3batch-bench --bench concurrency`). One after another they would take 1,000 ms.")
p()
p("| concurrency | median (95 % CI) | waves of 10 ms |")
p("|---|---|---|")
for n, waves in (("default-64", 2), ("concurrency-100", 1)):
    m, lo, hi = conc[n]
    p(f"| {n.split('-')[-1]}{' (default)' if n == 'default-64' else ''} | {fmt_ns(m)} ({fmt_ns(lo)}–{fmt_ns(hi)}) | {waves} |")
p()
p("## Commands")
p()
p("```sh")
p("bench/run.sh    # everything below, then this file")
p("cargo lambda build --release -p s3batch-bench --bin framework --bin handwritten")
p("cargo lambda build --release -p s3batch-bench-no-s3 --bin framework_no_client --bin handwritten_no_client")
p("cargo build --release -p s3batch-bench --bin runtime_api --bin envelope_once")
p("cargo lambda build --release -p s3batch-bench --bin envelope_once")
p("cargo bench -p s3batch-bench --bench envelope --bench concurrency")
p("valgrind --tool=callgrind target/lambda/envelope_once/bootstrap s3batch 100 600   # minus 200, per variant")
p("BENCH_TRACING=1 valgrind --tool=callgrind target/lambda/envelope_once/bootstrap s3batch 100 600   # with the subscriber")
p(f"target/release/runtime_api --tasks 1 --runs {runs} --program s3batch::target/lambda/framework/bootstrap \\")
p("  --program handwritten::target/lambda/handwritten/bootstrap \\")
p("  --program 'python:bench/python:bench/python/.venv/bin/python -m awslambdaric handler.lambda_handler'")
p(f"target/release/runtime_api --tasks 1 --runs {runs_nc} --program s3batch::target/lambda/framework_no_client/bootstrap \\")
p("  --program handwritten::target/lambda/handwritten_no_client/bootstrap")
p("```")
p()
with open(os.path.join(root, "bench", "analysis.md")) as f:
    p(f.read().rstrip())
p()
# The job tool's memory at the size of real jobs: bench/streaming.sh's figures, kept in
# bench/streaming.md (that script runs for half an hour; run.sh does not run it).
with open(os.path.join(root, "bench", "streaming.md")) as f:
    p(f.read().rstrip())
p()
# Step Functions Distributed Map: written, figures and all, by bench/distributed-map.sh (which
# run.sh does not run).
with open(os.path.join(root, "bench", "distributed-map.md")) as f:
    p(f.read().rstrip())
p()
p("## Closing note")
p()
p(f"Warm, s3batch is {r_warm[1]:.2f}× the hand-written handler for 1 task and {r_warm[100]:.2f}× for 100 "
  f"({r_ir[1]:.3f}× and {r_ir[100]:.3f}× in instructions, built as deployed), and {r_floor[1]:.2f}× / {r_floor[100]:.2f}× the "
  f"serde floor ({r_ir_floor[1]:.2f}× / {r_ir_floor[100]:.2f}× in instructions). Its cold start is "
  f"{r_cold:.2f}× the hand-written Rust's and {r_py:.1f}× faster than Python's; its binary is "
  f"{r_size:.3f}× the hand-written one's size and its peak RSS {r_rss:.2f}×; without an S3 client "
  f"(no `s3` feature) its binary is {r_size_nc:.3f}× the hand-written one's and its cold start {r_cold_nc:.2f}×; 100 tasks × 10 ms finish in "
  f"{c64:.1f} ms at the default concurrency. With TLS roots from one bundle file (as on Lambda) the cold "
  f"start is {bundle['s3batch']['median_ms'] / bundle['handwritten']['median_ms']:.2f}× the hand-written one's and "
  f"{c_py / bundle['s3batch']['median_ms']:.1f}× faster than Python's; with Lambda's INFO subscriber the warm "
  f"path is {r_ir_tr[1]:.2f}× / {r_ir_tr[100]:.2f}× the hand-written one's instructions, the task span "
  f"{ir[(1, 's3batch+tracing')] - ir[(1, 's3batch')]:,.0f} / {(ir[(100, 's3batch+tracing')] - ir[(100, 's3batch')]) / 100:,.0f} instructions per task.")
