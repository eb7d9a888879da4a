"""Popular claims about the cells, measured on the study, each with a verdict."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.report.frames import _show, finished
from workbench.report.statistics import _config_means, mean_ci

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
        "parameter counts; recurrent multiply-adds per step: LSTM 4u(i+u), GRU 3u(i+u)",
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
    done = finished(trials, column)
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


def _verdict(measure: dict[str, Any], low: float, high: float) -> tuple[str, str]:
    """``(verdict, why)``: holds only when the whole 95% interval lies in ``[low, high]``,
    does not hold only when it lies wholly outside, else not enough data."""
    estimate, ci_low, ci_high = measure["estimate"], measure["ci_low"], measure["ci_high"]
    if not np.isfinite(estimate):
        return "not enough data", measure["basis"]
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return "not enough data", f"{measure['basis']}: no 95% interval"
    interval = f"{measure['basis']}, 95% interval [{ci_low:.3g}, {ci_high:.3g}]"
    if low <= ci_low and ci_high <= high:
        return "holds", interval
    if ci_high < low or ci_low > high:
        side = "above" if ci_low > high else "below"
        return f"does not hold ({side} the claimed range)", interval
    return "not enough data", f"{interval} reaches across the range [{low:g}, {high:g}]"


def _without_skill(
    frame: pd.DataFrame,
    measure: dict[str, Any],
    factor: str = "cell",
    levels: tuple[Any, Any] = ("lstm", "gru"),
    named: str = "LSTM or GRU",
) -> dict[str, Any]:
    """No ratio of skills where a side is not better than the baseline (skill <= 0): there
    a ratio means nothing (two negative skills give a ratio below 1 for the better side)."""
    pairs = _pairs(frame, factor, *levels, "score")
    if len(pairs):
        worse, n = int(((pairs["a"] <= 0) | (pairs["b"] <= 0)).sum()), len(pairs)
        where = f"{worse} of {n} matched configurations"
    else:
        xa, xb = _group_means(frame, factor, *levels, "score")
        if not len(xa) or not len(xb):  # a side never ran: the measure's own reason stands
            return measure
        worse = int(any(x.mean() <= 0 for x in (xa, xb)))
        where = "the group means"
    if not worse:
        return measure
    return {
        "estimate": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "n": 0,
        "basis": f"in {where} {named} is not better than the task's baseline "
        "(skill <= 0), where a ratio of skills means nothing",
    }


def claims(
    trials: pd.DataFrame,
    direction: str,
    objective: str = "score",
    baseline: float | None = None,
) -> pd.DataFrame:
    """Section 8: the three claims measured on this study, each with a verdict and why.

    Quality: on a classification study the accuracy ratio GRU / LSTM; on a regression
    study "accuracy" is restated as skill over the task's baseline (``1 - MSE / baseline
    MSE``) and the ratio is of skills, labelled so. Computations: recurrent multiply-adds
    per time step (``recurrent_macs``), not parameter counts. Memory: only a real peak (a
    GPU allocator's), else "not measured on CPU". The bidirectional gain is the relative
    improvement over the matched unidirectional configuration. A verdict holds only when
    the whole 95% interval lies in the claimed range, does not hold only when it lies
    wholly outside, and is "not enough data" otherwise (the ``why`` column says why).
    """
    # A score to maximise is an accuracy (classification); one to minimise is an error.
    classification = direction == "max"
    skill_baseline = (
        float(baseline)
        if not classification and baseline is not None and np.isfinite(baseline) and baseline > 0
        else None
    )
    frame = trials
    # The baseline is measured on the test part where there is one: the skill too, so that
    # both sides of the ratio come from the same samples.
    on_test = "test_loss" in trials.columns and bool(
        np.isfinite(trials["test_loss"].astype(float)).any()
    )
    if not classification and skill_baseline is not None and not trials.empty:
        error = trials["test_loss" if on_test else "score"].astype(float)
        frame = trials.assign(score=1 - error / skill_baseline)
    maximise = classification or skill_baseline is not None
    quality_name = (
        f"GRU {objective} / LSTM {objective}"
        if classification
        else "GRU skill / LSTM skill (regression: skill = 1 - MSE / baseline MSE"
        + (", on test)" if on_test else ")")
    )

    def quality(lstm: np.ndarray, gru: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return gru / lstm if maximise else lstm / gru

    def saving(lstm: np.ndarray, gru: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1 - gru / lstm

    def gain(bi: np.ndarray, uni: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (bi - uni) / np.abs(uni) if maximise else (uni - bi) / np.abs(uni)

    no_skill = {
        "estimate": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "n": 0,
        "basis": "a regression study reads accuracy as skill over the task's baseline, "
        "and this search recorded no baseline",
    }
    regression_unscored = not classification and skill_baseline is None
    rows = []
    first, memory_claim, bi_claim = CLAIMS
    q = (
        no_skill
        if regression_unscored
        else _measure(frame, "cell", "lstm", "gru", "score", quality)
    )
    if not classification and not regression_unscored:
        q = _without_skill(frame, q)
    c = _measure(trials, "cell", "lstm", "gru", "recurrent_macs", saving)
    s = _measure(trials, "cell", "lstm", "gru", "epoch_seconds", saving)
    (q_verdict, q_why), (c_verdict, c_why) = (
        _verdict(q, first.low, first.high),
        _verdict(c, *COMPUTE_SAVING),
    )
    if q_verdict.startswith("does not hold"):
        verdict, why = q_verdict.replace("(", "(quality ", 1), q_why
    elif c_verdict.startswith("does not hold"):
        verdict, why = c_verdict.replace("(", "(computations ", 1), c_why
    elif (q_verdict, c_verdict) == ("holds", "holds"):
        verdict, why = "holds", f"quality: {q_why}; computations: {c_why}"
    else:
        verdict = "not enough data"
        why = q_why if q_verdict != "holds" else f"computations: {c_why}"
    rows.append(
        [
            first.text,
            quality_name,
            q["estimate"],
            q["ci_low"],
            q["ci_high"],
            q["basis"],
            verdict,
            why,
            f"recurrent multiply-adds per step {_fewer(c['estimate'])} ({c['basis']}); "
            f"seconds per epoch {_fewer(s['estimate'])}",
            first.source,
        ]
    )
    measured = (
        trials[trials["memory_measure"] == "gpu_peak"]
        if "memory_measure" in trials.columns
        else trials.iloc[0:0]
    )
    kinds = ", ".join(sorted(trials["memory_measure"].dropna().unique())) if len(trials) else ""
    if measured.empty:
        m = {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "basis": ""}
        m_verdict = "not measured on CPU"
        m_why = (
            "no trial has a GPU allocator peak (peak memory here: "
            f"{kinds or 'not logged'}; a CPU process's RSS depends on which trial ran first)"
        )
    else:
        m = _measure(measured, "cell", "lstm", "gru", "peak_memory_mb", saving)
        m_verdict, m_why = _verdict(m, memory_claim.low, memory_claim.high)
    rows.append(
        [
            memory_claim.text,
            "GRU memory saving vs LSTM (GPU peak)",
            m["estimate"],
            m["ci_low"],
            m["ci_high"],
            m["basis"],
            m_verdict,
            m_why,
            f"peak_memory_mb measured as: {kinds or 'unknown'}",
            memory_claim.source,
        ]
    )
    g = (
        no_skill
        if regression_unscored
        else _measure(frame, "bidirectional", True, False, "score", gain)
    )
    if not classification and not regression_unscored:
        g = _without_skill(
            frame, g, "bidirectional", (True, False), "the bidirectional or the one-way model"
        )
    g_verdict, g_why = _verdict(g, bi_claim.low, bi_claim.high)
    rows.append(
        [
            bi_claim.text,
            "bidirectional gain" + ("" if classification else " in skill over the baseline"),
            g["estimate"],
            g["ci_low"],
            g["ci_high"],
            g["basis"],
            g_verdict,
            g_why,
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
            "why",
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
