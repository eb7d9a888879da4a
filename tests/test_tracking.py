"""Tracking: run states in MLflow, and the UI over the same store."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mlflow import MlflowClient

from workbench.errors import WorkbenchError
from workbench.tracking import StoreFailed, Study, resolve_tracking_uri


def _study(store: str, resume: bool = False) -> Study:
    study = Study(store, "exp")
    study.open_search(params={"task": "t"}, tags={"task": "t"}, resume=resume, run_name="search")
    return study


def test_trial_runs_end_finished_failed_or_killed(store: str) -> None:
    study = _study(store)
    done = study.start_trial("0", {"cell": "gru"}, {"cell": "gru"}, "a")
    done.log_epoch(0, {"loss": 1.0})
    done.finish({"score": 0.5})
    failed = study.start_trial("1", {"cell": "lstm"}, {"cell": "lstm"}, "b")
    failed.fail("diverged", "loss became nan at epoch 3")
    cut = study.start_trial("2", {"cell": "lstm"}, {"cell": "lstm"}, "c")
    cut.close()  # as in a `finally` after an interrupt
    study.end_search("FINISHED")
    client = MlflowClient(store)
    status = [client.get_run(r.run_id).info.status for r in (done, failed, cut)]
    assert status == ["FINISHED", "FAILED", "KILLED"]
    assert client.get_run(failed.run_id).data.tags["failure"] == "diverged"
    assert study.finished_trial("0") == (done.run_id, {"score": 0.5, "loss": 1.0})
    assert study.finished_trial("1") is None


def test_an_epoch_write_the_store_failed_is_tried_again_or_the_run_is_not_kept(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, failures = MlflowClient.log_batch, {"left": 1}

    def blinking(self, run_id, metrics=(), params=(), tags=()):  # type: ignore[no-untyped-def]
        if metrics and any(m.key == "loss" for m in metrics) and failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("503 Service Unavailable")
        return real(self, run_id, metrics=metrics, params=params, tags=tags)

    monkeypatch.setattr(MlflowClient, "log_batch", blinking)
    study = _study(store)
    client = MlflowClient(store)
    blinked = study.start_trial("0", {"cell": "gru"}, {"cell": "gru"}, "a")
    for epoch in range(3):
        blinked.log_epoch(epoch, {"loss": 1.0 - epoch / 10})
    blinked.finish({"score": 0.5})  # the first epoch's write failed once, then landed
    assert [m.step for m in client.get_metric_history(blinked.run_id, "loss")] == [0, 1, 2]
    assert client.get_run(blinked.run_id).info.status == "FINISHED"
    failures["left"] = 2  # failed twice: the run is not kept as FINISHED
    lost = study.start_trial("1", {"cell": "gru"}, {"cell": "gru"}, "b")
    lost.log_epoch(0, {"loss": 1.0})
    with pytest.raises(StoreFailed, match="failed \\(log_batch\\): 503"):
        lost.finish({"score": 0.4})
    assert client.get_run(lost.run_id).info.status == "KILLED"
    assert study.finished_trial("1") is None


def test_a_server_fails_fast_at_first_and_is_retried_once_it_answered(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from workbench.tracking import TrackingService
    from workbench.tracking import store as stores

    monkeypatch.setattr(stores, "_patient", False)
    settings = ("MAX_RETRIES", "TIMEOUT", "BACKOFF_FACTOR")
    for name in settings:
        monkeypatch.delenv(f"MLFLOW_HTTP_REQUEST_{name}", raising=False)
    monkeypatch.delenv("WORKBENCH_MLFLOW_FAIL_FAST", raising=False)

    def requests() -> tuple[str | None, ...]:
        return tuple(os.environ.get(f"MLFLOW_HTTP_REQUEST_{name}") for name in settings)

    stores.client(store)  # the first contact: no retries, 10 s
    assert requests() == ("0", "10", None)
    service = TrackingService(store, separate=False)
    service.check_reachable()  # it answered: blips of up to half a minute ridden out
    stores.client(store)
    # Not MLflow's own (7 retries up to 2 minutes apart, 120 s each): a search whose
    # server went away sat silent for 7 to 18 minutes, its last writes waiting in turn.
    assert requests() == ("5", "30", "1")
    # A request failed after its retries: the search stops, its last writes fail fast.
    study = service.study("exp")
    with pytest.raises(StoreFailed):  # a request the store refused: it answered
        study._client.get_run("no-such-run")
    assert requests() == ("5", "30", "1")

    def lost(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Connection refused")

    with monkeypatch.context() as patch, pytest.raises(StoreFailed, match="Connection refused"):
        patch.setattr(MlflowClient, "get_run", lost)
        study._client.get_run("any")
    assert requests() == ("0", "10", None)
    stores.patient_requests()  # (as a trial's write tried again and answered does)
    assert requests() == ("5", "30", "1")
    # A user's own setting made between two calls (a notebook) stays theirs.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")
    stores.store_lost()
    assert requests() == ("0", "300", None)
    stores.patient_requests()
    assert requests() == ("5", "300", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")  # (as the workbench set it)
    # A check still fails fast (one line in seconds, not minutes of retries).
    seen = {}
    real = stores._check_reachable
    monkeypatch.setattr(
        stores, "_check_reachable",
        lambda uri: seen.update(os.environ) or real(uri),
    )  # fmt: skip
    stores.check_reachable(store)
    assert seen["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    assert requests() == ("5", "30", "1")  # and patient again after
    service.close()  # the search is over: a later command in this process fails fast again
    stores.client(store)
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    # A user's own setting stays (a fresh process whose user set it).
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    monkeypatch.delenv("WORKBENCH_MLFLOW_FAIL_FAST")
    monkeypatch.setattr(stores, "_patient", False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    stores.client(store)
    service.check_reachable()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"


def test_a_store_that_fails_while_a_study_is_read_is_one_line(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.tracking.reader import _client_study_rows

    _study(store).end_search("FINISHED")

    def reset(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Connection reset by peer")

    monkeypatch.setattr(MlflowClient, "search_runs", reset)
    with pytest.raises(WorkbenchError, match="Cannot read experiment 'exp' from the MLflow "
                       "tracking store at .*: Connection reset by peer$"):  # fmt: skip
        _client_study_rows(store, "exp")


def test_a_run_started_while_a_study_is_read_does_not_break_the_read(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from workbench.tracking.reader import _sqlite_study_rows

    study = _study(store)
    study.start_trial("0", {"cell": "gru"}, {"cell": "gru"}, "a").finish({"score": 0.5})
    study.end_search("FINISHED")
    db = store.removeprefix("sqlite:///")
    real = sqlite3.connect
    writes: list[str] = []

    class Racing:  # the reader's connection; a search writes after its first query
        def __init__(self, connection: sqlite3.Connection) -> None:
            self._connection = connection

        def execute(self, sql: str, *args: object) -> object:
            if sql.startswith("select run_uuid, key, value from tags"):
                writes.append(_start_a_run(db))  # between the runs and the tags query
            return self._connection.execute(sql, *args)

        def __getattr__(self, name: str) -> object:
            return getattr(self._connection, name)

    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: Racing(real(*a, **k)))
    experiment_id, runs = _sqlite_study_rows(Path(db), store, "exp")  # no KeyError
    # The read is one snapshot: the writer waited for it (SQLite's rollback journal), or
    # wrote a run the read does not see (with a write-ahead log).
    assert writes in (["locked"], ["written"])
    assert len(runs) == 2 and "newrun" not in {run["run_id"] for run in runs}
    for run in runs:  # each run read whole: its tags with it
        assert run["tags"], run["run_id"]


def _start_a_run(db: str) -> str:
    """Another process starts a run: a copy of the newest run's row and one tag; "written",
    or "locked" where the store's lock made it wait past its timeout."""
    import sqlite3

    writer = sqlite3.connect(db, timeout=0.2)
    try:
        columns = [row[1] for row in writer.execute("pragma table_info(runs)")]
        chosen = ", ".join("'newrun'" if c == "run_uuid" else c for c in columns)
        writer.execute(f"insert into runs ({', '.join(columns)}) select {chosen} from runs limit 1")
        writer.execute("insert into tags (key, value, run_uuid) values ('x', 'y', 'newrun')")
        writer.commit()
    except sqlite3.OperationalError as exc:  # the read holds the store: the writer waits
        assert "locked" in str(exc)
        return "locked"
    finally:
        writer.close()
    return "written"


