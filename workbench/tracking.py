"""Tracking: what to record. The only module that talks to MLflow.

Layout in MLflow: one experiment per study; one parent run per search (role
``search``); one nested run per trial (role ``trial``) carrying every
hyperparameter as a param, per-epoch metrics (step = epoch), the final score, the
test metrics and the costs, and a ``cell`` tag so the UI can group by cell type.
Every run is ended in a ``finally``: a trial run ends FINISHED, FAILED (tag
``failure``) or KILLED, never RUNNING.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
ROLE = "workbench.role"
TRIAL_ID = "workbench.trial_id"
PARENT = "mlflow.parentRunId"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The tracking URI to use: ``uri``, else ``$MLFLOW_TRACKING_URI``, else the embedded store.

    A relative SQLite path is made absolute against the current folder, so a study
    started here resumes here whatever the later working directory.
    """
    chosen = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    db_path = _sqlite_path(chosen)
    if db_path is not None:
        return "sqlite:///" + str(db_path.resolve())
    if "://" not in chosen:  # a bare folder: MLflow 3.13+ refuses file stores, say so early
        raise WorkbenchError(
            f"Expected a tracking URI such as sqlite:///mlruns/mlflow.db or http://host:5000. "
            f"Received: {chosen!r} (plain folder stores are no longer supported by MLflow)"
        )
    return chosen


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :])


def artifact_root(tracking_uri: str) -> Path | None:
    """For an embedded SQLite store, the folder beside the database that holds artifacts."""
    db = _sqlite_path(tracking_uri)
    return db.parent if db is not None else None


def state_key(tracking_uri: str, experiment: str) -> str:
    """A folder-safe name tying local search state to one experiment in one store."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment).strip("_") or "study"
    return f"{slug}-{hashlib.sha1(tracking_uri.encode()).hexdigest()[:8]}"


def _quiet_mlflow() -> None:
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Fail fast on an unreachable server instead of retrying for minutes.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    # MLflow 3 sends usage telemetry from logging calls; the workbench runs offline.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def client(tracking_uri: str):
    """An ``MlflowClient`` for ``tracking_uri`` (creating the SQLite folder if needed)."""
    _quiet_mlflow()
    db = _sqlite_path(tracking_uri)
    if db is not None:
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkbenchError(
                f"Cannot create the tracking store folder {db.parent}: {exc.strerror}"
            ) from None
        if not os.access(db.parent, os.W_OK):
            raise WorkbenchError(f"The tracking store folder {db.parent} is not writable")
    from mlflow import MlflowClient

    _quiet_mlflow()  # again: importing mlflow resets its loggers to INFO
    if db is None:
        return MlflowClient(tracking_uri=tracking_uri)
    _wait_for_sqlite_locks()
    # MLflow creates or migrates a SQLite store's schema when the client is made; two
    # processes doing that at once break each other ("table ... already exists").
    with _file_lock(db.with_name(db.name + ".lock")):
        return MlflowClient(tracking_uri=tracking_uri)


SQLITE_BUSY_TIMEOUT_MS = 60_000


def _sqlite_busy_timeout(dbapi_connection: Any, connection_record: Any) -> None:
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def _wait_for_sqlite_locks() -> None:
    """Make every SQLite connection wait up to a minute for another writer's lock.

    Two searches writing to one SQLite store take turns; Python's default is to give up
    after 5 s with "database is locked". For many concurrent searches use `mlflow server`.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _sqlite_busy_timeout):
        event.listen(Engine, "connect", _sqlite_busy_timeout)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_reachable(tracking_uri: str) -> None:
    """Fail with one clear line when the tracking store cannot be used (before any training)."""
    mlflow_client = client(tracking_uri)
    try:
        mlflow_client.search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure here means "cannot record"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkbenchError(
            f"Cannot reach the MLflow tracking store at {tracking_uri}: {first[:200]}"
        ) from None


