"""The benchmark: one study per task on one search space, then the report over them.

``workbench benchmark --tasks adding,copy_memory --space small --name NAME --out DIR``
runs (or resumes: a complete study trains nothing again) the study ``NAME-<task>`` of
each task, then compares the cells over the tasks (:mod:`workbench.report.benchmark`)
and records the report on a benchmark run in the experiment ``NAME``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import NoTrialFinished, WorkbenchError


@dataclass(frozen=True)
class BenchmarkResult:
    """What a benchmark ran and wrote."""

    name: str
    tasks: tuple[str, ...]
    out: Path
    files: tuple[Path, ...]
    run_id: str
    summary: str

    def lines(self) -> list[str]:
        return [
            self.summary,
            f"Report: {self.out / 'benchmark.md'} (and benchmark.html)",
            f"MLflow: experiment {self.name!r}, run {self.run_id}",
        ]


def parse_task_options(tasks: list[str], options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``KEY`` applies to every task, ``TASK:KEY`` to that task only (whatever the order
    they are given in: the task's own setting wins)."""
    per_task: dict[str, dict[str, Any]] = {task: {} for task in tasks}
    shared = {key: value for key, value in options.items() if ":" not in key}
    for chosen in per_task.values():
        chosen.update(shared)
    for key, value in options.items():
        task, sep, option = key.partition(":")
        if not sep:
            continue
        if task in per_task:
            per_task[task][option] = value
        else:
            raise WorkbenchError(
                f"--task-option {key}: {task!r} is not one of the tasks. Expected one of: "
                + ", ".join(tasks)
            )
    return per_task


def run_benchmark(
    *,
    name: str,
    tasks: list[str],
    space: Any,
    out: str | Path,
    tuner: str = "grid",
    max_trials: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    repeats: int = 1,
    folds: int = 0,
    task_options: dict[str, Any] | None = None,
    tracking_uri: str | None = None,
    state_root: str | Path = ".workbench",
    overwrite: bool = False,
    reporter: Any = None,
) -> BenchmarkResult:
    """Run every task's study, then write and record the cross-task report.

    A task none of whose trials finished stays in the report (no winner there) and the
    other tasks still run.

    Raises:
        WorkbenchError: no or repeated tasks, an unknown task, bad options, an unwritable
            ``out`` (all before any training), or a study that fails as a whole for
            another reason.
    """
    from workbench.report.command import _check_out
    from workbench.search import make_search_config, run_search
    from workbench.search.runner import fit_to_data
    from workbench.search.state import check_state_dir
    from workbench.tasks import load_task
    from workbench.tracking import resolve_tracking_uri

    if not tasks:
        raise WorkbenchError("Expected --tasks with at least one task, e.g. adding,copy_memory")
    if len(set(tasks)) != len(tasks):
        raise WorkbenchError(f"Expected each task once in --tasks. Received: {','.join(tasks)}")
    out = Path(out)
    _check_out(out)
    uri = resolve_tracking_uri(tracking_uri)
    options = parse_task_options(tasks, task_options or {})
    configs = [
        make_search_config(
            task=load_task(task).with_options(**options[task]),
            space=space,
            tuner=tuner,
            max_trials=max_trials,
            epochs=epochs,
            seed=seed,
            repeats=repeats,
            folds=folds,
            experiment=f"{name}-{task}",
            tracking_uri=uri,
            state_root=state_root,
            overwrite=overwrite,
        )
        for task in tasks
    ]
    # Every task's data loaded and checked against the search once before the first one:
    # a bad option, a missing package, a readout or folds the data cannot take, a study
    # begun with other settings stop the benchmark now, not after the earlier tasks trained.
    for config in configs:
        data = config.task.load()
        fitted, _ = fit_to_data(config, data)
        check_state_dir(fitted, data, data.digest(), other="--name")
    for config in configs:
        try:
            run_search(config, reporter)
        except NoTrialFinished:  # that task's row says so; the others are still worth running
            continue
    return report_benchmark(name, out, uri, tasks)


def report_benchmark(
    name: str, out: str | Path, tracking_uri: str | None, tasks: list[str] | None = None
) -> BenchmarkResult:
    """(Re)build a benchmark's report from its studies in MLflow and record it."""
    from workbench.report.benchmark import benchmark_frames, write_benchmark
    from workbench.report.command import _check_out, study_answer
    from workbench.tracking import (
        benchmark_tasks,
        load_study,
        log_benchmark,
        resolve_tracking_uri,
    )

    out = Path(out)
    _check_out(out)
    uri = resolve_tracking_uri(tracking_uri)
    tasks = tasks or benchmark_tasks(uri, name)
    studies = {task: load_study(uri, f"{name}-{task}") for task in tasks}
    answers = {task: study_answer(uri, f"{name}-{task}", brief=True) for task in tasks}
    frames = benchmark_frames(studies, {task: _published(task) for task in tasks})
    try:
        files = write_benchmark(name, frames, answers, out)
    except OSError as exc:
        raise WorkbenchError(f"Cannot write the report folder {out}: {exc.strerror}") from None
    summary = _summary(frames, len(tasks))
    run_id = log_benchmark(uri, name, tasks, files, summary)
    return BenchmarkResult(name, tuple(tasks), out, tuple(files), run_id, summary)


def _published(task: str) -> tuple[Any, ...]:
    """The task file's published results; none for a task file no longer at hand."""
    from workbench.tasks import load_task

    try:
        return load_task(task).published
    except WorkbenchError:
        return ()


def _summary(frames: dict[str, Any], n_tasks: int) -> str:
    worse = frames.get("not_better", [])
    first = (
        f"Not shown better than the trivial baseline on test: {', '.join(worse)}. "
        if worse
        else ""
    )
    rows = frames["tasks"].to_dict("records") if "tasks" in frames else []
    empty = [r["task"] for r in rows if not r.get("finished trials")]
    if empty:
        first = f"No trial finished on: {', '.join(empty)}. " + first
    if "average_ranks" not in frames:
        return (
            f"{first}{n_tasks} tasks: fewer than two cells with scores on a common task, "
            "no ranking."
        )
    ranks = ", ".join(f"{cell} {rank:.2f}" for cell, rank in frames["average_ranks"].items())
    test = frames["friedman"]
    verdict = (
        "Friedman's test not computed (needs 3 cells and 2 tasks)"
        if test is None
        else f"Friedman p = {test.p_value:.3g}"
        + (": the cells differ" if test.p_value < 0.05 else ": no difference shown")
    )
    return (
        f"{first}Average rank over {len(frames['table'].dropna())} of {n_tasks} tasks "
        "(1 = best): "
        f"{ranks}. {verdict}; critical difference {frames['critical_difference']:.2f}."
    )
