"""Shared fixtures: every test works in its own folder with its own MLflow store."""

from __future__ import annotations

import os
import shutil
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
    "bbc_news": {"limit": 40, "vocab_size": 300, "sequence_length": 20, "embedding_dim": 8},
    "fine_food_reviews": {
        "limit": 40,
        "vocab_size": 300,
        "sequence_length": 20,
        "embedding_dim": 8,
    },
}


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh current folder, so the default store and the search state land in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One empty SQLite store with MLflow's schema, migrated once per test process."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()  # creates and migrates the schema
    return path


@pytest.fixture()
def store(workdir: Path, migrated_store: Path) -> str:
    """A tracking URI for a SQLite store inside the test's folder.

    The store is a copy of an already migrated one: MLflow's migrations take about 2 s a
    store, the copy a few milliseconds.
    """
    path = workdir / "store" / "mlflow.db"
    path.parent.mkdir()
    shutil.copyfile(migrated_store, path)
    return f"sqlite:///{path}"


@pytest.fixture()
def mlflow_server(workdir: Path, migrated_store: Path):  # type: ignore[no-untyped-def]
    """An ``mlflow server`` on loopback (SQLite behind it, artifacts served as
    ``mlflow-artifacts:``, as a team's server does): its URL. Stopped after the test."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    folder = workdir / "server"
    folder.mkdir()
    shutil.copyfile(migrated_store, folder / "mlflow.db")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
    ]  # fmt: skip
    log = open(folder / "server.log", "w")  # noqa: SIM115 - open while the server runs
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "mlflow server did not start: " + (folder / "server.log").read_text()
                    ) from None
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


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


def write_reviews(path: Path, rows: int = 40, seed: int = 0) -> Path:
    """A tiny sentiment CSV (``review``, ``stars`` 1 or 5): the polar words give the label."""
    import csv
    import random

    rng = random.Random(seed)
    good = ["great", "tasty", "lovely", "fresh", "superb"]
    bad = ["awful", "stale", "bland", "soggy", "bad"]
    filler = ["the", "coffee", "was", "really", "quite"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "stars"])
        for i in range(rows):
            positive = i % 2 == 1
            words = [rng.choice(filler) for _ in range(4)]
            words += [rng.choice(good if positive else bad) for _ in range(2)]
            rng.shuffle(words)
            writer.writerow([" ".join(words).capitalize() + "!", 5 if positive else 1])
    return path


@pytest.fixture()
def reviews_csv(tmp_path: Path) -> Path:
    """``reviews.csv`` in the test's folder: 40 short reviews, half 1 star, half 5 stars."""
    return write_reviews(tmp_path / "reviews.csv")
