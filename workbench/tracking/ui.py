"""The MLflow UI over the same store, in its own process group."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError
from workbench.tracking.store import ROLE, _sqlite_path, artifact_root


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


def served_ui(tracking_uri: str) -> str | None:
    """Where a tracking store that is an MLflow server (http or https) shows its own UI;
    None for a store that ``workbench ui`` serves (a database, a local folder)."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return None


def check_port(host: str = "127.0.0.1", port: int = 5000) -> None:
    """Refuse a port something already listens on: the UI would fail to start, and links
    printed for it would open the other server (another store, other experiment ids).

    Raises:
        WorkbenchError: the port is taken.
    """
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise WorkbenchError(
                f"Port {port} on {host} is in use (another workbench ui or server?). "
                f"Expected a free --port. Received: --port {port}"
            ) from None


def check_ui(tracking_uri: str, host: str = "127.0.0.1", port: int = 5000) -> None:
    """What :func:`serve_ui` needs, checked before anything is printed: a store to show
    that answers (an MLflow server's own UI: the server answers) and a free port.

    Raises:
        WorkbenchError: no store there yet, one that cannot be read or reached, or the
        port in use.
    """
    from workbench.tracking.store import check_reachable

    db = _sqlite_path(tracking_uri)
    if db is not None and not db.exists():
        raise WorkbenchError(
            f"No MLflow store at {db} yet. Run a search first, e.g. "
            "workbench search --task adding --space small"
        )
    check_reachable(tracking_uri)  # a file that is no database, a server that is down
    if not served_ui(tracking_uri):
        check_port(host, port)


def serve_ui(tracking_uri: str, host: str = "127.0.0.1", port: int = 5000) -> int:
    """Run the MLflow UI in the foreground until interrupted; returns its exit code.

    Raises:
        WorkbenchError: an MLflow server's URI, no store yet, or the port in use.
    """
    import subprocess

    if served_ui(tracking_uri):  # MLflow's UI cannot take a server as its backend store
        raise WorkbenchError(
            f"{tracking_uri} is an MLflow server: open its own UI at {served_ui(tracking_uri)}"
        )

    check_ui(tracking_uri, host, port)
    from workbench.search.stopping import on_signals

    # Its own session: MLflow's UI starts uvicorn and job workers of its own, and stopping
    # only the first process would leave them serving. Ctrl-C, SIGTERM and a closed
    # terminal (SIGHUP, which its own session does not get) stop the group.
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


@dataclass(frozen=True)
class StudyLinks:
    """Where the MLflow UI shows a study: its runs, and the compare page of its trials."""

    runs: str
    compare: str | None  # None when fewer than two trials finished

    def lines(self) -> list[str]:
        out = [f"Runs:    {self.runs}"]
        if self.compare:
            out.append(f"Compare: {self.compare}")
            # MLflow's compare page starts its plots on the alphabetically first metric and
            # params (batch_size_used, batch_size), with no way to preselect them by URL.
            out.append("         (in its plots, choose the metric score and the param cell)")
        return out


def study_links(
    experiment_id: str,
    trial_run_ids: list[str],
    direction: str = "min",
    host: str = "127.0.0.1",
    port: int = 5000,
    base: str | None = None,
) -> StudyLinks:
    """Direct links into the MLflow UI (``workbench ui``) for one study's experiment.

    The runs link lists the trial runs (not collapsed under the search run), best score
    first; the compare page of the finished trials draws parallel coordinates, scatter
    and box plots of their params and metrics: ``score`` by ``cell`` and the others.
    """
    from urllib.parse import quote

    base = f"{base or f'http://{host}:{port}'}/#"
    trials_only = f"tags.`{ROLE}` = 'trial'"
    runs = (
        f"{base}/experiments/{experiment_id}/runs?searchFilter={quote(trials_only)}"
        f"&orderByKey={quote('metrics.`score`')}&orderByAsc={str(direction == 'min').lower()}"
    )
    compare = None
    if len(trial_run_ids) >= 2:
        compare = (
            f"{base}/compare-runs?runs={quote(json.dumps(list(trial_run_ids)))}"
            f"&experiments={quote(json.dumps([str(experiment_id)]))}"
        )
    return StudyLinks(runs, compare)


def study_links_for(
    tracking_uri: str, experiment: str, host: str = "127.0.0.1", port: int = 5000
) -> StudyLinks:
    """:func:`study_links` for an experiment by name, its finished trial runs read from MLflow.

    Raises:
        WorkbenchError: an unknown experiment or an unreachable store.
    """
    from workbench.tracking.reader import load_study

    study = load_study(tracking_uri, experiment, histories=False)  # the runs, not the curves
    finished = [t.run_id for t in study.trials if t.status == "FINISHED"]
    direction = study.parent_params.get("direction", "min")
    # A store that is an MLflow server shows the study in its own UI.
    served = served_ui(tracking_uri)
    return study_links(study.experiment_id, finished, direction, host, port, served)
