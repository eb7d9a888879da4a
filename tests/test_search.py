"""Searches through the command line, checked in a temporary MLflow store."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

import workbench
from workbench.cli import main
from workbench.search import PARAM_NAMES


def _search(task: Path, space: Path, store: str, *extra: str) -> str:
    args = [
        "search",
        "--task",
        str(task),
        "--space",
        str(space),
        "--tracking-uri",
        store,
        "--experiment",
        "study",
        # One validation part (no cross-validation) keeps a test search at its size.
        *([] if "--folds" in extra else ["--folds", "1"]),
        *extra,
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _space_file(folder: Path, name: str, *dimensions: str) -> Path:
    """A space file ``<name>.yaml`` in ``folder``, one dimension a line."""
    path = folder / f"{name}.yaml"
    lines = "".join(f"  {d}\n" for d in dimensions)
    path.write_text(f"name: {name}\ndescription: d\ndimensions:\n{lines}")
    return path


def _experiment_names(store: str) -> list[str]:
    names = [e.name for e in MlflowClient(store).search_experiments()]
    return [name for name in names if name != "Default"]


def _runs(store: str, experiment: str = "study") -> tuple[list, list]:
    client = MlflowClient(store)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("workbench.role") == "search"]
    trials = [r for r in runs if r.data.tags.get("workbench.role") == "trial"]
    return parents, trials


@pytest.mark.e2e
def test_search_records_parent_and_nested_trials_then_resumes(
    tiny_task: Path, tiny_space: Path, store: str
) -> None:
    output = _search(tiny_task, tiny_space, store, "--max-trials", "3", "--seed", "1")
    assert "Trial 1/3" in output and "Trial 3/3" in output
    assert "Best trial" in output and "Parent run:" in output and "workbench ui" in output
    assert "Answer (the report's first section):" in output
    assert "Runs:    http://127.0.0.1:5000/#/experiments/" in output and "Compare: " in output
    assert "trivial baseline on test" in output

    parents, trials = _runs(store)
    assert len(parents) == 1 and len(trials) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    # The run's description in the MLflow UI holds the same answer.
    assert "trivial baseline on test" in parent.data.tags["mlflow.note.content"]
    assert {"task", "space", "tuner", "workbench.version"} <= set(parent.data.tags)
    assert parent.inputs.dataset_inputs[0].dataset.name == "tiny_adding"
    client = MlflowClient(store)
    for run in trials:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["cell"] == run.data.params["cell"]
        assert set(PARAM_NAMES) <= set(run.data.params)
        for key in (
            "score",
            "n_params",
            "epoch_seconds",
            "fit_seconds",
            "test_mse",
            "recurrent_macs",
            "peak_memory_mb",
        ):
            assert key in run.data.metrics, key
        assert run.data.metrics["score"] == pytest.approx(
            min(m.value for m in client.get_metric_history(run.info.run_id, "val_loss"))
        )
        for key in ("loss", "val_loss", "mse", "val_mse"):
            history = client.get_metric_history(run.info.run_id, key)
            assert [m.step for m in history] == [0, 1], key
        expected_cudnn = "n/a" if run.data.params["cell"] == "simple_rnn" else "true"
        assert run.data.tags["cudnn_eligible"] == expected_cudnn
    best = min(trials, key=lambda r: r.data.metrics["score"])
    assert parent.data.tags["best_run_id"] == best.info.run_id

    # The same command again: nothing is re-run, nothing duplicated.
    again = _search(tiny_task, tiny_space, store, "--max-trials", "3", "--seed", "1")
    assert "Resuming: 3 trial(s) already done" in again
    parents, trials = _runs(store)
    assert len(parents) == 1 and len(trials) == 3
    # Fewer asked than done: said, not "1 trials" beside "3 of 3 trials completed".
    fewer = _search(tiny_task, tiny_space, store, "--max-trials", "1", "--seed", "1")
    assert "3 trial(s) already done; they are not run again. --max-trials 1 asks for no " \
        "more: raise it to run more." in " ".join(fewer.split())

    # More trials continue the same study under the same parent run.
    _search(
        tiny_task, tiny_space, store, "--max-trials", "4", "--seed", "1", "--keep-checkpoints", "2"
    )
    parents, trials = _runs(store)
    assert len(parents) == 1 and len(trials) == 4
    # Only the two best trials keep their best-epoch weights on disk.
    ranked = sorted(trials, key=lambda r: r.data.metrics["score"])
    for run in ranked[:2]:
        assert Path(run.data.tags["checkpoint"]).is_file()
    for run in ranked[2:]:
        assert run.data.tags["checkpoint"] == "deleted"
    # ... and in MLflow, where any host can export them: the others' copies are gone.
    client = MlflowClient(store)
    logged = {
        r.info.run_id: [a.path for a in client.list_artifacts(r.info.run_id, "checkpoint")]
        for r in ranked
    }
    assert all(logged[r.info.run_id] == [r.data.tags["checkpoint_artifact"]] for r in ranked[:2])
    assert all(logged[r.info.run_id] == [] for r in ranked[2:])
    state = Path(parent.data.tags["workbench.state_dir"])
    assert len(list(state.rglob("checkpoint.weights.h5"))) == 2

    # --overwrite starts afresh: the earlier runs are gone from the experiment.
    _search(tiny_task, tiny_space, store, "--max-trials", "1", "--seed", "1", "--overwrite")
    parents, trials = _runs(store)
    assert len(parents) == 1 and len(trials) == 1
    assert parents[0].info.run_id != parent.info.run_id


def test_resuming_with_other_settings_is_refused(
    tiny_task: Path, tiny_space: Path, store: str
) -> None:
    _search(tiny_task, tiny_space, store, "--max-trials", "1")
    before = {r.info.run_id: r.info.status for r in sum(_runs(store), [])}
    result = CliRunner().invoke(
        main,
        [
            "search",
            "--task",
            str(tiny_task),
            "--space",
            str(tiny_space),
            "--tracking-uri",
            store,
            "--experiment",
            "study",
            "--max-trials",
            "1",
            "--tuner",
            "bayesian",
        ],
    )
    assert result.exit_code == 2
    assert "was started with other settings (tuner: 'random', now 'bayesian')" in result.output
    assert len(result.output.strip().splitlines()) == 1
    # A changed dimension is named alone, not inside two whole lines of the space, and
    # without the note on what the workbench changed (nothing it changed explains epochs).
    args = ["search", "--task", str(tiny_task), "--space", str(tiny_space), "--tracking-uri"]
    args += [store, "--experiment", "study", "--folds", "1", "--epochs", "3"]
    epochs = CliRunner().invoke(main, args)
    assert epochs.exit_code == 2
    assert "other settings (space: 'epochs=2', now 'epochs=3'). Rerun" in epochs.output
    # --deterministic changed: refused as --mixed-precision is (it resumed, and the parent
    # run kept saying deterministic=False over trials that were).
    args[-2:] = ["--deterministic"]
    deterministic = CliRunner().invoke(main, args)
    assert "other settings (deterministic: False, now True). Rerun" in deterministic.output
    # Nothing recorded or reopened: the same runs, still FINISHED.
    assert {r.info.run_id: r.info.status for r in sum(_runs(store), [])} == before
    assert set(before.values()) == {"FINISHED"}


def test_a_changed_step_or_range_refuses_a_resume_without_the_workbenchs_note(
    tiny_task: Path, workdir: Path, store: str
) -> None:
    def space(units: str, dropout: str = "{min: 0, max: 0.2, step: 0.1}") -> Path:
        dimensions = (f"units: {units}", f"dropout: {dropout}", "epochs: 1")
        return _space_file(workdir, "stepped", "cell: [gru]", *dimensions)

    _search(tiny_task, space("{min: 2, max: 6, step: 2}"), store, "--max-trials", "1")
    args = ["search", "--task", str(tiny_task), "--tracking-uri", store, "--experiment"]
    args += ["study", "--folds", "1", "--max-trials", "3", "--space"]
    # It resumed on the old step (2, 4, 6): 3 and 5 were never tried.
    step = CliRunner().invoke(main, [*args, str(space("{min: 2, max: 6, step: 1}"))])
    assert step.exit_code == 2, step.output
    assert "other settings (space_steps: 'units step 2', now 'none')" in step.output
    # An edited integer range: no note that a float range became its list of values.
    edited = CliRunner().invoke(main, [*args, str(space("{min: 4, max: 8, step: 2}"))])
    assert "other settings (space: 'units=2..6', now 'units=4..8'). Rerun" in edited.output
    listed = CliRunner().invoke(main, [*args, str(space("[2, 4, 6]"))])
    assert "other settings (space: 'units=2..6', now 'units=2|4|6'). Rerun" in listed.output
    # A study begun before 2026-12-07, whose float range with a step was a range: the note.
    (marker,) = workdir.rglob("study.json")
    marker.write_text(marker.read_text().replace("dropout=0.0|0.1|0.2", "dropout=0..0.2"))
    older = CliRunner().invoke(main, [*args, str(space("{min: 2, max: 6, step: 2}"))])
    assert "(space: 'dropout=0..0.2', now 'dropout=0.0|0.1|0.2'; the space as searched may " \
        "have changed with the workbench since 2026-12-07" in older.output, older.output
    # The user's own list of floats in that range's place: their edit, no note (it blamed
    # the workbench for any range that had become a list of floats).
    mine = space("{min: 2, max: 6, step: 2}", "[0.0, 0.05]")
    edited = CliRunner().invoke(main, [*args, str(mine)])
    assert "(space: 'dropout=0..0.2', now 'dropout=0.0|0.05'). Rerun" in edited.output


def test_a_study_is_not_resumed_on_other_data(
    tiny_task: Path, tiny_space: Path, store: str, workdir: Path
) -> None:
    import json

    _search(tiny_task, tiny_space, store, "--max-trials", "1")
    (marker,) = (workdir / ".workbench").glob("study-*/study.json")
    recorded = json.loads(marker.read_text())
    # A study folder written before the data digest and fold scheme were kept resumes.
    old = {k: v for k, v in recorded.items() if k not in ("data", "fold_scheme", "vocabulary")}
    marker.write_text(json.dumps(old))
    assert "Resuming" in _search(tiny_task, tiny_space, store, "--max-trials", "1")
    # The same command on data that changed since (a file edited, a loader changed): refused.
    marker.write_text(json.dumps({**recorded, "data": "0123456789abcdef"}))
    result = CliRunner().invoke(main, _search_args(tiny_task, tiny_space, store, 1))
    assert result.exit_code == 2
    assert "(data: '0123456789abcdef', now " in result.output
    assert "the task's data or its loader changed since" in " ".join(result.output.split())
    # A text task's vocabulary fitted otherwise (a new loader): the study's models would
    # read other token ids. ("" here: the adding task has none.)
    marker.write_text(json.dumps({**recorded, "vocabulary": "0123456789abcdef"}))
    result = CliRunner().invoke(main, _search_args(tiny_task, tiny_space, store, 1))
    assert result.exit_code == 2
    assert "(vocabulary: '0123456789abcdef', now ''; the text vocabulary" in result.output


def test_a_forecasting_study_on_shuffled_folds_is_not_continued_in_time_order(
    tiny_space: Path, store: str, workdir: Path
) -> None:
    import json

    args = ["search", "--task", "shampoo_sales", "--space", str(tiny_space), "--max-trials", "1"]
    args += ["--epochs", "1", "--folds", "3", "--tracking-uri", store, "--experiment", "s"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    (marker,) = (workdir / ".workbench").glob("s-*/study.json")
    recorded = json.loads(marker.read_text())
    assert recorded["fold_scheme"] == "rolling"
    said = " ".join(first.output.split())
    assert "Scores rest on 3 rolling origins in time order over train + validation" in said
    # A study folder from before: its folds were shuffled (the only kind there was).
    marker.write_text(json.dumps({k: v for k, v in recorded.items() if k != "fold_scheme"}))
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2
    text = " ".join(again.output.split())
    assert "(fold_scheme: 'shuffled', now 'rolling'; forecasting tasks no longer" in text


@pytest.mark.e2e
@pytest.mark.parametrize("tuner", ["bayesian", "hyperband", "grid"])
def test_every_tuner_runs(tuner: str, tiny_task: Path, tiny_space: Path, store: str) -> None:
    _search(tiny_task, tiny_space, store, "--tuner", tuner, "--max-trials", "2")
    parents, trials = _runs(store)
    assert parents[0].data.params["tuner"] == tuner
    assert len(trials) == 2
    assert all(run.info.status == "FINISHED" for run in trials)
    if tuner == "hyperband":
        assert all("tuner/epochs" in run.data.params for run in trials)
        assert parents[0].data.params["max_epochs"] == "2"  # the full budget the report uses
    if tuner == "grid":
        configs = {tuple(sorted(run.data.params.items())) for run in trials}
        assert len(configs) == 2


def _two_cells(workdir: Path) -> Path:
    space = workdir / "two_cells.yaml"
    space.write_text(
        "name: two\ndescription: d\ndimensions:\n  cell: [lstm, gru]\n  units: 4\n"
        "  batch_size: 16\n  epochs: 1\n"
    )
    return space


def test_an_error_in_one_trial_fails_that_trial_not_the_search(
    tiny_task: Path, workdir: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.search import hypermodel

    real = hypermodel.build_model

    def build(config, *args, **kwargs):  # type: ignore[no-untyped-def]
        if config.cell == "gru":
            raise ValueError("no kernel for this cell")
        return real(config, *args, **kwargs)

    monkeypatch.setattr(hypermodel, "build_model", build)
    output = _search(tiny_task, _two_cells(workdir), store, "--tuner", "grid", "--max-trials", "2")
    assert "1 of 2 trials completed (1 failed)" in " ".join(output.split())
    (parent,), trials = _runs(store)
    assert parent.info.status == "FINISHED"
    by_cell = {r.data.params["cell"]: r for r in trials}
    assert by_cell["lstm"].info.status == "FINISHED"
    failed = by_cell["gru"]
    assert failed.info.status == "FAILED" and failed.data.tags["failure"] == "error"
    assert "ValueError: no kernel for this cell" in failed.data.tags["failure_detail"]
    # The nested run a user groups by cell: every hyperparameter a param, a parent, a status.
    for run in trials:
        assert set(PARAM_NAMES) <= set(run.data.params)
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    finished = by_cell["lstm"].data
    assert finished.tags["cudnn_eligible"] == "true" and "score" in finished.metrics
    # Against the trivial baseline sample by sample: the mean difference of the test MSEs.
    metrics, baseline = finished.metrics, float(parent.data.tags["baseline_value"])
    assert metrics["baseline_diff"] == pytest.approx(metrics["test_loss"] - baseline, abs=1e-5)
    assert metrics["baseline_diff_ci_low"] < metrics["baseline_diff"]
    assert metrics["baseline_diff"] < metrics["baseline_diff_ci_high"]
    assert {"n_params", "epoch_seconds", "peak_memory_mb"} <= set(finished.metrics)


def test_an_unexpected_error_after_the_trials_ends_the_search_run_failed(
    tiny_task: Path, workdir: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workbench.report

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("the answer broke")

    monkeypatch.setattr(workbench.report, "study_answer", broken)
    args = ["search", "--task", str(tiny_task), "--space", str(_two_cells(workdir))]
    args += ["--tracking-uri", store, "--experiment", "study", "--folds", "1", "--max-trials", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and isinstance(result.exception, RuntimeError)
    (parent,), (trial,) = _runs(store)
    assert parent.info.status == "FAILED"  # not left RUNNING
    assert trial.info.status == "FINISHED"


def test_a_stop_asked_for_after_training_keeps_the_trial(
    tiny_task: Path, workdir: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.search import stopping, tuner

    real = tuner.Search._final_measures

    def measured_then_stopped(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = real(self, *args, **kwargs)
        stopping._requested.set()  # Ctrl-C during the test evaluation or checkpoint upload
        return result

    monkeypatch.setattr(tuner.Search, "_final_measures", measured_then_stopped)
    args = ["search", "--task", str(tiny_task), "--space", str(_two_cells(workdir))]
    args += ["--tracking-uri", store, "--experiment", "study", "--folds", "1"]
    args += ["--tuner", "grid", "--max-trials", "2"]
    stopped = CliRunner().invoke(main, args)
    assert stopped.exit_code == 130, stopped.output
    (parent,), (kept,) = _runs(store)
    assert parent.info.status == "KILLED"
    assert kept.info.status == "FINISHED" and "score" in kept.data.metrics  # trained: kept
    monkeypatch.setattr(tuner.Search, "_final_measures", real)
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "(recorded before the stop: not run again)" in " ".join(again.output.split())
    assert "Resuming: 1 trial(s) already done" in " ".join(again.output.split())  # said 0
    _, trials = _runs(store)
    ids = sorted(r.data.tags["workbench.trial_id"] for r in trials)
    assert ids == ["0", "1"]  # the kept trial was not trained again
    assert {r.info.status for r in trials} == {"FINISHED"}
    assert kept.info.run_id in {r.info.run_id for r in trials}


def test_small_data_gets_enough_steps_and_training_stops_on_patience(
    tiny_task: Path, workdir: Path, store: str
) -> None:
    from workbench.search.config import batch_size_used

    assert batch_size_used(128, 30) == 4 and batch_size_used(32, 4000) == 32
    assert batch_size_used(16, 3) == 1
    space = workdir / "patient.yaml"
    space.write_text(
        "name: patient\ndescription: d\ndimensions:\n  cell: gru\n  units: 4\n"
        "  learning_rate: 0.05\n  batch_size: 128\n  epochs: 12\n  patience: 1\n"
    )
    _search(tiny_task, space, store, "--max-trials", "1")
    _, (run,) = _runs(store)
    metrics = run.data.metrics
    assert run.data.params["patience"] == "1" and run.data.params["epochs"] == "12"
    assert metrics["epochs_run"] < 12  # stopped once val_loss did not improve for 1 epoch
    assert metrics["best_epoch"] == metrics["epochs_run"] - 1  # what an export's refit runs
    assert metrics["batch_size_used"] == 6  # 48 training samples: 8 steps, not 1 of 128
    assert metrics["optimizer_steps"] == metrics["epochs_run"] * 8


@pytest.mark.e2e
def test_an_accuracy_search_keeps_stops_ranks_and_exports_by_the_highest(
    workdir: Path, store: str
) -> None:
    """Accuracy is maximised: a trial keeps its highest epoch and stops once accuracy has
    not risen for ``patience`` epochs; the best trial, the UI's order and export follow the
    highest score (every other search here minimises a loss)."""
    from workbench.export import export_best

    task = workdir / "digits.yaml"
    task.write_text("name: digits\nloader: sequential_digits\noptions: {limit: 150}\n")
    space = _space_file(
        workdir, "climb", "cell: [simple_rnn, gru]", "units: 8", "learning_rate: 2e-2",
        "batch_size: 16", "epochs: 6", "patience: 1",
    )  # fmt: skip
    output = _search(task, space, store, "--max-trials", "2", "--tuner", "grid")
    assert "orderByKey=metrics.%60score%60&orderByAsc=false" in output  # highest first
    (parent,), trials = _runs(store)
    client = MlflowClient(store)

    def stops_at(history: list[float], mode: str) -> int:  # Keras' rule, patience 1
        best = history[0]
        for epoch, value in enumerate(history[1:], start=2):
            if (value <= best) if mode == "max" else (value >= best):
                return epoch
            best = max(best, value) if mode == "max" else min(best, value)
        return len(history)

    discriminating = 0
    for run in trials:
        steps = client.get_metric_history(run.info.run_id, "val_accuracy")
        history = [m.value for m in sorted(steps, key=lambda m: m.step)]
        assert max(history) > min(history), history  # else any rule would keep the same
        assert run.data.metrics["score"] == pytest.approx(max(history))
        assert run.data.metrics["best_epoch"] == history.index(max(history)) + 1
        assert run.data.metrics["epochs_run"] == len(history) == stops_at(history, "max")
        discriminating += stops_at(history, "max") != stops_at(history, "min")
    assert discriminating  # a trial that "min" would have stopped elsewhere
    scores = {run.info.run_id: run.data.metrics["score"] for run in trials}
    assert len(set(scores.values())) == 2
    best = max(scores, key=scores.get)
    assert parent.data.tags["best_run_id"] == best
    exported = export_best("study", workdir / "model", tracking_uri=store)
    assert exported.run_id == best and all(check.matches for check in exported.checks)


def test_folds_are_decided_from_the_validation_size() -> None:
    from workbench.search.config import folds_for

    assert folds_for(0, 12, None) == 5 and folds_for(0, 49, 30) == 5  # SE >= 0.07: folds
    assert folds_for(0, 50, None) == 1 and folds_for(0, 5000, 3) == 1
    assert folds_for(3, 5000, None) == 3 and folds_for(1, 12, None) == 1  # as asked
    assert folds_for(0, 12, 3) == 3  # stratified: every class in every fold
    # A forecasting task keeps its validation part in time order unless folds are asked for.
    assert folds_for(0, 12, None, time_ordered=True) == 1
    assert folds_for(3, 12, None, time_ordered=True) == 3
    # Decided folds never exceed the samples (4 regression samples: "Expected --folds at
    # most 4 ... Received: --folds 5" blamed a flag nobody gave); asked ones are as asked.
    assert folds_for(0, 1, None, samples=4) == 4 and folds_for(5, 1, None, samples=4) == 5


def test_without_a_test_part_folds_score_the_baseline_on_the_same_folds() -> None:
    from workbench.search.folds import fold_baseline, fold_indices
    from workbench.tasks import TaskData
    from workbench.tasks.splits import _majority_baseline, _mean_baseline

    rng = np.random.default_rng(7)
    x = rng.normal(size=(40, 5, 1)).astype("float32")
    y = rng.normal(size=(40, 1)).astype("float32")
    y[7] = 20.0  # one outlier: on 8 validation samples it made the baseline's MSE 51
    data = TaskData(
        name="noise", problem="regression", n_outputs=1, x_train=x[8:], y_train=y[8:],
        x_val=x[:8], y_val=y[:8], baseline=_mean_baseline(y[8:], y[:8], "val"),
    )  # fmt: skip
    assert data.baseline.value > 40  # the validation part alone
    folded = fold_baseline(data, 5, seed=0).baseline
    # The trials' score is the mean over the folds of each fold's validation loss: so is
    # the baseline's, each fold's mean from that fold's training part.
    pool = np.concatenate([data.y_train, data.y_val])  # the folds index train + validation
    parts = fold_indices(data, 5, seed=0)
    want = np.mean([np.mean((pool[held] - pool[train].mean()) ** 2) for train, held in parts])
    assert folded.value == pytest.approx(want, rel=1e-6) and folded.value < 15
    assert folded.description == (
        f"always predict the mean of each fold's training part: 5-fold cross-validation MSE "
        f"{want:.4g}"
    )
    assert fold_baseline(data, 1, seed=0) is data  # no folds: the validation part's
    labels = np.array([0] * 30 + [1] * 10)
    data = TaskData(
        name="classes", problem="classification", n_outputs=2, x_train=x[8:],
        y_train=labels[8:], x_val=x[:8], y_val=labels[:8],
        baseline=_majority_baseline(labels[8:], labels[:8], "val"),
    )  # fmt: skip
    folded = fold_baseline(data, 5, seed=0).baseline
    assert folded.value == pytest.approx(0.75) and "5-fold cross-validation accuracy 0.750" in (
        folded.description
    )
    tested = dataclasses.replace(data, x_test=x[:4], y_test=labels[:4])
    assert fold_baseline(tested, 5, seed=0) is tested  # a test part: the baseline's is there


def test_rolling_origin_folds_score_the_trivial_forecasts_on_their_blocks() -> None:
    from sktime.datasets import load_airline

    from workbench.search.folds import fold_baseline, fold_indices
    from workbench.tasks import load_task

    # No test part: a trial's score is the mean over 2 rolling-origin blocks of train +
    # validation windows; the baseline was scored on the 13 validation windows alone.
    data = load_task("airline").with_options(n_test=0).load()
    folded = fold_baseline(data, 2, seed=0).baseline
    series = load_airline().to_numpy(dtype="float64")
    train_end, std = 144 - 24, series[: 144 - 24].std()
    starts = np.r_[np.arange(24, train_end - 12 + 1), np.arange(train_end, 144 - 12 + 1)]
    k = np.arange(12)
    means: dict[str, list[float]] = {"naive": [], "seasonal naive": []}
    for _, held in fold_indices(data, 2, seed=0):
        t = starts[held][:, None]
        truth = series[t + k]
        for name, forecast in (("naive", series[t - 1] + 0 * k), ("seasonal naive",
                               series[t + k - 12])):  # fmt: skip
            means[name].append(float((((forecast - truth) / std) ** 2).mean()))
    want = min(np.mean(v) for v in means.values())
    assert folded.value == pytest.approx(want, rel=1e-9) and folded.value != data.baseline.value
    assert folded.description.startswith(
        f"2-fold rolling-origin MSE {want:.4g} in scaled units (seasonal naive, the stronger"
    )
    # A season longer than the first block's past: seasonal naive only on the second block
    # is no figure of the trials' 2 (it read 0, a forecast repeating the series' pattern).
    firsts = [int(starts[held].min()) for _, held in fold_indices(data, 2, seed=0)]
    season = (firsts[0] + firsts[1]) // 2
    data = load_task("airline").with_options(n_test=0, season=season).load()
    folded = fold_baseline(data, 2, seed=0).baseline
    assert folded.value == pytest.approx(np.mean(means["naive"]), rel=1e-9)
    assert "in scaled units (naive), on the windows" in folded.description


def test_more_folds_than_samples_is_one_line(tiny_task: Path) -> None:
    from workbench.errors import WorkbenchError
    from workbench.search.folds import fold_indices
    from workbench.tasks import load_task

    data = load_task(tiny_task).load()  # 48 + 16 samples, regression
    assert len(fold_indices(data, 64, seed=0)) == 64  # one sample each: leave one out
    with pytest.raises(WorkbenchError, match=r"Expected --folds at most 64 for tiny_adding: .* "
                       r"Received: --folds 1000$"):  # fmt: skip
        fold_indices(data, 1000, seed=0)


def test_folds_of_a_series_train_on_the_past_only() -> None:
    from workbench.errors import WorkbenchError
    from workbench.search.folds import fold_splits
    from workbench.tasks import TaskData

    # Window i starts at step i + 10 and predicts steps i + 10 .. i + 12 (horizon 3); the
    # validation part's windows start 3 steps after the training part's last (as cut).
    starts = np.concatenate([np.arange(10, 40), np.arange(42, 52)])
    x = np.repeat(starts, 4).reshape(-1, 4, 1).astype("float32")
    y = np.stack([starts + k for k in range(3)], axis=1).astype("float32")
    data = TaskData(
        name="series",
        problem="regression",
        n_outputs=3,
        x_train=x[:30],
        y_train=y[:30],
        x_val=x[30:],
        y_val=y[30:],
        time_ordered=True,
    )
    folds = fold_splits(data, 3, seed=0)
    assert len(folds) == 3
    blocks = []
    for (train_x, train_y), (val_x, val_y) in folds:
        first_validated = val_y.min()
        assert train_y.max() < first_validated  # no training target inside or after the block
        assert len(train_x) >= len(val_x) and np.all(np.diff(val_x[:, 0, 0]) > 0)
        blocks.append((val_x[0, 0, 0], val_x[-1, 0, 0]))
    assert blocks == sorted(blocks) and blocks[-1][1] == 51  # later blocks, ending at the end
    assert len(folds[0][0][0]) >= 40 // 2 - 2
    with pytest.raises(WorkbenchError, match=r"^Expected --folds at most 19 for series: its 40 "):
        fold_splits(data, 20, seed=0)


def test_stratified_folds_keep_the_class_shares(tmp_path: Path) -> None:
    from workbench.search.folds import fold_splits
    from workbench.tasks import TaskData

    rng = np.random.default_rng(0)
    y = np.array([0] * 30 + [1] * 10)
    x = rng.normal(size=(40, 5, 1)).astype("float32")
    data = TaskData(
        name="t",
        problem="classification",
        n_outputs=2,
        x_train=x[:30],
        y_train=y[:30],
        x_val=x[30:],
        y_val=y[30:],
    )
    folds = fold_splits(data, 5, seed=0)
    seen = np.concatenate([val_y for _, (_, val_y) in folds])
    assert len(folds) == 5 and sorted(seen.tolist()) == sorted(y.tolist())  # each once
    for (train_x, train_y), (val_x, val_y) in folds:
        assert len(val_x) == len(val_y)
        assert (len(val_y), int(val_y.sum())) == (8, 2)  # 30:10 kept in every fold
        assert len(train_x) == len(train_y) == 32


@pytest.mark.e2e
def test_a_small_validation_part_scores_each_trial_by_cross_validation(
    tiny_task: Path, tiny_space: Path, store: str
) -> None:
    # 16 validation samples (< 50): without --folds the trial's score is a 5-fold mean.
    _search(tiny_task, tiny_space, store, "--max-trials", "1", "--epochs", "1", "--folds", "0")
    parents, (run,) = _runs(store)
    assert parents[0].data.params["folds"] == "5"
    assert parents[0].data.params["val_samples"] == str(48 + 16)
    metrics = run.data.metrics
    folds = [metrics[f"score_f{k}"] for k in range(5)]
    assert "score_f5" not in metrics and run.data.params["folds"] == "5"
    assert metrics["score"] == pytest.approx(float(np.mean(folds)), rel=1e-6)
    assert run.data.tags["checkpoint_fold"] in {str(k) for k in range(5)}
    # Each fold trains on 51 or 52 of the 64 rows: batch 16 capped at ceil(51 / 8) = 7, 8 steps
    # an epoch, one epoch in each of the 5 folds.
    assert metrics["batch_size_used"] == 7 and metrics["epochs_run"] == 5
    assert metrics["optimizer_steps"] == 5 * 8
    # Each fold's curve under its fold's name, not a repeat's (there is one repeat).
    assert {"val_loss", "val_loss_f1", "val_loss_f4"} <= set(metrics)
    assert not [name for name in metrics if "_r1" in name]
    # Each fold's score is its own curve's best epoch (the objective, val_loss, is minimised).
    client = MlflowClient(store)
    for k, name in ((0, "val_loss"), (1, "val_loss_f1"), (4, "val_loss_f4")):
        best = min(m.value for m in client.get_metric_history(run.info.run_id, name))
        assert metrics[f"score_f{k}"] == pytest.approx(best, rel=1e-6)


def test_hyperband_trial_count_matches_keras_tuner_brackets() -> None:
    import keras_tuner as kt

    from workbench.search.config import hyperband_trials

    for max_epochs in (2, 3, 5, 10, 30):
        oracle = kt.oracles.HyperbandOracle(kt.Objective("val_loss", "min"), max_epochs, seed=1)
        sizes = [
            oracle._get_size(b, r)
            for b in range(oracle._get_num_brackets())
            for r in range(oracle._get_num_rounds(b))
        ]
        assert hyperband_trials(max_epochs) == sum(sizes)
        assert hyperband_trials(max_epochs, iterations=2) == 2 * sum(sizes)
    assert hyperband_trials(10) == 30


@pytest.mark.e2e
def test_the_matched_search_the_answer_suggests_runs(
    tiny_task: Path, workdir: Path, store: str
) -> None:
    import re
    import shlex

    space = _space_file(
        workdir, "unmatched",
        "cell: [lstm, gru]", "units: [2, 4]",
        "learning_rate: {min: 1e-3, max: 1e-1, sampling: log}", "epochs: 1",
    )  # fmt: skip
    # Seed 1 samples an LSTM and a GRU (another seed may sample one cell twice).
    output = _search(
        tiny_task, space, store, "--tuner", "random", "--max-trials", "2", "--seed", "1"
    )
    assert "no two cells met on 2 or more matched configurations" in output
    (command,) = re.findall(r"`(workbench search [^`]+)`", " ".join(output.split()))
    args = shlex.split(command)[1:]  # "search" and its options
    # The user's own files by path (their names are no shipped task or space).
    assert args[args.index("--task") + 1] == str(tiny_task.resolve())
    assert args[args.index("--space") + 1] == str(space.resolve())
    assert "continuous ranges (learning_rate)" in " ".join(output.split())
    # As the answer says: a copy whose learning rates are listed, then the command.
    listed = workdir / "listed.yaml"
    listed.write_text(space.read_text().replace(
        "{min: 1e-3, max: 1e-1, sampling: log}", "[1.0e-2, 3.0e-2]"
    ))  # fmt: skip
    args[args.index("--space") + 1] = str(listed)
    result = CliRunner().invoke(
        main, [*args, "--tracking-uri", store, "--folds", "1"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "Trial 8/8" in result.output  # 2 cells x 2 units x 2 learning rates
    assert "no two cells met on 2 or more matched configurations" not in result.output
    parent = MlflowClient(store).search_runs(
        [MlflowClient(store).get_experiment_by_name("study-matched").experiment_id],
        filter_string="tags.`workbench.role` = 'search'",
    )[0]
    assert parent.data.params["repeats"] == "3"
    assert parent.data.tags["workbench.space_continuous"] == ""


@pytest.mark.e2e
def test_a_search_on_an_mlflow_server_prunes_its_weights_there_and_links_its_ui(
    tiny_task: Path, workdir: Path, mlflow_server: str
) -> None:
    space = _space_file(workdir, "four", "cell: [lstm, gru]", "units: [2, 3]", "epochs: 1")
    output = _search(
        tiny_task, space, mlflow_server, "--tuner", "grid", "--keep-checkpoints", "1"
    )
    assert "Trial 4/4" in output
    assert f"Open the MLflow UI: the server's own UI at {mlflow_server}, then:" in output
    assert "View run" not in output  # MLflow's "🏃 View run trial-001 ... at:" per run
    assert f"Runs:    {mlflow_server}/#/experiments/" in output
    client = MlflowClient(mlflow_server)
    _, trials = _runs(mlflow_server)
    kept = [t for t in trials if t.data.tags["checkpoint"] != "deleted"]
    assert len(trials) == 4 and len(kept) == 1  # --keep-checkpoints 1
    for trial in trials:  # the served artifacts (mlflow-artifacts:) pruned with the tag
        logged = [a.path for a in client.list_artifacts(trial.info.run_id)]
        assert ("checkpoint" in logged) == (trial in kept), (trial.data.tags, logged)
    # The report reads the study back through the server (a history call per metric).
    report = CliRunner().invoke(
        main,
        ["report", "--experiment", "study", "--tracking-uri", mlflow_server, "--out", "r"],
        catch_exceptions=False,
    )
    assert report.exit_code == 0, report.output
    assert (workdir / "r" / "report.html").is_file()


@pytest.mark.e2e
def test_hyperband_runs_whole_brackets_and_the_report_compares_the_full_budget(
    tiny_task: Path, workdir: Path, store: str
) -> None:
    from workbench.report import build_report, trials_frame
    from workbench.tracking import load_study

    space = workdir / "three_epochs.yaml"
    space.write_text(
        "name: three\ndescription: d\ndimensions:\n  cell: [lstm, gru]\n  units: [2, 4]\n"
        "  learning_rate: {min: 1e-3, max: 1e-1, sampling: log}\n  epochs: 3\n"
    )
    # --max-trials 2 no longer cuts Hyperband short: max_epochs 3 is 2 brackets, 6 trials.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        output = _search(tiny_task, space, store, "--tuner", "hyperband", "--max-trials", "2")
    assert "Trial 6/6" in output
    # Continuations start from the kept weights with a fresh optimizer, without Keras'
    # warning that the saved optimizer state is skipped.
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
    _, trials = _runs(store)
    epochs = sorted(int(run.data.params["tuner/epochs"]) for run in trials)
    assert epochs == [1, 1, 1, 3, 3, 3]
    report = build_report(load_study(store, "study"))
    assert any(
        "compare the 3 trials trained to the full budget of 3 epochs" in note
        for note in report.sections[0].notes
    )
    # A trial promoted from the first round costs that round too; the study's compute
    # counts each round once.
    rows = trials_frame(load_study(store, "study")).set_index("trial_id")
    promoted = rows[rows["resumed_from"].notna()]
    assert len(promoted) >= 1
    for trial_id, row in promoted.iterrows():
        earlier = rows.loc[row["resumed_from"]]
        assert row["fit_seconds"] == pytest.approx(
            row["round_fit_seconds"] + earlier["fit_seconds"]
        ), trial_id
    compute = f"Compute: {rows['round_fit_seconds'].sum():.1f} s of training"
    assert compute in " ".join(report.sections[1].notes)


@pytest.mark.e2e
@pytest.mark.parametrize("tuner", ["random", "bayesian", "hyperband", "grid"])
def test_the_default_seed_reproduces_the_tuners_choices(
    tuner: str, tiny_task: Path, workdir: Path
) -> None:
    # A continuous learning rate: two unseeded draws never agree.
    space = workdir / "seeded_space.yaml"
    space.write_text(
        "name: seeded\ndescription: d\ndimensions:\n  cell: [simple_rnn, lstm, gru]\n"
        "  units: [2, 4]\n  learning_rate: {min: 1e-3, max: 1e-1, sampling: log, step: 10}\n"
        "  epochs: 1\n"
        if tuner == "grid"
        else "name: seeded\ndescription: d\ndimensions:\n  cell: [simple_rnn, lstm, gru]\n"
        "  units: [2, 4]\n  learning_rate: {min: 1e-3, max: 1e-1, sampling: log}\n  epochs: 2\n"
    )
    chosen = []
    for store in ("one", "two"):  # fresh stores and state folders, the default --seed
        uri = f"sqlite:///{workdir / store / 'mlflow.db'}"
        CliRunner().invoke(
            main,
            [
                "search",
                "--task",
                str(tiny_task),
                "--space",
                str(space),
                "--tracking-uri",
                uri,
                "--tuner",
                tuner,
                "--max-trials",
                "2",
                "--folds",
                "1",
            ],
            catch_exceptions=False,
        )
        _, trials = _runs(uri, "tiny_adding-seeded")
        chosen.append(
            sorted(
                (
                    run.data.tags["workbench.trial_id"],
                    run.data.params["cell"],
                    run.data.params["units"],
                    run.data.params["learning_rate"],
                )
                for run in trials
            )
        )
    assert len(chosen[0]) >= 2
    assert chosen[0] == chosen[1]


@pytest.mark.e2e
def test_default_store_is_sqlite_under_mlruns(
    tiny_task: Path, tiny_space: Path, workdir: Path
) -> None:
    result = CliRunner().invoke(
        main,
        [
            "search",
            "--task",
            str(tiny_task),
            "--space",
            str(tiny_space),
            "--max-trials",
            "1",
            "--epochs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (workdir / "mlruns" / "mlflow.db").is_file()
    _, trials = _runs(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}", "tiny_adding-tiny")
    assert trials[0].data.params["epochs"] == "1"
    assert Path(trials[0].info.artifact_uri.removeprefix("file://")).is_relative_to(
        workdir / "mlruns"
    )


def test_unreachable_tracking_server_fails_before_training(
    tiny_task: Path, tiny_space: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.tasks.spec import TaskSpec

    def never(self: object) -> None:  # a large file would load for minutes first
        raise AssertionError("the data was loaded before the store was checked")

    monkeypatch.setattr(TaskSpec, "load", never)
    result = CliRunner().invoke(
        main,
        [
            "search",
            "--task",
            str(tiny_task),
            "--space",
            str(tiny_space),
            "--tracking-uri",
            "http://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 2
    assert "Cannot reach the MLflow tracking store at http://127.0.0.1:9" in result.output
    assert "Trial" not in result.output


def test_moved_keras_tuner_internals_stop_the_search_before_any_run(
    tiny_task: Path, tiny_space: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras_tuner as kt
    from keras_tuner.src.engine import tuner as kt_tuner

    from workbench.search.internals import check_keras_tuner

    check_keras_tuner()  # the installed version has every internal the workbench uses
    monkeypatch.delattr(kt_tuner.Tuner, "_get_checkpoint_fname")
    result = CliRunner().invoke(
        main,
        ["search", "--task", str(tiny_task), "--space", str(tiny_space), "--tracking-uri", store],
    )
    assert result.exit_code == 2, result.output
    assert f"keras-tuner {kt.__version__} has no " in result.output
    assert "Tuner._get_checkpoint_fname" in result.output and "<1.5" in result.output
    assert _experiment_names(store) == []  # nothing recorded


@pytest.mark.e2e
def test_diverging_trials_fail_and_an_all_diverged_search_says_so(
    tiny_task: Path, workdir: Path, store: str
) -> None:
    space = workdir / "diverge.yaml"
    # Adam at this rate overflows float32 in the first epoch, with or without clipping.
    space.write_text(
        "dimensions: {cell: [simple_rnn, lstm], units: 4, learning_rate: 1e20, "
        "clipping: [none, norm], batch_size: 16, epochs: 2}\n"
    )
    args = [
        "search",
        "--task",
        str(tiny_task),
        "--space",
        str(space),
        "--tracking-uri",
        store,
        "--experiment",
        "study",
        "--max-trials",
        "3",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "DIVERGED" in result.output
    assert "Error: No trial of the search finished: 3 failed (diverged). Lower the learning " \
        "rate or add clipping; look at the failed runs' 'failure' tags" in result.output
    assert "Traceback" not in result.output
    parents, trials = _runs(store)
    assert parents[0].info.status == "FAILED"
    assert len(trials) == 3
    for run in trials:
        assert run.info.status == "FAILED"
        assert run.data.tags["failure"] == "diverged"
        assert run.data.tags["diverged_epoch"] == "0"
        assert run.data.tags["diverged_repeat"] == "0"
        assert run.data.tags["diverged_fold"] == "0"  # 16 validation samples: 5 folds
        assert "score" not in run.data.metrics
        # What it cost before it diverged, for the report's compute.
        assert run.data.metrics["fit_seconds"] > 0 and run.data.metrics["epochs_run"] == 0
    # KerasTuner's own record, which its oracles learn from: failed, with no score to learn.
    saved = [json.loads(p.read_text()) for p in (workdir / ".workbench").rglob("trial.json")]
    assert len(saved) == 3
    assert all(t["status"] == "FAILED" and t["score"] is None for t in saved), saved


@pytest.mark.e2e
def test_repeats_log_each_score_their_mean_and_gradient_health(
    tiny_task: Path, store: str, workdir: Path
) -> None:
    space = workdir / "clipped.yaml"
    space.write_text(
        "dimensions: {cell: gru, units: 4, clipping: norm, clip_threshold: 1.0, "
        "learning_rate: 1e-2, batch_size: 16, epochs: 2}\n"
    )
    _search(tiny_task, space, store, "--max-trials", "1", "--repeats", "2", "--seed", "4")
    parents, trials = _runs(store)
    assert parents[0].data.params["repeats"] == "2"
    (run,) = trials
    metrics, client = run.data.metrics, MlflowClient(store)
    assert run.data.params["repeats"] == "2"

    def history(key: str) -> list[float]:
        points = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in points] == [0, 1], key  # one value per epoch
        return [m.value for m in points]

    # Each repeat's score is its best validation loss; repeat 1 logs its curves as `*_r1`.
    assert metrics["score_r0"] == pytest.approx(min(history("val_loss")))
    assert metrics["score_r1"] == pytest.approx(min(history("val_loss_r1")))
    assert metrics["score_r0"] != metrics["score_r1"]  # different seeds, different models
    scores = [metrics["score_r0"], metrics["score_r1"]]
    assert metrics["score"] == pytest.approx(sum(scores) / 2)
    assert metrics["score_std"] == pytest.approx(abs(scores[0] - scores[1]) / 2**0.5)
    kept = int(run.data.tags["checkpoint_repeat"])
    assert scores[kept] == min(scores)
    # On test, as on validation, the trial is its repeats' models together (each at its own
    # best epoch), not the kept one alone; the kept weights' own figures are checkpoint_test_*.
    assert metrics["test_loss"] != metrics["checkpoint_test_loss"]
    assert metrics["test_models"] == 2
    assert metrics["test_mse"] == metrics["test_loss"]
    baseline = float(parents[0].data.tags["baseline_value"])
    assert metrics["baseline_diff"] == pytest.approx(metrics["test_mse"] - baseline, rel=1e-6)

    # Gradient health per epoch and repeat; clipping=norm at 1.0 flags the norms above 1.
    norms = history("grad_norm") + history("grad_norm_r1")
    assert all(n > 0 for n in norms)
    assert metrics["grad_norm_max"] == pytest.approx(max(norms))
    flags = history("grad_clipped") + history("grad_clipped_r1")
    assert flags == [float(n > 1.0) for n in norms], norms
    assert set(flags) == {0.0, 1.0}, norms  # this seed crosses the threshold both ways
    assert all(v > 0 for v in history("grad_input_early") + history("grad_input_late"))
    assert 0 < metrics["grad_probe_seconds"] < metrics["fit_seconds"]

    # Export checks the kept weights against the score of the repeat they come from.
    result = CliRunner().invoke(
        main,
        ["export", "--experiment", "study", "--tracking-uri", store, "--out", "model"],
    )
    assert result.exit_code == 0, result.output
    assert f"validation score_r{kept} " in result.output and "MISMATCH" not in result.output
    assert "test checkpoint_test_loss " in result.output
    exported = json.loads((workdir / "model" / "hyperparameters.json").read_text())
    assert exported["trial"]["seed"] == 4 + 0 + 100003 * kept  # the kept repeat's seed

    # Resuming the study with another number of repeats is refused before any training.
    args = ["search", "--task", str(tiny_task), "--space", str(space), "--tracking-uri", store]
    args += ["--experiment", "study", "--max-trials", "2", "--repeats", "3", "--seed", "4"]
    args += ["--folds", "1"]
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2
    assert "was started with other settings (repeats: 2, now 3)" in again.output


def test_without_the_gradient_probe_trials_log_no_gradient_health_and_the_report_says_why(
    tiny_task: Path, store: str, workdir: Path
) -> None:
    from workbench.report import build_report
    from workbench.tracking import load_study

    space = workdir / "one.yaml"
    space.write_text("dimensions: {cell: lstm, units: 4, epochs: 2}\n")
    output = _search(tiny_task, space, store, "--max-trials", "1", "--no-gradient-probe")
    assert "1 of 1 trials completed" in output
    parents, (trial,) = _runs(store)
    assert parents[0].data.params["gradient_probe"] == "False"
    assert "val_loss" in trial.data.metrics and "fit_seconds" in trial.data.metrics
    assert not [k for k in trial.data.metrics if k.startswith("grad_")]
    (health,) = [
        s for s in build_report(load_study(store, "study")).sections if "Gradient" in s.title
    ]
    assert health.notes == [
        "Gradient norms: not measured, the search ran with --no-gradient-probe."
    ]

    # Resuming with the probe on would mix trials with and without it: refused.
    args = ["search", "--task", str(tiny_task), "--space", str(space), "--tracking-uri", store]
    again = CliRunner().invoke(main, [*args, "--experiment", "study", "--folds", "1"])
    assert again.exit_code == 2
    assert "was started with other settings (gradient_probe: False, now True)" in again.output


def test_deterministic_reruns_give_bit_identical_scores(tiny_task: Path, workdir: Path) -> None:
    space = workdir / "one.yaml"
    space.write_text("dimensions: {cell: [lstm, gru], units: 4, epochs: 2, dropout: 0.2}\n")
    scores = []
    for name in ("one", "two"):  # fresh stores and state folders
        uri = f"sqlite:///{workdir / name / 'mlflow.db'}"
        _search(tiny_task, space, uri, "--max-trials", "2", "--deterministic")
        _, trials = _runs(uri)
        scores.append(
            sorted((r.data.params["cell"], r.data.metrics["score"]) for r in trials)
        )
    assert len(scores[0]) == 2 and scores[0] == scores[1]  # equal, not approximately


def test_steps_per_execution_changes_how_trials_run_not_what_they_learn(
    tiny_task: Path, store: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras

    compiled: list[int] = []
    real = keras.Model.compile

    def compile_(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        compiled.append(kwargs.get("steps_per_execution", 1))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "compile", compile_)
    space = workdir / "one.yaml"
    space.write_text("dimensions: {cell: gru, units: 4, epochs: 2}\n")
    histories = {}
    # 48 samples at the capped batch of 6: 8 steps an epoch, so 3 per call ends short.
    for steps in ("1", "3"):
        common = ("--max-trials", "1", "--deterministic", "--no-gradient-probe", "--overwrite")
        compiled.clear()
        _search(tiny_task, space, store, *common, "--steps-per-execution", steps)
        _, (trial,) = _runs(store)
        assert trial.data.tags["steps_per_execution"] == steps
        assert compiled and set(compiled) == {int(steps)}  # the models that trained used it
        history = MlflowClient(store).get_metric_history(trial.info.run_id, "val_loss")
        histories[steps] = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert len(histories["1"]) == 2
    assert histories["3"] == pytest.approx(histories["1"], rel=1e-6)

    for wrong in ("0", "99999999999999999999"):  # the second overflowed in every trial
        args = [*_search_args(tiny_task, space, store, 1), "--steps-per-execution", wrong]
        bad = CliRunner().invoke(main, args)
        assert bad.exit_code == 2
        assert bad.output.strip().startswith("Error: Expected --steps-per-execution from 1 to")
        assert bad.output.strip().endswith(f"Received: {wrong}")


def test_a_trial_writes_its_best_weights_once_when_it_ends(
    tiny_task: Path, store: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras

    written: list[str] = []
    save_weights = keras.Model.save_weights

    def counted(self: keras.Model, filepath: str, *args: object, **kwargs: object) -> None:
        written.append(str(filepath))
        save_weights(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", counted)
    space = workdir / "one.yaml"
    space.write_text("dimensions: {cell: gru, units: 4, learning_rate: 1e-2, epochs: 4}\n")
    _search(tiny_task, space, store, "--max-trials", "1", "--seed", "2", "--no-gradient-probe")
    _, (trial,) = _runs(store)
    history = MlflowClient(store).get_metric_history(trial.info.run_id, "val_loss")
    losses = [m.value for m in sorted(history, key=lambda m: m.step)]
    better = [i for i, v in enumerate(losses) if v < min(losses[:i], default=float("inf"))]
    # KerasTuner alone writes at each better epoch: this trial has several of them.
    assert len(better) >= 2, losses
    assert written == [trial.data.tags["checkpoint"]]
    assert Path(written[0]).is_file()


@pytest.mark.e2e
def test_out_of_memory_fails_that_trial_and_the_search_goes_on(
    tiny_task: Path, workdir: Path, store: str
) -> None:
    space = workdir / "oom.yaml"
    # 150,000 LSTM units need a 600,000 x 150,000 float kernel (360 GB): a real allocation
    # failure (ResourceExhaustedError), not a simulated one.
    space.write_text("dimensions: {cell: lstm, units: [4, 150000], epochs: 1}\n")
    output = _search(tiny_task, space, store, "--tuner", "grid", "--max-trials", "2")
    assert "1 of 2 trials completed (1 failed)" in output, output
    _, trials = _runs(store)
    by_units = {run.data.params["units"]: run for run in trials}
    assert by_units["150000"].info.status == "FAILED"
    assert by_units["150000"].data.tags["failure"] == "oom"
    assert "score" not in by_units["150000"].data.metrics
    assert by_units["4"].info.status == "FINISHED"
    # First in the space, KerasTuner builds it before any trial, to learn the dimensions:
    # a whole-search error, in one line (it was a ResourceExhaustedError traceback).
    space.write_text("dimensions: {cell: lstm, units: [150000, 4], epochs: 1}\n")
    args = [*_search_args(tiny_task, space, store, 2), "--experiment", "first-too-big"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: The space's first configuration ran out of memory as ")
    parents, trials = _runs(store, "first-too-big")
    assert [p.info.status for p in parents] == ["FAILED"] and not trials


def _search_args(task: Path, space: Path, store: str, trials: int) -> list[str]:
    return [
        "search",
        "--task",
        str(task),
        "--space",
        str(space),
        "--tracking-uri",
        store,
        "--experiment",
        "study",
        "--max-trials",
        str(trials),
        "--folds",
        "1",
    ]


def _subprocess_env() -> dict[str, str]:
    # the same workbench code as this test process, whichever way it is installed
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(Path(workbench.__file__).parents[1]),
    }


def _search_process(
    task: Path, space: Path, store: str, trials: int, own_group: bool = False
) -> subprocess.Popen:
    args = [sys.executable, "-m", "workbench.cli", *_search_args(task, space, store, trials)]
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_subprocess_env(),
        start_new_session=own_group,
    )


def _wait_for_trials(process: subprocess.Popen, count: int) -> str:
    seen, output = 0, ""
    for line in process.stdout:  # type: ignore[union-attr]
        output += line
        if line.startswith("Trial "):
            seen += 1
            if seen == count:
                return output
    raise AssertionError(f"the search ended before {count} trial(s):\n{output}")


def _wait_for_running_trial(store: str, trial_id: str, timeout: float = 120) -> None:
    """Wait until the trial's MLflow run exists and is RUNNING (a loaded machine is slow)."""
    client = MlflowClient(store)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name("study")
        if experiment is not None:
            runs = client.search_runs(
                [experiment.experiment_id],
                f"tags.`workbench.trial_id` = '{trial_id}' and attributes.status = 'RUNNING'",
            )
            if runs:
                return
        time.sleep(0.1)
    raise AssertionError(f"trial {trial_id} did not start within {timeout} s")


