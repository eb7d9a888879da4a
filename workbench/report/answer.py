"""The answer first: which cell wins, by how much, how sure, and whether it beats the baseline.

A few sentences computed from the report's frames, shown as the report's first section,
at the end of ``workbench search`` and on the search run's description in MLflow. A best
trial that does not beat the task's trivial baseline on test is said first.
"""

from __future__ import annotations

import math
import shlex
from typing import Any

import numpy as np
import pandas as pd

from workbench.report.frames import BASELINE_DIFF, CELL_ORDER, _config_of, finished
from workbench.report.frames import on_test as on_test_scores
from workbench.report.statistics import head_to_head, holm
from workbench.search.config import MIN_STEPS_PER_EPOCH


def test_metric(direction: str) -> str:
    """The held-out metric a trial logs for its objective: accuracy, or the loss."""
    return "test_accuracy" if direction == "max" else "test_loss"


def ties_baseline(value: float, baseline: float) -> bool:
    """Whether a figure equals the task's trivial baseline's to float32 rounding (Keras logs
    metrics in float32, the baseline is computed in float64: a model that always predicts
    the majority class logs 0.6000000238 against 0.6)."""
    return math.isclose(value, baseline, rel_tol=1e-6, abs_tol=1e-9)


def beats_baseline(value: float, baseline: float, direction: str) -> bool:
    """Whether a test figure beats the task's trivial baseline: strictly, and by more than
    float32 rounding (:func:`ties_baseline`)."""
    if ties_baseline(value, baseline):
        return False
    return value > baseline if direction == "max" else value < baseline


def _against(row: Any, direction: str) -> tuple[bool, bool, str] | None:
    """``(beats, worse, figures)`` from a trial's per-sample comparison with the baseline
    on test (its 95% interval clear of 0 on one side); None where none was recorded."""
    diff, low, high = (float(row.get(name, math.nan)) for name in BASELINE_DIFF[:3])
    if not all(np.isfinite(v) for v in (diff, low, high)):
        return None
    beats, worse = (high < 0, low > 0) if direction == "min" else (low > 0, high < 0)
    figures = (
        f"difference {diff:+.4g}, 95% CI [{low:.4g}, {high:.4g}] over the test samples, "
        "each scored for both"
    )
    return beats, worse, figures


def baseline_verdict(row: Any, direction: str) -> tuple[str, str] | None:
    """How a trial stands against the trivial baseline on test, read from its per-sample
    comparison: a verb phrase ("beats", "is worse than", ...) and what follows "on test"
    ("" or a parenthesis); None where no comparison was recorded. A test score on the
    baseline's wrong side is said so even where the interval holds 0."""
    against = _against(row, direction)
    if against is None:
        return None
    beats, worse, _ = against
    diff, low, high = (float(row.get(name)) for name in BASELINE_DIFF[:3])
    if beats:
        return "beats", ""
    if worse:
        return "is worse than", ""
    if low == high == 0:
        return "does not beat", " (it scores the same as the baseline on every test sample)"
    if (diff > 0) if direction == "min" else (diff < 0):
        return "scores worse than", " (within the noise: not shown worse)"
    return "does not clearly beat", " (the difference is within the noise)"


def beats_on_test(row: Any, metric: str, baseline: float, direction: str) -> bool:
    """Whether a trial beats the trivial baseline on test: by its per-sample interval where
    it was recorded, else by its test figure (a trial from before)."""
    against = _against(row, direction)
    if against is not None:
        return against[0]
    value = float(row.get(metric, math.nan))
    return bool(np.isfinite(value) and beats_baseline(value, baseline, direction))


