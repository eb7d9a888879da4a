"""The ranking: cells compared over several tasks (Demsar 2006), rows first.

One study answers "which cell on this task"; a benchmark of studies asks "which cell in
general". The unit is the task: each cell's best score on each task, a table of tasks x
cells. From it:

- :func:`average_ranks`: each cell's rank on each task (1 = best, ties share the mean
  rank), averaged over tasks;
- :func:`friedman`: Friedman's test that all cells rank alike (needs 3+ cells, 2+ tasks);
- :func:`nemenyi_critical_difference`: two cells whose average ranks differ by more than
  ``q_alpha * sqrt(k (k + 1) / (6 N))`` differ (the critical-difference diagram's bar);
- :func:`pairwise_wilcoxon`: each pair of cells by the signed-rank test over tasks,
  Holm-corrected (Benavoli et al. 2016 prefer it to the Nemenyi post-hoc); by the sign
  test where the tasks' scores are in different units (accuracy and MSE: differences
  that cannot be ranked together).

A cell missing on a task (its study has no finished trial of it) leaves that task out of
the tests that need complete rows, and says so in ``tasks_used``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError
from workbench.report.statistics import holm


def _complete(table: pd.DataFrame) -> pd.DataFrame:
    return table.dropna(axis=0, how="any")


def _signed(table: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Scores turned so that larger is better."""
    if direction not in ("min", "max"):
        raise WorkbenchError(f"Expected direction 'min' or 'max'. Received: {direction!r}")
    return -table if direction == "min" else table


def ranks(table: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Each cell's rank on each complete task (1 = best; ties share the mean rank)."""
    from scipy.stats import rankdata

    better = _signed(_complete(table), direction)
    ranked = np.vstack([rankdata(-row) for row in better.to_numpy()]) if len(better) else []
    return pd.DataFrame(ranked, index=better.index, columns=better.columns)


def average_ranks(table: pd.DataFrame, direction: str) -> pd.Series:
    """The mean rank of each cell over the complete tasks, best (lowest) first."""
    return ranks(table, direction).mean(axis=0).sort_values()


@dataclass(frozen=True)
class Friedman:
    """Friedman's test over ``tasks_used`` tasks and ``cells`` cells."""

    statistic: float
    p_value: float
    tasks_used: int
    cells: int


def friedman(table: pd.DataFrame, direction: str) -> Friedman | None:
    """Friedman's chi-square test that every cell ranks alike; None below 3 cells or 2 tasks."""
    from scipy.stats import friedmanchisquare

    complete = _signed(_complete(table), direction)
    k, n = complete.shape[1], complete.shape[0]
    if k < 3 or n < 2:
        return None
    result = friedmanchisquare(*(complete[column].to_numpy() for column in complete.columns))
    return Friedman(float(result.statistic), float(result.pvalue), n, k)


def nemenyi_q(cells: int, alpha: float = 0.05) -> float:
    """Nemenyi's critical value: the studentized range quantile over sqrt(2)
    (Demsar 2006, table 5: 1.960, 2.343, 2.569, 2.728 for 2 to 5 cells at 0.05)."""
    from scipy.stats import studentized_range

    if cells < 2:
        raise WorkbenchError(f"Expected at least 2 cells to compare. Received: {cells}")
    return float(studentized_range.ppf(1 - alpha, cells, np.inf) / math.sqrt(2))


def nemenyi_critical_difference(cells: int, tasks: int, alpha: float = 0.05) -> float:
    """The difference in average rank beyond which two cells differ (Nemenyi)."""
    if tasks < 1:
        raise WorkbenchError(f"Expected at least 1 task. Received: {tasks}")
    return nemenyi_q(cells, alpha) * math.sqrt(cells * (cells + 1) / (6 * tasks))


@dataclass(frozen=True)
class PairTest:
    """One pair of cells over the tasks: the signed-rank test, Holm-corrected."""

    first: str
    second: str
    wins: int  # tasks where ``first`` is better
    ties: int
    losses: int
    p_value: float | None  # uncorrected; None with fewer than 2 tasks that differ
    p_holm: float | None
    test: str = "Wilcoxon"  # or "sign"


def pairwise_wilcoxon(
    table: pd.DataFrame, direction: str, units: Mapping[str, str] | None = None
) -> list[PairTest]:
    """Every pair of cells: wins / ties / losses over the tasks both have, and the
    Wilcoxon signed-rank p-value, Holm-corrected over the pairs.

    ``units`` names each task's measure (e.g. ``val_accuracy``, ``val_loss``): a pair
    whose tasks are scored in different units takes the sign test on the wins and losses
    instead, as the signed-rank test would rank an MSE difference against an accuracy
    difference. Decided per pair, from the tasks that pair is compared on.
    """
    from scipy.stats import binomtest, wilcoxon

    better = _signed(table, direction)
    rows, tests = [], []
    for first, second in combinations(better.columns, 2):
        both = better[[first, second]].dropna()
        diff = (both[first] - both[second]).to_numpy()
        nonzero = diff[diff != 0]
        mixed = len({(units or {}).get(task, "") for task in both.index}) > 1
        p = None
        if len(nonzero) >= 2:
            p = (
                float(binomtest(int((nonzero > 0).sum()), len(nonzero)).pvalue)
                if mixed
                else float(wilcoxon(nonzero).pvalue)
            )
        rows.append(
            [first, second, int((diff > 0).sum()), int((diff == 0).sum()), int((diff < 0).sum()), p]
        )
        tests.append("sign" if mixed else "Wilcoxon")
    adjusted = holm([row[5] for row in rows])
    return [
        PairTest(*row, p, test) for row, p, test in zip(rows, adjusted, tests, strict=True)
    ]
