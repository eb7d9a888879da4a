"""Reports: which architecture wins, by how much, at what cost, and how sure we are.

A study read back from MLflow (:func:`workbench.tracking.load_study`) becomes plain data
frames first, one function per report section, each tested on its own numbers:

1. :func:`overview`            task, space, tuner, trial counts, best trial, compute time
2. :func:`per_parameter`       n / mean / std / 95% CI / best of the score per value and cell
3. :func:`head_to_head`        cell against cell: paired tests on matched configurations,
                               else Welch's unpaired test (weaker, and labelled so)
4. :func:`importance`          share of the score's variance each hyperparameter explains
5. :func:`cost_table`, :func:`pareto_front`   cost per cell at equal size; score vs cost
6. :func:`learning_curves`     validation objective per epoch: median and IQR per cell
7. :func:`gradient_health`, :func:`divergence`   gradient norms, clipping, vanishing, NaN
8. :func:`claims`              three popular claims measured on this study, with verdicts

:func:`build_report` puts the sections together; :func:`write_report` draws them second
(matplotlib, Agg) into ``report.html`` (self-contained), ``report.md``, ``trials.csv`` and
PNG figures. Missing data (one cell type, one repeat, failed trials, no gradient probe)
gives a section that says what it cannot compute, never an exception.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError
from workbench.tuning import PARAM_NAMES

#: Hyperparameters analysed per value (``epochs`` is fixed per study and only used to match).
PARAMS = tuple(name for name in PARAM_NAMES if name not in ("cell", "epochs"))
CONFIG_KEYS = ("cell", *PARAMS, "epochs")
CELL_ORDER = ("simple_rnn", "lstm", "gru")
CELL_COLORS = {"simple_rnn": "#7f7f7f", "lstm": "#1f77b4", "gru": "#d62728"}
COST_METRICS = ("n_params", "epoch_seconds", "fit_seconds", "peak_memory_mb")
NOT_MEASURED = "not measured in this study"
#: More distinct values than this and a numeric parameter is shown in quantile bins.
MAX_LEVELS = 6
_INT_PARAMS = ("depth", "units", "batch_size", "epochs")
_FLOAT_PARAMS = ("clip_threshold", "learning_rate", "dropout")


# --- reading the study into frames ----------------------------------------------------------


def _parse(name: str, raw: str | None) -> Any:
    if raw is None or raw == "" or raw == "none" and name != "clipping":
        return None
    if name == "bidirectional":
        return str(raw).lower() in ("true", "1")
    try:
        if name in _INT_PARAMS:
            return int(float(raw))
        if name in _FLOAT_PARAMS:
            return float(raw)
    except ValueError:
        return None
    return raw


def _outcome(trial: Any) -> str:
    if trial.status == "FINISHED" and "score" in trial.metrics:
        return "completed"
    if trial.status == "FAILED":
        return trial.tags.get("failure", "error")
    if trial.status == "KILLED":
        return "interrupted"
    return trial.status.lower()


def _repeat_scores(metrics: Any) -> dict[int, float]:
    found = {}
    for key, value in metrics.items():
        match = re.fullmatch(r"score_r(\d+)", key)
        if match:
            found[int(match.group(1))] = float(value)
    return dict(sorted(found.items()))


def trials_frame(study: Any) -> pd.DataFrame:
    """One row per trial run: outcome, parsed hyperparameters, score, costs, gradient summary."""
    rows = []
    for trial in study.trials:
        metrics = trial.metrics
        repeats = _repeat_scores(metrics)
        declared = trial.params.get("repeats")
        row: dict[str, Any] = {
            "trial": trial.number,
            "run_id": trial.run_id,
            "status": trial.status,
            "outcome": _outcome(trial),
        }
        for name in CONFIG_KEYS:
            row[name] = _parse(name, trial.params.get(name))
        row["config"] = _config_key(trial.params, exclude=())
        row["score"] = metrics.get("score", math.nan) if row["outcome"] == "completed" else math.nan
        row["score_std"] = metrics.get("score_std", math.nan)
        row["repeats"] = int(declared) if declared and declared.isdigit() else max(1, len(repeats))
        for name in (*COST_METRICS, "epochs_run", "grad_norm_max", "grad_probe_seconds"):
            row[name] = metrics.get(name, math.nan)
        for name, value in metrics.items():
            if name.startswith("test_"):
                row[name] = value
        row["diverged_epoch"] = trial.tags.get("diverged_epoch")
        diverged_repeat = trial.tags.get("diverged_repeat")
        row["diverged_repeat"] = None if diverged_repeat in (None, "", "none") else diverged_repeat
        row["memory_measure"] = trial.tags.get("memory_measure")
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values("trial", kind="stable").reset_index(drop=True)


def repeats_frame(study: Any) -> pd.DataFrame:
    """One row per trial and repeat (``trials.csv``): params, repeat score, costs, status.

    A trial without per-repeat metrics is one row, repeat 0, with the trial's score.
    """
    trials = trials_frame(study)
    by_run = {t.run_id: t for t in study.trials}
    rows = []
    for row in trials.to_dict("records"):
        repeats = _repeat_scores(by_run[row["run_id"]].metrics)
        if not repeats:
            repeats = {0: row["score"]}
        for repeat, score in repeats.items():
            out = {k: v for k, v in row.items() if k not in ("score_std", "config")}
            out["repeat"] = repeat
            out["trial_score"] = row["score"]
            out["score"] = score if row["outcome"] == "completed" else math.nan
            rows.append(out)
    frame = pd.DataFrame(rows)
    first = ["trial", "repeat", "outcome", "status", *CONFIG_KEYS, "score", "trial_score"]
    return frame[first + [c for c in frame.columns if c not in first]]


def _config_key(params: Any, exclude: Sequence[str]) -> str:
    return "|".join(f"{k}={params.get(k, '')}" for k in CONFIG_KEYS if k not in exclude)


def _config_of(row: Any, exclude: Sequence[str]) -> str:
    return "|".join(f"{k}={_show(row[k])}" for k in CONFIG_KEYS if k not in exclude)


def _show(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


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


def _better(direction: str) -> Callable[[Sequence[float]], float]:
    return (
        (lambda v: float(np.nanmax(v))) if direction == "max" else (lambda v: float(np.nanmin(v)))
    )


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
        for interval in bins.cat.categories:
            low, high = interval.left, interval.right
            if name == "learning_rate":
                low, high = 10**low, 10**high
            labels[interval] = f"{low:.3g}-{high:.3g}"
        return bins.map(labels).astype(object)
    return values.map(lambda v: None if v is None or v != v else _show(v))


def _sort_key(label: Any) -> tuple[int, float, str]:
    text = str(label)
    try:
        return (0, float(text.split("-")[0]) if "-" in text[1:] else float(text), text)
    except ValueError:
        return (1, 0.0, text)


def per_parameter(scores: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Section 2: per parameter, value and cell: n, mean, std, 95% CI and best of the score.

    ``n`` counts every finished repeat. ``clip_threshold`` only counts clipped trials.
    """
    columns = ["parameter", "value", "cell", "n", "mean", "std", "ci_low", "ci_high", "best"]
    if scores.empty:
        return pd.DataFrame(columns=columns)
    best = _better(direction)
    rows = []
    for name in PARAMS:
        levels = _levels(scores, name)
        for value in sorted(levels.dropna().unique(), key=_sort_key):
            for cell in _cells(scores):
                chosen = scores[(levels == value) & (scores["cell"] == cell)]["score"]
                if chosen.empty:
                    continue
                mean, std, low, high = mean_ci(chosen.astype(float).tolist())
                rows.append([name, value, cell, len(chosen), mean, std, low, high, best(chosen)])
    return pd.DataFrame(rows, columns=columns)


