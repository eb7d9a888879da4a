"""Writing a study: one parent run per search, one nested run per trial, report artifacts."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from workbench.tracking.failures import _STARTED_ELSEWHERE, StartedElsewhere, StoreFailed, _Guarded
from workbench.tracking.store import (
    PARENT,
    ROLE,
    TRIAL_ID,
    _all_runs,
    artifact_root,
    client,
    patient_requests,
    state_key,
)


def _param_value(value: Any) -> str:
    if isinstance(value, float):
        # Six digits where they are the value (0.001, not 0.001 with noise); else all of it:
        # a rounded learning rate is another one (an export's refit trains with the param).
        short = f"{value:.6g}"
        return short if float(short) == value else repr(value)
    return str(value)


#: The parent run's metric: the search's own wall-clock time, its sessions added up.
SEARCH_SECONDS = "search_seconds"


def _finite(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if value is None:
            continue
        number = float(value)
        out[key] = number if math.isfinite(number) else float("nan")
    return out


#: Where a trial run keeps its best-epoch weights among its artifacts.
CHECKPOINT_DIR = "checkpoint"
#: The trial run's tag naming the worker that ran it (a distributed search).
WORKER = "workbench.worker"
#: The experiment tag by which the MLflow UI (3.x) chooses its layout: a model-training
#: experiment opens on its runs, not on the GenAI "Traces" overview.
EXPERIMENT_KIND = "mlflow.experimentKind"
#: A run's description in the MLflow UI.
NOTE = "mlflow.note.content"
MODEL_TRAINING = "custom_model_development"


_WRITER: ThreadPoolExecutor | None = None


def _writer() -> ThreadPoolExecutor:
    """The one thread that writes trial runs' epoch metrics (one, so they land in order)."""
    global _WRITER
    if _WRITER is None:
        _WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-metrics")
    return _WRITER


def wait_for_writes() -> None:
    """Wait until every epoch write submitted so far is done (its errors stay with its run)."""
    if _WRITER is not None:
        _WRITER.submit(lambda: None).result()