def baseline_check(
    trials: pd.DataFrame, direction: str, baseline: float, baseline_text: str | None
) -> dict[str, Any]:
    """The best trial (by validation score) on test, against the task's trivial baseline.

    Returns ``trial``, ``config``, ``test`` (the test metric), ``metric``, ``baseline``,
    ``beats`` (True, False, or None when either figure is missing) and ``text``.
    """
    metric = test_metric(direction)
    done = finished(trials)
    if done.empty:
        return {"beats": None, "text": "No trial finished: nothing to compare."}
    scores = done["score"].astype(float)
    best = done.loc[scores.idxmax() if direction == "max" else scores.idxmin()]
    test = float(best[metric]) if metric in best and np.isfinite(best[metric]) else math.nan
    out: dict[str, Any] = {
        "trial": int(best["trial"]),
        "config": _config_of(best, exclude=()).replace("|", " "),
        "test": test,
        "metric": metric,
        "baseline": baseline,
        "beats": None,
    }
    if not np.isfinite(test) and np.isfinite(baseline):
        # No test part: the baseline was measured on validation; so is the trial, which
        # validation also chose (an optimistic reading).
        score = float(best["score"])
        beats = beats_baseline(score, baseline, direction)
        out.update(beats=beats, test=score, metric="validation score")
        about = f" ({baseline_text})" if baseline_text else ""
        # Two figures, not a test: said as scores, the better one no verdict.
        tied = ties_baseline(score, baseline)
        verb = "better than" if beats else "the same as" if tied else "worse than"
        claim = (
            f"The best trial ({best['trial']}) scores {verb} the task's trivial baseline on "
            "validation"
        )
        out["text"] = (
            f"{claim if beats else f'**{claim}**'} (two figures: no test part to judge it on, "
            f"and validation also chose it, so this reads optimistic): {score:.4g} against "
            f"{baseline:.4g}{about}."
        )
        return out
    if not np.isfinite(test):
        out["text"] = f"The best trial ({best['trial']}) has no {metric}: no test part."
        return out
    if not np.isfinite(baseline):
        out["text"] = (
            f"The best trial ({best['trial']}) scores {metric} {test:.4g}; this search recorded "
            "no trivial baseline to read it against."
        )
        return out
    about = f" ({baseline_text})" if baseline_text else ""
    against = _against(best, direction)
    if against is None:  # two figures only (a trial from before the comparison was logged)
        beats, worse, figures = beats_baseline(test, baseline, direction), False, ""
    else:
        beats, worse, figures = against
        figures = f"; {figures}"
    out["beats"] = beats
    if beats:
        out["text"] = (
            f"The best trial ({best['trial']}) beats the task's trivial baseline on test: "
            f"{metric} {test:.4g} against {baseline:.4g}{about}{figures}."
        )
    else:
        verdict, why = baseline_verdict(best, direction) or ("does not beat", "")
        out["text"] = (
            f"**The best trial ({best['trial']}) {verdict} the task's trivial baseline on "
            f"test{why}**: {metric} {test:.4g} against {baseline:.4g}{about}{figures}. "
            + _others_against_baseline(done, metric, baseline, direction)
        )
    return out


def _others_against_baseline(
    done: pd.DataFrame, metric: str, baseline: float, direction: str
) -> str:
    """Whether any other finished trial beats the baseline on test (not the chosen one):
    each trial's per-sample comparison, Holm-corrected over the trials compared (one test
    per trial: among many trials, some clear 95% by chance)."""
    if metric not in done.columns:
        return "No model of this study is shown to beat the trivial predictor."
    rows = done.to_dict("records")
    p_values = [_baseline_p(row) for row in rows]
    adjusted = holm(p_values)
    beats = [
        beats_on_test(row, metric, baseline, direction)
        if p is None
        else bool(_against(row, direction)[0] and q < 0.05)  # type: ignore[index]
        for row, p, q in zip(rows, p_values, adjusted, strict=True)
    ]
    tested = sum(p is not None for p in p_values)
    how = f"Holm's correction over the {tested} trials compared" if tested > 1 else ""
    better = done[beats]
    if better.empty:
        how = f" ({how})" if how else ""
        return f"No model of this study is shown to beat the trivial predictor on test{how}."
    trials = ", ".join(str(int(t)) for t in better["trial"])
    how = f"; {how}" if how else ""
    return (
        f"Other trials do on test ({trials}{how}), but validation did not pick them: the "
        "validation part chose another, or the test part favours them by chance."
    )


