"""Statistics on the trials: intervals, per-parameter tables, head-to-head tests, importance."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.report.frames import (
    _FLOAT_PARAMS,
    _INT_PARAMS,
    CELL_ORDER,
    MAX_LEVELS,
    PARAMS,
    _config_of,
    _show,
    finished,
)
from workbench.search.config import best_of

# --- statistics -----------------------------------------------------------------------------


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float, float]:
    """``(mean, std, ci_low, ci_high)``: sample std (ddof 1) and the Student t interval.

    With one value the std and interval are NaN; with none everything is NaN.
    """
    from scipy import stats

    data = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if data.size == 0:
        return (math.nan,) * 4
    mean = float(data.mean())
    if data.size < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(data.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, data.size - 1)) * std / math.sqrt(data.size)
    return mean, std, mean - half, mean + half


def _cells(frame: pd.DataFrame) -> list[str]:
    present = [c for c in frame["cell"].dropna().unique()]
    return [c for c in CELL_ORDER if c in present] + sorted(
        c for c in present if c not in CELL_ORDER
    )


def _levels(frame: pd.DataFrame, name: str) -> pd.Series:
    """The parameter's value per row as a label; many numeric values become quantile bins."""
    values = frame[name]
    if name == "clip_threshold":
        values = values.where(frame["clipping"] != "none")
    distinct = values.dropna().unique()
    numeric = name in _INT_PARAMS or name in _FLOAT_PARAMS
    if numeric and len(distinct) > MAX_LEVELS:
        number = values.astype(float)
        scale = np.log10(number) if name == "learning_rate" else number
        bins = pd.qcut(scale, q=4, duplicates="drop")
        labels = {}
        for i, interval in enumerate(bins.cat.categories):
            low, high = interval.left, interval.right
            if name == "learning_rate":
                low, high = 10**low, 10**high
            # qcut opens the first bin a little below the smallest value (a dropout of
            # -0.001): the data's own minimum instead, so that bin is closed on both sides;
            # the others hold their right end, not their left (the previous bin's).
            low = max(low, float(number.min()))
            labels[interval] = f"{'(' if i else '['}{low:.3g}, {high:.3g}]"
        return bins.map(labels).astype(object)
    return values.map(lambda v: None if v is None or v != v else _show(v))


def _sort_key(label: Any) -> tuple[int, float, str]:
    """Numbers and quartile bins (``[low, high]``, ``(low, high]``) by value, then anything
    else by name."""
    text = str(label)
    try:
        bin_ = text[:1] in ("[", "(")
        return (0, float(text[1:].split(",")[0]) if bin_ else float(text), text)
    except ValueError:
        return (1, 0.0, text)