def test_an_overwrite_cut_short_never_resumes_the_old_search(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _study(store)
    trial = old.start_trial("0", {"cell": "gru"}, {"cell": "gru"}, "a")
    trial.finish({"score": 0.5})
    old.end_search("FINISHED")
    # --overwrite, interrupted after its first deletion.
    real, calls = MlflowClient.delete_run, []

    def delete_once(self, run_id):  # type: ignore[no-untyped-def]
        if calls:
            raise KeyboardInterrupt
        calls.append(run_id)
        return real(self, run_id)

    monkeypatch.setattr(MlflowClient, "delete_run", delete_once)
    with pytest.raises(KeyboardInterrupt):
        _study(store)
    assert calls == [old.parent_run_id]  # the search run went first
    monkeypatch.setattr(MlflowClient, "delete_run", real)
    # The next plain run (resume) finds no search to resume: a new one, without the old trial.
    again = _study(store, resume=True)
    assert again.parent_run_id != old.parent_run_id
    assert again.finished_trial("0") is None
    client = MlflowClient(store)
    assert client.get_run(trial.run_id).info.lifecycle_stage == "deleted"


def test_a_fresh_study_deletes_only_the_workbenchs_own_runs(store: str) -> None:
    client = MlflowClient(store)
    experiment = client.create_experiment("exp")
    theirs = client.create_run(experiment, run_name="a hand-written baseline")
    client.set_terminated(theirs.info.run_id)
    first = _study(store)  # a new study in an experiment that holds someone else's run
    first.end_search("FINISHED")
    _study(store)  # --overwrite: the workbench's earlier search goes
    assert client.get_run(first.parent_run_id).info.lifecycle_stage == "deleted"
    assert client.get_run(theirs.info.run_id).info.lifecycle_stage == "active"


def test_an_interrupted_chief_leaves_its_remote_workers_trials_to_them(store: str) -> None:
    def chief(resume: bool) -> Study:
        study = Study(store, "exp")
        study.open_search(
            params={"task": "t"}, tags={"task": "t"}, resume=resume, run_name="search",
            kill_running=False,
        )  # fmt: skip
        return study

    first = chief(resume=False)
    worker = Study(store, "exp")
    worker.attach(first.experiment_id, first.parent_run_id)
    trial = worker.start_trial("0", {"cell": "gru"}, {"cell": "gru"}, "on a remote worker")
    first.end_search("KILLED")  # Ctrl-C on the chief; the worker trains on
    client = MlflowClient(store)
    assert client.get_run(trial.run_id).info.status == "RUNNING"
    assert trial.finish({"score": 0.5}) is False
    restarted = chief(resume=True)
    assert restarted.finished_trial("0") == (trial.run_id, {"score": 0.5})
    assert "workbench.finished_late" not in client.get_run(trial.run_id).data.tags


def test_resume_reuses_parent_and_kills_trials_left_running(store: str) -> None:
    first = _study(store)
    left = first.start_trial("0", {}, {}, "left running by a killed process")
    second = _study(store, resume=True)
    assert second.parent_run_id == first.parent_run_id
    run = MlflowClient(store).get_run(left.run_id)
    assert run.info.status == "KILLED" and run.data.tags["failure"] == "interrupted"


def test_relative_sqlite_uri_is_made_absolute(workdir: Path) -> None:
    assert resolve_tracking_uri(None) == f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}"
    assert resolve_tracking_uri("http://10.0.0.1:5000") == "http://10.0.0.1:5000"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.e2e
