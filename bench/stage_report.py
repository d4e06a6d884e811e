#!/usr/bin/env python3
"""Median time between consecutive stage marks, per process.

Reads the stages-PID.txt files a STAGE_TRACE=1 build writes
(rings/stage_trace.h) and prints, for each process, every (stage, next
stage) pair seen for at least 1 % of the events, with its count and its
10th, 50th and 90th percentiles in nanoseconds. The first tenth of each
recording (start-up, warm-up) is left out.

    bench/stage_report.py /tmp/stages-*.txt
"""
import collections
import sys

NAMES = {0: "rx frames", 1: "recv returns", 2: "send enters", 3: "kick enters",
         4: "kick returns", 5: "send returns", 6: "recv locked", 7: "recv queued",
         8: "stack delivered", 9: "send locked", 10: "send built"}


def report(path):
    with open(path) as f:
        header = f.readline().split(maxsplit=3)
        ticks_per_ns = float(header[2])
        command = header[3].strip() if len(header) > 3 else "?"
        events = [tuple(map(int, line.split())) for line in f if line.strip()]
    events = events[len(events) // 10:]
    gaps = collections.defaultdict(list)
    for (a, ta), (b, tb) in zip(events, events[1:]):
        gaps[(a, b)].append((tb - ta) / ticks_per_ns)
    print(f"{path}: {command} ({len(events)} events)")
    for (a, b), v in sorted(gaps.items(), key=lambda kv: -len(kv[1])):
        if len(v) * 100 < len(events):
            continue
        v.sort()
        name = f"{NAMES.get(a, a)} -> {NAMES.get(b, b)}"
        print(f"  {name:<34} n={len(v):>8}  p10 {v[len(v) // 10]:7.0f}  "
              f"p50 {v[len(v) // 2]:7.0f}  p90 {v[len(v) * 9 // 10]:7.0f} ns")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        report(p)