@pytest.fixture
def slower_task(workdir: Path) -> Path:
    """The tiny adding task with trials long enough that a signal sent while one runs lands
    inside it: a 48-sample trial could end FINISHED between the test seeing it run and the
    signal (the race 4373508 took out of test_cluster)."""
    path = workdir / "slower_adding.yaml"
    path.write_text(
        "name: slower_adding\nloader: adding\n"
        "options: {length: 10, n_train: 1500, n_val: 16, n_test: 16, seed: 3}\n"
    )
    return path


@pytest.mark.e2e
@pytest.mark.parametrize("mid_trial", [True, False])
def test_kill_9_then_same_command_resumes_without_duplicates(
    slower_task: Path, tiny_space: Path, store: str, mid_trial: bool
) -> None:
    process = _search_process(slower_task, tiny_space, store, 4)
    after_trials = 1 if mid_trial else 2
    try:
        _wait_for_trials(process, after_trials)
        if mid_trial:  # the next trial's run is open: the kill leaves it RUNNING
            _wait_for_running_trial(store, str(after_trials))
            time.sleep(0.3)
        process.send_signal(signal.SIGKILL)  # else right at the next trial's start
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    again = CliRunner().invoke(
        main, _search_args(slower_task, tiny_space, store, 4), catch_exceptions=False
    )
    assert again.exit_code == 0, again.output
    assert "Resuming" in again.output, again.output
    parents, trials = _runs(store)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    finished = [r for r in trials if r.info.status == "FINISHED"]
    assert sorted(r.data.tags["workbench.trial_id"] for r in finished) == ["0", "1", "2", "3"]
    others = [r for r in trials if r.info.status != "FINISHED"]
    if mid_trial:  # the lost run ended KILLED, and its trial ran again
        assert [(r.info.status, r.data.tags["workbench.trial_id"]) for r in others] == [
            ("KILLED", "1")
        ]
        assert others[0].data.tags["failure"] == "interrupted"
    else:
        assert all(r.info.status in ("KILLED", "FAILED") for r in others)
        assert len(others) <= 1  # at most the trial that was opening when killed


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("signum", "to_group"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True), (signal.SIGHUP, True)],
    ids=["sigint", "sigterm", "ctrl-c-in-a-terminal", "terminal-closed"],
)
def test_ctrl_c_or_sigterm_ends_runs_cleanly_and_the_same_command_resumes(
    slower_task: Path, tiny_space: Path, store: str, signum: int, to_group: bool
) -> None:
    # A terminal's Ctrl-C signals the whole process group: the tracking process too.
    process = _search_process(slower_task, tiny_space, store, 4, own_group=to_group)
    try:
        _wait_for_trials(process, 1)
        _wait_for_running_trial(store, "1")
        time.sleep(0.3)  # inside the second trial's training
        if to_group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, rest
    assert "Interrupted. Finished trials are kept; run the same command again to resume." in rest
    assert "Traceback" not in rest and "Exception ignored" not in rest
    parents, trials = _runs(store)
    assert [p.info.status for p in parents] == ["KILLED"]
    assert all(r.info.status != "RUNNING" for r in trials)
    interrupted = [r for r in trials if r.info.status == "KILLED"]
    assert len(interrupted) == 1
    # What it trained before the signal counts in the compute (it logged nothing).
    assert interrupted[0].data.metrics["fit_seconds"] > 0

    again = CliRunner().invoke(main, _search_args(slower_task, tiny_space, store, 4))
    assert again.exit_code == 0, again.output
    parents, trials = _runs(store)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    finished = [r for r in trials if r.info.status == "FINISHED"]
    assert sorted(r.data.tags["workbench.trial_id"] for r in finished) == ["0", "1", "2", "3"]
    assert len(trials) == 5  # the interrupted trial's KILLED run stays, as a record


