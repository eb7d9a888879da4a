"""Benchmark runs read together from their per-round logs (docs/performance.md).

For each round of each log given: the workbench's time over the hand-written script's,
wall-clock and CPU; over all rounds and over the rounds where both arms were quiet (no
"not quiet" on the line), the geometric mean of the per-round ratios with its 95% interval
(Student's t on the log ratios), as scripts/bench_overhead.py prints it for one run.
Run with (needs scipy, in the workbench's venv):
python docs/runs/pool_logs.py docs/runs/bench_overhead-18.txt docs/runs/bench_overhead-19.txt
"""

import math
import re
import sys

from scipy import stats

ARM = r"{arm} (?P<wall>[\d.]+) s \(CPU (?P<cpu>[\d.]+) s"


def rounds(path: str) -> list[tuple[float, float, bool]]:
    found = []
    with open(path) as log:
        lines = log.readlines()
    for line in lines:
        if not line.startswith("round "):
            continue
        hand = re.search(ARM.format(arm="hand-written"), line)
        bench = re.search(ARM.format(arm="workbench"), line)
        found.append(
            (
                float(bench["wall"]) / float(hand["wall"]),
                float(bench["cpu"]) / float(hand["cpu"]),
                "not quiet" not in line,
            )
        )
    return found


def summary(ratios: list[float]) -> str:
    logs = [math.log(r) for r in ratios]
    n = len(logs)
    mean = sum(logs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    low, high = math.exp(mean - half), math.exp(mean + half)
    return f"{n} rounds: {math.exp(mean):.3f} ({low:.3f}-{high:.3f})"


every = [r for path in sys.argv[1:] for r in rounds(path)]
quiet = [r for r in every if r[2]]
for name, chosen in (("all", every), ("quiet", quiet)):
    print(f"wall-clock, {name}: {summary([r[0] for r in chosen])}")
    print(f"CPU time, {name}: {summary([r[1] for r in chosen])}")
