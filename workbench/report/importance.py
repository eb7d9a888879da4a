"""Importance: the share of the score's variance each hyperparameter explains, and seed noise.

The unit of analysis is the configuration (a trial, its repeats averaged). Shares come from
Optuna's fANOVA evaluator (Hutter et al. 2014, as Greff et al. 2017 used on LSTMs) fed the
finished configurations: each share is the fraction of the score's variance that one
hyperparameter's main effect explains, so the shares add up to at most 1 (the rest is
interactions). A random dummy parameter measured the same way gives the noise floor; each
share's range (lowest to highest) comes from refitting on configurations drawn with
replacement: a range over a few refits, not a 95% interval (that would take hundreds of
refits, at up to 0.3 s each). Seed noise is a
variance component of its own (:func:`seed_variance`), never extra samples.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from workbench.report.frames import PARAMS, finished

#: fANOVA needs at least this many configurations, and two per varied hyperparameter.
MIN_CONFIGS = 10
#: Refits on resampled configurations for the ranges and the noise floor.
BOOTSTRAPS = 8
#: Each fit sees at most this many configurations (a seeded sample): fANOVA's cost grows
#: with the trees' leaves, and a report on 1,000 trials should take seconds.
MAX_FIT = 200
_CATEGORICAL = ("cell", "bidirectional", "clipping", "readout")
_LOG = ("learning_rate",)
_INTEGER = ("depth", "units", "batch_size", "patience")
NOISE = "(noise floor: a random dummy)"


def _design(done: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The configurations' varied hyperparameters as columns (clip_threshold only when clipped)."""
    table = pd.DataFrame(index=done.index)
    for name in ("cell", *PARAMS):
        values = done[name]
        if name == "clip_threshold":
            # Conditional: a threshold means nothing without clipping; 0 stands for "none".
            values = values.where(done["clipping"] != "none", 0.0)
        values = values.map(str) if name in _CATEGORICAL else values.astype(float)
        if values.isna().any() or values.nunique() < 2:
            continue
        table[name] = values
    return table, list(table.columns)