@pytest.mark.e2e
def test_two_searches_write_into_one_new_default_store_at_once(
    tiny_task: Path, tiny_space: Path, workdir: Path
) -> None:
    # Both start on a store that does not exist yet: MLflow creates its schema on first use.
    processes = []
    for name in ("first", "second"):
        args = _search_args(tiny_task, tiny_space, "", 2)
        args = [a for a in args if a not in ("--tracking-uri", "")]
        args[args.index("study")] = name
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "workbench.cli", *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={k: v for k, v in _subprocess_env().items() if k != "MLFLOW_TRACKING_URI"},
            )
        )
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
    store = f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}"
    for name in ("first", "second"):
        parents, trials = _runs(store, name)
        assert [p.info.status for p in parents] == ["FINISHED"]
        assert [t.info.status for t in trials] == ["FINISHED", "FINISHED"]


@pytest.mark.e2e
def test_memory_stays_flat_across_trials(tiny_space: Path, store: str, workdir: Path) -> None:
    """The cheap version of scripts/bench_memory.py: RSS at trials 7-8 vs at trials 2-3."""
    from workbench.search import make_search_config, run_search
    from workbench.spaces import load_space
    from workbench.tasks import load_task

    def rss_mb() -> float:
        gc.collect()  # count what is kept, not garbage a later collection would free
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    class Recorder:
        rss: list[float] = []

        def search_started(self, *args: object) -> None: ...
        def trial_started(self, *args: object) -> None: ...
        def epoch_ended(self, *args: object) -> None: ...
        def trial_ended(self, result: object) -> None:
            self.rss.append(rss_mb())

    config = make_search_config(
        task=load_task("adding").with_options(length=30, n_train=32, n_val=16, n_test=16),
        space=load_space(str(tiny_space)).with_fixed(epochs=1, units=8),
        max_trials=8,
        folds=1,
        tracking_uri=store,
        state_root=workdir / "state",
    )
    recorder = Recorder()
    run_search(config, recorder)
    assert len(recorder.rss) == 8
    early, late = recorder.rss[1:3], recorder.rss[-2:]
    # Without releasing each trial's graphs this grew by 15-20 MB a trial (~100 MB here).
    assert sum(late) / 2 - sum(early) / 2 < 40, recorder.rss


