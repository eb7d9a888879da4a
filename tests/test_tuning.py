"""Searches through the command line, checked in a temporary MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from workbench.cli import main
from workbench.tuning import PARAM_NAMES


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
        *extra,
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _runs(store: str, experiment: str = "study") -> tuple[list, list]:
    client = MlflowClient(store)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("workbench.role") == "search"]
    trials = [r for r in runs if r.data.tags.get("workbench.role") == "trial"]
    return parents, trials


def test_search_records_parent_and_nested_trials_then_resumes(
    tiny_task: Path, tiny_space: Path, store: str
) -> None:
    output = _search(tiny_task, tiny_space, store, "--max-trials", "3", "--seed", "1")
    assert "Trial 1/3" in output and "Trial 3/3" in output
    assert "Best trial" in output and "Parent run:" in output and "workbench ui" in output

    parents, trials = _runs(store)
    assert len(parents) == 1 and len(trials) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED"
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

    # More trials continue the same study under the same parent run.
    _search(tiny_task, tiny_space, store, "--max-trials", "4", "--seed", "1")
    parents, trials = _runs(store)
    assert len(parents) == 1 and len(trials) == 4

    # --overwrite starts afresh: the earlier runs are gone from the experiment.
    _search(tiny_task, tiny_space, store, "--max-trials", "1", "--seed", "1", "--overwrite")
    parents, trials = _runs(store)
    assert len(parents) == 1 and len(trials) == 1
    assert parents[0].info.run_id != parent.info.run_id


def test_resuming_with_other_settings_is_refused(
    tiny_task: Path, tiny_space: Path, store: str
) -> None:
    _search(tiny_task, tiny_space, store, "--max-trials", "1")
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


@pytest.mark.parametrize("tuner", ["bayesian", "hyperband", "grid"])
def test_every_tuner_runs(tuner: str, tiny_task: Path, tiny_space: Path, store: str) -> None:
    _search(tiny_task, tiny_space, store, "--tuner", tuner, "--max-trials", "2")
    parents, trials = _runs(store)
    assert parents[0].data.params["tuner"] == tuner
    assert len(trials) == 2
    assert all(run.info.status == "FINISHED" for run in trials)
    if tuner == "hyperband":
        assert all("tuner/epochs" in run.data.params for run in trials)
    if tuner == "grid":
        configs = {tuple(sorted(run.data.params.items())) for run in trials}
        assert len(configs) == 2


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
    tiny_task: Path, tiny_space: Path
) -> None:
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
