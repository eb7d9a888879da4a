"""Benchmark runs 12 to 16 of scripts/bench_overhead.py read together (docs/performance.md).

The per-round logs of runs 12 to 15 are gone; each run's printed geometric mean of the
per-round ratios and its 95% interval (Student's t on the log ratios) give back its mean
and standard deviation of the log ratios, and from those the pooled interval over all the
rounds, as if computed from the rounds themselves (to the rounding of the printed figures).
Run with: python docs/runs/pool_runs.py (needs scipy, in the workbench's venv).
"""

import math

from scipy import stats

# (rounds, geometric mean, 95% CI low, high), as printed by each run
WALL_ALL = [(40, 1.027, 0.999, 1.055), (30, 0.996, 0.936, 1.059), (20, 1.068, 1.008, 1.132),
            (12, 0.987, 0.896, 1.087), (20, 1.026, 0.966, 1.090)]  # fmt: skip
WALL_QUIET = [(33, 1.028, 1.000, 1.057), (23, 1.024, 0.990, 1.060), (18, 1.042, 1.001, 1.085),
              (12, 0.987, 0.896, 1.087), (20, 1.026, 0.966, 1.090)]  # fmt: skip
CPU_ALL = [(40, 1.076, 1.065, 1.087), (30, 1.048, 1.013, 1.084), (20, 1.128, 1.060, 1.200),
           (12, 1.064, 0.980, 1.155), (20, 1.082, 1.016, 1.153)]  # fmt: skip
CPU_QUIET = [(33, 1.077, 1.064, 1.091), (23, 1.062, 1.035, 1.089), (18, 1.103, 1.054, 1.154),
             (12, 1.064, 0.980, 1.155), (20, 1.082, 1.016, 1.153)]  # fmt: skip


def _moments(n: int, gm: float, lo: float, hi: float) -> tuple[int, float, float]:
    t = stats.t.ppf(0.975, n - 1)
    return n, math.log(gm), (math.log(hi) - math.log(lo)) / 2 / t * math.sqrt(n)


def pooled(runs: list[tuple[int, float, float, float]]) -> str:
    parts = [_moments(*r) for r in runs]
    n = sum(p[0] for p in parts)
    mean = sum(p[0] * p[1] for p in parts) / n
    squares = sum((k - 1) * sd**2 + k * (m - mean) ** 2 for k, m, sd in parts)
    half = stats.t.ppf(0.975, n - 1) * math.sqrt(squares / (n - 1)) / math.sqrt(n)
    low, high = math.exp(mean - half), math.exp(mean + half)
    return f"{n} rounds: {math.exp(mean):.3f} ({low:.3f}-{high:.3f})"


for name, runs in [("wall-clock, all", WALL_ALL), ("wall-clock, quiet", WALL_QUIET),
                   ("CPU time, all", CPU_ALL), ("CPU time, quiet", CPU_QUIET)]:  # fmt: skip
    print(f"{name:18} runs 12-15 {pooled(runs[:4])};  runs 12-16 {pooled(runs)}")