@pytest.mark.parametrize("stop", ["SIGTERM", "SIGHUP"])
def test_ui_serves_the_same_store_on_loopback(workdir: Path, stop: str) -> None:
    store = resolve_tracking_uri(None)
    study = _study(store)
    for trial in ("0", "1"):
        study.start_trial(trial, {"cell": "gru"}, {"cell": "gru"}, f"t{trial}").finish(
            {"score": 0.5}
        )
    study.end_search("FINISHED")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "ui", "--port", str(port), "--experiment", "exp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/get-by-name?experiment_name=exp"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    body = json.load(response)
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()  # type: ignore[union-attr]
                assert time.time() < deadline, "the MLflow UI did not start in 90 s"
                time.sleep(1)
        assert body["experiment"]["name"] == "exp"
        assert _listening_addresses(port) == {"127.0.0.1"}
        # --experiment prints the study's links first: its trial runs and their comparison.
        printed = [process.stdout.readline() for _ in range(3)]  # type: ignore[union-attr]
        experiment_id = body["experiment"]["experiment_id"]
        runs = f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs?searchFilter="
        assert printed[1].strip().startswith(f"Runs:    {runs}"), printed
        assert printed[2].strip().startswith(f"Compare: http://127.0.0.1:{port}/#/compare-runs")
    finally:
        # SIGTERM, as a service manager or `kill` sends it; SIGHUP, a closed terminal.
        process.send_signal(getattr(signal, stop))
        process.wait(timeout=30)
    # MLflow's server processes went with it: nothing is left listening on the port.
    deadline = time.time() + 15
    while _listening_addresses(port) and time.time() < deadline:
        time.sleep(0.5)
    assert _listening_addresses(port) == set()


