"""Shared fixtures: every test works in its own folder with its own MLflow store."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

#: Small options per built-in task, so tests and the 1-trial searches stay at a few seconds.
_BUILTIN_TINY_OPTIONS = {
    "adding": {"length": 10, "n_train": 32, "n_val": 8, "n_test": 8},
    "copy_memory": {"length": 5, "n_train": 32, "n_val": 8, "n_test": 8},
    "sequential_digits": {"limit": 60},
    "japanese_vowels": {"limit": 36},
    "basic_motions": {"limit": 20},
    "gunpoint": {"limit": 20},
    "italy_power_demand": {"limit": 20},
    "airline": {},
    "shampoo_sales": {},
}


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh current folder, so the default store and the search state land in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture()
def store(workdir: Path) -> str:
    """A tracking URI for a SQLite store inside the test's folder."""
    return f"sqlite:///{workdir / 'store' / 'mlflow.db'}"


@pytest.fixture()
def tiny_task(workdir: Path) -> Path:
    """A task file: the adding problem on tens of samples of 10 steps."""
    path = workdir / "tiny_adding.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: tiny_adding
            description: The adding problem, tiny, for tests.
            loader: adding
            options: {length: 10, n_train: 48, n_val: 16, n_test: 16, seed: 3}
            """
        )
    )
    return path


@pytest.fixture()
def tiny_space(workdir: Path) -> Path:
    """A space of a few cheap configurations trained for one epoch."""
    path = workdir / "tiny_space.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: tiny
            description: Cheap configurations for tests.
            dimensions:
              cell: [simple_rnn, lstm, gru]
              depth: [1, 2]
              bidirectional: [false, true]
              units: 4
              clipping: [none, norm]
              clip_threshold: 1.0
              learning_rate: 1e-2
              batch_size: 16
              epochs: 2
            """
        )
    )
    return path


@pytest.fixture()
def builtin_tiny_options() -> dict[str, dict]:
    """Loader options that make each built-in task tiny, by task name."""
    return {name: dict(options) for name, options in _BUILTIN_TINY_OPTIONS.items()}