def _baseline_p(row: Any) -> float | None:
    """A trial's p-value of no difference from the baseline on test: as logged, or, for a
    trial logged before it was, from its 95% interval (normal approximation); None without
    a per-sample comparison."""
    diff, low, high = (float(row.get(name, math.nan)) for name in BASELINE_DIFF[:3])
    if not all(np.isfinite(v) for v in (diff, low, high)):
        return None
    p = float(row.get("baseline_p", math.nan))
    if np.isfinite(p):
        return p
    if high <= low:
        return float(diff == 0)
    from scipy import stats

    return 2 * float(stats.norm.sf(abs(diff) / ((high - low) / (2 * stats.norm.ppf(0.975)))))


def _test_apart(pairs: list[str]) -> str:
    """Why a pair the test part told apart is still open: validation decides."""
    if not pairs:
        return ""
    return (
        f" (The test part tells {', '.join(pairs)} apart, but it is one held-out reading "
        "checked after the fact; validation, which the search chose by, does not.)"
    )


def _identical(row: Any) -> bool:
    """A paired comparison whose every matched configuration scored the same for both."""
    return (
        row["comparison"] == "paired"
        and "no spread to test against" in str(row["note"])
        and abs(float(row["mean_diff"])) <= 1e-7  # float32 scores: equal to their digits
    )


#: Matched configurations below which a paired verdict rests on the t-test's normality
#: alone (Wilcoxon's signed-rank test cannot reach p < 0.05 on fewer than 6 pairs).
FEW_PAIRS = 6


def p_text(p: float, alpha: float = 0.05) -> str:
    """A p-value to 2 significant digits, or as many more as keep it on its side of
    ``alpha`` (0.0497 is not "0.05" beside "beats")."""
    for digits in range(2, 7):
        text = f"{p:.{digits}g}"
        if not np.isfinite(p) or (float(text) < alpha) == (p < alpha) and float(text) != alpha:
            return text
    return f"{p:.12g}"


def _pair_sentence(row: Any, measure: str, family: int = 1) -> str:
    first, second = row["cell_a"], row["cell_b"]
    if row["comparison"] == "none":
        return f"{first} vs {second} on {measure}: {row['note']}."
    test = (
        f"paired t-test over {row['n']} matched configurations"
        if row["comparison"] == "paired"
        else f"Welch's t-test on {row['n']} trials (fewer than 2 matched configurations), weaker"
    )
    p = f"p = {p_text(row['p_value'])}"
    corrected = family > 1 and np.isfinite(row["p_holm"])
    if corrected:
        p += f", {p_text(row['p_holm'])} after Holm's correction over the {family} pairs"
    figures = (
        f"difference {row['mean_diff']:+.4g} ({first} minus {second}), 95% CI "
        f"[{row['ci_low']:.4g}, {row['ci_high']:.4g}]{' uncorrected' if corrected else ''}, "
        f"{p}; {test}"
    )
    better = str(row["better"])
    if _identical(row):
        return (
            f"{first} vs {second} on {measure}: the same score in each of the {row['n']} "
            "matched configurations (no difference to test)."
        )
    if row["comparison"] == "paired" and "no spread to test against" in str(row["note"]):
        ahead = better.split(" ")[0]
        return (
            f"{first} vs {second} on {measure}: {ahead} ahead by the same "
            f"{abs(row['mean_diff']):.4g} in each of the {row['n']} matched configurations; with "
            "no spread between them a t-test cannot judge it (more matched configurations can)."
        )
    if (
        not better
        or better == "tie"
        or "not significant" in better
        or not np.isfinite(row["p_value"])
    ):
        return f"{first} vs {second} on {measure}: no significant difference ({figures})."
    loser = second if better == first else first
    fragile = ""
    if row["comparison"] == "paired" and int(row["n"]) < FEW_PAIRS:
        # Exact only if the differences are normal; two to five cannot show they are.
        fragile = (
            f"; on only {row['n']} matched configurations: the t-test takes their "
            "differences for normal, which so few cannot show, and Wilcoxon's test, which "
            f"does not, cannot reach p < 0.05 below {FEW_PAIRS}: a matched search over "
            f"{FEW_PAIRS} or more would confirm it"
        )
    return f"{better} beats {loser} on {measure} ({figures}){fragile}."


