"""The study lock: one process at a time drives a study's local search state.

KerasTuner keeps a study's oracle and checkpoints in one folder; two uncoordinated
processes on it overwrite each other's ``oracle.json`` and mark each other's live trial
KILLED. The process that runs a search (or the chief of a distributed one) holds an
exclusive ``flock`` beside that folder for its whole life; the operating system releases
it when the process ends, even by ``kill -9``, so a stale lock cannot block a resume.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from workbench.errors import WorkbenchError


def lock_path(state_dir: Path) -> Path:
    """The lock file of a study's state folder (beside it: ``--overwrite`` deletes the folder)."""
    return state_dir.parent / f"{state_dir.name}.lock"


@contextlib.contextmanager
def study_lock(state_dir: Path, experiment: str, role: str = "search") -> Iterator[None]:
    """Hold the study's lock for the block, or refuse with one line naming the holder.

    Raises:
        WorkbenchError: another live process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock; one process per study is then the user's care
        yield
        return
    path = lock_path(state_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
    except OSError as exc:
        raise WorkbenchError(
            f"Cannot write the search state folder {path.parent}: {exc.strerror}"
        ) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _holder(handle.read())
            raise WorkbenchError(
                f"Study {experiment!r} is being searched by another process ({holder}); "
                "two searches on one study would overwrite each other's state. Wait for it "
                "to end, or run more trials in parallel with workbench search --workers N "
                "or workbench chief / workbench worker."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "role": role,
                    "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
        )
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"{info['role']} pid {info['pid']} on {info['host']}, since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "unknown process"
