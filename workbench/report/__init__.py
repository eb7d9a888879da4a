"""Report: which architecture wins, by how much, at what cost, and how sure we are.

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

The rooms, one line each (analysis computes rows first; drawing is apart):

- ``answer``: the answer first: which cell wins, how sure, against the task's baseline.
- ``frames``: the study's trials and repeats as data frames.
- ``statistics``: intervals, per-parameter tables, head-to-head tests, expected best.
- ``importance``: each hyperparameter's share of the variance (fANOVA), and seed noise.
- ``diagnostics``: cost, Pareto front, learning curves, gradient health, divergence.
- ``claims``: popular claims measured on the study, each with a verdict.
- ``benchmark``: the report over a benchmark's studies (rows, then Markdown/HTML/PNG).
- ``ranking``: cells over several tasks: average ranks, Friedman, Nemenyi, Holm-Wilcoxon.
- ``document``: the sections put together into a :class:`Report` (data, no drawing).
- ``figures`` / ``pages``: matplotlib figures; ``report.html``, ``report.md``, ``trials.csv``.
- ``command``: ``workbench report``: read from MLflow, write, log on the search run.
"""

from workbench.report.answer import answer, baseline_check
from workbench.report.claims import claims
from workbench.report.command import ReportResult, make_report, study_answer
from workbench.report.diagnostics import (
    cost_table,
    divergence,
    gradient_health,
    learning_curves,
    pareto_front,
)
from workbench.report.document import Report, Section, build_report, overview
from workbench.report.frames import COST_METRICS, repeats_frame, trials_frame
from workbench.report.importance import importance, seed_variance
from workbench.report.pages import write_report
from workbench.report.statistics import expected_best, head_to_head, mean_ci, per_parameter

__all__ = [
    "COST_METRICS",
    "Report",
    "ReportResult",
    "Section",
    "answer",
    "baseline_check",
    "build_report",
    "claims",
    "cost_table",
    "divergence",
    "expected_best",
    "gradient_health",
    "head_to_head",
    "importance",
    "learning_curves",
    "make_report",
    "mean_ci",
    "overview",
    "pareto_front",
    "per_parameter",
    "repeats_frame",
    "study_answer",
    "seed_variance",
    "trials_frame",
    "write_report",
]