def answer(
    trials: pd.DataFrame,
    info: dict[str, Any],
    head_to_head_val: pd.DataFrame,
    brief: bool = False,
) -> list[str]:
    """The short answer, as sentences (Markdown emphasis allowed).

    ``info`` is the report's overview (task, space, tuner, objective, direction, baseline,
    baseline_value, experiment); ``head_to_head_val`` compares cells on validation scores.
    ``brief``: the verdicts alone (a best trial that does not beat the baseline, then one
    sentence per pair of cells), as a benchmark's summary shows them per task.
    """
    direction, objective = info["direction"], info["objective"]
    lines = []
    check = baseline_check(
        trials, direction, info.get("baseline_value", math.nan), info.get("baseline")
    )
    if check["beats"] is False:
        lines.append(check["text"] + _likely_reasons(trials, info))
    metric = test_metric(direction)
    on_test = pd.DataFrame()
    if metric in trials.columns:
        on_test = head_to_head(on_test_scores(trials, metric), direction)
    paired, open_pairs, unmatched, untested, only_on_test = False, [], [], [], []
    if head_to_head_val.empty:
        cells = finished(trials)["cell"].nunique() if len(trials) else 0
        lines.append(
            "Only one cell type finished: this study cannot compare cells."
            if cells == 1
            else "No cell type finished a trial: this study cannot compare cells."
        )
    family = _tested(head_to_head_val)
    tests = {(r["cell_a"], r["cell_b"]): r for r in on_test.to_dict("records")}
    for row in head_to_head_val.to_dict("records"):
        measure = f"validation {objective} (each trial's best epoch)"
        sentence = _pair_sentence(row, measure, family)
        test = tests.get((row["cell_a"], row["cell_b"]))
        if test is not None and test["comparison"] != "none":
            sentence += " On test: " + _pair_sentence(test, metric, _tested(on_test))
        lines.append(sentence)
        paired |= row["comparison"] == "paired"
        decided = row["better"] in (row["cell_a"], row["cell_b"]) or _identical(row)
        if row["comparison"] != "paired" or not decided:
            # Unmatched (Welch): settled by no verdict, decided or not, but not by noise;
            # not tested at all (too few trials): its own sentence says why.
            kind = row["comparison"]
            pairs = open_pairs if kind == "paired" else untested if kind == "none" else unmatched
            pairs.append(f"{row['cell_a']} vs {row['cell_b']}")
            told = test is not None and test["better"] in (row["cell_a"], row["cell_b"])
            if told and row["better"] not in (row["cell_a"], row["cell_b"]):
                only_on_test.append(f"{row['cell_a']} vs {row['cell_b']}")
    if brief:
        return lines
    settled = not open_pairs and not unmatched and not untested
    lines += _unfinished(info)
    lines += _lost_trials(info.get("lost", {}))
    if check["beats"] is not False:
        lines.append(check["text"])
    lines += _cells_against_baseline(trials, direction, info.get("baseline_value", math.nan))
    lines += _validation_size(trials, direction, info)
    if open_pairs:
        matched = max(
            int(row["n"])
            for row in head_to_head_val.to_dict("records")
            if row["comparison"] == "paired"
        )
        which = (
            "which cell is better"
            if len(open_pairs) == len(head_to_head_val)
            else (", ".join(open_pairs))
        )
        lines.append(
            f"This study cannot settle {which}: its matched comparisons (at most "
            f"{matched} configurations per pair of cells) leave the difference within the noise. "
            "Each configuration counts once (its seeds are averaged, not extra samples): more "
            "seeds narrow the interval only as far as seed noise spreads each configuration's "
            "difference; more matched configurations narrow it in any case: give the space's "
            "other dimensions more values (units, learning rate, depth) so each pair of cells "
            "meets on 6 or more, and search them with `--tuner grid`." + _test_apart(only_on_test)
        )
    if unmatched and paired:
        lines.append(
            f"This study cannot settle {', '.join(unmatched)}: those cells met on fewer than 2 "
            "matched configurations, so their verdicts rest on Welch's t-test over trials whose "
            f"other settings differ. A matched comparison would: {_matched_search(info)}"
            + ("" if open_pairs else _test_apart(only_on_test))
        )
    if untested and paired:
        lines.append(
            f"This study cannot settle {', '.join(untested)}: a cell of each finished too few "
            "trials to test (see above). More trials of it, on the configurations the other "
            f"cells ran, would: {_matched_search(info)}"
        )
    if not settled and not paired:
        lines.append(
            "This study cannot settle which cell is better: no two cells met on 2 or more "
            "matched configurations. A matched comparison (every cell on the same other "
            f"settings, 3 seeds each) would: {_matched_search(info)}" + _test_apart(only_on_test)
        )
    return lines


