"""Reading a study into data frames: one row per trial (repeats averaged) or per repeat."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.search.config import PARAM_NAMES
from workbench.tracking.store import TRIAL_ID

#: Hyperparameters analysed per value (``epochs`` is fixed per study and only used to match).
PARAMS = tuple(name for name in PARAM_NAMES if name not in ("cell", "epochs"))
CONFIG_KEYS = ("cell", *PARAMS, "epochs")
CELL_ORDER = ("simple_rnn", "lstm", "gru")
#: The suffix of another training's per-epoch metric: repeat r, fold f, or both (repeat 0's
#: first fold keeps the plain name).
RUNS = r"(_r\d+(_f\d+)?|_f\d+)"
COST_METRICS = ("n_params", "recurrent_macs", "epoch_seconds", "fit_seconds", "peak_memory_mb")
#: A trial's test scores minus the trivial baseline's, sample by sample: mean and 95% CI
#: (logged since 2026-12-07; an earlier trial has none).
BASELINE_DIFF = ("baseline_diff", "baseline_diff_ci_low", "baseline_diff_ci_high", "baseline_p")
NOT_MEASURED = "not measured in this study"
#: More distinct values than this and a numeric parameter is shown in quantile bins.
MAX_LEVELS = 6
_INT_PARAMS = ("depth", "units", "batch_size", "epochs", "patience")
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
        # A worker lost or gone mid-trial: the chief recorded the trial failed.
        failure = trial.tags.get("failure", "")
        return failure if failure.startswith("worker_") else "interrupted"
    return trial.status.lower()


def superseded(study: Any) -> set[str]:
    """Run ids of interrupted attempts whose trial was run again (a resumed search trains
    an interrupted trial anew, a stopped worker's trial goes to the next): one trial, not
    two, in every count. A trial interrupted each time keeps its latest attempt."""
    by_trial: dict[str, list[Any]] = {}
    for trial in study.trials:
        trial_id = trial.tags.get(TRIAL_ID)
        if trial_id is not None:
            by_trial.setdefault(trial_id, []).append(trial)
    again = set()
    for runs in by_trial.values():
        stopped = [run for run in runs if _outcome(run) == "interrupted"]
        if len(stopped) == len(runs):  # never got further: all but the latest attempt
            stopped.remove(max(stopped, key=lambda run: run.start_time or 0.0))
        again |= {run.run_id for run in stopped}
    return again


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
    again = superseded(study)
    for trial in study.trials:
        if trial.run_id in again:
            continue
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
        measures = (
            "epochs_run",
            "optimizer_steps",
            "batch_size_used",
            "grad_norm_max",
            "grad_probe_seconds",
        )
        for name in (*COST_METRICS, *measures):
            row[name] = metrics.get(name, math.nan)
        for name, value in metrics.items():
            if name.startswith("test_"):
                row[name] = value
        for name in BASELINE_DIFF:  # the test part against the baseline, sample by sample
            row[name] = metrics.get(name, math.nan)
        fits = _whole(declared) * _whole(trial.params.get("folds"))
        # Logged before 2026-12-07 with repeats or folds: the best fit's test figures alone
        # (since, test_models says how many models each figure is the mean of).
        row["test_of_best_fit"] = fits > 1 and "test_models" not in metrics
        row["diverged_epoch"] = trial.tags.get("diverged_epoch")
        diverged_repeat = trial.tags.get("diverged_repeat")
        row["diverged_repeat"] = None if diverged_repeat in (None, "", "none") else diverged_repeat
        row["memory_measure"] = trial.tags.get("memory_measure")
        row["trial_id"] = trial.tags.get(TRIAL_ID)
        row["resumed_from"] = trial.params.get("tuner/trial_id")  # Hyperband's earlier round
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = _with_earlier_rounds(frame)
    return frame.sort_values("trial", kind="stable").reset_index(drop=True)


def _with_earlier_rounds(frame: pd.DataFrame) -> pd.DataFrame:
    """A Hyperband trial of a later round trains on from its earlier round's weights: its
    ``fit_seconds`` and ``optimizer_steps`` are what its weights cost in all, its own
    round's and every earlier round's (NaN where an earlier round's run is missing).
    ``round_fit_seconds`` keeps the trial's own round, which is what sums to the study's
    compute."""
    frame["round_fit_seconds"] = frame["fit_seconds"]
    if frame["resumed_from"].isna().all():
        return frame
    done = frame[frame["outcome"] == "completed"]
    own = {
        tid: (row["fit_seconds"], row["optimizer_steps"], row["resumed_from"])
        for tid, row in zip(done["trial_id"], done.to_dict("records"), strict=True)
    }

    def total(trial_id: Any, seen: frozenset[Any] = frozenset()) -> tuple[float, float]:
        if trial_id is None or (isinstance(trial_id, float) and math.isnan(trial_id)):
            return 0.0, 0.0
        if trial_id not in own or trial_id in seen:
            return math.nan, math.nan
        seconds, steps, earlier = own[trial_id]
        before = total(earlier, seen | {trial_id})
        return float(seconds) + before[0], float(steps) + before[1]

    earlier = [total(parent) for parent in frame["resumed_from"]]
    frame["fit_seconds"] = frame["fit_seconds"].astype(float) + [e[0] for e in earlier]
    frame["optimizer_steps"] = frame["optimizer_steps"].astype(float) + [e[1] for e in earlier]
    return frame


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


def full_budget(trials: pd.DataFrame, tuner: str, max_epochs: float = math.nan) -> pd.DataFrame:
    """The trials to compare scores on: with Hyperband, only those trained to the full
    budget, the space's ``max_epochs`` (its earlier rounds stop trials early, so their
    scores are not comparable). A search stopped before any trial reached it (or one
    recorded without it) compares those trained longest."""
    if tuner != "hyperband" or trials.empty or trials["epochs"].isna().all():
        return trials
    epochs = trials["epochs"].astype(float)
    budget = max_epochs if (epochs == max_epochs).any() else epochs.max()
    return trials[epochs == budget].reset_index(drop=True)


def _whole(raw: str | None) -> int:
    try:
        return max(1, int(float(raw or 1)))
    except ValueError:
        return 1


def on_test(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``trials`` scored by their test ``metric``, to compare cells on test: a trial whose
    test figures are its best fit's alone (logged before 2026-12-07 with repeats or folds:
    the best of several, which favours the cell whose seeds vary most) has none."""
    score = trials[metric].astype(float)
    if "test_of_best_fit" in trials:
        score = score.where(~trials["test_of_best_fit"].astype(bool))
    return trials.assign(score=score)


def finished(trials: pd.DataFrame, column: str = "score") -> pd.DataFrame:
    """The completed trials whose ``column`` is a finite number."""
    if trials.empty:
        return trials
    ok = (trials["outcome"] == "completed") & np.isfinite(trials[column].astype(float))
    return trials[ok]
