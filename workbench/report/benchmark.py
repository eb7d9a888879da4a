"""The benchmark report: cells compared over several studies, one study per task.

Rows first (:func:`benchmark_frames`): per task its winning cell, best score, the best
trial's test metric, the winner's margin over the runner-up cell with its 95% interval and
the test that gave it (the study's head-to-head: paired over matched configurations, else
Welch), the task's trivial baseline and its published results; a tasks x cells table of
each cell's best score turned so that larger is better (tasks with an error to minimise
are negated), then the ranking of :mod:`workbench.report.ranking` and a win/tie/loss
count per pair where a tie is a task whose own test found no significant difference. Then drawing
(:func:`write_benchmark`): ``benchmark.md``, ``benchmark.html`` (self-contained) and the
critical-difference diagram ``critical_difference.png``.
"""

from __future__ import annotations

import base64
import math
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.report.answer import beats_on_test, test_metric
from workbench.report.frames import finished, full_budget, trials_frame
from workbench.report.pages import _markdown_table
from workbench.report.ranking import (
    average_ranks,
    friedman,
    nemenyi_critical_difference,
    pairwise_wilcoxon,
)
from workbench.report.statistics import expected_best, head_to_head


def _margin(pairs: pd.DataFrame, winner: str, runner_up: str) -> dict[str, Any]:
    """The winner minus the runner-up (in the score's own units), its interval and test."""
    for row in pairs.to_dict("records"):
        if {row["cell_a"], row["cell_b"]} != {winner, runner_up}:
            continue
        if row["comparison"] == "none":
            return {"margin test": "none: " + row["note"]}
        sign = 1.0 if row["cell_a"] == winner else -1.0
        low, high = sorted((sign * row["ci_low"], sign * row["ci_high"]))
        test = (
            # Not run: e.g. a tie on every matched configuration (no spread to test against).
            f"none: {row['note']}"
            if not math.isfinite(float(row["p_value"])) and row.get("note")
            else f"paired t, {row['n']} matched configurations"
            if row["comparison"] == "paired"
            else f"Welch t, {row['n']} trials (unmatched)"
        )
        return {
            "margin": sign * row["mean_diff"],
            "margin 95% CI": f"[{low:.4g}, {high:.4g}]" if math.isfinite(low) else "-",
            "p (uncorrected)": row["p_value"],
            "p (Holm)": row["p_holm"],
            "margin test": test,
        }
    return {"margin test": "none: one cell"}


def _baseline_first(tasks: pd.DataFrame) -> pd.DataFrame:
    first = [c for c in ("task", "finished trials", "beats baseline") if c in tasks.columns]
    return tasks[first + [c for c in tasks.columns if c not in first]]


def _significant(pairs: pd.DataFrame) -> dict[frozenset[str], str | None]:
    """Per pair of cells on one task: the significantly better cell, or None (a tie)."""
    verdicts: dict[frozenset[str], str | None] = {}
    for row in pairs.to_dict("records"):
        if row["comparison"] == "none":
            continue
        better = str(row["better"])
        significant = better in (row["cell_a"], row["cell_b"])
        verdicts[frozenset((row["cell_a"], row["cell_b"]))] = better if significant else None
    return verdicts


def per_task_record(
    verdicts: dict[str, dict[frozenset[str], str | None]], first: str, second: str
) -> tuple[int, int, int]:
    """``first`` against ``second`` over the tasks that tested them: significant wins,
    ties (no significant difference on that task), significant losses."""
    wins = ties = losses = 0
    for task in verdicts.values():
        key = frozenset((first, second))
        if key not in task:
            continue
        wins += task[key] == first
        losses += task[key] == second
        ties += task[key] is None
    return wins, ties, losses