def _param_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _finite(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if value is None:
            continue
        number = float(value)
        out[key] = number if math.isfinite(number) else float("nan")
    return out


class TrialRun:
    """One nested MLflow run for one trial. End it with :meth:`finish` or :meth:`fail`."""

    def __init__(self, mlflow_client: Any, run_id: str) -> None:
        self._client = mlflow_client
        self.run_id = run_id
        self.ended = False

    def log_epoch(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Log one epoch's metrics at ``step`` (the epoch index)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, step) for k, v in _finite(metrics).items()]
        if batch:
            self._client.log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self._client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def finish(self, metrics: Mapping[str, Any], tags: Mapping[str, Any] | None = None) -> None:
        """Log the final metrics and end the run FINISHED."""
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        tag_items = {"workbench.status": "completed", **(tags or {})}
        self._client.log_batch(
            self.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in _finite(metrics).items()],
            tags=[RunTag(k, str(v)) for k, v in tag_items.items()],
        )
        self._end("FINISHED")

    def fail(self, failure: str, detail: str = "", status: str = "FAILED") -> None:
        """End the run FAILED (or KILLED) with tags ``failure`` and ``failure_detail``."""
        try:
            self.set_tags(
                {"failure": failure, "failure_detail": detail[:4000], "workbench.status": failure}
            )
        finally:
            self._end(status)

    def close(self) -> None:
        """End the run KILLED if nothing else ended it (used in ``finally``)."""
        if not self.ended:
            self.fail("interrupted", "the trial stopped before it finished", status="KILLED")

    def _end(self, status: str) -> None:
        if not self.ended:
            self.ended = True
            self._client.set_terminated(self.run_id, status=status)


class Study:
    """One experiment and its search's parent run, in one tracking store."""

    def __init__(self, tracking_uri: str, experiment: str) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self._client = client(tracking_uri)
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None

    # --- search level -----------------------------------------------------------------------

    def open_search(
        self,
        *,
        params: Mapping[str, Any],
        tags: Mapping[str, Any],
        resume: bool,
        run_name: str,
    ) -> bool:
        """Create (or, with ``resume``, reuse) the search's parent run.

        Returns True when an earlier parent run was reused. Without ``resume`` the
        experiment's earlier runs are deleted (MLflow keeps them restorable).
        """
        self.experiment_id = self._get_or_create_experiment(tags)
        previous = self._search_runs(f"tags.`{ROLE}` = 'search'")
        if resume and previous:
            run = previous[0]
            self.parent_run_id = run.info.run_id
            self._client.update_run(self.parent_run_id, status="RUNNING")
            self._kill_stale_trials()
            self._client.log_batch(self.parent_run_id, tags=_tags(tags))
            return True
        if not resume:
            for run in self._search_runs(""):
                self._client.delete_run(run.info.run_id)
        from mlflow.entities import Param

        run = self._client.create_run(
            self.experiment_id, run_name=run_name, tags={**_str(tags), ROLE: "search"}
        )
        self.parent_run_id = run.info.run_id
        self._client.log_batch(
            self.parent_run_id,
            params=[Param(k, _param_value(v)) for k, v in params.items()],
        )
        return False

    def log_search_summary(self, metrics: Mapping[str, Any], tags: Mapping[str, Any]) -> None:
        """Metrics and tags on the parent run (best score, counts, best hyperparameters)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._client.log_batch(
            self._parent(),
            metrics=[Metric(k, v, now, 0) for k, v in _finite(metrics).items()],
            tags=_tags(tags),
        )

    def log_dataset(self, name: str, digest: str, source: str, schema: str, profile: str) -> None:
        """Record the search's data as an MLflow dataset input of the parent run."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(
            name=name,
            digest=digest,
            source_type="local",
            source=source,
            schema=schema,
            profile=profile,
        )
        self._client.log_inputs(
            self._parent(),
            datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])],
        )

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Copy a file (the task or space definition, a report) to the parent run."""
        self._client.log_artifact(self._parent(), str(path), artifact_path)

    def end_search(self, status: str) -> None:
        """End the parent run (FINISHED, FAILED or KILLED); trial runs left open become KILLED."""
        if self.parent_run_id is None:
            return
        try:
            self._kill_stale_trials()
        finally:
            self._client.set_terminated(self.parent_run_id, status=status)

    # --- trial level ------------------------------------------------------------------------

    def start_trial(
        self, trial_id: str, params: Mapping[str, Any], tags: Mapping[str, Any], run_name: str
    ) -> TrialRun:
        """Start the nested run of one trial with its hyperparameters as params."""
        from mlflow.entities import Param

        run = self._client.create_run(
            self.experiment_id,  # type: ignore[arg-type]
            run_name=run_name,
            tags={**_str(tags), ROLE: "trial", TRIAL_ID: trial_id, PARENT: self._parent()},
        )
        trial = TrialRun(self._client, run.info.run_id)
        try:
            self._client.log_batch(
                run.info.run_id, params=[Param(k, _param_value(v)) for k, v in params.items()]
            )
        except BaseException:
            trial.fail("error", "could not log the trial's params")
            raise
        return trial

    def finished_trial(self, trial_id: str) -> tuple[str, dict[str, float]] | None:
        """``(run_id, metrics)`` of this trial's FINISHED run in this search, if there is one."""
        runs = self._search_runs(
            f"tags.`{TRIAL_ID}` = '{trial_id}' and tags.`{PARENT}` = '{self._parent()}' "
            "and attributes.status = 'FINISHED'"
        )
        for run in runs:
            if "score" in run.data.metrics:
                return run.info.run_id, dict(run.data.metrics)
        return None

    def tag_trial(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set tags on a trial run that has already ended (e.g. its checkpoint was deleted)."""
        for key, value in _str(tags).items():
            self._client.set_tag(run_id, key, value)

    # --- helpers ----------------------------------------------------------------------------

    def _parent(self) -> str:
        if self.parent_run_id is None:
            raise RuntimeError("open_search() must be called first")
        return self.parent_run_id

    def _get_or_create_experiment(self, tags: Mapping[str, Any]) -> str:
        existing = self._client.get_experiment_by_name(self.experiment)
        if existing is not None:
            if existing.lifecycle_stage == "deleted":
                self._client.restore_experiment(existing.experiment_id)
            return existing.experiment_id
        root = artifact_root(self.tracking_uri)
        location = None
        if root is not None:
            location = (root / state_key(self.tracking_uri, self.experiment)).as_uri()
        return self._client.create_experiment(
            self.experiment, artifact_location=location, tags=_str(tags)
        )

    def _search_runs(self, filter_string: str) -> list[Any]:
        return _all_runs(self._client, self.experiment_id, filter_string, newest_first=True)

    def _kill_stale_trials(self) -> None:
        stale = self._search_runs(
            f"tags.`{PARENT}` = '{self._parent()}' and attributes.status = 'RUNNING'"
        )
        for run in stale:
            TrialRun(self._client, run.info.run_id).fail(
                "interrupted", "the search process stopped while this trial ran", status="KILLED"
            )


def _str(tags: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in tags.items()}


def _tags(tags: Mapping[str, Any]) -> list[Any]:
    from mlflow.entities import RunTag

    return [RunTag(k, str(v)) for k, v in tags.items()]


def ui_command(
    tracking_uri: str, host: str = "127.0.0.1", port: int = 5000, workers: int = 1
) -> list[str]:
    """The command line that starts the MLflow UI over ``tracking_uri``.

    One worker process by default: MLflow's default of 4 each import MLflow, which makes a
    local UI take several times longer to start, for a single user.
    """
    import sys

    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        tracking_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    root = artifact_root(tracking_uri)
    if root is not None:
        command += ["--default-artifact-root", root.as_uri()]
    return command


def serve_ui(tracking_uri: str, host: str = "127.0.0.1", port: int = 5000) -> int:
    """Run the MLflow UI in the foreground until interrupted; returns its exit code."""
    import subprocess

    db = _sqlite_path(tracking_uri)
    if db is not None and not db.exists():
        raise WorkbenchError(
            f"No MLflow store at {db} yet. Run a search first, e.g. "
            "workbench search --task adding --space small"
        )
    from workbench.stopping import on_signals

    # Its own session: MLflow's UI starts uvicorn and job workers of its own, and stopping
    # only the first process would leave them serving. Ctrl-C and SIGTERM stop the group.
    process = subprocess.Popen(ui_command(tracking_uri, host, port), start_new_session=True)
    try:
        with on_signals():
            return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_group(process)


def _stop_group(process: Any, grace: float = 10.0) -> None:
    """Terminate a process started in its own session and everything it started."""
    import signal
    import subprocess

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; its children may still be winding down.
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)


# --- reading a finished study back, and publishing its model (workbench.export) ----------------


@dataclass(frozen=True)
class TrialRecord:
    """One trial run as recorded: its ids, status, params, metrics and tags (all as logged)."""

    run_id: str
    parent_run_id: str
    experiment: str
    experiment_id: str
    trial_id: str
    number: int
    status: str
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    tags: Mapping[str, str]


@dataclass(frozen=True)
class SearchRecord:
    """The search (parent) run of a trial: params, tags, dataset digest and its task file."""

    run_id: str
    params: Mapping[str, str]
    tags: Mapping[str, str]
    dataset_digest: str | None
    task_file: Path | None


@dataclass(frozen=True)
class RegisteredModel:
    """Where an exported model landed in MLflow."""

    name: str
    version: str
    alias: str
    model_uri: str  # models:/NAME@ALIAS
    logged_uri: str  # the MLflow Model logged on the trial run


def _existing_store(tracking_uri: str, experiment: str) -> None:
    db = _sqlite_path(tracking_uri)
    if db is not None and not db.exists():
        raise WorkbenchError(
            f"Unknown experiment {experiment!r}: there is no MLflow store at {db} yet. "
            "Run a search first, e.g. workbench search --task adding --space small"
        )


def _to_record(run: Any, experiment: str) -> TrialRecord:
    tags = dict(run.data.tags)
    trial_id = tags.get(TRIAL_ID, "")
    number = tags.get("workbench.trial_number")
    return TrialRecord(
        run_id=run.info.run_id,
        parent_run_id=tags.get(PARENT, ""),
        experiment=experiment,
        experiment_id=run.info.experiment_id,
        trial_id=trial_id,
        number=int(number) if number and number.isdigit() else int(trial_id or 0) + 1,
        status=run.info.status,
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        tags=tags,
    )


def _all_runs(
    mlflow_client: Any, experiment_id: str, filter_string: str, newest_first: bool = False
) -> list[Any]:
    """Every run matching ``filter_string``, page by page, ordered by start time."""
    runs: list[Any] = []
    token = None
    while True:
        page = mlflow_client.search_runs(
            [experiment_id],
            filter_string=filter_string,
            max_results=1000,
            order_by=[f"attributes.start_time {'DESC' if newest_first else 'ASC'}"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def find_trial(tracking_uri: str, experiment: str, trial: str | None = None) -> TrialRecord:
    """The best FINISHED trial of ``experiment``, or the one named by ``trial``.

    ``trial`` is a trial number (``3``, as the search printed it) or a run id. "Best" follows
    the search's objective direction (the parent run's ``direction`` param).

    Raises:
        WorkbenchError: unknown experiment, no finished trial, or an unknown/unfinished trial.
    """
    _existing_store(tracking_uri, experiment)
    mlflow_client = client(tracking_uri)
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage == "deleted":
        names = [e.name for e in mlflow_client.search_experiments() if e.name != "Default"]
        known = f"Expected one of: {', '.join(sorted(names)[:10])}" if names else "It has none"
        raise WorkbenchError(
            f"Unknown experiment {experiment!r} in {tracking_uri}. {known}. "
            "Received: --experiment " + experiment
        )
    runs = _all_runs(mlflow_client, found.experiment_id, f"tags.`{ROLE}` = 'trial'")
    records = [_to_record(run, experiment) for run in runs]
    finished = [r for r in records if r.status == "FINISHED" and "score" in r.metrics]
    if trial is not None:
        wanted = [
            r
            for r in records
            if r.run_id == trial or (trial.isdigit() and str(r.number) == trial.lstrip("0"))
        ]
        if not wanted:
            numbers = ", ".join(str(r.number) for r in sorted(records, key=lambda r: r.number))
            raise WorkbenchError(
                f"Expected --trial to be a trial number or run id of experiment {experiment!r} "
                f"(trials: {numbers or 'none'}). Received: --trial {trial}"
            )
        chosen = wanted[0]
        if chosen not in finished:
            failure = chosen.tags.get("failure", chosen.status.lower())
            raise WorkbenchError(
                f"Trial {chosen.number} of experiment {experiment!r} did not finish "
                f"({chosen.status}, {failure}); export a FINISHED trial"
            )
        return chosen
    if not finished:
        counts = ", ".join(
            f"{sum(r.status == s for r in records)} {s}"
            for s in sorted({r.status for r in records})
        )
        raise WorkbenchError(
            f"Experiment {experiment!r} has no finished trial to export "
            f"({counts or 'no trial runs'}). Run or resume its search first"
        )
    parents = {r.parent_run_id for r in finished}
    directions = {
        mlflow_client.get_run(p).data.params.get("direction", "min") for p in parents if p
    }
    direction = directions.pop() if len(directions) == 1 else "min"
    pick = max if direction == "max" else min
    return pick(finished, key=lambda r: r.metrics["score"])


def read_search(tracking_uri: str, parent_run_id: str, download_to: Path) -> SearchRecord:
    """The trial's search run: params, tags, dataset digest; its task file downloaded."""
    mlflow_client = client(tracking_uri)
    run = mlflow_client.get_run(parent_run_id)
    inputs = run.inputs.dataset_inputs if run.inputs else []
    digest = inputs[0].dataset.digest if inputs else None
    task_file = None
    try:
        files = [f for f in mlflow_client.list_artifacts(parent_run_id, "task") if not f.is_dir]
        if files:
            download_to.mkdir(parents=True, exist_ok=True)
            task_file = Path(
                mlflow_client.download_artifacts(parent_run_id, files[0].path, str(download_to))
            )
    except Exception:  # noqa: BLE001 - a missing artifact store falls back to the task's name
        task_file = None
    return SearchRecord(
        parent_run_id, dict(run.data.params), dict(run.data.tags), digest, task_file
    )