class TrialRun:
    """One nested MLflow run for one trial. End it with :meth:`finish` or :meth:`fail`."""

    def __init__(self, mlflow_client: Any, run_id: str) -> None:
        self._client = mlflow_client
        self.run_id = run_id
        self.ended = False
        self._pending: list[tuple[list[Any], Any]] = []  # (metrics, their write)

    def log_epoch(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Log one epoch's metrics at ``step`` (the epoch index).

        Written by one background thread, in order, so training does not wait on the
        store; the run waits for every write before it ends, and a write that failed
        fails there. (Not MLflow's ``synchronous=False``: ending a run then shuts its
        logging queue down, about 0.5 s a trial, more than the writes it saves.)
        """
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, step) for k, v in _finite(metrics).items()]
        if batch:
            write = _writer().submit(self._client.log_batch, self.run_id, metrics=batch)
            self._pending.append((batch, write))

    def flush(self) -> None:
        """Wait until every epoch logged so far is in the store; a write that failed is
        tried once more (a server that blinked mid-trial is back by its end).

        Raises:
            StoreFailed: the store failed that write twice.
        """
        pending, self._pending = self._pending, []
        for batch, write in pending:
            try:
                write.result()
            except StoreFailed:
                self._client.log_batch(self.run_id, metrics=batch)
                patient_requests()  # it answers again: blips ridden out again

    def log_checkpoint(self, path: str | Path) -> str:
        """Copy the trial's best-epoch weights to its artifacts (any host that reaches the
        store can export it); returns the artifact path."""
        self._client.log_artifact(self.run_id, str(path), CHECKPOINT_DIR)
        return f"{CHECKPOINT_DIR}/{Path(path).name}"

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self._client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def finish(self, metrics: Mapping[str, Any], tags: Mapping[str, Any] | None = None) -> bool:
        """Log the final metrics and end the run FINISHED; False, or True when it was late.

        A run another process ended meanwhile (its worker was declared lost, or the trial
        was started again elsewhere) keeps that status, with the late results logged and
        the tag ``workbench.finished_late``: a trial keeps one FINISHED run.
        """
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        late = self._client.get_run(self.run_id).info.status != "RUNNING"
        status = {"workbench.finished_late": "true"} if late else {"workbench.status": "completed"}
        tag_items = {**status, **(tags or {})}
        self._client.log_batch(
            self.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in _finite(metrics).items()],
            tags=[RunTag(k, str(v)) for k, v in tag_items.items()],
        )
        if late:
            self.ended = True
            self.flush()
            return True
        self._end("FINISHED")
        return False

    def fail(
        self,
        failure: str,
        detail: str = "",
        status: str = "FAILED",
        metrics: Mapping[str, Any] | None = None,
    ) -> None:
        """End the run FAILED (or KILLED) with tags ``failure`` and ``failure_detail``, and
        ``metrics`` measured before it failed (the training seconds it cost)."""
        from mlflow.entities import Metric, RunTag

        tags = {"failure": failure, "failure_detail": detail[:4000], "workbench.status": failure}
        now = int(time.time() * 1000)
        try:
            self._client.log_batch(
                self.run_id,
                metrics=[Metric(k, v, now, 0) for k, v in _finite(metrics or {}).items()],
                tags=[RunTag(k, str(v)) for k, v in tags.items()],
            )
        finally:
            self._end(status)

    def close(self, metrics: Mapping[str, Any] | None = None) -> None:
        """End the run KILLED if nothing else ended it (used in ``finally``), with
        ``metrics`` measured until then (the training seconds it cost).

        When the store itself failed, the run cannot be ended there; it stays RUNNING
        until the search resumes (which ends it KILLED), and the store's failure that is
        already on its way out is not replaced by this one.
        """
        if not self.ended:
            with contextlib.suppress(StoreFailed):
                self.fail(
                    "interrupted",
                    "the trial stopped before it finished",
                    status="KILLED",
                    metrics=metrics,
                )

    def _end(self, status: str) -> None:
        if not self.ended:
            self.ended = True
            try:
                self.flush()
            except BaseException:
                # Epochs missing: not a run to keep as FINISHED (a resume runs it again).
                with contextlib.suppress(StoreFailed):
                    self._client.set_terminated(self.run_id, status="KILLED")
                raise
            self._client.set_terminated(self.run_id, status=status)


class Study:
    """One experiment and its search's parent run, in one tracking store."""

    def __init__(self, tracking_uri: str, experiment: str) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self._client = _Guarded(client(tracking_uri), tracking_uri)
        # A distributed search leaves its workers' trial runs to them (see open_search).
        self._kill_running = True
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None
        #: Whether open_search reused an earlier search run (else it created one: no trial
        #: run of it exists yet).
        self.reused = False
        self._search_open = False
        # The search's own time over its sessions (a resume's pause is not search time).
        self._session_start = time.time()
        self._earlier_seconds = 0.0

    # --- search level -----------------------------------------------------------------------

    def open_search(
        self,
        *,
        params: Mapping[str, Any],
        tags: Mapping[str, Any],
        resume: bool,
        run_name: str,
        kill_running: bool = True,
        since: float | None = None,
    ) -> bool:
        """Create (or, with ``resume``, reuse) the search's parent run.

        ``since``: when the caller read the study's runs (seconds since the epoch) before
        starting it afresh; a workbench run started after that (or a search run that
        appears beside this one's) is another process's, the same study started elsewhere
        at the same moment: refused, nothing of theirs deleted.

        Returns True when an earlier parent run was reused; its trial runs left RUNNING
        are ended KILLED unless ``kill_running`` is False (a distributed search: their
        workers may still be training, and come back to the restarted chief). Without
        ``resume`` the experiment's earlier runs are deleted (MLflow keeps them restorable);
        with it but no search run to reuse, the trial runs left without theirs. Runs the
        workbench did not log (no ``workbench.role`` tag) are never deleted.
        """
        self.experiment_id = self._get_or_create_experiment(tags)
        self._kill_running = kill_running
        self._session_start = time.time()
        # The experiment describes its latest search (the UI shows its note as the
        # description): a new search in it (--overwrite, another space), or a resume with
        # another budget, updates it.
        described = self._client.get_experiment(self.experiment_id).tags
        for key, value in _str(tags).items():
            if described.get(key) != value:
                self._client.set_experiment_tag(self.experiment_id, key, value)
        previous = self._search_runs(f"tags.`{ROLE}` = 'search'")
        if resume and previous:
            run = previous[0]
            self.parent_run_id = run.info.run_id
            self.reused = True
            self._earlier_seconds = self._seconds_so_far(run)
            self._client.update_run(self.parent_run_id, status="RUNNING")
            self._search_open = True
            if kill_running:
                self._kill_stale_trials()
            self._client.log_batch(self.parent_run_id, tags=_tags(tags))
            return True
        # Search runs first: a deletion cut short never leaves one to resume over its deleted
        # trials (a trial run is only reused under its own search run).
        earlier = self._search_runs("" if not resume else f"tags.`{ROLE}` = 'trial'")
        # Only the workbench's own runs: a run someone else logged in the experiment stays.
        earlier = [r for r in earlier if r.data.tags.get(ROLE) in ("search", "trial")]
        after = None if since is None else since * 1000
        if after is not None and any(r.info.start_time >= after for r in earlier):
            raise StartedElsewhere(_STARTED_ELSEWHERE.format(experiment=self.experiment))
        for run in sorted(earlier, key=lambda r: r.data.tags.get(ROLE) != "search"):
            self._client.delete_run(run.info.run_id)
        from mlflow.entities import Param

        run = self._client.create_run(
            self.experiment_id, run_name=run_name, tags={**_str(tags), ROLE: "search"}
        )
        if after is not None:
            # Both processes may have looked before either opened: the one whose run came
            # second backs off.
            ours = (run.info.start_time, run.info.run_id)
            others = self._search_runs(f"tags.`{ROLE}` = 'search'")
            if any(after <= r.info.start_time and (r.info.start_time, r.info.run_id) < ours
                   for r in others):  # fmt: skip
                self._client.delete_run(run.info.run_id)
                raise StartedElsewhere(_STARTED_ELSEWHERE.format(experiment=self.experiment))
        self.parent_run_id = run.info.run_id
        self._search_open = True
        self._client.log_batch(
            self.parent_run_id,
            params=[Param(k, _param_value(v)) for k, v in params.items()],
        )
        return False

    def _seconds_so_far(self, run: Any) -> float:
        """A resumed search's time before this session: as logged, else its run's start to
        its end, or to its trials' last activity where a hard kill left it RUNNING."""
        if SEARCH_SECONDS in run.data.metrics:
            return float(run.data.metrics[SEARCH_SECONDS])
        start = run.info.start_time or 0
        ended = run.info.end_time
        if ended is None:  # read before the trials left RUNNING are ended now
            trials = self._search_runs(f"tags.`{PARENT}` = '{run.info.run_id}'")
            ended = max((t.info.end_time or t.info.start_time or 0 for t in trials), default=0)
        return max(0.0, (max(ended, start) - start) / 1000)

    def attach(self, experiment_id: str, parent_run_id: str) -> None:
        """Write into a search another process opened (a worker of a distributed search)."""
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id

    def running_search_since(self) -> float | None:
        """When the study's latest search run started, where it is RUNNING (a search going
        on elsewhere, or one killed hard); None otherwise."""
        existing = self._client.get_experiment_by_name(self.experiment)
        if existing is None or existing.lifecycle_stage == "deleted":
            return None
        runs = _all_runs(
            self._client, existing.experiment_id, f"tags.`{ROLE}` = 'search'", newest_first=True
        )
        if runs and runs[0].info.status == "RUNNING":
            return runs[0].info.start_time / 1000
        return None

    def recorded_runs(self, deleted: bool = False) -> int:
        """How many workbench runs (searches and trials) the study's experiment holds; with
        ``deleted``, those of an experiment deleted in the UI too (restored when the study
        opens)."""
        existing = self._client.get_experiment_by_name(self.experiment)
        in_bin = existing is not None and existing.lifecycle_stage == "deleted"
        if existing is None or (in_bin and not deleted):
            return 0
        return sum(
            len(
                _all_runs(
                    self._client, existing.experiment_id, f"tags.`{ROLE}` = '{r}'", False, in_bin
                )
            )
            for r in ("search", "trial")
        )

    def log_search_summary(
        self,
        metrics: Mapping[str, Any],
        tags: Mapping[str, Any],
        best: Mapping[str, Any] | None = None,
    ) -> None:
        """Metrics and tags on the parent run (best score, counts), and the best trial's
        hyperparameters as ``best.<name>`` tags, written as its run's params are (a value
        pastes into a ``params.<name>`` filter)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = {
            f"best.{k}": _param_value("none" if v is None else v) for k, v in (best or {}).items()
        }
        self._client.log_batch(
            self._parent(),
            metrics=[Metric(k, v, now, 0) for k, v in _finite(metrics).items()],
            tags=_tags({**tags, **values}),
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
        """End the parent run (FINISHED, FAILED or KILLED); trial runs left open become KILLED,
        but a distributed search's (``kill_running=False``): remote workers train on through
        a chief's restart, and end their runs themselves."""
        if self.parent_run_id is None:
            return
        try:
            if self._kill_running:
                self._kill_stale_trials()
        finally:
            self._search_open = False
            try:
                seconds = self._earlier_seconds + time.time() - self._session_start
                self._client.log_metric(self.parent_run_id, SEARCH_SECONDS, seconds)
            finally:
                self._client.set_terminated(self.parent_run_id, status=status)

    def end_search_if_open(self) -> None:
        """End the parent run KILLED if this study opened it and nothing ended it: the
        search's process was interrupted while the run was being opened, before the
        search could end it itself."""
        if self._search_open:
            self.end_search("KILLED")

    # --- trial level ------------------------------------------------------------------------

    def start_trial(
        self, trial_id: str, params: Mapping[str, Any], tags: Mapping[str, Any], run_name: str
    ) -> TrialRun:
        """Start the nested run of one trial with its hyperparameters as params."""
        from mlflow.entities import Param

        # A trial started again (its worker or the search restarted) ends its earlier run.
        self.kill_trial_runs(trial_id, "interrupted", "the trial was started again")
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

    def finished_trial_ids(self) -> set[str]:
        """The trials of this search with a FINISHED run (ended by any process)."""
        runs = self._search_runs(
            f"tags.`{PARENT}` = '{self._parent()}' and attributes.status = 'FINISHED'"
        )
        return {run.data.tags[TRIAL_ID] for run in runs if TRIAL_ID in run.data.tags}

    def trial_ending(self, trial_id: str) -> tuple[str, str, str]:
        """How the trial's latest run in this search ended: ``(worker, failure, detail)``,
        the worker "" when not distributed, the failure and its detail "" unless it failed
        (the ``failure`` tag: diverged, oom, error, worker_lost, ...)."""
        runs = self._search_runs(
            f"tags.`{TRIAL_ID}` = '{trial_id}' and tags.`{PARENT}` = '{self._parent()}'"
        )
        tags = runs[0].data.tags if runs else {}
        return tags.get(WORKER, ""), tags.get("failure", ""), tags.get("failure_detail", "")

    def kill_trial_runs(self, trial_id: str, failure: str, detail: str) -> int:
        """End this trial's runs still RUNNING as KILLED (tag ``failure``); how many."""
        stale = self._search_runs(
            f"tags.`{TRIAL_ID}` = '{trial_id}' and tags.`{PARENT}` = '{self._parent()}' "
            "and attributes.status = 'RUNNING'"
        )
        for run in stale:
            TrialRun(self._client, run.info.run_id).fail(failure, detail, status="KILLED")
        return len(stale)

    def delete_checkpoint(self, run_id: str) -> bool:
        """Delete a trial's logged weights (it fell out of the best ``--keep-checkpoints``).

        True when they are gone; False when the artifact store could not delete them (a
        store without deletion, a server error): they stay, and the search goes on.
        """
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        uri = self._client.get_run(run_id).info.artifact_uri
        try:
            repository = get_artifact_repository(uri, tracking_uri=self.tracking_uri)
            repository.delete_artifacts(CHECKPOINT_DIR)
        except FileNotFoundError:
            return True
        except Exception:  # noqa: BLE001 - pruning old weights must not stop the search
            return False
        return True

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
        return open_experiment(self._client, self.tracking_uri, self.experiment, tags)

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