def per_parameter(scores: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Section 2: per parameter, value and cell: n, mean, std, 95% CI and best of the score.

    ``scores`` holds one row per configuration (a trial, its repeats averaged): ``n``
    counts configurations, so seeds are never extra samples. ``clip_threshold`` only
    counts clipped trials.
    """
    columns = ["parameter", "value", "cell", "n", "mean", "std", "ci_low", "ci_high", "best"]
    if scores.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for name in PARAMS:
        levels = _levels(scores, name)
        for value in sorted(levels.dropna().unique(), key=_sort_key):
            for cell in _cells(scores):
                chosen = scores[(levels == value) & (scores["cell"] == cell)]["score"]
                if chosen.empty:
                    continue
                mean, std, low, high = mean_ci(chosen.astype(float).tolist())
                best = best_of(chosen, direction)
                rows.append([name, value, cell, len(chosen), mean, std, low, high, best])
    return pd.DataFrame(rows, columns=columns)


def _config_means(trials: pd.DataFrame, exclude: Sequence[str]) -> pd.DataFrame:
    done = finished(trials)
    if done.empty:
        return pd.DataFrame(columns=["match", "score"])
    keyed = done.assign(match=[_config_of(r, exclude) for r in done.to_dict("records")])
    return keyed


def head_to_head(trials: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Section 3: every pair of cell types, difference of score (first minus second).

    Matched configurations (all other hyperparameters equal; repeats averaged per
    configuration) give a paired t-test, a Wilcoxon signed-rank test and Cohen's d_z. With
    fewer than two matched configurations it falls back to Welch's t-test on all finished
    trials with Hedges' g, marked ``unpaired``: weaker, since other hyperparameters differ.
    ``p_holm`` is the t-test's p-value adjusted by Holm over the pairs tested; ``better``
    names a cell only when that adjusted p-value is under 0.05.
    """
    from scipy import stats

    columns = [
        "cell_a",
        "cell_b",
        "comparison",
        "n",
        "mean_diff",
        "ci_low",
        "ci_high",
        "t",
        "p_value",
        "wilcoxon_p",
        "effect_size",
        "effect",
        "better",
        "note",
    ]
    keyed = _config_means(trials, exclude=("cell",))
    rows = []
    cells = _cells(keyed) if not keyed.empty else []
    for i, first in enumerate(cells):
        for second in cells[i + 1 :]:
            a = keyed[keyed["cell"] == first].groupby("match")["score"].mean()
            b = keyed[keyed["cell"] == second].groupby("match")["score"].mean()
            matched = a.index.intersection(b.index)
            if len(matched) >= 2:
                diffs = (a[matched] - b[matched]).to_numpy(dtype=float)
                mean, std, low, high = mean_ci(diffs.tolist())
                note = f"{len(matched)} matched configurations"
                # Scores are float32 metrics, averaged over repeats: equal differences come
                # back unequal in the 7th digit, and a t-test on that noise reports p ~ 1e-6
                # from nothing. Differences that agree to float32 precision get no test.
                size = float(np.abs(np.concatenate([a[matched], b[matched]])).max())
                if np.ptp(diffs) > 1e-6 * size:
                    t, p = stats.ttest_rel(a[matched], b[matched])
                    effect = mean / std
                else:
                    t, p, effect, low, high = (math.nan,) * 5
                    note += "; every difference is the same: no spread to test against"
                try:
                    wilcoxon_p = float(stats.wilcoxon(diffs).pvalue) if np.any(diffs) else 1.0
                except ValueError:
                    wilcoxon_p = math.nan
                if len(matched) < 6:
                    note += "; Wilcoxon cannot reach p < 0.05 below 6 pairs"
                rows.append(
                    [
                        first,
                        second,
                        "paired",
                        len(matched),
                        mean,
                        low,
                        high,
                        float(t),
                        float(p),
                        wilcoxon_p,
                        effect,
                        "d_z",
                        _winner(mean, p, first, second, direction),
                        note,
                    ]
                )
                continue
            xa = keyed[keyed["cell"] == first]["score"].astype(float).to_numpy()
            xb = keyed[keyed["cell"] == second]["score"].astype(float).to_numpy()
            why = (
                "no matched configuration" if len(matched) == 0 else "only 1 matched configuration"
            )
            if len(xa) < 2 or len(xb) < 2:
                rows.append(
                    [
                        first,
                        second,
                        "none",
                        len(xa) + len(xb),
                        math.nan,
                        math.nan,
                        math.nan,
                        math.nan,
                        math.nan,
                        math.nan,
                        math.nan,
                        "",
                        "",
                        f"{why}, and fewer than 2 finished trials on one side: cannot test",
                    ]
                )
                continue
            diff = float(xa.mean() - xb.mean())
            va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
            if va + vb > 0:
                t, p = stats.ttest_ind(xa, xb, equal_var=False)
                df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
                half = float(stats.t.ppf(0.975, df)) * math.sqrt(va + vb)
                pooled = math.sqrt(
                    ((len(xa) - 1) * xa.var(ddof=1) + (len(xb) - 1) * xb.var(ddof=1))
                    / (len(xa) + len(xb) - 2)
                )
                correction = 1 - 3 / (4 * (len(xa) + len(xb)) - 9)
                effect = diff / pooled * correction if pooled > 0 else math.nan
            else:
                t, p, half, effect = math.nan, math.nan, math.nan, math.nan
            rows.append(
                [
                    first,
                    second,
                    "unpaired",
                    len(xa) + len(xb),
                    diff,
                    diff - half,
                    diff + half,
                    float(t),
                    float(p),
                    math.nan,
                    effect,
                    "Hedges g",
                    _winner(diff, p, first, second, direction),
                    f"{why}: Welch's t-test on all trials (weaker: other hyperparameters differ)",
                ]
            )
    frame = pd.DataFrame(rows, columns=columns)
    # Three cells make three pairs: each verdict is read against Holm's correction over
    # the pairs tested, so the study as a whole keeps a 5% chance of a false "beats".
    adjusted = holm([p if np.isfinite(p) else None for p in frame["p_value"].astype(float)])
    frame.insert(
        columns.index("p_value") + 1, "p_holm", [math.nan if p is None else p for p in adjusted]
    )
    for i, row in frame.iterrows():
        if row["comparison"] != "none":
            frame.at[i, "better"] = _winner(
                row["mean_diff"], row["p_holm"], row["cell_a"], row["cell_b"], direction
            )
    return frame


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None: not tested, left out)."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for order, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - order) * p))  # monotone
        adjusted[i] = running
    return adjusted


def _winner(diff: float, p: float, first: str, second: str, direction: str) -> str:
    if not np.isfinite(diff) or diff == 0:
        return "tie"
    ahead = first if (diff > 0) == (direction == "max") else second
    return ahead if np.isfinite(p) and p < 0.05 else f"{ahead} (not significant)"


def expected_best(trials: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Expected best validation score after ``n`` trials, per cell (Dodge et al. 2019).

    From a cell's ``N`` finished trials, the expected best of ``n`` drawn with replacement:
    with scores sorted so the best is last, ``sum_i v_i * ((i/N)^n - ((i-1)/N)^n)``. Cells
    that got unequal numbers of trials compare fairly at equal ``n``; each curve stops at
    its cell's own ``N``.
    """
    columns = ["cell", "trials", "expected_best"]
    done = finished(trials)
    if done.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for cell in _cells(done):
        scores = np.sort(done[done["cell"] == cell]["score"].astype(float).to_numpy())
        if direction == "min":
            scores = scores[::-1]  # the best (least) last
        total = len(scores)
        ranks = np.arange(1, total + 1) / total
        for n in range(1, total + 1):
            weights = ranks**n - (ranks - 1 / total) ** n
            rows.append([cell, n, float(np.dot(weights, scores))])
    return pd.DataFrame(rows, columns=columns)
