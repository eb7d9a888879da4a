"""The one error type users see: a readable line, exit code 2 on the command line."""

from __future__ import annotations


class WorkbenchError(Exception):
    """Bad input or an impossible request, explained in one line.

    The command line prints ``Error: <message>`` and exits with code 2, without a
    traceback. Library callers catch it like any exception.
    """