def benchmark_frames(
    studies: dict[str, Any], published: dict[str, tuple[Any, ...]] | None = None
) -> dict[str, Any]:
    """The benchmark's data from its studies (``{task: StudyRecord}``) and each task's
    published results (``{task: (Published, ...)}``, shown beside the task's row).
    ``not_better`` lists the tasks whose best trial does not beat the trivial baseline on
    test."""
    tasks, best_by_cell, verdicts, unequal = [], {}, {}, []
    for task, study in studies.items():
        params, tags = study.parent_params, study.parent_tags
        direction = params.get("direction", "min")
        budget = float(params.get("max_epochs", "nan"))
        trials = full_budget(trials_frame(study), tags.get("tuner", ""), budget)
        done = finished(trials) if not trials.empty else trials
        row: dict[str, Any] = {
            "task": task,
            "objective": params.get("objective", "score"),
            "direction": direction,
            "finished trials": len(done),
            # 5 when --folds 0 decided cross-validation for a small validation part.
            "folds": int(float(params.get("folds") or 1)),
        }
        if len(done):
            scores = done["score"].astype(float)
            best = done.loc[scores.idxmin() if direction == "min" else scores.idxmax()]
            measure = test_metric(direction)
            row.update(
                {
                    "winner": best["cell"],
                    "best score": float(best["score"]),
                    "test": float(best.get(measure, math.nan)) if measure in best else math.nan,
                    "test metric": measure,
                }
            )
            per_cell = done.groupby("cell")["score"].agg("min" if direction == "min" else "max")
            counts = done.groupby("cell").size()
            ranked = per_cell
            if counts.nunique() > 1:
                # A cell's best of 8 trials against another's best of 2 favours the first
                # for its draws: rank on the expected best of equally many (Dodge et al.).
                curves = expected_best(done, direction)
                common = curves[curves["trials"] == int(counts.min())]
                ranked = common.set_index("cell")["expected_best"]
                unequal.append(f"{task} ({int(counts.min())} of {int(counts.max())})")
            best_by_cell[task] = (-ranked if direction == "min" else ranked).to_dict()
            pairs = head_to_head(done, direction)
            order = per_cell.sort_values(ascending=direction == "min").index.tolist()
            others = [cell for cell in order if cell != best["cell"]]
            if others:
                row["runner-up"] = others[0]
                row.update(_margin(pairs, best["cell"], others[0]))
            verdicts[task] = _significant(pairs)
        baseline = tags.get("baseline_value")
        row["baseline"] = float(baseline) if baseline not in (None, "") else math.nan
        if len(done) and math.isfinite(row["baseline"]):
            measure = test_metric(direction)
            row["beats baseline"] = beats_on_test(best, measure, row["baseline"], direction)
        row["published"] = "; ".join(p.text() for p in (published or {}).get(task, ()))
        # What this study ran (loader options), to read the published settings against.
        row["ours"] = tags.get("task_options", "")
        tasks.append(row)
    table = pd.DataFrame.from_dict(best_by_cell, orient="index")
    frames: dict[str, Any] = {
        # Whether a task's best beats its baseline comes first, before its winner.
        "tasks": _baseline_first(pd.DataFrame(tasks)),
        "table": table,
        # Tasks whose cells got unequal numbers of trials: ranked on equal n.
        "unequal": unequal,
        "verdicts": verdicts,
        "not_better": [
            r["task"]
            for r in tasks
            if math.isfinite(r.get("test", math.nan))
            and math.isfinite(r["baseline"])
            and not r.get("beats baseline", True)
        ],
    }
    if table.shape[1] >= 2 and len(table.dropna()) >= 1:
        complete = table.dropna()
        frames["average_ranks"] = average_ranks(table, "max")
        frames["friedman"] = friedman(table, "max")
        frames["critical_difference"] = nemenyi_critical_difference(
            complete.shape[1], len(complete)
        )
        # Differences of accuracies and of MSEs cannot be ranked together (Demsar 2006),
        # nor one task's MSE against another's (each in its own target's units).
        units = {
            r["task"]: r["objective"] if r["direction"] == "max" else f"{r['task']}: MSE"
            for r in tasks
        }
        frames["pairs"] = pairwise_wilcoxon(table, "max", units)
    return frames


