"""Reading a study back: a trial for export, and every trial for a report (fast on SQLite)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.search.config import best_of
from workbench.tracking.store import (
    PARENT,
    ROLE,
    TRIAL_ID,
    _all_runs,
    _sqlite_path,
    client,
    failure_reason,
)

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
    #: How many of its trials finished (their runs FINISHED), in every session so far.
    finished_trials: int | None = None


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


def find_trial(tracking_uri: str, experiment: str, trial: str | None = None) -> TrialRecord:
    """The best FINISHED trial of ``experiment``, or the one named by ``trial``.

    ``trial`` is a trial number (``3``, as the search printed it) or a run id. "Best" follows
    the search's objective direction (the parent run's ``direction`` param).

    Raises:
        WorkbenchError: unknown experiment, no finished trial, or an unknown/unfinished trial.
    """
    _existing_store(tracking_uri, experiment)
    mlflow_client = client(tracking_uri)
    found = _experiment(mlflow_client, tracking_uri, experiment)
    runs = _all_runs(mlflow_client, found.experiment_id, f"tags.`{ROLE}` = 'trial'")
    # The latest search's trials, as the report reads them: an experiment restored after
    # its deletion in the UI brings back the runs an --overwrite had deleted.
    searches = _all_runs(mlflow_client, found.experiment_id, f"tags.`{ROLE}` = 'search'")
    if searches:
        latest = max(searches, key=lambda r: r.info.start_time or 0).info.run_id
        runs = [r for r in runs if r.data.tags.get(PARENT) == latest]
    records = [_to_record(run, experiment) for run in runs]
    finished = [r for r in records if r.status == "FINISHED" and "score" in r.metrics]
    if trial is not None:
        wanted = [
            r
            for r in records
            if r.run_id == trial or (trial.isdigit() and str(r.number) == trial.lstrip("0"))
        ]
        if not wanted:
            numbers = ", ".join(str(n) for n in sorted({r.number for r in records}))
            raise WorkbenchError(
                f"Expected --trial to be a trial number or run id of experiment {experiment!r} "
                f"(trials: {numbers or 'none'}). Received: --trial {trial}"
            )
        # A trial interrupted and run again on resume has a KILLED run and a later one.
        chosen = next((r for r in wanted if r in finished), wanted[-1])
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
    return best_of(finished, direction, key=lambda r: r.metrics["score"])  # type: ignore[return-value]


def fetch_checkpoint(tracking_uri: str, record: TrialRecord, download_to: Path) -> Path | None:
    """The trial's best-epoch weights: the local file of its search, else a copy of the
    one logged in its artifacts (a search run on another host); None when deleted."""
    local = record.tags.get("checkpoint", "")
    if local not in ("", "deleted") and Path(local).is_file():
        return Path(local)
    logged = record.tags.get("checkpoint_artifact", "")
    if local == "deleted" or not logged:
        return None
    try:
        download_to.mkdir(parents=True, exist_ok=True)
        return Path(
            client(tracking_uri).download_artifacts(record.run_id, logged, str(download_to))
        )
    except Exception:  # noqa: BLE001 - gone from the artifact store: the caller says so
        return None


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
    finished = _all_runs(
        mlflow_client,
        run.info.experiment_id,
        f"tags.`{PARENT}` = '{parent_run_id}' and attributes.status = 'FINISHED'",
    )
    return SearchRecord(
        parent_run_id,
        dict(run.data.params),
        dict(run.data.tags),
        digest,
        task_file,
        sum(r.data.tags.get(ROLE) == "trial" for r in finished),
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


def _experiment(mlflow_client: Any, tracking_uri: str, experiment: str) -> Any:
    """The experiment named ``experiment``; an unreachable store or an unknown name is one
    line."""
    try:
        found = mlflow_client.get_experiment_by_name(experiment)
    except Exception as exc:  # noqa: BLE001 - an unreachable server: one line
        raise WorkbenchError(
            f"Cannot reach the MLflow tracking store at {tracking_uri}: {failure_reason(exc)}"
        ) from None
    if found is None or found.lifecycle_stage == "deleted":
        names = [e.name for e in mlflow_client.search_experiments()]
        raise _unknown_experiment(tracking_uri, experiment, names)
    return found


def _unknown_experiment(tracking_uri: str, experiment: str, names: list[str]) -> WorkbenchError:
    names = [n for n in names if n != "Default"]
    known = f"Expected one of: {', '.join(sorted(names)[:10])}" if names else "It has none"
    if len(names) > 10:
        known += f" and {len(names) - 10} more"
    return WorkbenchError(
        f"Unknown experiment {experiment!r} in {tracking_uri}. {known}. "
        "Received: --experiment " + experiment
    )


def load_study(tracking_uri: str, experiment: str, histories: bool = True) -> StudyRecord:
    """Read a study back: the latest search run of ``experiment`` and all its trial runs.

    ``histories=False`` leaves the per-epoch histories out (each trial's ``histories`` is
    empty): what needs only the runs, their params and last metrics reads a server's study
    in one search instead of a call per trial and metric.

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
        rows = _sqlite_study_rows(db, tracking_uri, experiment, histories)
    if rows is None:
        rows = _client_study_rows(tracking_uri, experiment, histories)
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


#: The tables and columns of MLflow's SQLite schema the fast reader reads. A store without
#: them is read through the MLflow client instead (slower, same rows); pyproject.toml pins
#: mlflow below 4 and tests/test_tracking.py names the version when this list goes stale.
FAST_READER_SCHEMA = {
    "experiments": ("experiment_id", "name", "lifecycle_stage"),
    "runs": ("run_uuid", "status", "start_time", "end_time", "experiment_id", "lifecycle_stage"),
    "tags": ("run_uuid", "key", "value"),
    "params": ("run_uuid", "key", "value"),
    "latest_metrics": ("run_uuid", "key", "value", "is_nan"),
    "metrics": ("run_uuid", "key", "step", "value", "is_nan", "timestamp"),
}


def fast_reader_schema_gaps(db: Path) -> list[str]:
    """The ``table.column`` names of :data:`FAST_READER_SCHEMA` the SQLite store ``db`` lacks."""
    import sqlite3

    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        gaps = []
        for table, columns in FAST_READER_SCHEMA.items():
            present = {row[1] for row in connection.execute(f"pragma table_info({table})")}
            gaps += [f"{table}.{column}" for column in columns if column not in present]
        return gaps
    finally:
        connection.close()


def _sqlite_study_rows(
    db: Path, tracking_uri: str, experiment: str, histories: bool = True
) -> tuple[str, list[dict[str, Any]]] | None:
    """The study's runs straight from MLflow's SQLite schema; None if the schema is unknown."""
    import sqlite3

    try:
        connection = sqlite3.connect(
            f"file:{db}?mode=ro", uri=True, timeout=60, isolation_level=None
        )
    except sqlite3.Error:
        return None
    try:
        # One read transaction: a search writing meanwhile (a trial run started between
        # two of these queries) is seen in all of them or in none.
        connection.execute("BEGIN")
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
        points_read = connection.execute(query, (experiment_id,)) if histories else ()
        for run_id, key, step, value, is_nan in points_read:
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


def _client_study_rows(
    tracking_uri: str, experiment: str, histories: bool = True
) -> tuple[str, list[dict[str, Any]]]:
    mlflow_client = client(tracking_uri)
    found = _experiment(mlflow_client, tracking_uri, experiment)
    try:
        return found.experiment_id, _client_runs(mlflow_client, found, histories)
    except Exception as exc:  # noqa: BLE001 - a store that failed mid-read: one line
        raise WorkbenchError(
            f"Cannot read experiment {experiment!r} from the MLflow tracking store at "
            f"{tracking_uri}: {failure_reason(exc)}"
        ) from None


def _client_runs(mlflow_client: Any, found: Any, histories: bool) -> list[dict[str, Any]]:
    runs = []
    for run in _all_runs(mlflow_client, found.experiment_id, ""):
        series = {}
        if histories and run.data.tags.get(ROLE) == "trial":
            for key in run.data.metrics:
                points = mlflow_client.get_metric_history(run.info.run_id, key)
                by_step = {
                    int(p.step): float(p.value)
                    for p in sorted(points, key=lambda p: (p.step, p.timestamp))
                }
                series[key] = tuple(sorted(by_step.items()))
        runs.append(
            {
                "run_id": run.info.run_id,
                "status": run.info.status,
                "start": _seconds(run.info.start_time),
                "end": _seconds(run.info.end_time),
                "params": dict(run.data.params),
                "tags": dict(run.data.tags),
                "metrics": dict(run.data.metrics),
                "histories": series,
            }
        )
    return runs
