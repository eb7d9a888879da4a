"""The report as data: every section's notes and tables, put together (no drawing)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.report.answer import answer, test_metric
from workbench.report.claims import claims
from workbench.report.diagnostics import (
    cost_table,
    divergence,
    gradient_health,
    learning_curves,
    pareto_front,
)
from workbench.report.frames import (
    CELL_ORDER,
    COST_METRICS,
    NOT_MEASURED,
    PARAMS,
    _config_of,
    finished,
    full_budget,
    on_test,
    repeats_frame,
    superseded,
    trials_frame,
)
from workbench.report.importance import BOOTSTRAPS, MAX_FIT, importance, seed_variance
from workbench.report.statistics import expected_best, head_to_head, per_parameter

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
    #: The runs the comparisons use (with Hyperband, not its early rounds): what the
    #: figures drawn from histories draw, as the tables beside them.
    compared_runs: frozenset[str] = frozenset()


def task_overrides(tags: dict[str, str]) -> dict[str, Any]:
    """The loader options the search ran with that its task file does not set so: what a
    command naming the task again needs as ``--task-option`` (every option when the task
    file cannot be read any more)."""
    import json

    try:
        options = dict(json.loads(tags.get("task_options", "{}")))
    except (ValueError, TypeError):
        return {}
    try:
        from workbench.tasks import load_task

        own = dict(load_task(tags.get("workbench.task_ref") or tags.get("task", "")).options)
    except Exception:  # noqa: BLE001 - a moved or changed task file: name every option
        own = {}
    return {key: value for key, value in options.items() if own.get(key, object()) != value}


def overview(study: Any, trials: pd.DataFrame) -> dict[str, Any]:
    """Section 1 as a mapping: task, space, tuner, counts, best trial, compute time."""
    params, tags = study.parent_params, study.parent_tags
    direction = params.get("direction", "min")
    counts = trials["outcome"].value_counts().to_dict()
    # The best trial among those trained to the full budget: with Hyperband a trial its
    # early rounds stopped is not comparable (the answer picks from the same trials).
    tuner = tags.get("tuner", params.get("tuner", ""))
    done = finished(full_budget(trials, tuner, _number(params.get("max_epochs"))))
    best = None
    if not done.empty:
        index = (
            done["score"].astype(float).idxmax()
            if direction == "max"
            else (done["score"].astype(float).idxmin())
        )
        best = done.loc[index]
    # The search's own time (a resumed search's sessions added up, its pauses not); its
    # run's start to end for a search recorded before it was logged.
    wall = study.parent_metrics.get("search_seconds") or (
        study.parent_end - study.parent_start
        if study.parent_end and study.parent_start
        else math.nan
    )
    return {
        "experiment": study.experiment,
        "task": tags.get("task", params.get("task", "unknown")),
        "space": tags.get("space", params.get("space", "unknown")),
        # How a command names them again (a path for the user's own files); None before
        # the search logged it.
        "task_ref": tags.get("workbench.task_ref"),
        "task_overrides": task_overrides(tags),
        "space_ref": tags.get("workbench.space_ref"),
        "space_continuous": tags.get("workbench.space_continuous"),
        "tuner": tags.get("tuner", params.get("tuner", "unknown")),
        "objective": params.get("objective", "score"),
        "direction": direction,
        "trials": len(trials),
        "completed": counts.get("completed", 0),
        "failed": sum(
            v for k, v in counts.items() if k not in ("completed", "interrupted", "running")
        ),
        "diverged": counts.get("diverged", 0),
        "interrupted": counts.get("interrupted", 0),
        # Still training, or left RUNNING by a search killed hard (kill -9, a lost host).
        "running": counts.get("running", 0),
        # Interrupted attempts of trials a resume ran again: left out of every count.
        "rerun": len(superseded(study)),
        "repeats": int(trials["repeats"].max()) if len(trials) else 0,
        "best_trial": None if best is None else int(best["trial"]),
        "best_score": math.nan if best is None else float(best["score"]),
        "best_config": None if best is None else _config_of(best, exclude=()).replace("|", " "),
        # With what the interrupted attempts of trials run again trained before they stopped.
        "compute_seconds": float(np.nansum(trials["round_fit_seconds"].astype(float)))
        + _superseded_seconds(study),
        "wall_seconds": wall,
        "baseline": tags.get("baseline"),
        "baseline_value": _number(tags.get("baseline_value")),
        "val_samples": _number(params.get("val_samples")),
        "folds": int(_number(params.get("folds")) if params.get("folds") else 1),
        "fold_scheme": params.get("fold_scheme", "shuffled"),
        # The space's largest epoch budget (Hyperband's full budget); nan before it was logged.
        "max_epochs": _number(params.get("max_epochs")),
        # Per cell over every trial (Hyperband's early rounds too): trials, diverged, failed
        # otherwise; the comparisons use finished trials only.
        "lost": _lost_by_cell(trials),
    }


def _superseded_seconds(study: Any) -> float:
    again = superseded(study)
    seconds = [t.metrics.get("fit_seconds", math.nan) for t in study.trials if t.run_id in again]
    return float(np.nansum(seconds)) if seconds else 0.0


def _lost_by_cell(trials: pd.DataFrame) -> dict[str, tuple[int, int, int]]:
    if trials.empty or "cell" not in trials:
        return {}
    lost = {}
    for cell, rows in trials.groupby("cell"):
        outcome = rows["outcome"]
        diverged = int((outcome == "diverged").sum())
        failed = int((~outcome.isin(("completed", "interrupted", "diverged", "running"))).sum())
        lost[str(cell)] = (len(rows), diverged, failed)
    return lost


def budget_note(trials: pd.DataFrame, compared: pd.DataFrame, info: dict[str, Any]) -> list[str]:
    """With Hyperband: which trials the scores compare, and whether the search stopped
    before any trial reached the space's full budget."""
    if info["tuner"] != "hyperband" or compared.empty or "epochs" not in compared:
        return []
    top = float(compared["epochs"].astype(float).max())
    if not math.isfinite(top):
        return []
    reached, full = int(top), info["max_epochs"]
    counts = trials.groupby("cell").size()
    # A cell Hyperband dropped in its earlier rounds is in no comparison: named, not lost.
    dropped = [
        f"{cell} ({counts[cell]} trial{'s' if counts[cell] > 1 else ''})"
        for cell in [*CELL_ORDER, *sorted(set(counts.index) - set(CELL_ORDER))]
        if cell in counts.index and cell not in set(compared["cell"])
    ]
    left_out = (
        f" Not compared at all: {', '.join(dropped)}, every trial stopped in an earlier round "
        "(scored worse there at fewer epochs)."
        if dropped
        else ""
    )
    if math.isfinite(full) and reached < full:
        return [
            f"Hyperband stopped before any trial reached the full budget of {int(full)} "
            f"epochs: scores, costs and seed noise compare the {len(compared)} trials "
            f"trained longest ({reached} epochs), not the answer a finished search would "
            f"give. Run the same command again to finish it.{left_out}"
        ]
    if len(compared) < len(trials):
        return [
            f"Hyperband: scores, costs and seed noise compare the {len(compared)} trials "
            f"trained to the full budget of {reached} epochs; its earlier rounds stopped "
            f"the other {len(trials) - len(compared)} early.{left_out}"
        ]
    return []


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def build_report(study: Any) -> Report:
    """All nine sections of a study's report, as data (nothing drawn or written yet)."""
    trials = trials_frame(study)
    repeats = repeats_frame(study)
    info = overview(study, trials)
    direction, objective = info["direction"], info["objective"]
    compared = full_budget(trials, info["tuner"], info["max_epochs"])
    scores = finished(compared)
    frames = {
        "per_parameter": per_parameter(scores, direction),
        "head_to_head": head_to_head(compared, direction),
        "head_to_head_test": (
            head_to_head(on_test(compared, test_metric(direction)), direction)
            if test_metric(direction) in compared.columns
            else pd.DataFrame()
        ),
        "expected_best": expected_best(compared, direction),
        "importance": importance(compared),
        "seed_variance": seed_variance(
            repeats[repeats["trial"].isin(compared["trial"])] if len(repeats) else repeats
        ),
        "cost": cost_table(compared),
        "cost_runs": compared[["run_id"]],  # the trials compared, for the Pareto figure
        "pareto": pareto_front(compared, direction),
        "learning_curves": learning_curves(study, objective, set(compared["run_id"])),
        "gradients": gradient_health(study, set(compared["run_id"])),
        "divergence": divergence(trials),
        "claims": claims(compared, direction, objective, info["baseline_value"]),
    }
    better = "higher" if direction == "max" else "lower"
    sections = []

    s = Section("1. Answer")
    s.notes += answer(compared, info, frames["head_to_head"])
    s.notes += budget_note(trials, compared, info)
    sections.append(s)

    s = Section("2. Overview")
    s.notes += [
        f"Task **{info['task']}**, space **{info['space']}**, tuner **{info['tuner']}**; "
        f"objective {objective} ({better} is better).",
        f"Trials: {info['trials']} run, {info['completed']} finished, {info['failed']} failed "
        f"({info['diverged']} diverged), {info['interrupted']} interrupted"
        + (
            f", {info['running']} running (still training, or left so by a search killed "
            "hard: the same command ends and reruns it)"
            if info["running"]
            else ""
        )
        + f"; up to {info['repeats']} repeat(s) per configuration."
        + (
            f" {info['rerun']} interrupted attempt(s) of trials run again on resume are left "
            "out (each trial counts once)."
            if info["rerun"]
            else ""
        ),
        (
            f"Best: trial {info['best_trial']}, score {info['best_score']:.5g} "
            f"({info['best_config']})."
            if info["best_trial"] is not None
            else "Best: none (no trial finished), so most sections below cannot be computed."
        ),
        f"Compute: {info['compute_seconds']:.1f} s of training in all trials"
        + (" (their interrupted attempts included)" if info["rerun"] else "")
        + (
            f"; search wall time {info['wall_seconds']:.1f} s."
            if np.isfinite(info["wall_seconds"])
            else "."
        ),
        f"Task baseline: {info['baseline'] or 'not recorded on this search run'}.",
    ]
    sections.append(s)

    s = Section("3. Score per parameter and cell type")
    s.notes.append(
        f"n counts configurations (repeats averaged first: seeds are not extra samples); "
        f"95% CI from Student's t; best is the {better} score. "
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

    s = Section("4. Head-to-head")
    h2h = frames["head_to_head"]
    s.notes.append(
        "Difference = first cell minus second. Paired: configurations equal in every other "
        "hyperparameter (repeats averaged), paired t-test, Wilcoxon signed-rank and Cohen's "
        "d_z. Unpaired: Welch's t-test and Hedges' g, weaker since the other "
        "hyperparameters differ. The 95% CI and p_value are each pair's own; the verdict "
        "(better) reads p_holm, Holm's correction over the pairs tested."
    )
    if h2h.empty:
        cells = scores["cell"].nunique() if len(scores) else 0
        s.notes.append(
            "Only one cell type finished: no comparison possible."
            if cells == 1
            else "No cell type finished a trial: no comparison possible."
        )
    else:
        s.notes.append(
            "Validation scores are each trial's best epoch (optimistic: the epoch was chosen "
            "on them)"
            + (
                f"; {test_metric(direction)} is each trial's model on the held-out test "
                "part, which nothing was chosen on (with repeats or folds, the mean of its "
                "models, as on validation)."
                if not frames["head_to_head_test"].empty
                else "."
            )
        )
        best_fit = int(compared.get("test_of_best_fit", pd.Series(dtype=bool)).sum())
        if best_fit and not frames["head_to_head_test"].empty:
            s.notes.append(
                f"{best_fit} trial(s) logged before 2026-12-07 with repeats or folds have the "
                "test figures of their best fit alone (the best of several, which favours the "
                "cell whose seeds vary most): left out of the comparison on test."
            )
        s.tables.append(("Cell against cell, validation score", h2h))
        if not frames["head_to_head_test"].empty:
            s.tables.append(
                (f"Cell against cell, {test_metric(direction)}", frames["head_to_head_test"])
            )
        if h2h["mean_diff"].notna().any():  # else nothing to draw (one trial per cell)
            s.figures.append("head_to_head.png")
    if not frames["expected_best"].empty:
        s.notes.append(
            "Expected best validation score after n trials per cell (Dodge et al. 2019, "
            "'Show Your Work'): cells that got unequal numbers of trials compare at equal n."
        )
        curves = frames["expected_best"]
        common = int(curves.groupby("cell")["trials"].max().min())
        at_common = curves[curves["trials"] == common].set_index("cell")["expected_best"]
        last = curves.groupby("cell").tail(1).set_index("cell")
        table = pd.DataFrame(
            {
                f"expected best at n = {common} (equal)": at_common,
                "trials": last["trials"],
                "expected best at its own trials": last["expected_best"],
            }
        ).reset_index()
        s.tables.append((f"Expected best: at equal n = {common}, and at each cell's own", table))
        s.figures.append("expected_best.png")
    sections.append(s)

    s = Section("5. Importance")
    s.notes.append(
        "Share of the score's variance each hyperparameter's main effect explains, from "
        "Optuna's fANOVA evaluator on the finished configurations (repeats averaged); the "
        "shares add up to at most 1, the rest is interactions. Range: lowest to highest over "
        f"{BOOTSTRAPS} refits on resampled configurations (a rough spread, not a 95% "
        "interval). Below the noise floor: no larger than a random dummy parameter's share "
        "(the 95th percentile of its refits, near their highest). Greff et al. 2017 "
        "(fANOVA on 5400 LSTM runs): learning rate explains the most, then hidden size."
    )
    if len(scores) > MAX_FIT:
        s.notes.append(
            f"Each fit used a seeded sample of {MAX_FIT} of {len(scores)} configurations."
        )
    s.tables.append(("Variance explained", frames["importance"]))
    if frames["importance"]["share"].notna().any():
        s.figures.append("importance.png")
    seeds = frames["seed_variance"]
    if not seeds.empty:
        s.notes.append(
            "Seed noise as its own variance component (one-way random effects over "
            "configurations with 2+ repeats): seed_share = seed variance / (seed + "
            "configuration variance)."
        )
        s.tables.append(("Seed noise (variance components)", seeds))
    sections.append(s)

    s = Section("6. Cost")
    if frames["cost"].empty:
        s.notes.append("No finished trial: cannot compute.")
    else:
        measures = set(compared.get("memory_measure", pd.Series(dtype=object)).dropna())
        for name in COST_METRICS:
            if name == "peak_memory_mb" and measures - {"gpu_peak", "n/a"}:
                s.notes.append(
                    "peak_memory_mb: left out where it is no GPU allocator's peak (here "
                    f"{', '.join(sorted(measures))}): a CPU process's memory growth during a "
                    "trial holds TensorFlow's start-up in whichever trial ran first, so it "
                    "does not compare cells; trials.csv keeps each trial's figure."
                )
            elif frames["cost"][name].isna().all():
                s.notes.append(f"{name}: {NOT_MEASURED}.")
        if info["tuner"] == "hyperband":
            s.notes.append(
                "Hyperband: a trial's fit_seconds include the earlier rounds its weights "
                "trained in."
            )
        s.tables.append(("Cost per cell at equal size (means)", frames["cost"]))
        s.tables.append(
            ("Pareto front: not beaten on both score and training seconds", frames["pareto"])
        )
        s.figures.append("pareto.png")
    sections.append(s)

    s = Section("7. Learning curves")
    if frames["learning_curves"].empty:
        s.notes.append(f"No per-epoch {objective} of a finished trial: cannot draw.")
    else:
        s.notes.append(
            f"{objective} per epoch: median and interquartile range per cell type over its "
            "trials (repeats and folds averaged first); a curve ends where fewer than half "
            "the cell's trials still trained (early stopping). Epochs count from 0, as "
            "MLflow's steps do (epoch 0 is the first; `best_epoch` counts epochs trained)."
        )
        curves = frames["learning_curves"]
        last = curves.groupby("cell", sort=False).tail(1)
        s.tables.append(("Last epoch per cell", last))
        s.figures.append("learning_curves.png")
    sections.append(s)

    s = Section("8. Gradient health")
    if study.parent_params.get("gradient_probe") == "False":
        s.notes.append("Gradient norms: not measured, the search ran with --no-gradient-probe.")
    elif frames["gradients"].empty:
        s.notes.append(f"Gradient norms (grad_norm): {NOT_MEASURED}.")
    else:
        s.notes.append(
            "Global gradient norm before clipping on a fixed probe batch (the first 32 "
            "training samples, not each training step's batch) at each epoch end; clipped "
            "share = with norm clipping, the share of epochs whose probe-batch norm was above "
            "the threshold; with value clipping, the share of gradient elements beyond it "
            "(mean over epochs); early/late = gradient norm with respect to the first vs the "
            "last quarter of the time steps' inputs (far below 1: vanishing, for one-way "
            "layers read out at the last step; a bidirectional layer's backward pass, a mean "
            "or max readout and an output at every step reach the first steps directly, so "
            "there it stays near 1 whatever the recurrence does: those rows are apart). "
            "Pascanu et al. 2013: thresholds from half to ten times the average norm work."
        )
        gradients = frames["gradients"]
        if gradients["early_late_ratio"].isna().all():
            s.notes.append(f"Early/late input gradients: {NOT_MEASURED}.")
        s.tables.append(("Gradient norms per cell, clipping, direction and readout", gradients))
        s.figures.append("gradients.png")
    s.tables.append(("Diverged trials (NaN loss) per cell and clipping", frames["divergence"]))
    sections.append(s)

    s = Section("9. Claims check")
    s.notes.append(f"Task baseline: {info['baseline'] or 'not recorded on this search run'}.")
    s.notes.append(
        "Verdicts: holds only when the whole 95% interval lies in the claimed range; does not "
        "hold only when it lies wholly outside; otherwise not enough data, with why (how many "
        "matched configurations, what interval). Computations are recurrent multiply-adds per "
        "time step; memory counts only a GPU allocator's peak; on a regression task accuracy "
        "is read as skill over the task's baseline."
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
        compared_runs=frozenset(compared["run_id"]) if not compared.empty else frozenset(),
    )