def _config_means(trials: pd.DataFrame, exclude: Sequence[str]) -> pd.DataFrame:
    done = trials[(trials["outcome"] == "completed") & np.isfinite(trials["score"].astype(float))]
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
                if std > 0:
                    t, p = stats.ttest_rel(a[matched], b[matched])
                    effect = mean / std
                else:
                    t, p, effect = math.nan, math.nan, math.nan
                try:
                    wilcoxon_p = float(stats.wilcoxon(diffs).pvalue) if np.any(diffs) else 1.0
                except ValueError:
                    wilcoxon_p = math.nan
                note = f"{len(matched)} matched configurations"
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
    return pd.DataFrame(rows, columns=columns)


def _winner(diff: float, p: float, first: str, second: str, direction: str) -> str:
    if not np.isfinite(diff) or diff == 0:
        return "tie"
    ahead = first if (diff > 0) == (direction == "max") else second
    return ahead if np.isfinite(p) and p < 0.05 else f"{ahead} (not significant)"


def importance(trials: pd.DataFrame, repeats: pd.DataFrame | None = None) -> pd.DataFrame:
    """Section 4: the share of the score's variance each hyperparameter explains alone.

    Eta-squared of each main effect, SS_between / SS_total over the finished trials (repeats
    averaged): on a full grid this equals the functional-ANOVA main-effect share. The
    conditional ``clip_threshold`` is measured only among clipped trials. Unbalanced designs
    can make the shares sum above 1; interactions and noise are what is left below 1. With
    repeats, a last row gives the share of repeat-level variance that is seed noise.
    """
    columns = ["parameter", "levels", "n", "share", "note"]
    done = trials[(trials["outcome"] == "completed") & np.isfinite(trials["score"].astype(float))]
    rows = []
    if len(done) < 3:
        return pd.DataFrame(
            [["all", 0, len(done), math.nan, "fewer than 3 finished trials: cannot compute"]],
            columns=columns,
        )
    for name in ("cell", *PARAMS):
        subset = done
        note = ""
        if name == "clip_threshold":
            subset = done[done["clipping"] != "none"]
            note = f"among the {len(subset)} clipped trials only (conditional parameter)"
        levels = _levels(subset, name) if name != "cell" else subset["cell"]
        ok = levels.notna()
        scores = subset["score"].astype(float)[ok]
        groups = levels[ok]
        count = groups.nunique()
        if count < 2:
            rows.append([name, count, len(scores), math.nan, "fixed in this study"])
            continue
        total = float(((scores - scores.mean()) ** 2).sum())
        if total == 0:
            rows.append([name, count, len(scores), math.nan, "the score does not vary"])
            continue
        means = scores.groupby(groups).transform("mean")
        between = float(((means - scores.mean()) ** 2).sum())
        rows.append([name, count, len(scores), between / total, note])
    if repeats is not None:
        done_r = repeats[
            (repeats["outcome"] == "completed") & np.isfinite(repeats["score"].astype(float))
        ]
        if done_r.groupby("trial").size().max() > 1:
            scores = done_r["score"].astype(float)
            total = float(((scores - scores.mean()) ** 2).sum())
            within = float(
                ((scores - scores.groupby(done_r["trial"]).transform("mean")) ** 2).sum()
            )
            rows.append(
                [
                    "seed (repeats)",
                    int(done_r["repeat"].nunique()),
                    len(scores),
                    within / total if total > 0 else math.nan,
                    "variance between repeats of one configuration: noise no choice removes",
                ]
            )
        else:
            rows.append(
                [
                    "seed (repeats)",
                    1,
                    len(done_r),
                    math.nan,
                    "one repeat per configuration: seed noise not measured in this study",
                ]
            )
    frame = pd.DataFrame(rows, columns=columns)
    order = frame["share"].fillna(-1).sort_values(ascending=False, kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def cost_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Section 5: mean parameter count, seconds per epoch, peak memory and score per cell at
    equal hidden size (and depth and direction), over finished trials."""
    done = trials[trials["outcome"] == "completed"]
    keys = ["units", "depth", "bidirectional", "cell"]
    columns = [*keys, "n", *COST_METRICS, "score"]
    if done.empty:
        return pd.DataFrame(columns=columns)
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
    keys += sorted(k for k in trial.histories if re.fullmatch(re.escape(objective) + r"_r\d+", k))
    return keys


def learning_curves(study: Any, objective: str) -> pd.DataFrame:
    """Section 6: the validation objective per epoch, median and quartiles per cell type.

    Finished trials only; every repeat's curve counts (``<objective>_r<k>``).
    """
    rows = []
    for trial in study.trials:
        if _outcome(trial) != "completed":
            continue
        cell = trial.params.get("cell")
        for key in _curve_key(objective, trial):
            for step, value in trial.histories[key]:
                if np.isfinite(value):
                    rows.append((cell, step, value))
    columns = ["cell", "epoch", "n", "median", "q25", "q75"]
    if not rows:
        return pd.DataFrame(columns=columns)
    points = pd.DataFrame(rows, columns=["cell", "epoch", "value"])
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
    frame["_cell"] = frame["cell"].map(lambda c: CELL_ORDER.index(c) if c in CELL_ORDER else 9)
    return frame.sort_values(["_cell", "epoch"]).drop(columns="_cell").reset_index(drop=True)


def _series(trial: Any, name: str) -> list[float]:
    values = []
    for key in [name] + sorted(k for k in trial.histories if re.fullmatch(name + r"_r\d+", k)):
        values += [v for _, v in trial.histories.get(key, ())]
    return values


def gradient_health(study: Any) -> pd.DataFrame:
    """Section 7: per cell and clipping, the gradient norm before clipping per epoch.

    Columns: trials measured, median and max norm, the share of epochs above the clip
    threshold, the early/late input-gradient ratio (vanishing gradients: well below 1
    means the first steps barely reach the loss) and the probe's cost in % of training.
    Empty when the study did not log ``grad_norm``.
    """
    rows = []
    for trial in study.trials:
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
        rows.append(
            {
                "cell": trial.params.get("cell"),
                "clipping": clipping,
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
        frame.groupby(["cell", "clipping"])
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


# --- claims -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A popular claim, the range it states and how it is measured here."""

    key: str
    text: str
    low: float
    high: float
    source: str


CLAIMS = (
    Claim(
        "gru_quality",
        "GRU reaches 85-90% of LSTM's accuracy with 25% fewer computations",
        0.85,
        0.90,
        "popular claim; Chung et al. 2014 found GRU vs LSTM inconclusive at matched "
        "parameter counts; Keras 3 parameter counts: LSTM 4(u(u+i)+u), GRU 3(u(u+i)+2u)",
    ),
    Claim(
        "gru_memory",
        "GRU needs about 40% less memory in backpropagation",
        0.30,
        0.50,
        "popular claim; GRU keeps 3 gates' activations per step against LSTM's 4 plus a cell state",
    ),
    Claim(
        "bidirectional",
        "bidirectional layers improve accuracy by 18-22%",
        0.18,
        0.22,
        "popular claim; depends on whether the task needs future context",
    ),
)
#: The compute part of the first claim: "25% fewer computations", read as 20-30%.
COMPUTE_SAVING = (0.20, 0.30)


def _pairs(trials: pd.DataFrame, factor: str, a: Any, b: Any, column: str) -> pd.DataFrame:
    """Matched pairs on ``factor`` (a vs b), all other hyperparameters equal: means of column."""
    keyed = _config_means(trials, exclude=(factor,))
    if keyed.empty:
        return pd.DataFrame(columns=["a", "b"])
    values = keyed[np.isfinite(keyed[column].astype(float))]
    left = values[values[factor] == a].groupby("match")[column].mean()
    right = values[values[factor] == b].groupby("match")[column].mean()
    matched = left.index.intersection(right.index)
    return pd.DataFrame({"a": left[matched], "b": right[matched]})


def _group_means(trials: pd.DataFrame, factor: str, a: Any, b: Any, column: str) -> tuple:
    done = trials[(trials["outcome"] == "completed") & np.isfinite(trials[column].astype(float))]
    xa = done[done[factor] == a][column].astype(float)
    xb = done[done[factor] == b][column].astype(float)
    return xa, xb


def _measure(
    trials: pd.DataFrame,
    factor: str,
    a: Any,
    b: Any,
    column: str,
    figure: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> dict[str, Any]:
    """A claim's figure per matched pair (mean and CI), else from the group means."""
    pairs = _pairs(trials, factor, a, b, column)
    if len(pairs) >= 1:
        values = figure(pairs["a"].to_numpy(float), pairs["b"].to_numpy(float))
        values = values[np.isfinite(values)]
        mean, _, low, high = mean_ci(values.tolist())
        return {
            "estimate": mean,
            "ci_low": low,
            "ci_high": high,
            "n": len(values),
            "basis": f"{len(values)} matched configurations",
        }
    xa, xb = _group_means(trials, factor, a, b, column)
    if len(xa) < 2 or len(xb) < 2:
        return {
            "estimate": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "n": 0,
            "basis": f"needs finished trials with {factor}={_show(a)} and {_show(b)}",
        }
    value = figure(np.array([xa.mean()]), np.array([xb.mean()]))[0]
    return {
        "estimate": float(value),
        "ci_low": math.nan,
        "ci_high": math.nan,
        "n": len(xa) + len(xb),
        "basis": f"group means of {len(xa)} and {len(xb)} trials, unmatched (weaker)",
    }


def _verdict(measure: dict[str, Any], low: float, high: float) -> str:
    estimate, ci_low, ci_high = measure["estimate"], measure["ci_low"], measure["ci_high"]
    if not np.isfinite(estimate):
        return "not enough data"
    if low <= estimate <= high:
        return "holds"
    side = "above" if estimate > high else "below"
    if np.isfinite(ci_low) and (ci_high < low or ci_low > high):
        return f"does not hold ({side} the claimed range)"
    if np.isfinite(ci_low):
        return "not enough data"  # the interval reaches into the claimed range
    return f"does not hold ({side} the claimed range)"


def claims(trials: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Section 8: the three claims measured on this study, each with a verdict.

    Quality is the score ratio GRU / LSTM (for an error objective, LSTM's error / GRU's,
    so 0.9 means GRU reaches 90% of LSTM's quality); computations are parameter counts
    (each parameter is one multiply-add per step); memory is peak memory; the bidirectional
    gain is the relative score improvement over the matched unidirectional configuration.
    A verdict is "holds" when the estimate lies in the claimed range, "does not hold" when
    the 95% interval (or, without one, the estimate) lies outside it, else "not enough data".
    """
    maximise = direction == "max"

    def quality(lstm: np.ndarray, gru: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return gru / lstm if maximise else lstm / gru

    def saving(lstm: np.ndarray, gru: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1 - gru / lstm

    def gain(bi: np.ndarray, uni: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (bi - uni) / np.abs(uni) if maximise else (uni - bi) / np.abs(uni)

    rows = []
    first, memory_claim, bi_claim = CLAIMS
    q = _measure(trials, "cell", "lstm", "gru", "score", quality)
    c = _measure(trials, "cell", "lstm", "gru", "n_params", saving)
    s = _measure(trials, "cell", "lstm", "gru", "epoch_seconds", saving)
    verdicts = (_verdict(q, first.low, first.high), _verdict(c, *COMPUTE_SAVING))
    failing = [
        f"does not hold ({part}{v.removeprefix('does not hold (')}"
        for part, v in zip(("quality ", "computations "), verdicts, strict=True)
        if v.startswith("does not hold")
    ]
    if failing:
        verdict = failing[0]
    else:
        verdict = "holds" if verdicts == ("holds", "holds") else "not enough data"
    rows.append(
        [
            first.text,
            "GRU quality / LSTM",
            q["estimate"],
            q["ci_low"],
            q["ci_high"],
            q["basis"],
            verdict,
            f"computations (parameters) {_fewer(c['estimate'])} ({c['basis']}); "
            f"seconds per epoch {_fewer(s['estimate'])}",
            first.source,
        ]
    )
    m = _measure(trials, "cell", "lstm", "gru", "peak_memory_mb", saving)
    rows.append(
        [
            memory_claim.text,
            "GRU memory saving vs LSTM",
            m["estimate"],
            m["ci_low"],
            m["ci_high"],
            m["basis"],
            _verdict(m, memory_claim.low, memory_claim.high),
            "peak_memory_mb as logged by each trial (measured as: "
            + (", ".join(sorted(trials["memory_measure"].dropna().unique())) or "unknown")
            + ")",
            memory_claim.source,
        ]
    )
    g = _measure(trials, "bidirectional", True, False, "score", gain)
    rows.append(
        [
            bi_claim.text,
            "bidirectional gain",
            g["estimate"],
            g["ci_low"],
            g["ci_high"],
            g["basis"],
            _verdict(g, bi_claim.low, bi_claim.high),
            "",
            bi_claim.source,
        ]
    )
    return pd.DataFrame(
        rows,
        columns=[
            "claim",
            "measure",
            "estimate",
            "ci_low",
            "ci_high",
            "basis",
            "verdict",
            "detail",
            "source",
        ],
    )


def _pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.1f}%"


def _fewer(saving: float) -> str:
    """A relative saving in words: ``21.7% fewer``, or ``7.1% more`` when it is negative."""
    if not np.isfinite(saving):
        return "n/a"
    return f"{_pct(abs(saving))} {'fewer' if saving >= 0 else 'more'}"


# --- assembling and writing -------------------------------------------------------------------


@dataclass
class Section:
    """One report section: notes (lines of text), tables and figure file names."""

    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Every section's data, ready to draw; ``repeats`` is what ``trials.csv`` holds."""

    title: str
    experiment: str
    parent_run_id: str
    direction: str
    objective: str
    trials: pd.DataFrame
    repeats: pd.DataFrame
    frames: dict[str, pd.DataFrame]
    sections: list[Section]
    study: Any = None  # the records, for figures drawn from per-epoch histories


def overview(study: Any, trials: pd.DataFrame) -> dict[str, Any]:
    """Section 1 as a mapping: task, space, tuner, counts, best trial, compute time."""
    params, tags = study.parent_params, study.parent_tags
    direction = params.get("direction", "min")
    counts = trials["outcome"].value_counts().to_dict()
    done = trials[(trials["outcome"] == "completed") & np.isfinite(trials["score"].astype(float))]
    best = None
    if not done.empty:
        index = (
            done["score"].astype(float).idxmax()
            if direction == "max"
            else (done["score"].astype(float).idxmin())
        )
        best = done.loc[index]
    wall = (
        study.parent_end - study.parent_start
        if study.parent_end and study.parent_start
        else math.nan
    )
    return {
        "task": tags.get("task", params.get("task", "unknown")),
        "space": tags.get("space", params.get("space", "unknown")),
        "tuner": tags.get("tuner", params.get("tuner", "unknown")),
        "objective": params.get("objective", "score"),
        "direction": direction,
        "trials": len(trials),
        "completed": counts.get("completed", 0),
        "failed": sum(v for k, v in counts.items() if k not in ("completed", "interrupted")),
        "diverged": counts.get("diverged", 0),
        "interrupted": counts.get("interrupted", 0),
        "repeats": int(trials["repeats"].max()) if len(trials) else 0,
        "best_trial": None if best is None else int(best["trial"]),
        "best_score": math.nan if best is None else float(best["score"]),
        "best_config": None if best is None else _config_of(best, exclude=()).replace("|", " "),
        "compute_seconds": float(np.nansum(trials["fit_seconds"].astype(float))),
        "wall_seconds": wall,
        "baseline": tags.get("baseline"),
    }


def build_report(study: Any) -> Report:
    """All eight sections of a study's report, as data (nothing drawn or written yet)."""
    trials = trials_frame(study)
    repeats = repeats_frame(study)
    info = overview(study, trials)
    direction, objective = info["direction"], info["objective"]
    scores = repeats[
        (repeats["outcome"] == "completed") & np.isfinite(repeats["score"].astype(float))
    ]
    frames = {
        "per_parameter": per_parameter(scores, direction),
        "head_to_head": head_to_head(trials, direction),
        "importance": importance(trials, repeats),
        "cost": cost_table(trials),
        "pareto": pareto_front(trials, direction),
        "learning_curves": learning_curves(study, objective),
        "gradients": gradient_health(study),
        "divergence": divergence(trials),
        "claims": claims(trials, direction),
    }
    better = "higher" if direction == "max" else "lower"
    sections = []

    s = Section("1. Overview")
    s.notes += [
        f"Task **{info['task']}**, space **{info['space']}**, tuner **{info['tuner']}**; "
        f"objective {objective} ({better} is better).",
        f"Trials: {info['trials']} run, {info['completed']} finished, {info['failed']} failed "
        f"({info['diverged']} diverged), {info['interrupted']} interrupted; "
        f"up to {info['repeats']} repeat(s) per configuration.",
        (
            f"Best: trial {info['best_trial']}, score {info['best_score']:.5g} "
            f"({info['best_config']})."
            if info["best_trial"] is not None
            else "Best: none (no trial finished), so most sections below cannot be computed."
        ),
        f"Compute: {info['compute_seconds']:.1f} s of training in all trials"
        + (
            f"; search wall time {info['wall_seconds']:.1f} s."
            if np.isfinite(info["wall_seconds"])
            else "."
        ),
        f"Task baseline: {info['baseline'] or 'not recorded on this search run'}.",
    ]
    sections.append(s)

    s = Section("2. Score per parameter and cell type")
    s.notes.append(
        f"n counts every finished repeat; 95% CI from Student's t; best is the {better} score. "
        "clip_threshold counts clipped trials only; ranges with many values are quartile bins."
    )
    if frames["per_parameter"].empty:
        s.notes.append("No finished trial: cannot compute.")
    else:
        fixed = [
            p
            for p in PARAMS
            if frames["per_parameter"][frames["per_parameter"]["parameter"] == p]["value"].nunique()
            <= 1
        ]
        if fixed:
            s.notes.append(f"Fixed or not applicable in this study: {', '.join(fixed)}.")
        table = frames["per_parameter"]
        varied = table[~table["parameter"].isin(fixed)]
        # A fixed parameter's rows only repeat the per-cell totals: show them once at most.
        s.tables.append(("Score per parameter value and cell", varied if len(varied) else table))
        s.figures.append("per_parameter.png")
    sections.append(s)

    s = Section("3. Head-to-head")
    h2h = frames["head_to_head"]
    s.notes.append(
        "Difference = first cell minus second. Paired: configurations equal in every other "
        "hyperparameter (repeats averaged), paired t-test, Wilcoxon signed-rank and Cohen's "
        "d_z. Unpaired: Welch's t-test and Hedges' g, weaker since the other "
        "hyperparameters differ."
    )
    if h2h.empty:
        s.notes.append("Only one cell type finished: no comparison possible.")
    else:
        s.tables.append(("Cell against cell", h2h))
        s.figures.append("head_to_head.png")
    sections.append(s)

    s = Section("4. Importance")
    s.notes.append(
        "Share of the score's variance explained by each hyperparameter alone (eta-squared, "
        "the functional-ANOVA main effect on a full grid). Greff et al. 2017 (fANOVA on 5400 "
        "LSTM runs): learning rate explains the most, then hidden size; interactions small."
    )
    s.tables.append(("Variance explained", frames["importance"]))
    if frames["importance"]["share"].notna().any():
        s.figures.append("importance.png")
    sections.append(s)

    s = Section("5. Cost")
    if frames["cost"].empty:
        s.notes.append("No finished trial: cannot compute.")
    else:
        for name in COST_METRICS:
            if frames["cost"][name].isna().all():
                s.notes.append(f"{name}: {NOT_MEASURED}.")
        s.tables.append(("Cost per cell at equal size (means)", frames["cost"]))
        s.tables.append(
            ("Pareto front: not beaten on both score and training seconds", frames["pareto"])
        )
        s.figures.append("pareto.png")
    sections.append(s)

    s = Section("6. Learning curves")
    if frames["learning_curves"].empty:
        s.notes.append(f"No per-epoch {objective} of a finished trial: cannot draw.")
    else:
        s.notes.append(f"{objective} per epoch: median and interquartile range per cell type.")
        curves = frames["learning_curves"]
        last = curves.groupby("cell", sort=False).tail(1)
        s.tables.append(("Last epoch per cell", last))
        s.figures.append("learning_curves.png")
    sections.append(s)

    s = Section("7. Gradient health")
    if frames["gradients"].empty:
        s.notes.append(f"Gradient norms (grad_norm): {NOT_MEASURED}.")
    else:
        s.notes.append(
            "Global gradient norm before clipping on a fixed probe batch at each epoch end; "
            "clipped share = epochs above the clip threshold; early/late = gradient norm "
            "with respect to the first vs the last time steps' inputs (far below 1: "
            "vanishing). Pascanu et al. 2013: thresholds from half to ten times the average "
            "norm work."
        )
        gradients = frames["gradients"]
        if gradients["early_late_ratio"].isna().all():
            s.notes.append(f"Early/late input gradients: {NOT_MEASURED}.")
        s.tables.append(("Gradient norms per cell and clipping", gradients))
        s.figures.append("gradients.png")
    s.tables.append(("Diverged trials (NaN loss) per cell and clipping", frames["divergence"]))
    sections.append(s)

    s = Section("8. Claims check")
    s.notes.append(f"Task baseline: {info['baseline'] or 'not recorded on this search run'}.")
    s.notes.append(
        "Verdicts: holds (estimate in the claimed range), does not hold (the 95% interval, or "
        "without one the estimate, outside it), not enough data (missing cells, or an "
        "interval reaching into the range)."
    )
    s.tables.append(("Claims", frames["claims"]))
    sections.append(s)

    return Report(
        title=f"Report: {study.experiment}",
        experiment=study.experiment,
        parent_run_id=study.parent_run_id,
        direction=direction,
        objective=objective,
        trials=trials,
        repeats=repeats,
        frames=frames,
        sections=sections,
        study=study,
    )


# --- drawing ----------------------------------------------------------------------------------


def _color(cell: str) -> str:
    return CELL_COLORS.get(cell, "#2ca02c")


def _draw(report: Report, name: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    frames = report.frames
    if name == "per_parameter":
        table = frames["per_parameter"]
        varying = [p for p in PARAMS if table[table["parameter"] == p]["value"].nunique() > 1]
        shown = varying or [p for p in PARAMS if (table["parameter"] == p).any()][:1]
        cols = min(3, len(shown))
        rows = math.ceil(len(shown) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
        for ax, param in zip(axes.flat, shown, strict=False):
            part = table[table["parameter"] == param]
            values = sorted(part["value"].unique(), key=_sort_key)
            cells = [c for c in CELL_ORDER if c in set(part["cell"])]
            for k, cell in enumerate(cells):
                sub = part[part["cell"] == cell].set_index("value").reindex(values)
                x = np.arange(len(values)) + (k - (len(cells) - 1) / 2) * 0.12
                err = np.vstack([sub["mean"] - sub["ci_low"], sub["ci_high"] - sub["mean"]])
                ax.errorbar(
                    x,
                    sub["mean"],
                    yerr=np.nan_to_num(err),
                    fmt="o",
                    capsize=3,
                    color=_color(cell),
                    label=cell,
                )
            ax.set_xticks(range(len(values)), values, rotation=20, fontsize=8)
            ax.set_title(param, fontsize=10)
            ax.set_ylabel("score")
        for ax in list(axes.flat)[len(shown) :]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=8)
        fig.suptitle("Score: mean and 95% CI per value and cell")
    elif name == "head_to_head":
        table = frames["head_to_head"].dropna(subset=["mean_diff"])
        fig, ax = plt.subplots(figsize=(6, 0.6 + 0.6 * max(1, len(table))))
        labels = [
            f"{a} - {b} ({c})"
            for a, b, c in zip(table["cell_a"], table["cell_b"], table["comparison"], strict=True)
        ]
        y = np.arange(len(table))
        err = np.vstack(
            [table["mean_diff"] - table["ci_low"], table["ci_high"] - table["mean_diff"]]
        )
        ax.errorbar(table["mean_diff"], y, xerr=np.nan_to_num(err), fmt="o", capsize=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(y, labels)
        ax.set_xlabel("score difference (95% CI)")
    elif name == "importance":
        table = frames["importance"].dropna(subset=["share"])
        fig, ax = plt.subplots(figsize=(6, 0.6 + 0.4 * max(1, len(table))))
        ax.barh(table["parameter"][::-1], table["share"][::-1], color="#4c72b0")
        ax.set_xlabel("share of score variance")
    elif name == "pareto":
        done = report.trials[report.trials["outcome"] == "completed"]
        fig, ax = plt.subplots(figsize=(6, 4))
        for cell in _cells(done):
            sub = done[done["cell"] == cell]
            ax.scatter(
                sub["fit_seconds"], sub["score"], s=14, alpha=0.6, color=_color(cell), label=cell
            )
        front = frames["pareto"]
        ax.step(
            front["fit_seconds"],
            front["score"],
            where="post",
            color="k",
            lw=1,
            label="Pareto front",
        )
        ax.set_xlabel("training seconds")
        ax.set_ylabel("score")
        ax.legend(fontsize=8)
    elif name == "learning_curves":
        curves = frames["learning_curves"]
        fig, ax = plt.subplots(figsize=(6, 4))
        for cell in _cells(curves):
            sub = curves[curves["cell"] == cell]
            ax.plot(sub["epoch"], sub["median"], color=_color(cell), label=cell)
            ax.fill_between(sub["epoch"], sub["q25"], sub["q75"], color=_color(cell), alpha=0.2)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(report.objective)
        ax.legend(fontsize=8)
    elif name == "gradients":
        fig, ax = plt.subplots(figsize=(6, 4))
        points: dict[str, dict[int, list[float]]] = {}
        for trial in report.study.trials:
            for key in [k for k in trial.histories if re.fullmatch(r"grad_norm(_r\d+)?", k)]:
                for step, value in trial.histories[key]:
                    if np.isfinite(value) and value > 0:
                        cell = trial.params.get("cell", "?")
                        points.setdefault(cell, {}).setdefault(step, []).append(value)
        for cell, by_step in points.items():
            steps = sorted(by_step)
            ax.plot(steps, [np.median(by_step[s]) for s in steps], color=_color(cell), label=cell)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("gradient norm (median)")
        ax.legend(fontsize=8)
    else:
        raise ValueError(name)
    fig.tight_layout()
    return fig


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "-"
        return f"{value:.4g}"
    return str(value)


def _markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(no rows)_\n"
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = [
        "| " + " | ".join(_cell(v).replace("|", "/") for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([head, rule, *body]) + "\n"


def _html_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p><em>(no rows)</em></p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _inline(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:.6em 0 1.4em;font-size:13px}"
    "th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}"
    "th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}"
    "img{max-width:100%}caption{font-weight:600;text-align:left;padding:4px 0}"
)


def write_report(report: Report, out: Path) -> list[Path]:
    """Draw the report into ``out``: report.html, report.md, trials.csv and the PNG figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    images: dict[str, str] = {}
    for section in report.sections:
        for figure in section.figures:
            fig = _draw(report, figure.removesuffix(".png"))
            path = out / figure
            fig.savefig(path, dpi=90)
            plt.close(fig)
            images[figure] = base64.b64encode(path.read_bytes()).decode("ascii")
            written.append(path)
    csv = out / "trials.csv"
    report.repeats.to_csv(csv, index=False)
    written.append(csv)

    md = [f"# {report.title}", ""]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
    ]
    for section in report.sections:
        md += [f"## {section.title}", ""]
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for note in section.notes:
            md += [note, ""]
            parts.append(f"<p>{_inline(note)}</p>")
        for caption, frame in section.tables:
            md += [f"**{caption}**", "", _markdown_table(frame)]
            parts.append(f"<h3>{html.escape(caption)}</h3>{_html_table(frame)}")
        for figure in section.figures:
            md += [f"![{figure}]({figure})", ""]
            parts.append(
                f"<figure><img alt='{figure}' src='data:image/png;base64,{images[figure]}'>"
                "</figure>"
            )
    md += ["Files: trials.csv (one row per trial and repeat), the PNG figures.", ""]
    parts.append("</body></html>")
    (out / "report.md").write_text("\n".join(md))
    (out / "report.html").write_text("\n".join(parts))
    written += [out / "report.md", out / "report.html"]
    return written


# --- the command's library function -------------------------------------------------------------


@dataclass(frozen=True)
class ReportResult:
    """What ``workbench report`` wrote and where it logged it."""

    out: Path
    files: tuple[Path, ...]
    parent_run_id: str
    seconds: float
    verdicts: tuple[tuple[str, str], ...]
    trials: int

    def lines(self) -> list[str]:
        """The lines the command prints."""
        figures = sum(1 for f in self.files if f.suffix == ".png")
        logged = (
            f"; logged under report/ on the search run {self.parent_run_id}"
            if self.parent_run_id
            else ""
        )
        out = [
            f"Report on {self.trials} trials written to {self.out} in {self.seconds:.1f} s: "
            f"report.html, report.md, trials.csv, {figures} figures{logged}",
        ]
        out += [f"  {claim}: {verdict}" for claim, verdict in self.verdicts]
        return out


def _check_out(out: Path) -> None:
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and (not probe.is_dir() or not os.access(probe, os.W_OK)):
        raise WorkbenchError(
            f"Cannot write the report folder {out}: {probe} is "
            + ("not a folder" if not probe.is_dir() else "not writable")
        )


def make_report(
    experiment: str, out: str | Path, tracking_uri: str | None = None, log: bool = True
) -> ReportResult:
    """Read a study back from MLflow, write its report into ``out`` and log it on the search run.

    Raises:
        WorkbenchError: an unwritable ``out``, an unknown experiment, no trial runs.
    """
    from workbench.tracking import load_study, log_report_artifacts, resolve_tracking_uri

    start = time.perf_counter()
    out = Path(out)
    _check_out(out)
    uri = resolve_tracking_uri(tracking_uri)
    study = load_study(uri, experiment)
    report = build_report(study)
    try:
        files = write_report(report, out)
    except OSError as exc:
        raise WorkbenchError(f"Cannot write the report folder {out}: {exc.strerror}") from None
    if log and study.parent_run_id:
        log_report_artifacts(uri, study.parent_run_id, files)
    verdicts = tuple(
        (row["claim"], row["verdict"]) for row in report.frames["claims"].to_dict("records")
    )
    return ReportResult(
        out=out,
        files=tuple(files),
        parent_run_id=study.parent_run_id if log else "",
        seconds=time.perf_counter() - start,
        verdicts=verdicts,
        trials=len(report.trials),
    )
