"""Prints the table of Lambda invocations and cost per million objects, S3 Batch Operations
against Step Functions Distributed Map at batch sizes 1, 100 and 1,000 (markdown, to stdout).

Usage: python3 bench/distributed-map-cost.py [MEMORY_MB [MS_PER_OBJECT [CONCURRENCY]]]
       (defaults 128, 50, 64). Standard library only.

Arithmetic on published list prices, not a measurement: the prices, where they were read and
when, and every assumption are printed under the table (and copied, with the table, into
docs/distributed-map.md, "Which engine, what it costs"). bench/distributed-map.sh includes
this output in BENCHMARKS.md.
"""

import math
import sys

# us-east-1 list prices, USD, no free tier, no Savings Plans. Read on 2026-12-07 from the
# pages named in SOURCES below.
S3_BATCH_PER_JOB = 0.25
S3_BATCH_PER_OBJECT = 1.00 / 1e6
SFN_PER_TRANSITION = 0.025 / 1000
SFN_EXPRESS_PER_REQUEST = 1.00 / 1e6
SFN_EXPRESS_PER_GB_SECOND = 0.06 / 3600  # $0.06 per GB-hour, the first 1,000 GB-hours
SFN_EXPRESS_MEMORY_GB = 64 / 1024  # billed in 64 MB chunks; 50 MB + definition + payload
LAMBDA_PER_REQUEST = 0.20 / 1e6
LAMBDA_PER_GB_SECOND = 0.0000166667  # x86, the first 6 billion GB-seconds a month

SOURCES = [
    "S3 Batch Operations: $0.25 per job + $1.00 per million object operations — the S3 pricing "
    "page (aws.amazon.com/s3/pricing, *Management & insights*), as given by a public S3 pricing "
    "guide verified on 2026-10-03 against the AWS Price List API (`AmazonS3` offer published "
    "2026-09-28); the per-job fee is also in `shared/reference/distributed-map.md` (Yelp, 2025)",
    "Step Functions Standard: $0.025 per 1,000 state transitions in US East (N. Virginia); "
    "Express: $1.00 per million requests and $0.06000 per GB-hour for the first 1,000 GB-hours "
    "(then $0.03, then $0.01642), duration rounded up to 100 ms, memory billed in 64 MB chunks "
    "(50 MB + definition + execution data) — aws.amazon.com/step-functions/pricing",
    "A Distributed Map charges one state transition for each child workflow execution it "
    "starts — Step Functions Developer Guide, *Transitions* (`concepts-transitions`)",
    "Lambda: $0.20 per million requests, $0.0000166667 per GB-second (x86, first 6 billion "
    "GB-seconds a month) — aws.amazon.com/lambda/pricing (archived 2026-06-18) and the AWS "
    "whitepaper *How AWS Pricing Works* (\"$0.00001667 for every GB-second\")",
]


def lambda_cost(invocations, seconds_each, memory_gb):
    return invocations * LAMBDA_PER_REQUEST + invocations * seconds_each * memory_gb * LAMBDA_PER_GB_SECOND


