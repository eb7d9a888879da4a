"""The one error type users see: a readable line, exit code 2 on the command line."""

from __future__ import annotations

import re


class WorkbenchError(Exception):
    """Bad input or an impossible request, explained in one line.

    The command line prints ``Error: <message>`` and exits with code 2, without a
    traceback. Library callers catch it like any exception.
    """


class NoTrialFinished(WorkbenchError):
    """A search ended with every trial failed: its study has nothing to compare."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when empty), at most ``limit``."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


def failure_reason(detail: str, limit: int = 200) -> str | None:
    """A failure's one line from its recorded text: a traceback's last line (the
    exception), else the first; None when there is no text."""
    lines = [line for line in detail.strip().splitlines() if line.strip()]
    if not lines:
        return None
    if not lines[0].startswith("Traceback"):
        return lines[0][:limit]
    # "tensorflow.python.framework.errors_impl.ResourceExhaustedError: ..." by its name.
    return re.sub(r"^(?:\w+\.)+(?=\w+(?::|$))", "", lines[-1])[:limit]