def _matched_search(info: dict[str, Any]) -> str:
    """The grid search that would compare the cells on matched configurations, and what the
    space needs first where ``--tuner grid`` cannot enumerate it."""
    task = shlex.quote(str(info.get("task_ref") or info["task"]))
    space = shlex.quote(str(info.get("space_ref") or info["space"]))
    experiment = shlex.quote(str(info.get("experiment", "study")) + "-matched")
    # The same task: the loader options it ran with (n_train=64 is another task than 4000).
    options = "".join(
        f" --task-option {shlex.quote(f'{key}={_option_text(value)}')}"
        for key, value in sorted((info.get("task_overrides") or {}).items())
    )
    command = (
        f"`workbench search --task {task}{options} --space {space} --tuner grid --repeats 3 "
        f"--experiment {experiment}`"
    )
    continuous = info.get("space_continuous")
    if continuous is None:  # a study logged before the search recorded it
        return f"{command} (grid needs a step on every range)."
    if not continuous:
        return f"{command}."
    names = ", ".join(continuous.split(","))
    return (
        f"{command}, on a copy of the space whose continuous ranges ({names}) list their "
        "values or have a step: grid cannot enumerate them."
    )


def _option_text(value: Any) -> str:
    """A loader option's value as ``--task-option`` reads it back (YAML: ``true``, ``[1, 2]``)."""
    import json

    from workbench.yamlio import parse_scalar

    plain = isinstance(value, str) and parse_scalar(value) == value  # not "1e3", not "no"
    return value if plain else json.dumps(value)


def _tested(pairs: pd.DataFrame) -> int:
    """How many pairs of cells a head-to-head tested (the family Holm corrects over)."""
    if pairs.empty:
        return 0
    return int(np.isfinite(pairs["p_value"].astype(float)).sum())


def _validation_size(trials: pd.DataFrame, direction: str, info: dict[str, Any]) -> list[str]:
    """How many samples the scores rest on, and whether one sample could flip the ranking."""
    samples = info.get("val_samples", math.nan)
    if not np.isfinite(samples) or samples <= 0:
        return []
    folds = info.get("folds", 1)
    how = (
        f"{folds} rolling origins in time order over train + validation ({int(samples)} "
        "later windows validated on, each once)"
        if folds > 1 and info.get("fold_scheme") == "rolling"
        else f"{folds}-fold cross-validation of train + validation ({int(samples)} samples "
        "validated on, each once)"
        if folds > 1
        else f"a validation part of {int(samples)} samples"
    )
    lines = [f"Scores rest on {how}."]
    done = finished(trials)
    if direction == "max" and len(done) >= 2:  # an accuracy moves in steps of 1 / samples
        top = np.sort(done["score"].astype(float).to_numpy())[::-1][:2]
        step = 1 / samples
        if top[0] - top[1] <= step + 1e-12:
            lines.append(
                f"The two best trials differ by {top[0] - top[1]:.4g}, no more than one "
                f"validation sample ({step:.3g}): their ranking could flip with one sample."
            )
    return lines


def _unfinished(info: dict[str, Any]) -> list[str]:
    """Trials still RUNNING or interrupted: the search is not over, whatever it compares."""
    running, interrupted = int(info.get("running") or 0), int(info.get("interrupted") or 0)
    if not running and not interrupted:
        return []
    parts = [f"{running} trial(s) RUNNING"] if running else []
    parts += [f"{interrupted} interrupted"] if interrupted else []
    return [
        f"**This search is not complete**: {' and '.join(parts)} (still training, or a search "
        "stopped or killed: the same command resumes it and runs them again); everything "
        "here compares the trials that finished."
    ]


