"""Scores per sample: a model read against the task's trivial baseline on the same samples.

The answer says whether the best model beats the baseline on test; two test figures
alone cannot say it (0.150 against 0.162 on 250 samples may be noise). Both are scored
on each test sample, so their difference has an interval, pair by pair.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: The metric names a trial logs the comparison under.
BASELINE_KEYS = ("baseline_diff", "baseline_diff_ci_low", "baseline_diff_ci_high")


def sample_scores(problem: str, y: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Per sample, in the objective's measure: the share of its steps classified right
    (the most probable class; above 0.5 for a two-class model's one sigmoid unit), or
    its mean squared error."""
    n = len(y)
    outputs = np.asarray(outputs, dtype="float64")
    truth = np.asarray(y).reshape(n, -1)
    if problem == "classification":
        if outputs.shape[-1] == 1:
            predicted = (outputs[..., 0] > 0.5).astype("int64")
        else:
            predicted = outputs.argmax(axis=-1)
        return (predicted.reshape(n, -1) == truth).mean(axis=1)
    return ((outputs.reshape(n, -1) - truth.astype("float64")) ** 2).mean(axis=1)


def test_metrics(problem: str, y: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
    """What Keras' ``evaluate`` gives for a workbench model of this problem, from its
    outputs: ``loss`` and ``mse`` (regression), or ``loss`` (cross-entropy on probabilities
    clipped to [1e-7, 1 - 1e-7], as Keras does) and ``accuracy`` (classification)."""
    scores = sample_scores(problem, y, outputs)
    if problem != "classification":
        mse = float(scores.mean())
        return {"loss": mse, "mse": mse}
    probabilities = np.clip(np.asarray(outputs, dtype="float64"), 1e-7, 1 - 1e-7)
    if probabilities.shape[-1] == 1:  # two classes: one sigmoid unit
        p = probabilities[..., 0]
        labels = np.asarray(y, dtype="float64").reshape(p.shape)
        losses = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    else:
        labels = np.asarray(y).reshape(probabilities.shape[:-1]).astype("int64")
        picked = np.take_along_axis(probabilities, labels[..., None], axis=-1)
        losses = -np.log(picked[..., 0])
    return {"loss": float(losses.mean()), "accuracy": float(scores.mean())}


def against_baseline(data: Any, outputs: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """The model (``outputs`` on the test part) minus the trivial baseline, sample by
    sample: the mean difference and its Student t interval (:data:`BASELINE_KEYS`).

    Empty without a test part or without the baseline's per-sample scores.
    """
    from scipy import stats

    baseline = data.baseline
    if not data.has_test or baseline is None or baseline.per_sample is None:
        return {}
    difference = sample_scores(data.problem, data.y_test, outputs) - baseline.per_sample
    mean = float(difference.mean())
    if len(difference) < 2:
        return {}
    half = float(stats.t.ppf(0.5 + level / 2, len(difference) - 1)) * float(
        difference.std(ddof=1)
    ) / math.sqrt(len(difference))
    return dict(zip(BASELINE_KEYS, (mean, mean - half, mean + half), strict=True))
