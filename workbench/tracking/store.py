"""The store: the tracking URI, the embedded SQLite store and its locks, the MLflow client."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError, first_line
from workbench.resources import install_extra

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
    scheme = chosen.split("://")[0].split("+")[0].lower() if "://" in chosen else ""
    if scheme == "sqlite":  # sqlite:// is a database in memory: every result lost
        raise WorkbenchError(
            f"Expected a SQLite database file such as sqlite:///mlruns/mlflow.db (three "
            f"slashes, then its path). Received: {chosen!r}, a database in memory that "
            "keeps nothing past the command"
        )
    if scheme and scheme not in _SCHEMES and scheme not in _plugin_schemes():
        raise WorkbenchError(
            f"Expected a tracking URI such as sqlite:///mlruns/mlflow.db, http://host:5000 or "
            f"postgresql://user@host/db. Received: {chosen!r} (MLflow has no {scheme}:// "
            "store)"
        )
    if chosen in ("databricks", "databricks-uc", "uc"):  # MLflow's names, not folders
        return chosen
    if "://" not in chosen or chosen.startswith("file:"):
        # A folder (bare or file://): MLflow 3.13+ refuses file stores; say so early, in one
        # line (MLflow's own refusal is a paragraph, and a traceback where it is not caught).
        raise WorkbenchError(
            f"Expected a tracking URI such as sqlite:///mlruns/mlflow.db or http://host:5000. "
            f"Received: {chosen!r} (plain folder stores are no longer supported by MLflow; "
            "`mlflow migrate-filestore` moves one into a database)"
        )
    return chosen


#: The tracking stores' schemes MLflow itself knows ("file" aside: refused below).
_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "file") + (
    "databricks",
    "databricks-uc",
    "uc",
)


def _plugin_schemes() -> set[str]:
    """The schemes of tracking stores that installed packages add to MLflow (``azureml``
    from azureml-mlflow, say): MLflow's ``mlflow.tracking_store`` entry points."""
    from importlib.metadata import entry_points

    return {point.name for point in entry_points(group="mlflow.tracking_store")}


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :])


def artifact_root(tracking_uri: str) -> Path | None:
    """For an embedded SQLite store, the folder beside the database that holds artifacts."""
    db = _sqlite_path(tracking_uri)
    return db.parent if db is not None else None


def state_key(tracking_uri: str, experiment: str, *, before_2026_12_07: bool = False) -> str:
    """A folder-safe name tying local search state to one experiment in one store.

    The name's readable part is the experiment's, folder-safe; its hash is of the store and
    the experiment, so names that read alike as folders ("my study", "my_study", "实验一",
    "实验二") get one each. ``before_2026_12_07``: the key a study begun before then has
    (its hash was the store's alone).
    """
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment).strip("_") or "study"
    named = tracking_uri if before_2026_12_07 else f"{tracking_uri}\n{experiment}"
    return f"{slug}-{hashlib.sha1(named.encode()).hexdigest()[:8]}"


#: Until :func:`patient_requests`: an unreachable server is one line at once, not minutes
#: of MLflow's retries (7, with backoff) first.
_FAIL_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
#: After :func:`patient_requests`: a server's blip of up to half a minute ridden out (5
#: retries, 1 to 16 s apart), a hung request given 30 s. MLflow's own (7 retries up to 2
#: minutes apart, 120 s a request) kept a search whose server went away silent, and deaf
#: to Ctrl-C, for 7 to 18 minutes: each of its last writes waited them out in turn.
_PATIENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
_patient = False
#: The request settings the workbench set (not the user), ``NAME=value`` each, for the
#: processes it starts too.
_SET_BY_WORKBENCH = "WORKBENCH_MLFLOW_FAIL_FAST"


def _ours() -> set[str]:
    """The request settings that hold what the workbench set: one a user set since (in a
    notebook, between two calls) is theirs."""
    ours = set()
    for item in filter(None, os.environ.get(_SET_BY_WORKBENCH, "").split(",")):
        name, _, value = item.partition("=")
        if os.environ.get(name) == value:
            ours.add(name)
    return ours


def _set_ours(values: Mapping[str, str]) -> None:
    """Set MLflow's request settings to ``values`` where the user did not set them (the
    workbench's earlier ones not among them are unset)."""
    ours = _ours()
    for name in ours - set(values):
        os.environ.pop(name, None)
    ours &= set(values)
    for name, value in values.items():
        if name in ours or name not in os.environ:
            os.environ[name] = value
            ours.add(name)
    os.environ[_SET_BY_WORKBENCH] = ",".join(f"{name}={values[name]}" for name in sorted(ours))