def main():
    args = [float(a) for a in sys.argv[1:]]
    memory_mb = args[0] if len(args) > 0 else 128
    ms_per_object = args[1] if len(args) > 1 else 50
    concurrency = int(args[2]) if len(args) > 2 else 64
    memory_gb = memory_mb / 1024
    objects = 1_000_000
    rows = []

    # S3 Batch Operations: one job, one invocation per object (S3 sends one task each).
    s3_fees = S3_BATCH_PER_JOB + objects * S3_BATCH_PER_OBJECT
    lam = lambda_cost(objects, ms_per_object / 1000, memory_gb)
    rows.append(("S3 Batch Operations (1 job)", "1", objects, s3_fees, lam))

    def dmap(kind, batch):
        """(children, Step Functions cost, Lambda cost) per million objects."""
        children = math.ceil(objects / batch)
        # Items of a batch run `concurrency` at a time: waves of one object's duration.
        seconds = math.ceil(batch / concurrency) * ms_per_object / 1000
        if kind == "Standard":
            # The child's start (charged to the Map) and its one Task state.
            sfn = children * 2 * SFN_PER_TRANSITION
        else:
            billed = math.ceil(seconds * 10) / 10  # rounded up to 100 ms
            sfn = children * (
                SFN_PER_TRANSITION
                + SFN_EXPRESS_PER_REQUEST
                + billed * SFN_EXPRESS_MEMORY_GB * SFN_EXPRESS_PER_GB_SECOND
            )
        return children, sfn, lambda_cost(children, seconds, memory_gb)

    for kind in ("Standard", "Express"):
        for batch in (1, 100, 1000):
            children, sfn, lam = dmap(kind, batch)
            rows.append((f"Distributed Map, {kind} children", f"{batch:,}", children, sfn, lam))

    p = print
    p(f"Per million objects, us-east-1, list prices read on 2026-12-07 (no free tier); a "
      f"{memory_mb:.0f} MB x86 function, {ms_per_object:.0f} ms of I/O per object, items of a batch "
      f"run {concurrency} at a time (s3batch's default concurrency), so a batch of *n* takes "
      f"⌈*n*/{concurrency}⌉ × {ms_per_object:.0f} ms:")
    p()
    p("| engine | items per invocation | Lambda invocations | S3 Batch / Step Functions | Lambda | total | ÷ S3 Batch |")
    p("|---|---|---|---|---|---|---|")
    base = rows[0][3] + rows[0][4]
    for name, batch, inv, engine, lam in rows:
        total = engine + lam
        p(f"| {name} | {batch} | {inv:,} | ${engine:,.4f} | ${lam:,.4f} | **${total:,.4f}** | {total / base:.3f}× |")
    p()
    even = {
        kind: next(b for b in range(1, 10_001) if sum(dmap(kind, b)[1:]) <= base)
        for kind in ("Standard", "Express")
    }
    p(f"Distributed Map costs less than S3 Batch Operations from {even['Standard']} items per "
      f"batch with Standard children, from {even['Express']} with Express children.")
    p()
    p("Assumptions:")
    p()
    p("- One S3 Batch job for the million objects (its $0.25 fee is per job: many small jobs cost "
      "more); S3 Batch invokes the function once per object (one task per invocation).")
    p("- A Distributed Map child is one Task state calling the function (`lambda:invoke`): a "
      "Standard child costs two transitions (its start, which the Map is charged, and the Task); "
      "an Express child costs the start transition, one Express request and its duration, taken "
      "as the function's duration rounded up to 100 ms at 64 MB. The parent execution's own few "
      "transitions (start, the Map state, end), the item reader's requests (one `ListObjectsV2` "
      "per 1,000 keys: $0.005 per million objects) and `ResultWriter`'s PUTs are left out, as is "
      "the S3 Batch completion report.")
    p("- What the task itself does to S3 (GET, PUT, …) costs the same under both engines and is "
      "left out; so are retries (each retried child is charged again, and under `FailBatch` a "
      "retried batch reruns its succeeded items: see \"Results and the failure policy\").")
    p(f"- Lambda duration is {ms_per_object:.0f} ms per wave of {concurrency} items (I/O-bound work "
      f"overlaps inside one invocation; `bench/distributed-map.sh` measures 1,000 items × 10 ms "
      f"at concurrency 64). CPU-bound work does not overlap: a batch then takes *n* × the "
      f"per-object time, and the Lambda duration is the same at every batch size "
      f"(${objects * ms_per_object / 1000 * memory_gb * LAMBDA_PER_GB_SECOND:,.4f} per million "
      f"objects here).")
    p()
    p("Prices and where they were read:")
    p()
    for s in SOURCES:
        p(f"- {s}.")


if __name__ == "__main__":
    main()