def _listening_addresses(port: int) -> set[str]:
    """Addresses listening on ``port``, read from /proc/net/tcp (IPv4; IPv6 shows as '::')."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) != port or state != "0A":  # 0A = LISTEN
                continue
            if len(address) == 8:
                found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
            else:
                found.add("::")
    return found


def test_fast_reader_reads_the_schema_this_mlflow_writes(store: str) -> None:
    import sqlite3

    import mlflow

    from workbench.tracking import client
    from workbench.tracking.reader import fast_reader_schema_gaps

    client(store)  # creates and migrates the store
    db = Path(store.removeprefix("sqlite:///"))
    gaps = fast_reader_schema_gaps(db)
    assert gaps == [], (
        f"mlflow {mlflow.__version__} changed its SQLite schema ({', '.join(gaps)}): "
        "update FAST_READER_SCHEMA and the fast reader in workbench/tracking/reader.py"
    )
    other = db.parent / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("create table runs (run_uuid text, status text)")
    assert "runs.start_time" in fast_reader_schema_gaps(other)
    assert "experiments.name" in fast_reader_schema_gaps(other)


def _trial_run(client: MlflowClient, experiment_id: str, parent_run_id: str) -> Any:
    """Trial 1's run under a search run, as the workbench tags it."""
    tags = {"workbench.role": "trial", "workbench.trial_id": "0"}
    return client.create_run(experiment_id, tags={**tags, "mlflow.parentRunId": parent_run_id})


def test_a_trial_run_again_after_an_interruption_is_found_by_its_number(store: str) -> None:
    from workbench.tracking import find_trial

    client = MlflowClient(store)
    experiment_id = client.create_experiment("resumed")
    parent = client.create_run(experiment_id, tags={"workbench.role": "search"})
    runs = []
    for status in ("KILLED", "FINISHED"):  # trial 1 interrupted, then run again on resume
        run = _trial_run(client, experiment_id, parent.info.run_id)
        if status == "FINISHED":
            client.log_metric(run.info.run_id, "score", 0.5)
        client.set_terminated(run.info.run_id, status)
        runs.append(run.info.run_id)
    assert find_trial(store, "resumed", "1").run_id == runs[1]
    with pytest.raises(WorkbenchError, match=r"\(trials: 1\)\. Received: --trial 2$"):
        find_trial(store, "resumed", "2")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The study's clock, moved by the test: search time without sleeping or timing."""
    import workbench.tracking.study as study_module

    fake = SimpleNamespace(now=1_800_000_000.0)
    fake.time = lambda: fake.now
    monkeypatch.setattr(study_module, "time", fake)
    return fake


def test_a_resumed_search_counts_its_sessions_not_the_pause_between(
    store: str, clock: SimpleNamespace
) -> None:
    first = _study(store)
    clock.now += 10.0
    first.end_search("KILLED")  # Ctrl-C
    clock.now += 1000.0  # the pause: not search time
    again = _study(store, resume=True)
    assert again.parent_run_id == first.parent_run_id
    clock.now += 5.0
    again.end_search("FINISHED")
    run = MlflowClient(store).get_run(first.parent_run_id)
    assert run.data.metrics["search_seconds"] == pytest.approx(15.0)


def test_a_hard_killed_search_counts_until_its_trials_last_activity(
    store: str, clock: SimpleNamespace
) -> None:
    # kill -9: the search run stays RUNNING with no end and no search_seconds; its time
    # runs from its start to its trials' last end (it counted 0 s).
    first = _study(store)
    client = MlflowClient(store)
    start = client.get_run(first.parent_run_id).info.start_time
    trial = first.start_trial("0", {"cell": "gru"}, {"cell": "gru"}, "a")
    trial.finish({"score": 0.5})
    client.set_terminated(trial.run_id, "FINISHED", end_time=start + 5000)
    clock.now += 600.0  # down until the resume
    again = _study(store, resume=True)
    clock.now += 2.0
    again.end_search("FINISHED")
    seconds = client.get_run(first.parent_run_id).data.metrics["search_seconds"]
    assert seconds == pytest.approx(7.0, abs=0.01)