def open_experiment(
    mlflow_client: Any, tracking_uri: str, name: str, tags: Mapping[str, Any]
) -> str:
    """The id of the model-training experiment ``name``: restored if it was deleted,
    created with ``tags`` if missing (on an embedded store, its artifacts beside the
    database, not in the current folder)."""
    existing = mlflow_client.get_experiment_by_name(name)
    if existing is None:
        root = artifact_root(tracking_uri)
        location = None
        if root is not None:
            location = (root / state_key(tracking_uri, name)).as_uri()
        try:
            return mlflow_client.create_experiment(
                name,
                artifact_location=location,
                tags=_str({**tags, EXPERIMENT_KIND: MODEL_TRAINING}),
            )
        except Exception:
            # Another process created it meanwhile (the same study started at once).
            existing = mlflow_client.get_experiment_by_name(name)
            if existing is None:
                raise
    if existing.lifecycle_stage == "deleted":
        try:
            mlflow_client.restore_experiment(existing.experiment_id)
        except Exception:
            # Another process restored it meanwhile.
            again = mlflow_client.get_experiment_by_name(name)
            if again is None or again.lifecycle_stage == "deleted":
                raise
    if existing.tags.get(EXPERIMENT_KIND) != MODEL_TRAINING:
        mlflow_client.set_experiment_tag(existing.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
    return existing.experiment_id


def _str(tags: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in tags.items()}


def _tags(tags: Mapping[str, Any]) -> list[Any]:
    from mlflow.entities import RunTag

    return [RunTag(k, str(v)) for k, v in tags.items()]


def log_report_artifacts(tracking_uri: str, run_id: str, files: list[Path]) -> None:
    """Attach a report's files to the search's parent run, under ``report/``."""
    mlflow_client = client(tracking_uri)
    for path in files:
        mlflow_client.log_artifact(run_id, str(path), "report")
    # The run's description (shown by the UI) says where the report is.
    note = mlflow_client.get_run(run_id).data.tags.get(NOTE, "")
    pointer = "Report: report/report.html among this run's artifacts (workbench report)."
    if pointer not in note:
        mlflow_client.set_tag(run_id, NOTE, f"{note}\n\n{pointer}".strip())