def _fanova(design: pd.DataFrame, scores: np.ndarray, seed: int) -> dict[str, float]:
    """Unnormalized fANOVA main-effect shares of ``scores`` for each column of ``design``."""
    import optuna
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    distributions: dict[str, Any] = {}
    for name in design.columns:
        column = design[name]
        if name in _CATEGORICAL:
            distributions[name] = CategoricalDistribution(sorted(column.unique()))
        elif name in _INTEGER:
            distributions[name] = IntDistribution(int(column.min()), int(column.max()))
        else:
            low, high = float(column.min()), float(column.max())
            distributions[name] = FloatDistribution(low, high, log=name in _LOG and low > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's "experimental feature" notes
        study = optuna.create_study()
        for row, score in zip(design.to_dict("records"), scores, strict=True):
            params = {
                name: int(value) if name in _INTEGER else value for name, value in row.items()
            }
            study.add_trial(
                optuna.trial.create_trial(params=params, distributions=distributions, value=score)
            )
        evaluator = FanovaImportanceEvaluator(n_trees=32, max_depth=12, seed=seed)
        found = get_param_importances(study, evaluator=evaluator, normalize=False)
    return {name: float(found.get(name, 0.0)) for name in design.columns}


def importance(trials: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Section 4: each varied hyperparameter's share of the score's variance (fANOVA).

    Columns ``parameter``, ``share`` (fraction of variance, main effect alone),
    ``range_low`` / ``range_high`` (the lowest and highest share over :data:`BOOTSTRAPS`
    refits on resampled configurations; a hyperparameter a resample did not vary scores 0
    there), ``below_noise`` (the share does not beat the random dummy's 95th percentile over
    the refits) and ``note``.
    Fewer than :data:`MIN_CONFIGS` configurations (or two per varied hyperparameter) give
    no share, and say why.
    """
    columns = ["parameter", "levels", "share", "range_low", "range_high", "below_noise", "note"]
    done = finished(trials)
    if len(done) < 3:
        return pd.DataFrame(
            [["all", 0, math.nan, math.nan, math.nan, False,
              "fewer than 3 finished trials: cannot compute"]],
            columns=columns,
        )
    design, varied = _design(done)
    if not varied:
        return pd.DataFrame(
            [["all", 0, math.nan, math.nan, math.nan, False, "no hyperparameter varied"]],
            columns=columns,
        )
    need = max(MIN_CONFIGS, 2 * len(varied))
    levels = {name: int(design[name].nunique()) for name in varied}
    if len(done) < need:
        rows = []
        for name in varied:
            once = levels[name] == len(done) and name not in ("learning_rate", "dropout")
            why = (
                "cannot be estimated: each value seen once"
                if once
                else f"cannot be estimated: {len(done)} configurations for {len(varied)} "
                f"varied hyperparameters (needs at least {need})"
            )
            rows.append([name, levels[name], math.nan, math.nan, math.nan, False, why])
        return pd.DataFrame(rows, columns=columns)
    rng = np.random.default_rng(seed)
    scores = done["score"].astype(float).to_numpy()
    with_noise = design.reset_index(drop=True)
    with_noise[NOISE] = rng.uniform(0.0, 1.0, len(design))
    size = min(len(design), MAX_FIT)
    main = np.sort(rng.choice(len(design), size, replace=False))
    shares = _fanova(with_noise.iloc[main], scores[main], seed)
    draws: dict[str, list[float]] = {name: [] for name in with_noise.columns}
    for b in range(BOOTSTRAPS):
        pick = rng.integers(0, len(design), size)
        sample = with_noise.iloc[pick].reset_index(drop=True)
        kept = [c for c in sample.columns if sample[c].nunique() > 1]
        if np.ptp(scores[pick]) == 0 or not kept:
            continue
        # A hyperparameter this resample did not vary explains none of it (leaving the draw
        # out would lift its range).
        refit = _fanova(sample[kept], scores[pick], seed + b + 1)
        for name in draws:
            draws[name].append(refit.get(name, 0.0))
    floor = float(np.percentile(draws[NOISE], 95)) if draws[NOISE] else shares[NOISE]
    rows = []
    for name in [*varied, NOISE]:
        values = draws[name]
        low, high = (min(values), max(values)) if len(values) >= 2 else (math.nan, math.nan)
        below = name != NOISE and shares[name] <= floor
        note = "below the noise floor" if below else ""
        if name == NOISE:  # what the others are held against, beside the dummy's own share
            note = (
                f"the noise floor: this share's 95th percentile over the {BOOTSTRAPS} refits "
                f"(near their highest), {floor:.3g}"
            )
        if name == "clip_threshold":
            note = "; ".join(filter(None, [note, "conditional: 0 stands for no clipping"]))
        rows.append(
            [name, levels.get(name, len(design)), shares[name], low, high, below, note]
        )
    frame = pd.DataFrame(rows, columns=columns)
    order = frame["share"].fillna(-1).sort_values(ascending=False, kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def seed_variance(repeats: pd.DataFrame) -> pd.DataFrame:
    """Seed noise as a variance component (one-way random effects over configurations).

    With configurations ``i`` of ``n_i`` finished repeats: ``sigma2_seed`` = MS_within,
    ``sigma2_config`` = max(0, (MS_between - MS_within) / n0) with
    ``n0 = (N - sum n_i^2 / N) / (k - 1)``; ``seed_share`` = sigma2_seed / (sum of both).
    Only configurations with two or more finished repeats count.
    """
    columns = ["configurations", "repeats", "sigma2_config", "sigma2_seed", "seed_share", "note"]
    done = finished(repeats) if not repeats.empty else repeats
    if done.empty:
        return pd.DataFrame(columns=columns)
    groups = [g["score"].astype(float).to_numpy() for _, g in done.groupby("trial")]
    groups = [g for g in groups if len(g) >= 2]
    if len(groups) < 2:
        return pd.DataFrame(
            [[len(groups), 0, math.nan, math.nan, math.nan,
              "fewer than 2 configurations with 2+ repeats: seed noise not measured"]],
            columns=columns,
        )
    sizes = np.array([len(g) for g in groups], dtype=float)
    total = sizes.sum()
    grand = np.concatenate(groups).mean()
    k = len(groups)
    ss_between = float(sum(n * (g.mean() - grand) ** 2 for n, g in zip(sizes, groups, strict=True)))
    ss_within = float(sum(((g - g.mean()) ** 2).sum() for g in groups))
    ms_between = ss_between / (k - 1)
    ms_within = ss_within / (total - k)
    n0 = (total - (sizes**2).sum() / total) / (k - 1)
    sigma2_config = max(0.0, (ms_between - ms_within) / n0)
    share = ms_within / (ms_within + sigma2_config) if ms_within + sigma2_config > 0 else math.nan
    return pd.DataFrame(
        [[k, int(total), sigma2_config, ms_within, share,
          "variance between repeats of one configuration: noise no choice removes"]],
        columns=columns,
    )
