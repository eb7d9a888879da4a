"""Graceful stop on Ctrl-C (SIGINT) and SIGTERM during a search.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when a signal
arrives. Inside TensorFlow's training loop that can be a garbage-collection callback,
where the exception is printed as "Exception ignored in ..." and lost, and the search
goes on, with a traceback on the terminal. So while training (inside :func:`deferred`)
the handler only records the request, and training callbacks and the trial loop call
:func:`check` at safe points (batch and epoch ends, between trials) to raise it there.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

_requested = threading.Event()
_deferring = threading.Event()
_received: set[int] = set()  # the signals that asked for the stop


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a stop was asked for."""
    if _requested.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within the block a signal only requests the stop; :func:`check` raises it."""
    _deferring.set()
    try:
        yield
    finally:
        _deferring.clear()
    check()


def _handle(signum: int, frame: Any) -> None:
    # A second Ctrl-C does not wait for a safe point; another signal after the first does
    # (a distributed search's worker gets the terminal's Ctrl-C, then its chief's SIGTERM:
    # that stopped it in the middle of recording a trial that had finished training).
    again = _requested.is_set() and signum in _received
    _received.add(signum)
    _requested.set()
    if again or not _deferring.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def on_signals(interrupt: bool = True) -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP request a stop and raise
    ``KeyboardInterrupt``. SIGHUP (a closed terminal, a dropped SSH connection) killed the
    process without its cleanup, leaving its runs RUNNING; where SIGHUP or SIGTERM is
    ignored (``nohup``) it stays ignored, and the process goes on. ``interrupt=False``
    leaves SIGINT to Python's own handler (ignored where the process started with it
    ignored, a background job of a script): a command around a search, whose own block
    takes it over.

    Previous handlers are restored on exit. Outside the main thread (where Python cannot
    install handlers) the block runs unchanged.
    """
    _requested.clear()
    _received.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hangup = getattr(signal, "SIGHUP", None)  # none on Windows
    asked = [signal.SIGTERM] + ([hangup] if hangup is not None else [])
    stops = [sig for sig in asked if signal.getsignal(sig) != signal.SIG_IGN]
    stops += [signal.SIGINT] if interrupt else []
    previous = {sig: signal.signal(sig, _handle) for sig in stops}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
