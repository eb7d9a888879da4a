"""The MLflow UI over the same store, in its own process group."""

from __future__ import annotations

import os
import time
from typing import Any

from workbench.errors import WorkbenchError
from workbench.tracking.store import _sqlite_path, artifact_root


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
    from workbench.search.stopping import on_signals

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
