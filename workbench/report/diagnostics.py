"""Training diagnostics: cost per cell, Pareto front, learning curves, gradient health."""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd

from workbench.report.frames import CELL_ORDER, COST_METRICS, RUNS, _outcome, _parse
from workbench.tracking.store import TRIAL_ID


def cost_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Section 5: mean parameter count, seconds per epoch, peak memory and score per cell at
    equal hidden size (and depth and direction), over finished trials; peak memory only
    where a GPU allocator measured it."""
    done = trials[trials["outcome"] == "completed"]
    keys = ["units", "depth", "bidirectional", "cell"]
    columns = [*keys, "n", *COST_METRICS, "score"]
    if done.empty:
        return pd.DataFrame(columns=columns)
    # Only a GPU allocator's peak compares cells: a CPU process's memory growth during a
    # trial holds TensorFlow's own start-up in whichever trial ran first.
    gpu = done.get("memory_measure", pd.Series("", index=done.index)) == "gpu_peak"
    done = done.assign(peak_memory_mb=done["peak_memory_mb"].where(gpu))
    frame = (
        done.groupby(keys, dropna=False)
        .agg(
            n=("trial", "size"),
            **{m: (m, "mean") for m in COST_METRICS},
            score=("score", "mean"),
        )
        .reset_index()
    )
    frame["_cell"] = frame["cell"].map(lambda c: CELL_ORDER.index(c) if c in CELL_ORDER else 9)
    frame = frame.sort_values(["units", "depth", "bidirectional", "_cell"]).drop(columns="_cell")
    return frame[columns].reset_index(drop=True)


def pareto_front(trials: pd.DataFrame, direction: str, cost: str = "fit_seconds") -> pd.DataFrame:
    """Section 5: the finished trials no other trial beats on both score and ``cost``."""
    done = trials[
        (trials["outcome"] == "completed")
        & np.isfinite(trials["score"].astype(float))
        & np.isfinite(trials[cost].astype(float))
    ]
    columns = [
        "trial",
        "cell",
        "depth",
        "bidirectional",
        "units",
        "clipping",
        "learning_rate",
        "score",
        cost,
        "n_params",
    ]
    if done.empty:
        return pd.DataFrame(columns=columns)
    sign = -1.0 if direction == "max" else 1.0
    ordered = done.assign(_s=sign * done["score"].astype(float)).sort_values(
        [cost, "_s"], kind="stable"
    )
    keep, best = [], math.inf
    for index, value in zip(ordered.index, ordered["_s"], strict=True):
        if value < best:
            keep.append(index)
            best = value
    return ordered.loc[keep, columns].reset_index(drop=True)


def _curve_key(objective: str, trial: Any) -> list[str]:
    keys = [objective] if objective in trial.histories else []
    keys += sorted(k for k in trial.histories if re.fullmatch(re.escape(objective) + RUNS, k))
    return keys


def learning_curves(
    study: Any, objective: str, runs: Collection[str] | None = None
) -> pd.DataFrame:
    """Section 6: the validation objective per epoch, median and quartiles per cell type.

    Finished trials only (of ``runs``, the run ids compared, when given: not Hyperband's
    early rounds). A trial's repeats and folds are averaged per epoch first, so ``n``
    counts trials (seeds are not extra samples); a cell's curve ends where fewer than half
    its trials still train (early stopping leaves a median of the few that did).
    """
    rows = []
    # Hyperband's later round trains on from an earlier round's weights (``tuner/trial_id``)
    # and logs its own epochs only: the earlier rounds' epochs come before them.
    by_id = {t.tags.get(TRIAL_ID): t for t in study.trials if _outcome(t) == "completed"}
    for trial in study.trials:
        if _outcome(trial) != "completed" or (runs is not None and trial.run_id not in runs):
            continue
        cell = trial.params.get("cell")
        for key in _curve_key(objective, trial):
            points = list(trial.histories[key])
            earlier, chain = by_id.get(trial.params.get("tuner/trial_id")), {trial.run_id}
            while earlier is not None and points and earlier.run_id not in chain:
                chain.add(earlier.run_id)
                first = min(step for step, _ in points)
                points = [p for p in earlier.histories.get(key, ()) if p[0] < first] + points
                earlier = by_id.get(earlier.params.get("tuner/trial_id"))
            for step, value in points:
                if np.isfinite(value):
                    rows.append((cell, trial.run_id, step, value))
    columns = ["cell", "epoch", "n", "median", "q25", "q75"]
    if not rows:
        return pd.DataFrame(columns=columns)
    points = (
        pd.DataFrame(rows, columns=["cell", "run", "epoch", "value"])
        .groupby(["cell", "run", "epoch"], as_index=False)["value"]
        .mean()
    )
    frame = (
        points.groupby(["cell", "epoch"])["value"]
        .agg(
            n="size",
            median="median",
            q25=lambda v: v.quantile(0.25),
            q75=lambda v: v.quantile(0.75),
        )
        .reset_index()
    )
    started = points.groupby("cell")["run"].nunique()
    frame = frame[frame["n"] * 2 >= frame["cell"].map(started)]
    frame["_cell"] = frame["cell"].map(lambda c: CELL_ORDER.index(c) if c in CELL_ORDER else 9)
    return frame.sort_values(["_cell", "epoch"]).drop(columns="_cell").reset_index(drop=True)


def _series(trial: Any, name: str) -> list[float]:
    values = []
    for key in [name] + sorted(k for k in trial.histories if re.fullmatch(name + RUNS, k)):
        values += [v for _, v in trial.histories.get(key, ())]
    return values


def gradient_health(study: Any, runs: Collection[str] | None = None) -> pd.DataFrame:
    """Section 8: per cell, clipping, direction and readout, the gradient norm before
    clipping per epoch.

    Columns: trials measured, median and max norm, the share of epochs above the clip
    threshold, the early/late input-gradient ratio (vanishing gradients: well below 1
    means the first steps barely reach the loss) and the probe's cost in % of training.
    Empty when the study did not log ``grad_norm``. ``runs``: the run ids compared, when
    given (not Hyperband's early rounds).
    """
    rows = []
    for trial in study.trials:
        if runs is not None and trial.run_id not in runs:
            continue
        norms = [v for v in _series(trial, "grad_norm") if np.isfinite(v)]
        if not norms:
            continue
        clipping = trial.params.get("clipping", "none")
        threshold = _parse("clip_threshold", trial.params.get("clip_threshold"))
        clipped = _series(trial, "grad_clipped")
        if clipped:
            share = float(np.nanmean(clipped))
        elif clipping == "norm" and threshold:
            share = float(np.mean([n > threshold for n in norms]))
        else:
            share = math.nan
        early, late = _series(trial, "grad_input_early"), _series(trial, "grad_input_late")
        ratios = [
            e / v
            for e, v in zip(early, late, strict=False)
            if v and np.isfinite(e) and np.isfinite(v)
        ]
        probe = trial.metrics.get("grad_probe_seconds", math.nan)
        fit = trial.metrics.get("fit_seconds", math.nan)
        bidirectional = _parse("bidirectional", trial.params.get("bidirectional"))
        rows.append(
            {
                "cell": trial.params.get("cell"),
                "clipping": clipping,
                # Apart: a backward layer or a pooled readout reaches the first steps directly,
                # so their early/late ratio stays near 1 however the recurrence vanishes.
                "direction": "bidirectional" if bidirectional else "one-way",
                "readout": trial.params.get("readout") or "last",
                "median_norm": float(np.median(norms)),
                "max_norm": float(np.max(norms)),
                "clipped_share": share,
                "early_late_ratio": float(np.median(ratios)) if ratios else math.nan,
                "probe_percent": 100 * probe / fit if fit and np.isfinite(probe) else math.nan,
            }
        )
    columns = [
        "cell",
        "clipping",
        "direction",
        "readout",
        "trials",
        "median_norm",
        "max_norm",
        "clipped_share",
        "early_late_ratio",
        "probe_percent",
    ]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    out = (
        frame.groupby(["cell", "clipping", "direction", "readout"])
        .agg(
            trials=("cell", "size"),
            median_norm=("median_norm", "median"),
            max_norm=("max_norm", "max"),
            clipped_share=("clipped_share", "mean"),
            early_late_ratio=("early_late_ratio", "median"),
            probe_percent=("probe_percent", "median"),
        )
        .reset_index()
    )
    return out[columns]


def divergence(trials: pd.DataFrame) -> pd.DataFrame:
    """Section 7: trials per cell and clipping setting, and how many diverged (NaN loss)."""
    columns = ["cell", "clipping", "trials", "diverged", "rate"]
    ended = trials[trials["outcome"].isin(["completed", "diverged", "oom", "error"])]
    if ended.empty:
        return pd.DataFrame(columns=columns)
    frame = (
        ended.assign(
            _d=(ended["outcome"] == "diverged") | ended["diverged_repeat"].notna(),
            clipping=ended["clipping"].fillna("none"),
        )
        .groupby(["cell", "clipping"])
        .agg(trials=("trial", "size"), diverged=("_d", "sum"))
        .reset_index()
    )
    frame["rate"] = frame["diverged"] / frame["trials"]
    return frame[columns]
