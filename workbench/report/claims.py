"""Popular claims about the cells, measured on the study, each with a verdict."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.report.frames import _show
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