def test_a_search_of_many_trials_shows_no_retracing_warning(
    tiny_task: Path, store: str, workdir: Path
) -> None:
    # Each trial is a new model, traced once for its test predictions: TensorFlow's "5 out
    # of the last 5 calls to <function ...make_predict_function...> triggered tf.function
    # retracing" showed from the fifth trial on (the README's own 6-trial search).
    import logging

    from workbench.search import make_search_config, run_search
    from workbench.spaces import parse_space
    from workbench.tasks import load_task

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    space = {"cell": "gru", "units": [2, 3, 4, 5, 6, 7], "epochs": 1}
    config = make_search_config(
        task=load_task(str(tiny_task)),
        space=parse_space({"dimensions": space}),
        tuner="grid",
        folds=1,
        gradient_probe=False,  # its own traces are held back apart (test_meters)
        tracking_uri=store,
        state_root=workdir / "state",
    )
    logging.getLogger("tensorflow").addHandler(handler)
    try:
        result = run_search(config, None)
    finally:
        logging.getLogger("tensorflow").removeHandler(handler)
    assert [t.status for t in result.trials] == ["completed"] * 6
    assert not [r for r in records if "retracing" in r.getMessage()], records


def test_a_grid_runs_whole_unless_max_trials_cuts_it(
    tiny_task: Path, workdir: Path, store: str
) -> None:
    from workbench.search import make_search_config
    from workbench.spaces import parse_space
    from workbench.tasks import load_task

    space = parse_space({"dimensions": {"cell": ["lstm", "gru"], "units": [2, 3, 4, 5, 6, 7]}})
    task = load_task(str(tiny_task))

    def config(**options: object):
        return make_search_config(
            task=task, space=space, tracking_uri=store, state_root=workdir, **options
        )

    assert config(tuner="grid").max_trials == 12 and config(tuner="grid").notes == ()
    assert config(tuner="grid", max_trials=50).max_trials == 12
    assert config(tuner="random").max_trials == 10  # other tuners: 10 unless given
    cut = config(tuner="grid", max_trials=10)
    assert cut.max_trials == 10
    (note,) = cut.notes
    assert note.startswith("The grid has 12 configurations; --max-trials 10 runs the first 10")
    # Said before the search starts.
    space_file = _space_file(
        workdir, "twelve", "cell: [lstm, gru]", "units: [2, 3, 4, 5, 6, 7]", "epochs: 1"
    )
    output = _search(tiny_task, space_file, store, "--tuner", "grid", "--max-trials", "1")
    assert "Note: The grid has 12 configurations; --max-trials 1 runs the first 1" in " ".join(
        output.split()
    )


