"""Where the instructions of a Distributed Map batch go: a markdown table (to stdout) of the
inclusive cost per invocation of the main steps of `Handler::serve_lambda` (what the generated
`main` serves) and of the answer's serialization, from two callgrind profiles of `map_once s3batch ITEMS N` and `... 3N` (the
difference over 2N, so start-up and the checked first call are not counted).

Usage: python3 bench/distributed-map-profile.py PROFILE_N PROFILE_3N N
Needs `callgrind_annotate` (valgrind) and a binary with symbols (`cargo build --release`;
the `cargo lambda` build is stripped). Standard library only. bench/distributed-map.sh runs it.
"""

import re
import subprocess
import sys

LINE = re.compile(r"^\s*([\d,]+) \([\s\d.]+%\)\s+([*<>])\s+(.*?)(?: \((\d+)x\))? \[")

# (label, function, callee or None): the inclusive cost of `function`, or of its calls to
# `callee`. Names are matched as substrings of callgrind's `file:function`.
STEPS = [
    ("reading the event once, its shape told (`map::read_event`), all of it", "s3batch_core::map::read_event", None),
    ("· of which parsing it (serde_json's deserializer)", "s3batch_core::map::read_event", "serde_json::de::from_trait"),
    ("running the 1,000 tasks (the task's own `format!` included)", "s3batch_core::runtime::deadline::BeforeDeadline<F> as core::future::future::Future>::poll", None),
    ("the answer from the results (`map::answer`), all of it", "s3batch_core::map::answer", None),
    ("its JSON written from the results (`AnswerJson::from_map`; serde_json then copies it)", "s3batch_core::map::AnswerJson::from_map", None),
    ("the answer dropped once written (`MapAnswer`: the results' texts)", "core::ptr::drop_in_place<s3batch_core::map::MapAnswer", None),
]


def profile(path):
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--tree=calling", "--threshold=100", path],
        capture_output=True, text=True, check=True,
    ).stdout
    incl, calls = {}, {}
    current = None
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        ir, kind, name = int(m.group(1).replace(",", "")), m.group(2), m.group(3)
        if kind == "*":
            current = name
            incl[name] = incl.get(name, 0) + ir
        elif kind == ">" and current is not None:
            calls[(current, name)] = calls.get((current, name), 0) + ir
    return incl, calls


def cost(prof, function, callee):
    incl, calls = prof
    if callee is None:
        return sum(v for k, v in incl.items() if function in k)
    return sum(v for (f, c), v in calls.items() if function in f and callee in c)


def main():
    p1, p3, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    a, b = profile(p1), profile(p3)
    print("| step of `Handler::serve_lambda` and the answer's serialization (1,000 items) | instructions per invocation |")
    print("|---|---|")
    for label, function, callee in STEPS:
        per = (cost(b, function, callee) - cost(a, function, callee)) / (2 * n)
        print(f"| {label} | {per:,.0f} |")


if __name__ == "__main__":
    main()