def _quiet_mlflow() -> None:
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not _patient:
        _set_ours(_FAIL_FAST)
    # MLflow 3 sends usage telemetry from logging calls; the workbench runs offline.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # A download's bar ("Downloading artifacts: 100%") above a command's own output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # "🏃 View run trial-001 ... at: http://..." for every run a server's client ends.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def client(tracking_uri: str):
    """An ``MlflowClient`` for ``tracking_uri`` (creating the SQLite folder if needed)."""
    _quiet_mlflow()
    db = _sqlite_path(tracking_uri)
    if db is not None:
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # mkdir's "File exists" for /etc/hostname/mlflow.db: a file where a folder is.
            blocked = next((p for p in db.parents if p.is_file()), None)
            why = f"{blocked} is a file" if blocked else exc.strerror
            raise WorkbenchError(
                f"Cannot create the tracking store folder {db.parent}: {why}"
            ) from None
        if not os.access(db.parent, os.W_OK):
            raise WorkbenchError(f"The tracking store folder {db.parent} is not writable")
        if db.exists() and not db.is_file():
            # SQLite cannot open it, and MLflow retries for about 100 s before it says so.
            raise WorkbenchError(
                f"The tracking store {tracking_uri} names a folder, not a database file. "
                f"Expected sqlite:///PATH/TO/FILE.db, e.g. sqlite:///{db / 'mlflow.db'}"
            )
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


def _connect_once(database_uri: str) -> None:
    """One connection attempt: MLflow itself retries a database for about 100 s, with a
    warning each time, before it gives up."""
    import sqlalchemy

    connect_args = {"connect_timeout": 10} if database_uri.startswith("postgresql") else {}
    engine = sqlalchemy.create_engine(database_uri, connect_args=connect_args)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def patient_requests() -> None:
    """From here on (until :func:`impatient_requests` or :func:`store_lost`), this
    process's requests to an MLflow server ride out its blips of up to half a minute with
    retries (what a long search's writes need once the server answered), unless the user
    set MLflow's request settings."""
    global _patient
    _patient = True
    _set_ours(_PATIENT)


def impatient_requests() -> None:
    """Back to failing fast (the search is over: a later command in this process, say a
    report on a server that is down, is one line in seconds)."""
    global _patient
    _patient = False


def store_lost() -> None:
    """Fail fast from now on: a request failed after its retries, which stops the search,
    and its last writes (ending the runs) are tried once each, not patiently in turn."""
    impatient_requests()
    _set_ours(_FAIL_FAST)


@contextlib.contextmanager
def _failing_fast() -> Iterator[None]:
    """No retries and a short timeout for the block (the user's own settings stay), even
    after :func:`patient_requests`: a check answers in seconds, not minutes."""
    ours = _ours()
    saved = {name: os.environ.get(name) for name in _FAIL_FAST}
    for name, value in _FAIL_FAST.items():
        if saved[name] is None or name in ours:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def failure_reason(exc: BaseException) -> str:
    """A store's failure in a few words: the cause ("Connection refused") that ends a long
    line of request details, where there is one."""
    cause = re.search(r"\[Errno -?\d+\] ([^'\"()\]]+)", str(exc))
    return cause.group(1).strip() if cause else first_line(exc)


def check_reachable(tracking_uri: str) -> None:
    """Fail with one clear line when the tracking store cannot be used (before any training)."""
    with _failing_fast():
        _check_reachable(tracking_uri)


#: A database's first use by two processes at once: both create MLflow's tables, and the
#: second's fail on the first's ("duplicate key value violates unique constraint").
_TABLES_RACED = ("UniqueViolation", "duplicate key", "already exists", "IntegrityError")


def _check_reachable(tracking_uri: str) -> None:
    database = tracking_uri.startswith(("postgresql", "mysql", "mssql"))
    try:
        if database:
            _connect_once(tracking_uri)
        for attempt in range(4 if database else 1):
            try:
                client(tracking_uri).search_experiments(max_results=1)
                break
            except WorkbenchError:
                raise
            except Exception as exc:  # noqa: BLE001 - tried again where tables were raced
                if attempt == 3 or not any(mark in str(exc) for mark in _TABLES_RACED):
                    raise
                time.sleep(2.0)  # the other process's tables done, ours find them
    except WorkbenchError:  # the workbench's own line (a file where the store's folder is)
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here means "cannot record"
        hint = ""
        if isinstance(exc, ImportError) and "psycopg" in str(exc):
            hint = f". A postgresql:// store needs its driver: {install_extra('postgres')}"
        reason = failure_reason(exc)
        raise WorkbenchError(
            f"Cannot reach the MLflow tracking store at {tracking_uri}: {reason}{hint}"
        ) from None


def _all_runs(
    mlflow_client: Any,
    experiment_id: str,
    filter_string: str,
    newest_first: bool = False,
    deleted: bool = False,
) -> list[Any]:
    """Every run matching ``filter_string``, page by page, ordered by start time (with
    ``deleted``, the deleted runs too)."""
    from mlflow.entities import ViewType

    runs: list[Any] = []
    token = None
    while True:
        page = mlflow_client.search_runs(
            [experiment_id],
            filter_string=filter_string,
            run_view_type=ViewType.ALL if deleted else ViewType.ACTIVE_ONLY,
            max_results=1000,
            order_by=[f"attributes.start_time {'DESC' if newest_first else 'ASC'}"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs
