"""Drawing the report's figures (matplotlib, Agg) from its data frames."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from workbench.report.document import Report
from workbench.report.frames import CELL_ORDER, PARAMS, RUNS
from workbench.report.importance import NOISE
from workbench.report.statistics import _cells, _sort_key

CELL_COLORS = {"simple_rnn": "#7f7f7f", "lstm": "#1f77b4", "gru": "#d62728"}


# --- drawing ----------------------------------------------------------------------------------


def _color(cell: str) -> str:
    return CELL_COLORS.get(cell, "#2ca02c")



def _one_epoch_wide(ax: Any, epochs: Any) -> None:
    """An axis over a single epoch spans one epoch around it (matplotlib's own limits,
    +-0.05, take its integer ticks away)."""
    values = {int(e) for e in epochs}
    if len(values) == 1:
        (epoch,) = values
        ax.set_xlim(epoch - 0.5, epoch + 0.5)


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
                # Scores are losses (>= 0) or accuracies ([0, 1]): an interval of 2 trials
                # reaching past that (e.g. -4 to 5) squashed every other point.
                low, high = (0.0, 1.0) if report.direction == "max" else (0.0, np.inf)
                ci_low, ci_high = sub["ci_low"].clip(low, high), sub["ci_high"].clip(low, high)
                err = np.vstack([sub["mean"] - ci_low, ci_high - sub["mean"]])
                ax.errorbar(
                    x,
                    sub["mean"],
                    yerr=np.nan_to_num(err),
                    fmt="o",
                    capsize=3,
                    color=_color(cell),
                    label=cell,
                )
                # A value with one trial has no interval: drawn hollow, not as exact.
                alone = sub["ci_low"].isna() & sub["mean"].notna()
                hollow = x[alone.to_numpy()], sub["mean"][alone]
                ax.plot(*hollow, "o", color="white", markersize=3.5, zorder=3)
            ax.set_xticks(range(len(values)), values, rotation=20, fontsize=8)
            ax.set_title(param, fontsize=10)
            ax.set_ylabel("score")
        for ax in list(axes.flat)[len(shown) :]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=8)
        fig.suptitle("Score: mean and 95% CI per value and cell (hollow: one trial, no CI)")
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
        first_better = "below" if report.direction == "min" else "above"
        ax.set_xlabel(
            f"score difference, first minus second (95% CI; {first_better} 0: first better)"
        )
    elif name == "expected_best":
        curves = frames["expected_best"]
        fig, ax = plt.subplots(figsize=(6, 4))
        for cell in _cells(curves):
            sub = curves[curves["cell"] == cell]
            ax.plot(
                sub["trials"],
                sub["expected_best"],
                marker="o",
                ms=3,
                color=_color(cell),
                label=cell,
            )
        ax.set_xlabel("trials (n)")
        ax.set_ylabel(f"expected best {report.objective}")
        ax.legend()
    elif name == "importance":
        table = frames["importance"].dropna(subset=["share"])[::-1]
        fig, ax = plt.subplots(figsize=(6, 0.6 + 0.4 * max(1, len(table))))
        colors = [
            "#dd8452" if name == NOISE else "#bbbbbb" if below else "#4c72b0"
            for name, below in zip(table["parameter"], table["below_noise"], strict=True)
        ]
        ax.barh(table["parameter"], table["share"], color=colors)
        low = (table["share"] - table["range_low"]).clip(lower=0)
        high = (table["range_high"] - table["share"]).clip(lower=0)
        ax.errorbar(
            table["share"],
            table["parameter"],
            xerr=np.nan_to_num([low, high]),
            fmt="none",
            ecolor="k",
            capsize=3,
        )
        ax.set_xlabel("share of score variance (fANOVA main effect; bars: range over refits)")
        ax.set_title(
            "orange: a random dummy (the noise floor: near its highest share); grey: below it",
            fontsize=9,
        )
    elif name == "pareto":
        compared = set(frames["cost_runs"]["run_id"]) if "cost_runs" in frames else None
        done = report.trials[report.trials["outcome"] == "completed"]
        if compared is not None:  # the trials the front is of (not Hyperband's early rounds)
            done = done[done["run_id"].isin(compared)]
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
            # One epoch is one point: a line and a band of one point draw nothing.
            marker = "o" if len(sub) == 1 else None
            ax.plot(sub["epoch"], sub["median"], color=_color(cell), label=cell, marker=marker)
            ax.fill_between(sub["epoch"], sub["q25"], sub["q75"], color=_color(cell), alpha=0.2)
            if len(sub) == 1:
                ax.vlines(sub["epoch"], sub["q25"], sub["q75"], color=_color(cell), alpha=0.5)
        _one_epoch_wide(ax, curves["epoch"])
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(report.objective)
        ax.legend(fontsize=8)
    elif name == "gradients":
        fig, ax = plt.subplots(figsize=(6, 4))
        points: dict[str, dict[int, list[float]]] = {}
        # The trials the table beside it reads (not Hyperband's early rounds).
        for trial in [t for t in report.study.trials if t.run_id in report.compared_runs]:
            for key in [k for k in trial.histories if re.fullmatch(f"grad_norm({RUNS})?", k)]:
                for step, value in trial.histories[key]:
                    if np.isfinite(value) and value > 0:
                        cell = trial.params.get("cell", "?")
                        points.setdefault(cell, {}).setdefault(step, []).append(value)
        for cell, by_step in points.items():
            steps = sorted(by_step)
            ax.plot(
                steps,
                [np.median(by_step[s]) for s in steps],
                color=_color(cell),
                label=cell,
                marker="o" if len(steps) == 1 else None,
            )
        _one_epoch_wide(ax, [step for by_step in points.values() for step in by_step])
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("gradient norm (median)")
        ax.legend(fontsize=8)
    else:
        raise ValueError(name)
    fig.tight_layout()
    return fig


def draw_critical_difference(average: Any, difference: float, path: Any) -> None:
    """Demsar's critical-difference diagram: each cell at its average rank (1 = best, on
    the left), the critical difference as a bar, and a line joining cells that do not
    differ by more than it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = sorted(average.items(), key=lambda item: item[1])
    k = len(items)
    fig, ax = plt.subplots(figsize=(6, 1.2 + 0.35 * k))
    ax.set_xlim(0.5, k + 0.5)
    ax.set_ylim(-1.5 - 0.3 * k, 1.2)
    ax.axhline(0, color="black", lw=1)
    for rank in range(1, k + 1):
        ax.plot([rank, rank], [0, 0.1], color="black", lw=1)
        ax.text(rank, 0.25, str(rank), ha="center", fontsize=8)
    ax.plot([1, 1 + difference], [0.9, 0.9], color="black", lw=2)
    ax.text(1 + difference / 2, 1.0, f"CD = {difference:.2f}", ha="center", fontsize=8)
    for i, (cell, rank) in enumerate(items):
        y = -0.4 - 0.3 * i
        ax.plot([rank, rank, 0.6 if i < k / 2 else k + 0.4], [0, y, y], color=_color(cell), lw=1)
        left = i < k / 2
        ax.text(
            0.55 if left else k + 0.45,
            y,
            f"{cell} ({rank:.2f})",
            va="bottom",
            ha="left" if left else "right",
            fontsize=8,
            color=_color(cell),
        )
    groups, level = [], -0.2
    for i in range(k):
        j = max(j for j in range(i, k) if items[j][1] - items[i][1] <= difference)
        if j > i and not any(a <= i and j <= b for a, b in groups):
            groups.append((i, j))
            ax.plot([items[i][1] - 0.03, items[j][1] + 0.03], [level, level], color="black", lw=3)
            level -= 0.12
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