def _lost_trials(lost: dict[str, tuple[int, int, int]]) -> list[str]:
    """Which cells lost trials to divergence or failure: the comparisons leave them out."""
    if not any(diverged or failed for _, diverged, failed in lost.values()):
        return []
    parts = []
    for cell in sorted(lost, key=lambda c: CELL_ORDER.index(c) if c in CELL_ORDER else 9):
        total, diverged, failed = lost[cell]
        part = f"{cell} diverged in {diverged} of its {total} trials"
        parts.append(part + (f" and failed in {failed}" if failed else ""))
    return [
        "Not in these comparisons, which use finished trials only: " + "; ".join(parts) + ". "
        "A cell that diverges at some settings is less robust there, whatever its finished "
        "trials score."
    ]


#: Fewer optimizer steps than this in a trial's training and it is called short.
FEW_STEPS = 300


def _likely_reasons(trials: pd.DataFrame, info: dict[str, Any]) -> str:
    """Why no model beat the baseline, from what the study measured (empty when nothing
    stands out): too few updates, diverging or exploding gradients, a small validation part."""
    reasons = []
    done = trials[trials["outcome"] == "completed"]
    if "optimizer_steps" in done.columns and done["optimizer_steps"].notna().any():
        # A trial's steps add up its repeats' and folds' fits, each from fresh weights:
        # the updates one model got are one fit's.
        fits = max(1, int(info.get("repeats") or 1)) * max(1, int(info.get("folds") or 1))
        steps = float(done["optimizer_steps"].astype(float).max()) / fits
        if steps < FEW_STEPS:
            used = done.get("batch_size_used", pd.Series(dtype=float)).astype(float)
            asked = pd.to_numeric(done.get("batch_size", pd.Series(dtype=float)), "coerce")
            capped = bool((used < asked).any())
            how = (
                # A smaller batch in the space changes nothing above the cap.
                f"raise the space's epochs or give the task more training samples: the batch "
                f"size was already capped at {int(used.max())}, the training samples / "
                f"{MIN_STEPS_PER_EPOCH} rounded up"
                if capped
                else "raise the space's epochs or lower its batch size"
            )
            reasons.append(
                f"too few updates (at most {int(steps)} optimizer steps in a model's training; "
                f"{how})"
            )
    lost = info.get("lost") or {}
    diverged = sum(d for _, d, _ in lost.values()) if lost else int(
        (trials["outcome"] == "diverged").sum()
    )
    total = sum(n for n, _, _ in lost.values()) if lost else len(trials)
    if diverged:  # over every trial: Hyperband's early rounds diverge too
        reasons.append(
            f"{diverged} of {total} trials diverged (lower the learning rate or add clipping)"
        )
    samples = info.get("val_samples", math.nan)
    if np.isfinite(samples) and samples < 50 and info.get("folds", 1) <= 1:
        reasons.append(
            f"a validation part of {int(samples)} samples picked the best trial (try --folds 5, "
            "or as many as a short series allows)"
        )
    return " Likely reasons measured on this study: " + "; ".join(reasons) + "." if reasons else ""


def _cells_against_baseline(trials: pd.DataFrame, direction: str, baseline: float) -> list[str]:
    """Each cell's best trial (by validation) on test, next to the trivial baseline."""
    metric = test_metric(direction)
    if metric not in trials.columns or not np.isfinite(baseline):
        return []
    done = finished(trials)
    parts = []
    for cell in [c for c in ("simple_rnn", "lstm", "gru") if c in set(done["cell"])]:
        rows = done[done["cell"] == cell]
        scores = rows["score"].astype(float)
        best = rows.loc[scores.idxmax() if direction == "max" else scores.idxmin()]
        value = float(best[metric])
        if not np.isfinite(value):
            continue
        beats = beats_on_test(best, metric, baseline, direction)
        verdict = baseline_verdict(best, direction)
        shown = (
            ""
            if beats
            else " (worse than the baseline)"
            if verdict and verdict[0] == "is worse than"
            else f" (not{' shown' if verdict else ''} better than the baseline)"
        )
        parts.append(f"{cell} {value:.4g}{shown}")
    if len(parts) < 2:
        return []
    listed = ", ".join(parts)
    return [f"Each cell's best trial on test ({metric}; baseline {baseline:.4g}): {listed}."]
