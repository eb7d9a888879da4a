"""Tasks: the adding problem is generated as described, seeded, with a stated baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.datasets import list_tasks, load_task
from workbench.errors import WorkbenchError


def test_builtin_tasks_listed() -> None:
    assert "adding" in {task.name for task in list_tasks()}


def test_adding_problem_data() -> None:
    data = load_task("adding").with_options(length=30, n_train=64, n_val=8, n_test=500).load()
    assert data.x_train.shape == (64, 30, 2) and data.y_train.shape == (64, 1)
    assert data.problem == "regression" and data.objective == ("val_loss", "min")
    markers = data.x_train[:, :, 1]
    assert np.all(markers.sum(axis=1) == 2)
    # one marker in each half
    assert np.all(markers[:, :15].sum(axis=1) == 1)
    expected = (data.x_train[:, :, 0] * markers).sum(axis=1)
    np.testing.assert_allclose(data.y_train[:, 0], expected, rtol=1e-6)
    # the trivial baseline: predicting 1 gives MSE about 1/6
    assert data.baseline is not None
    assert data.baseline.value == pytest.approx(1 / 6, abs=0.03)
    assert "0.167" in data.baseline.description


def test_adding_is_seeded() -> None:
    spec = load_task("adding").with_options(n_train=16, n_val=4, n_test=4)
    first, second = spec.load(), spec.load()
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert first.digest() == second.digest()
    other = spec.with_options(seed=1).load()
    assert other.digest() != first.digest()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lenght": 10}, "options.lenght: unknown option for loader 'adding'"),
        ({"n_train": "many"}, "options.n_train: expected an integer"),
        ({"n_val": 0}, "options.n_val: expected a positive integer"),
        ({"length": 1}, "options.length: expected at least 2 steps"),
    ],
)
def test_bad_adding_options(options: dict, message: str) -> None:
    with pytest.raises(WorkbenchError, match=message):
        load_task("adding").with_options(**options).load()


def test_task_file_with_unknown_loader(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("name: t\nloader: telepathy\n")
    with pytest.raises(WorkbenchError, match="loader: expected one of .*adding.*'telepathy'"):
        load_task(path)


def test_unknown_task_name() -> None:
    with pytest.raises(WorkbenchError, match="Unknown task 'nope'"):
        load_task("nope")