def test_a_grid_over_log_ranges_with_a_step_trains_whole_numbers(
    tiny_task: Path, workdir: Path, store: str
) -> None:
    space_file = _space_file(
        workdir,
        "logs",
        "cell: [gru]",
        "units: 2",
        "batch_size: {min: 4, max: 8, step: 2, sampling: log}",
        "epochs: {min: 1, max: 2, step: 2, sampling: log}",
    )
    output = _search(tiny_task, space_file, store, "--tuner", "grid", "--no-gradient-probe")
    # KerasTuner's grid hands such a range's values as floats: every batch size or epochs
    # but the first failed its trial ("'float' object cannot be interpreted as an integer").
    assert "4 of 4 trials completed (0 failed)" in output, output
    assert "batch_size=8.0" not in output
    _, trials = _runs(store)
    seen = {(r.data.params["batch_size"], r.data.params["epochs"]) for r in trials}
    assert seen == {(b, e) for b in ("4", "8") for e in ("1", "2")}
    # The parent's best.<name> tags read as the best run's params ("0.0" against "0").
    (parent,), runs = _runs(store)
    best = {r.info.run_id: r for r in runs}[parent.data.tags["best_run_id"]]
    tags = {k[5:]: v for k, v in parent.data.tags.items() if k.startswith("best.")}
    assert tags and tags == {k: best.data.params[k] for k in tags}