def test_a_new_search_in_an_existing_experiment_describes_it_anew(store: str) -> None:
    def search(space: str) -> Study:
        study = Study(store, "exp")
        tags = {"space": space, "mlflow.note.content": f"the {space} space"}
        study.open_search(params={"task": "t"}, tags=tags, resume=False, run_name="search")
        return study

    search("small").end_search("FINISHED")
    study = search("large")  # --overwrite with another space
    tags = MlflowClient(store).get_experiment(study.experiment_id).tags
    assert tags["space"] == "large" and tags["mlflow.note.content"] == "the large space"
    study.end_search("KILLED")
    resumed = Study(store, "exp")  # resumed with another budget: described anew too
    resumed.open_search(params={}, tags={"max_trials": 3}, resume=True, run_name="search")
    assert MlflowClient(store).get_experiment(study.experiment_id).tags["max_trials"] == "3"


def test_float_params_are_logged_whole_where_six_digits_would_round_them(store: str) -> None:
    study = _study(store)
    trial = study.start_trial("0", {"learning_rate": 0.0062135540967083866, "dropout": 0.1,
                                    "units": 32}, {"cell": "gru"}, "a")  # fmt: skip
    params = MlflowClient(store).get_run(trial.run_id).data.params
    assert params == {"learning_rate": "0.0062135540967083866", "dropout": "0.1", "units": "32"}


def test_export_finds_trials_of_the_latest_search_only(store: str) -> None:
    # An experiment restored after its deletion in the UI brings back the runs an
    # --overwrite had deleted: the report reads the latest search, so must the export.
    from workbench.tracking import find_trial

    client = MlflowClient(store)
    experiment_id = client.create_experiment("restored")
    latest = {}
    for name, score in (("old", 0.1), ("new", 0.5)):
        parent = client.create_run(experiment_id, tags={"workbench.role": "search"})
        run = _trial_run(client, experiment_id, parent.info.run_id)
        client.log_metric(run.info.run_id, "score", score)  # the old one scored better
        client.set_terminated(run.info.run_id, "FINISHED")
        latest[name] = run.info.run_id
        time.sleep(0.01)  # a later start for the new search
    assert find_trial(store, "restored").run_id == latest["new"]
    assert find_trial(store, "restored", "1").run_id == latest["new"]


def test_a_checkpoint_the_artifact_store_cannot_delete_stays_and_the_search_goes_on(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact import artifact_repository_registry

    from workbench.tracking import Study

    class Refusing:
        def __init__(self, uri: str) -> None:
            pass

        def delete_artifacts(self, path: str) -> None:
            raise MlflowException("API request failed with error code 503")

    study = Study(store, "pruned")
    study.open_search(params={}, tags={}, resume=False, run_name="s")
    run = study.start_trial("0", params={}, tags={}, run_name="t")
    assert study.delete_checkpoint(run.run_id)  # nothing there: nothing left to delete
    monkeypatch.setattr(artifact_repository_registry, "get_artifact_repository", Refusing)
    assert not study.delete_checkpoint(run.run_id)
    study.end_search("FINISHED")


@pytest.mark.e2e
def test_ui_over_an_mlflow_server_points_at_its_own_ui(mlflow_server: str) -> None:
    from click.testing import CliRunner

    from workbench.cli import main
    from workbench.tracking import study_links

    result = CliRunner().invoke(main, ["ui", "--tracking-uri", f"{mlflow_server}/"])
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"{mlflow_server}/ is an MLflow server: its own UI is at {mlflow_server}\n"
    )
    links = study_links("7", ["a", "b"], base="https://mlflow.internal:5000")
    assert links.runs.startswith("https://mlflow.internal:5000/#/experiments/7/runs?")


