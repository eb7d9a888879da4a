"""Tracking: what to record. The only room that talks to MLflow.

Layout in MLflow: one experiment per study; one parent run per search (role
``search``); one nested run per trial (role ``trial``) carrying every
hyperparameter as a param, per-epoch metrics (step = epoch), the final score, the
test metrics and the costs, and a ``cell`` tag so the UI can group by cell type.
Every run is ended in a ``finally``: a trial run ends FINISHED, FAILED (tag
``failure``) or KILLED, never RUNNING.

The rooms, one line each:

- ``store``: the tracking URI, the embedded SQLite store, the MLflow client.
- ``failures``: the store's failures as the workbench's errors (what stops a search).
- ``study``: writing a study: the parent run, the trial runs, report artifacts.
- ``reader``: reading a study back (with a fast SQLite reader) and finding a trial.
- ``service``: where a search writes its study: a child process (MLflow's start overlaps
  TensorFlow's) or this one.
- ``registry``: publishing an exported model to the MLflow model registry.
- ``benchmark``: the benchmark run (a report over several studies) and its tasks.
- ``ui``: serving the MLflow UI over the same store.
"""

from workbench.tracking.benchmark import benchmark_tasks, log_benchmark
from workbench.tracking.failures import StartedElsewhere, StoreFailed
from workbench.tracking.reader import (
    SearchRecord,
    StudyRecord,
    StudyTrial,
    TrialRecord,
    fetch_checkpoint,
    find_trial,
    load_study,
    read_search,
)
from workbench.tracking.registry import RegisteredModel, log_exported_model
from workbench.tracking.service import TrackingService
from workbench.tracking.store import (
    DEFAULT_TRACKING_URI,
    PARENT,
    ROLE,
    TRIAL_ID,
    artifact_root,
    check_reachable,
    client,
    resolve_tracking_uri,
    state_key,
)
from workbench.tracking.study import Study, TrialRun, log_report_artifacts
from workbench.tracking.ui import (
    StudyLinks,
    check_port,
    check_ui,
    serve_ui,
    served_ui,
    study_links,
    study_links_for,
    ui_command,
)

__all__ = [
    "DEFAULT_TRACKING_URI",
    "PARENT",
    "ROLE",
    "TRIAL_ID",
    "RegisteredModel",
    "SearchRecord",
    "StartedElsewhere",
    "StoreFailed",
    "StudyLinks",
    "Study",
    "StudyRecord",
    "StudyTrial",
    "TrialRecord",
    "TrackingService",
    "TrialRun",
    "artifact_root",
    "benchmark_tasks",
    "check_reachable",
    "client",
    "fetch_checkpoint",
    "find_trial",
    "load_study",
    "log_benchmark",
    "log_exported_model",
    "log_report_artifacts",
    "read_search",
    "resolve_tracking_uri",
    "check_port",
    "check_ui",
    "serve_ui",
    "served_ui",
    "state_key",
    "study_links",
    "study_links_for",
    "ui_command",
]