def test_hyperband_keeps_one_validation_part_and_per_step_tasks_no_readout(
    tiny_task: Path, workdir: Path, store: str
) -> None:
    from workbench.search import make_search_config
    from workbench.search.runner import fit_to_data
    from workbench.spaces import load_space, parse_space
    from workbench.tasks import load_task

    task = load_task(str(tiny_task))  # 16 validation samples: 5 folds unless Hyperband
    options = {"task": task, "space": load_space("small"), "tracking_uri": store}
    data = task.load()
    random, _ = fit_to_data(make_search_config(**options, state_root=workdir), data)
    assert random.folds == 5
    hyperband, validated = fit_to_data(
        make_search_config(**options, tuner="hyperband", state_root=workdir), data
    )
    assert hyperband.folds == 1 and validated == 0
    assert any("Hyperband trains its later rounds on" in note for note in hyperband.notes)
    # copy_memory predicts every step: readout last and mean would be one model twice.
    per_step = load_task("copy_memory").with_options(n_train=8, n_val=4, n_test=4)
    config = make_search_config(
        task=per_step, space=load_space("default"), tracking_uri=store, state_root=workdir
    )
    assert not config.space["readout"].is_fixed
    fitted, _ = fit_to_data(config, per_step.load())
    assert fitted.space["readout"].values == ("last",)
    assert any("readout does not apply" in note for note in fitted.notes)
    # A readout the space fixes is not used either: logged as last, and never refused.
    for fixed in ("mean", "max"):
        space = parse_space({"dimensions": {"cell": "gru", "readout": fixed}})
        config = make_search_config(
            task=per_step, space=space, tracking_uri=store, state_root=workdir
        )
        fitted, _ = fit_to_data(config, per_step.load())
        assert fitted.space["readout"].values == ("last",)
        assert any("readout does not apply" in note for note in fitted.notes)