def test_ui_over_a_store_that_does_not_answer_is_one_line(workdir: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    garbage = workdir / "notes.db"
    garbage.write_text("not a database")
    down = f"http://127.0.0.1:{_free_port()}"
    for store in (f"sqlite:///{garbage}", down):
        args = ["ui", "--port", str(_free_port()), "--tracking-uri", store]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        (line,) = result.output.strip().splitlines()  # not "MLflow UI for ..." first
        assert line.startswith(f"Error: Cannot reach the MLflow tracking store at {store}: ")


def test_a_variable_length_model_is_registered_for_series_of_any_length(store: str) -> None:
    import keras
    import mlflow
    import numpy as np

    from workbench.tracking import log_exported_model

    inputs = keras.Input((None, 2))
    outputs = keras.layers.Dense(1)(keras.layers.GRU(3)(keras.layers.Masking(-1000.0)(inputs)))
    model = keras.Model(inputs, outputs)
    client = MlflowClient(store)
    run = client.create_run(client.create_experiment("masked"))
    client.set_terminated(run.info.run_id)
    example = np.zeros((3, 5, 2), dtype="float32")
    registered = log_exported_model(
        store, run.info.run_id, model, input_example=example,
        output_example=model.predict(example, verbose=0), name="masked", variable_length=True,
    )  # fmt: skip
    mlflow.set_tracking_uri(store)
    served = mlflow.pyfunc.load_model(registered.model_uri)
    assert served.metadata.get_input_schema().inputs[0].shape == (-1, -1, 2)
    assert np.asarray(served.predict(np.zeros((2, 9, 2), dtype="float32"))).shape == (2, 1)


def test_a_trial_run_ended_elsewhere_stays_ended_when_its_worker_finishes_late(
    store: str,
) -> None:
    from workbench.tracking import Study

    study = Study(store, "late")
    study.open_search(params={}, tags={}, resume=False, run_name="s")
    run = study.start_trial("0", params={}, tags={}, run_name="t")
    # The chief declared the worker lost: the run ended KILLED while the worker trained on.
    assert study.kill_trial_runs("0", "worker_lost", "no heartbeat") == 1
    assert run.finish({"score": 0.5}) is True  # late: the worker's console says so
    ended = MlflowClient(store).get_run(run.run_id)
    assert ended.info.status == "KILLED" and ended.data.metrics["score"] == 0.5
    assert ended.data.tags["workbench.finished_late"] == "true"
    assert ended.data.tags["workbench.status"] == "worker_lost"
    study.end_search("FINISHED")


def test_ui_on_a_port_in_use_is_one_line_before_any_link(workdir: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    store = f"sqlite:///{workdir / 'mlflow.db'}"
    _study(store).end_search("FINISHED")  # a store to show
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["ui", "--port", str(port), "--tracking-uri", store])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"Error: Port {port} on 127.0.0.1 is in use (another workbench ui or server?). "
        f"Expected a free --port. Received: --port {port}"
    )


def test_ui_without_a_store_says_so_in_one_line(workdir: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    store = f"sqlite:///{workdir / 'none' / 'mlflow.db'}"
    result = CliRunner().invoke(main, ["ui", "--port", str(_free_port()), "--tracking-uri", store])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()  # no "MLflow UI for ..." line before it
    assert line.startswith(f"Error: No MLflow store at {workdir / 'none' / 'mlflow.db'} yet.")


def test_a_sqlite_uri_naming_a_folder_is_one_line_at_once(workdir: Path) -> None:
    import time

    from click.testing import CliRunner

    from workbench.cli import main

    (workdir / "stores").mkdir()
    store = f"sqlite:///{workdir / 'stores'}"
    started = time.monotonic()
    args = ["report", "--experiment", "x", "--out", "r", "--tracking-uri", store]
    result = CliRunner().invoke(main, args)
    # MLflow retried for about 100 s, printing a warning block each time, before it said so.
    assert time.monotonic() - started < 20
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"Error: The tracking store {store} names a folder, not a database")


def test_an_unreachable_server_is_one_line_that_ends_with_its_cause() -> None:
    from workbench.tracking import check_reachable

    # The cause closed a long line of request details, cut at 200 characters before it.
    with pytest.raises(WorkbenchError, match=r"at http://127\.0\.0\.1:\d+: Connection refused$"):
        check_reachable(f"http://127.0.0.1:{_free_port()}")


def test_a_tracking_store_an_installed_plugin_adds_is_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow takes stores from packages' "mlflow.tracking_store" entry points (azureml://
    # from azureml-mlflow): a scheme list of MLflow's own alone refused them.
    info = tmp_path / "fake_store-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-store\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[mlflow.tracking_store]\nazureml = fake:Store\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    uri = "azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/x"
    assert resolve_tracking_uri(uri) == uri
    with pytest.raises(WorkbenchError, match=r"Received: 'foo://bar' \(MLflow has no foo:// st"):
        resolve_tracking_uri("foo://bar")