def _markdown(name: str, frames: dict[str, Any], answers: dict[str, list[str]]) -> str:
    lines = [f"# Benchmark {name}", ""]
    tasks = frames["tasks"]
    if frames["not_better"]:  # said first, before any ranking
        worse = ", ".join(frames["not_better"])
        lines += [f"**Not shown better than the trivial baseline on test: {worse}.**", ""]
    lines += [
        "## Per task",
        "",
        "Winner: the cell of the best trial (validation score). Margin: the winner minus the "
        "runner-up cell on validation score, averaged over their configurations (matched "
        "where they can be), with its 95% interval and the test behind it: a best trial can "
        "win while its cell is behind on average (a margin below 0 for accuracy, above 0 for "
        "a loss).",
        "",
        _markdown_table(tasks.drop(columns=["published", "ours"], errors="ignore")),
        "",
    ]
    shown = [r for r in tasks.to_dict("records") if r["published"]]
    if shown:
        lines += ["Published results on these tasks (their settings, beside ours):", ""]
        lines += [
            f"- {r['task']}: {r['published']}. Ours: loader options {r['ours'] or '{}'}, "
            f"measured by {r.get('test metric') or 'no finished trial'}"
            for r in shown
        ] + [""]
    for task, sentences in answers.items():
        lines += [f"- {task}: " + " ".join(s.replace("**", "") for s in sentences)]
    lines += ["", "## Over the tasks", ""]
    if "average_ranks" not in frames:
        lines += ["Fewer than two cells with scores on a common task: no ranking.", ""]
        return "\n".join(lines)
    ranks = frames["average_ranks"]
    used = len(frames["table"].dropna())
    if frames.get("unequal"):
        lines += [
            "Each cell's score per task is its best trial's, but where the cells got unequal "
            "numbers of trials, the expected best of as many trials as the fewest got (Dodge "
            f"et al. 2019): {', '.join(frames['unequal'])}.",
            "",
        ]
    lines += [
        f"Average rank over {used} tasks with every cell (1 = best): "
        + ", ".join(f"{cell} {rank:.2f}" for cell, rank in ranks.items())
        + ".",
        "",
    ]
    test = frames["friedman"]
    if test is None:
        lines += ["Friedman's test needs 3 cells and 2 tasks: not computed.", ""]
    else:
        lines += [
            f"Friedman: chi2 = {test.statistic:.3f}, p = {test.p_value:.3g} "
            f"({test.cells} cells, {test.tasks_used} tasks).",
            "",
        ]
    rejected = test is not None and test.p_value < 0.05
    lines += [
        f"Nemenyi critical difference (alpha 0.05): {frames['critical_difference']:.2f}; "
        "cells closer than this in average rank are not told apart"
        + (
            "."
            if rejected
            else ", and here none are: the post-hoc test follows a Friedman test that "
            "found a difference (Demsar 2006), and this one "
            + ("was not computed." if test is None else "did not.")
        ),
        "",
        "Per pair: significant wins / ties / losses counts the tasks where that task's own "
        "test (p < 0.05 after Holm's correction over its pairs of cells) told the pair apart; "
        "a tie is a task where it did not. Better / "
        "equal / worse counts best scores alone; the test over the tasks (Wilcoxon's "
        "signed-rank test, or the sign test where the tasks' scores are in different units, "
        "e.g. accuracy and MSE) is Holm-corrected over the pairs.",
        "",
        "| pair | significant wins / ties / losses | better / equal / worse | test, p "
        "| Holm p | over the tasks |",
        "|---|---|---|---|---|---|",
    ]
    for pair in frames["pairs"]:
        shown = "n/a" if pair.p_value is None else f"{pair.p_value:.3g}"
        holm = "n/a" if pair.p_holm is None else f"{pair.p_holm:.3g}"
        verdict = "differ" if pair.p_holm is not None and pair.p_holm < 0.05 else "no difference"
        won, tied, lost = per_task_record(frames["verdicts"], pair.first, pair.second)
        lines.append(
            f"| {pair.first} vs {pair.second} | {won} / {tied} / {lost} | "
            f"{pair.wins} / {pair.ties} / {pair.losses} | {pair.test}, {shown} | {holm} | "
            f"{verdict} |"
        )
    lines += ["", "![critical difference](critical_difference.png)", ""]
    return "\n".join(lines)


def write_benchmark(
    name: str, frames: dict[str, Any], answers: dict[str, list[str]], out: Path
) -> list[Path]:
    """Write ``benchmark.md``, ``benchmark.html`` and the diagram into ``out``."""
    from workbench.report.figures import draw_critical_difference

    out.mkdir(parents=True, exist_ok=True)
    files = []
    figure = out / "critical_difference.png"
    if "average_ranks" in frames:
        draw_critical_difference(frames["average_ranks"], frames["critical_difference"], figure)
        files.append(figure)
    else:  # an earlier report's ranking, beside one that has none
        figure.unlink(missing_ok=True)
    text = _markdown(name, frames, answers)
    markdown = out / "benchmark.md"
    markdown.write_text(text)
    html = out / "benchmark.html"
    figure = out / "critical_difference.png"
    body = "".join(
        _image(figure) if block.startswith("![") else f"<pre>{escape(block)}</pre>"
        for block in text.split("\n\n")
    )
    html.write_text(f"<!doctype html><meta charset='utf-8'><title>{name}</title>{body}")
    return [markdown, html, *files]


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='critical difference' src='data:image/png;base64,{data}'>"