def test_an_answer_the_store_cannot_give_back_leaves_the_search_finished(
    tiny_task: Path, tiny_space: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workbench.report
    from workbench.errors import WorkbenchError

    def unreadable(*args: object) -> list[str]:
        raise WorkbenchError("Cannot read experiment 'study' from the store: 503")

    monkeypatch.setattr(workbench.report, "study_answer", unreadable)
    output = _search(tiny_task, tiny_space, store, "--max-trials", "1")
    assert "The answer could not be read back (Cannot read experiment" in output
    assert "workbench report --experiment study" in output
    parents, _ = _runs(store)
    assert parents[0].info.status == "FINISHED"


def test_a_study_whose_experiment_was_deleted_in_the_ui_resumes(
    tiny_task: Path, tiny_space: Path, store: str
) -> None:
    _search(tiny_task, tiny_space, store, "--max-trials", "1")
    client = MlflowClient(store)
    client.delete_experiment(client.get_experiment_by_name("study").experiment_id)
    output = _search(tiny_task, tiny_space, store, "--max-trials", "2")
    assert "Resuming: 1 trial(s) already done" in output and "2 of 2 trials completed" in output
    assert client.get_experiment_by_name("study").lifecycle_stage == "active"


def test_a_per_step_task_on_a_grid_counts_the_grid_without_readout(
    workdir: Path, store: str
) -> None:
    from workbench.search import make_search_config
    from workbench.search.runner import fit_to_data
    from workbench.spaces import parse_space
    from workbench.tasks import load_task

    space = parse_space(
        {"dimensions": {"cell": ["lstm", "gru"], "units": [2, 4], "readout": ["last", "mean"]}}
    )
    task = load_task("copy_memory").with_options(length=3, n_train=8, n_val=4, n_test=4)
    data = task.load()
    for asked, trials in ((None, 4), (6, 4), (3, 3)):
        config = make_search_config(
            task=task, space=space, tuner="grid", max_trials=asked, tracking_uri=store,
            state_root=workdir,
        )  # fmt: skip
        fitted, _ = fit_to_data(config, data)
        assert fitted.max_trials == trials, asked
        grid = [n for n in fitted.notes if n.startswith("The grid has")]
        assert grid == ([] if asked != 3 else [grid[0]]) and (asked != 3 or "has 4 " in grid[0])


def test_hyperband_with_folds_is_refused_before_anything_loads(store: str) -> None:
    from workbench.errors import WorkbenchError
    from workbench.search import make_search_config
    from workbench.spaces import load_space
    from workbench.tasks import load_task

    with pytest.raises(WorkbenchError, match="Expected --folds 1 .or none. with --tuner hyperband"):
        make_search_config(
            task=load_task("adding"), space=load_space("small"), tuner="hyperband", folds=3,
            tracking_uri=store,
        )  # fmt: skip


def test_options_a_tuner_does_not_use_are_said_not_ignored(store: str) -> None:
    from workbench.errors import WorkbenchError
    from workbench.search import make_search_config
    from workbench.spaces import load_space
    from workbench.tasks import load_task

    common = {"task": load_task("adding"), "space": load_space("small"), "tracking_uri": store}
    # Taken and ignored: a random search of --max-trials trials, without a word.
    with pytest.raises(WorkbenchError, match="--hyperband-iterations with --tuner hyperband"):
        make_search_config(**common, tuner="random", hyperband_iterations=3)
    config = make_search_config(**common, tuner="hyperband", max_trials=1)
    assert config.notes == (
        "--tuner hyperband sets its own number of trials from the space's epochs and "
        "--hyperband-iterations: --max-trials 1 is not used.",
    )
    assert make_search_config(**common, tuner="hyperband").notes == ()
    with pytest.raises(WorkbenchError, match="Expected a name for --experiment"):
        make_search_config(**common, experiment="  ")  # fell back to the default name


def test_lost_local_state_deletes_nothing_without_overwrite(
    tiny_task: Path, tiny_space: Path, store: str, workdir: Path
) -> None:
    import shutil

    _search(tiny_task, tiny_space, store, "--max-trials", "1")
    parents, trials = _runs(store)
    shutil.rmtree(workdir / ".workbench")  # another folder, another host, a clean-up
    args = _search_args(tiny_task, tiny_space, store, 1)
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2, refused.output
    assert "already has 2 runs" in refused.output and "state folder" in refused.output
    assert "--overwrite" in refused.output and "Traceback" not in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    again = _runs(store)
    assert [r.info.run_id for r in again[0] + again[1]] == [
        r.info.run_id for r in parents + trials
    ]  # nothing deleted, nothing added
    assert all(r.info.lifecycle_stage == "active" for r in again[0] + again[1])
    # Its search run RUNNING (a search going on on another host): said, and --overwrite,
    # which would delete that search's runs under it, is not what it suggests.
    MlflowClient(store).update_run(parents[0].info.run_id, status="RUNNING")
    running = CliRunner().invoke(main, args)
    assert running.exit_code == 2, running.output
    line = " ".join(running.output.split())
    assert "and its search run is RUNNING, started " in line
    assert "(--overwrite would delete its runs under it)" in line
    assert "run a chief and workers" in line
    MlflowClient(store).update_run(parents[0].info.run_id, status="FINISHED")

    fresh = CliRunner().invoke(main, [*args, "--overwrite"])
    assert fresh.exit_code == 0, fresh.output
    new_parents, _ = _runs(store)
    assert [p.info.run_id for p in new_parents] != [p.info.run_id for p in parents]


def test_a_study_started_twice_at_once_deletes_nothing_of_the_other(
    tiny_task: Path, tiny_space: Path, store: str, workdir: Path
) -> None:
    # Two hosts ran the same command at once: each found no runs, and the second to open
    # its search deleted the first's (which then failed on its deleted runs).
    from workbench.tracking import StartedElsewhere, Study

    # Each read the study's runs (none) at `since`, before either opened its search.
    opened = {"params": {}, "tags": {}, "resume": False, "run_name": "search", "since": time.time()}
    first, second = Study(store, "twice"), Study(store, "twice")
    first.open_search(**opened)
    with pytest.raises(StartedElsewhere, match="'twice' was started by another process at "
                       "the same moment .* Nothing of it was deleted"):
        second.open_search(**opened)  # fmt: skip
    # Both looked before either opened: the one whose run came second backs off.
    third = Study(store, "twice")
    looked: list[bool] = []
    real = third._search_runs

    def before_the_others(filter_string: str) -> list[object]:
        looked.append(True)
        return [] if len(looked) == 1 else real(filter_string)

    third._search_runs = before_the_others  # type: ignore[method-assign]
    with pytest.raises(StartedElsewhere):
        third.open_search(**opened)
    parents, _ = _runs(store, "twice")
    assert [p.info.run_id for p in parents] == [first.parent_run_id]  # the first's alone
    assert MlflowClient(store).get_run(first.parent_run_id).info.lifecycle_stage == "active"
    first.end_search("FINISHED")
    # A new experiment created by the other process between this one's look and its
    # create ("Experiment(name=...) already exists" stopped it as a lost store, its state
    # folder left to resume over the other's live search): the other's, taken.
    from workbench.tracking.study import open_experiment

    class LookedEarlier:
        def __init__(self) -> None:
            self.client, self.looks = MlflowClient(store), 0

        def get_experiment_by_name(self, name: str) -> object:
            self.looks += 1
            return None if self.looks == 1 else self.client.get_experiment_by_name(name)

        def __getattr__(self, name: str) -> object:
            return getattr(self.client, name)

    made = MlflowClient(store).create_experiment("created-at-once")
    assert open_experiment(LookedEarlier(), store, "created-at-once", {}) == made


def test_a_search_interrupted_as_its_run_opens_resumes(
    tiny_task: Path, tiny_space: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.tracking.study import Study

    opened = Study.open_search

    def interrupted(self: Study, **kwargs: object) -> bool:
        opened(self, **kwargs)
        raise KeyboardInterrupt  # Ctrl-C just after the search run was made

    monkeypatch.setattr(Study, "open_search", interrupted)
    args = ["search", "--task", str(tiny_task), "--space", str(tiny_space), "--folds", "1"]
    args += ["--tracking-uri", store, "--experiment", "study", "--max-trials", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 130 and "run the same command again to resume" in result.output
    monkeypatch.setattr(Study, "open_search", opened)
    # It refused: "its search state folder ... is missing ... add --overwrite".
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    parents, trials = _runs(store)
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert [t.info.status for t in trials] == ["FINISHED"]


def test_names_alike_as_folders_get_a_state_folder_each(tmp_path: Path) -> None:
    from workbench.search.state import state_folder
    from workbench.tracking import state_key

    uri = "sqlite:///m/mlflow.db"
    names = ["my study", "my_study", "my/study", "实验一", "实验二", "_x_", "x"]
    folders = {state_folder(tmp_path, uri, name) for name in names}
    assert len(folders) == len(names)
    assert state_folder(tmp_path, uri, "my study").name.startswith("my_study-")
    # A study begun before keeps its folder (its study.json names it); another name that
    # read alike as a folder then does not take it.
    older = tmp_path / state_key(uri, "my study", before_2026_12_07=True)
    assert older == tmp_path / state_key(uri, "my_study", before_2026_12_07=True)
    older.mkdir()
    (older / "study.json").write_text('{"experiment": "my study"}')
    assert state_folder(tmp_path, uri, "my study") == older
    assert state_folder(tmp_path, uri, "my_study") not in (older, tmp_path / "my_study")
    plain = tmp_path / state_key(uri, "x", before_2026_12_07=True)
    plain.mkdir()
    (plain / "study.json").write_text('{"experiment": "x"}')
    assert state_folder(tmp_path, uri, "x") == plain


def test_a_damaged_state_file_is_one_line_and_leaves_the_study_as_it_was(
    tiny_task: Path, tiny_space: Path, store: str, workdir: Path
) -> None:
    _search(tiny_task, tiny_space, store, "--max-trials", "1")
    (oracle,) = (workdir / ".workbench").rglob("oracle.json")
    oracle.write_text("{garbage")  # a disk filled mid-write, an editor's slip
    refused = CliRunner().invoke(main, _search_args(tiny_task, tiny_space, store, 1))
    assert refused.exit_code == 2, refused.output
    (line,) = refused.output.strip().splitlines()
    assert f"The search state file {oracle} is damaged (" in line and "--overwrite" in line
    parents, trials = _runs(store)
    assert [r.info.status for r in parents + trials] == ["FINISHED", "FINISHED"]


@pytest.mark.e2e
def test_local_state_whose_runs_are_gone_is_refused_not_counted_failed(
    tiny_task: Path, tiny_space: Path, workdir: Path, store: str
) -> None:
    _search(tiny_task, tiny_space, store, "--max-trials", "1")
    (workdir / "store" / "mlflow.db").unlink()  # the store cleaned, the state folder kept
    # A new process, as a user's next command (this one holds the deleted store open).
    args = [sys.executable, "-m", "workbench.cli", *_search_args(tiny_task, tiny_space, store, 1)]
    refused = subprocess.run(args, capture_output=True, text=True, env=_subprocess_env())
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "has 1 trials in its search state folder" in refused.stderr
    assert "holds none of its runs" in refused.stderr and "--overwrite" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    fresh = subprocess.run(
        [*args, "--overwrite"], capture_output=True, text=True, env=_subprocess_env()
    )
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "1 of 1 trials completed" in fresh.stdout


@pytest.mark.e2e
def test_a_second_uncoordinated_search_on_a_running_study_is_refused(
    tiny_task: Path, tiny_space: Path, store: str
) -> None:
    process = _search_process(tiny_task, tiny_space, store, 24)
    try:
        _wait_for_running_trial(store, "01")
        second = CliRunner().invoke(main, _search_args(tiny_task, tiny_space, store, 24))
        assert second.exit_code == 2, second.output
        assert "Study 'study' is being searched by another process (search pid " in second.output
        assert f"pid {process.pid} on " in second.output
        assert process.poll() is None  # the first search goes on
    finally:
        process.kill()
        process.wait(timeout=30)
    parents, _ = _runs(store)
    assert len(parents) == 1  # the refused search created no run


def test_a_resumed_grid_search_goes_on_with_the_untried_combinations(
    tiny_task: Path, store: str, workdir: Path
) -> None:
    space = workdir / "grid.yaml"
    space.write_text("dimensions: {cell: [lstm, gru], units: [4, 6], epochs: 1}\n")
    _search(tiny_task, space, store, "--tuner", "grid", "--max-trials", "2")
    output = _search(tiny_task, space, store, "--tuner", "grid", "--max-trials", "6")
    assert "4 of 4 trials completed" in output, output
    again = _search(tiny_task, space, store, "--tuner", "grid", "--max-trials", "6")
    # Not "--max-trials 4 asks for no more: raise it" (the grid caps it at its size).
    assert "not run again. Every configuration of the grid is tried." in again, again
    assert "Trial 4/4" in output  # a grid of 4: --max-trials 6 cannot run more
    _, trials = _runs(store)
    tried = sorted((r.data.params["cell"], r.data.params["units"]) for r in trials)
    assert tried == [("gru", "4"), ("gru", "6"), ("lstm", "4"), ("lstm", "6")]


def test_mixed_precision_trains_in_float16_with_a_float32_head(
    tiny_task: Path, tiny_space: Path, store: str
) -> None:
    import keras

    output = _search(tiny_task, tiny_space, store, "--max-trials", "1", "--mixed-precision")
    assert "1 of 1 trials completed" in output
    parents, trials = _runs(store)
    assert parents[0].data.params["mixed_precision"] == "True"
    assert trials[0].data.tags["precision"] == "mixed_float16"
    import tensorflow as tf

    tags = trials[0].data.tags
    if tf.config.list_logical_devices("GPU"):  # what ran is what the layer settings promise
        assert tags["device"] == "GPU" and tags["cudnn_ran"] == tags["cudnn_eligible"]
    else:  # nothing runs on cuDNN without a GPU
        assert tags["device"] == "CPU" and tags["cudnn_ran"] == "n/a"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after


def test_a_mixed_precision_model_keeps_its_head_in_float32() -> None:
    import keras

    from workbench.models import ModelConfig, ModelSignature, build_model
    from workbench.search.runner import precision

    signature = ModelSignature(timesteps=5, features=2, problem="classification", n_outputs=3)
    with precision(True):
        model = build_model(ModelConfig.from_values({"cell": "gru", "units": 4}), signature)
    assert model.get_layer("gru_1").compute_dtype == "float16"
    assert model.get_layer("head").compute_dtype == "float32"
    assert model.output.dtype == "float32"
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"  # loss scaling
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.e2e
def test_a_store_lost_mid_trial_lets_it_train_then_stops_the_search_in_one_line(
    tiny_task: Path, store: str, workdir: Path
) -> None:
    """The store goes away at the first epoch's write: the trial trains to its end, the
    search stops with one line (exit 2, no traceback); once the store is back, the same
    command resumes and records every trial."""
    from mlflow.exceptions import MlflowException

    space = workdir / "two.yaml"
    space.write_text("dimensions: {cell: [lstm, gru], units: 4, epochs: 2, batch_size: 16}\n")
    lost = {"now": False, "epoch_writes": []}

    def failing(method):
        def call(self, *args, **kwargs):
            if method == "log_batch" and kwargs.get("metrics") and args:
                if kwargs["metrics"][0].step is not None and not lost["now"]:
                    lost["now"] = True  # the server goes away at the first epoch's write
                if lost["now"]:
                    lost["epoch_writes"].append(kwargs["metrics"][0].step)
            if lost["now"]:
                raise MlflowException(
                    "API request to http://127.0.0.1:5000/api/2.0/mlflow/runs/log-batch "
                    "failed with exception ConnectionError: Connection refused"
                )
            return getattr(MlflowClient, f"_real_{method}")(self, *args, **kwargs)

        return call

    args = ["search", "--task", str(tiny_task), "--space", str(space), "--tracking-uri", store]
    args += ["--experiment", "study", "--folds", "1", "--tuner", "grid", "--max-trials", "2"]
    with pytest.MonkeyPatch.context() as patch:
        for method in ("log_batch", "log_artifact", "set_terminated", "search_runs", "create_run"):
            patch.setattr(MlflowClient, f"_real_{method}", getattr(MlflowClient, method), False)
            patch.setattr(MlflowClient, method, failing(method))
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    error = result.output.strip().splitlines()[-1]
    assert error.startswith(f"Error: The MLflow tracking store at {store} failed (")
    assert "Connection refused. The search stopped; its state is kept" in error
    assert "Traceback" not in result.output
    # Epoch 1's metrics were written (and failed) after the store had gone: it trained on.
    assert lost["epoch_writes"][:2] == [0, 1]

    # The store is back.
    _search(tiny_task, space, store, "--tuner", "grid", "--max-trials", "2")
    parents, trials = _runs(store)
    assert [p.info.status for p in parents] == ["FINISHED"]
    statuses = sorted(run.info.status for run in trials)
    assert statuses == ["FINISHED", "FINISHED", "KILLED"], statuses  # the lost one, ended