def log_exported_model(
    tracking_uri: str,
    run_id: str,
    model: Any,
    *,
    input_example: Any,
    output_example: Any,
    name: str,
    alias: str = "champion",
    pip_requirements: list[str] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> RegisteredModel:
    """Log ``model`` as an MLflow Model (keras flavor) on ``run_id``, register it, set ``alias``.

    The trial run has ended; the model is attached to it without reopening it.
    """
    import types

    client(tracking_uri)  # the store's folder, schema and lock settings
    import mlflow
    import mlflow.keras
    from mlflow.models import Model, infer_signature

    _quiet_mlflow()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow_client = client(tracking_uri)

    def save_model(path: str, **kwargs: Any) -> Any:
        # mlflow.keras.save_model writes the input example before it creates the model
        # folder (mlflow/mlflow#16183, open): create it first.
        os.makedirs(path, exist_ok=True)
        return mlflow.keras.save_model(path=path, **kwargs)

    flavor = types.SimpleNamespace(__name__="mlflow.keras", save_model=save_model)
    # MLflow 3 files the LoggedModel under the *active* experiment; left unset that is the
    # store's Default experiment, whose artifacts go to ./mlruns of the current folder.
    mlflow.set_experiment(experiment_id=mlflow_client.get_run(run_id).info.experiment_id)
    info = Model.log(
        artifact_path=None,
        name="model",
        flavor=flavor,
        model=model,
        run_id=run_id,
        signature=infer_signature(input_example, output_example),
        input_example=input_example,
        pip_requirements=pip_requirements,
        tags={k: str(v) for k, v in (tags or {}).items()},
    )
    try:
        version = mlflow.register_model(info.model_uri, name)
    except Exception as exc:  # noqa: BLE001 - e.g. a name the registry refuses
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkbenchError(f"Cannot register the model as {name!r}: {first[:200]}") from None
    mlflow_client.set_registered_model_alias(name, alias, version.version)
    mlflow_client.set_tag(run_id, "workbench.registered_model", f"{name}/{version.version}")
    return RegisteredModel(
        name, str(version.version), alias, f"models:/{name}@{alias}", info.model_uri
    )


# --- reading a whole study back (workbench.reports) --------------------------------------------


@dataclass(frozen=True)
class StudyTrial:
    """One trial run of a study, as logged.

    ``metrics`` holds each metric's last value; ``histories`` each metric's values by step
    (``[(step, value), ...]``, step = epoch for per-epoch metrics). NaN stays NaN.
    """

    run_id: str
    number: int
    status: str
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    histories: Mapping[str, tuple[tuple[int, float], ...]]
    tags: Mapping[str, str]
    start_time: float | None  # seconds since the epoch
    end_time: float | None


@dataclass(frozen=True)
class StudyRecord:
    """A study read back: its search (parent) run and every trial run of that search."""

    tracking_uri: str
    experiment: str
    experiment_id: str
    parent_run_id: str
    parent_params: Mapping[str, str]
    parent_tags: Mapping[str, str]
    parent_metrics: Mapping[str, float]
    parent_start: float | None
    parent_end: float | None
    trials: tuple[StudyTrial, ...]


def _unknown_experiment(tracking_uri: str, experiment: str, names: list[str]) -> WorkbenchError:
    names = [n for n in names if n != "Default"]
    known = f"Expected one of: {', '.join(sorted(names)[:10])}" if names else "It has none"
    return WorkbenchError(
        f"Unknown experiment {experiment!r} in {tracking_uri}. {known}. "
        "Received: --experiment " + experiment
    )


def load_study(tracking_uri: str, experiment: str) -> StudyRecord:
    """Read a study back: the latest search run of ``experiment`` and all its trial runs.

    On an embedded SQLite store this is a handful of SQL queries (a 1,000-trial study
    reads in well under a second); on any other store (``mlflow server``) it goes through
    the MLflow client, one metric-history call per trial and metric.

    Raises:
        WorkbenchError: no store, unknown experiment, or an experiment without trial runs.
    """
    _existing_store(tracking_uri, experiment)
    db = _sqlite_path(tracking_uri)
    rows = None
    if db is not None:
        rows = _sqlite_study_rows(db, tracking_uri, experiment)
    if rows is None:
        rows = _client_study_rows(tracking_uri, experiment)
    experiment_id, runs = rows
    searches = [r for r in runs if r["tags"].get(ROLE) == "search"]
    trials = [r for r in runs if r["tags"].get(ROLE) == "trial"]
    if searches:
        parent = max(searches, key=lambda r: r["start"] or 0.0)
        trials = [r for r in trials if r["tags"].get(PARENT) == parent["run_id"]]
    else:
        parent = None
    if not trials:
        raise WorkbenchError(
            f"Experiment {experiment!r} has no trial runs to report on yet. Run its search "
            "first, e.g. workbench search --task adding --space gru_vs_lstm"
        )
    records = []
    for run in trials:
        tags = run["tags"]
        number = tags.get("workbench.trial_number", "")
        trial_id = tags.get(TRIAL_ID, "")
        records.append(
            StudyTrial(
                run_id=run["run_id"],
                number=int(number) if number.isdigit() else int(trial_id or 0) + 1,
                status=run["status"],
                params=run["params"],
                metrics=run["metrics"],
                histories=run["histories"],
                tags=tags,
                start_time=run["start"],
                end_time=run["end"],
            )
        )
    records.sort(key=lambda t: (t.number, t.start_time or 0.0))
    return StudyRecord(
        tracking_uri=tracking_uri,
        experiment=experiment,
        experiment_id=experiment_id,
        parent_run_id=parent["run_id"] if parent else "",
        parent_params=parent["params"] if parent else {},
        parent_tags=parent["tags"] if parent else {},
        parent_metrics=parent["metrics"] if parent else {},
        parent_start=parent["start"] if parent else None,
        parent_end=parent["end"] if parent else None,
        trials=tuple(records),
    )


def _seconds(millis: Any) -> float | None:
    return None if millis is None else float(millis) / 1000.0


def _sqlite_study_rows(
    db: Path, tracking_uri: str, experiment: str
) -> tuple[str, list[dict[str, Any]]] | None:
    """The study's runs straight from MLflow's SQLite schema; None if the schema is unknown."""
    import sqlite3

    try:
        connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error:
        return None
    try:
        found = connection.execute(
            "select experiment_id, lifecycle_stage from experiments where name = ?", (experiment,)
        ).fetchone()
        if found is None or found[1] == "deleted":
            names = [
                row[0]
                for row in connection.execute(
                    "select name from experiments where lifecycle_stage = 'active'"
                )
            ]
            raise _unknown_experiment(tracking_uri, experiment, names)
        experiment_id = str(found[0])
        active = "select run_uuid from runs where experiment_id = ? and lifecycle_stage = 'active'"
        runs: dict[str, dict[str, Any]] = {}
        for run_id, status, start, end in connection.execute(
            "select run_uuid, status, start_time, end_time from runs "
            "where experiment_id = ? and lifecycle_stage = 'active'",
            (experiment_id,),
        ):
            runs[run_id] = {
                "run_id": run_id,
                "status": status,
                "start": _seconds(start),
                "end": _seconds(end),
                "params": {},
                "tags": {},
                "metrics": {},
                "histories": {},
            }
        for table, field in (("tags", "tags"), ("params", "params")):
            query = f"select run_uuid, key, value from {table} where run_uuid in ({active})"
            for run_id, key, value in connection.execute(query, (experiment_id,)):
                runs[run_id][field][key] = value
        query = (
            f"select run_uuid, key, value, is_nan from latest_metrics where run_uuid in ({active})"
        )
        for run_id, key, value, is_nan in connection.execute(query, (experiment_id,)):
            runs[run_id]["metrics"][key] = float("nan") if is_nan else float(value)
        query = (
            "select run_uuid, key, step, value, is_nan from metrics "
            f"where run_uuid in ({active}) order by run_uuid, key, step, timestamp"
        )
        series: dict[tuple[str, str], dict[int, float]] = {}
        for run_id, key, step, value, is_nan in connection.execute(query, (experiment_id,)):
            series.setdefault((run_id, key), {})[int(step)] = (
                float("nan") if is_nan else float(value)
            )
        for (run_id, key), points in series.items():
            runs[run_id]["histories"][key] = tuple(sorted(points.items()))
    except sqlite3.OperationalError:
        return None  # another MLflow schema: the client reads it
    finally:
        connection.close()
    return experiment_id, list(runs.values())


def _client_study_rows(tracking_uri: str, experiment: str) -> tuple[str, list[dict[str, Any]]]:
    mlflow_client = client(tracking_uri)
    try:
        found = mlflow_client.get_experiment_by_name(experiment)
    except Exception as exc:  # noqa: BLE001 - an unreachable server: one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkbenchError(
            f"Cannot reach the MLflow tracking store at {tracking_uri}: {first[:200]}"
        ) from None
    if found is None or found.lifecycle_stage == "deleted":
        names = [e.name for e in mlflow_client.search_experiments()]
        raise _unknown_experiment(tracking_uri, experiment, names)
    runs = []
    for run in _all_runs(mlflow_client, found.experiment_id, ""):
        histories = {}
        if run.data.tags.get(ROLE) == "trial":
            for key in run.data.metrics:
                points = mlflow_client.get_metric_history(run.info.run_id, key)
                by_step = {
                    int(p.step): float(p.value)
                    for p in sorted(points, key=lambda p: (p.step, p.timestamp))
                }
                histories[key] = tuple(sorted(by_step.items()))
        runs.append(
            {
                "run_id": run.info.run_id,
                "status": run.info.status,
                "start": _seconds(run.info.start_time),
                "end": _seconds(run.info.end_time),
                "params": dict(run.data.params),
                "tags": dict(run.data.tags),
                "metrics": dict(run.data.metrics),
                "histories": histories,
            }
        )
    return found.experiment_id, runs


def log_report_artifacts(tracking_uri: str, run_id: str, files: list[Path]) -> None:
    """Attach a report's files to the search's parent run, under ``report/``."""
    mlflow_client = client(tracking_uri)
    for path in files:
        mlflow_client.log_artifact(run_id, str(path), "report")
