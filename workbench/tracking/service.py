"""The tracking service: where a search writes its study, a child process or this one.

A search's process spends its first seconds importing TensorFlow, on one core. MLflow's
start (importing it, about 1.4 s; opening the store, 0.5-0.7 s for SQLite, more when it
creates the schema) would follow on that same core: both imports hold Python's GIL, so a
thread cannot overlap them. :class:`TrackingService` starts MLflow at once in a child
process, on another core. The search then asks the child whether the store is reachable
and hands it every write and read of the study: the child holds the real
:class:`~workbench.tracking.study.Study` and its trial runs, each call is a round trip
over a pipe (well under a millisecond), and their errors come back as the same
exceptions (a lost store is :class:`~workbench.tracking.failures.StoreFailed`).

The child ignores Ctrl-C and SIGTERM (a terminal sends Ctrl-C to the whole process
group): the search decides what to record on its way out, and the child writes it. When
the search's process dies (kill -9) the child sees its pipe close and exits; the runs
left RUNNING are ended when the search resumes, as they always were.

Where nothing would overlap (TensorFlow or MLflow is imported already: a notebook, a test
run) the study is written in this process, by the same class.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

from workbench.tracking.failures import StoreFailed
from workbench.tracking.store import check_reachable, impatient_requests, patient_requests
from workbench.tracking.study import Study, TrialRun, wait_for_writes

#: How long closing waits for the child's last writes before stopping it.
CLOSE_TIMEOUT_SECONDS = 120.0
# SIGHUP too: a closed terminal hangs up the whole group; the search's process ends the
# study, and the tracking process must live to write it.
_SIGNALS = (signal.SIGINT, signal.SIGTERM) + tuple(
    s for s in (getattr(signal, "SIGHUP", None),) if s is not None
)


class TrackingService:
    """Where a search's study is written. Use it as a context manager around the search.

    Args:
        tracking_uri: the MLflow tracking URI.
        separate: write from a child process (True) or from this one (False); None
            decides: a child when neither TensorFlow nor MLflow is imported yet, that is
            when MLflow's start can overlap TensorFlow's.

    Example:
        >>> with TrackingService("sqlite:///mlruns/mlflow.db") as service:  # doctest: +SKIP
        ...     load_tensorflow()  # meanwhile the child imports MLflow and opens the store
        ...     service.check_reachable()
        ...     study = service.study("adding-lstm-gru")
    """

    def __init__(self, tracking_uri: str, separate: bool | None = None) -> None:
        if separate is None:
            separate = "tensorflow" not in sys.modules and "mlflow" not in sys.modules
        self.tracking_uri = tracking_uri
        self._link = _Link.start(tracking_uri) if separate else None
        self._studies: list[Study] = []

    @property
    def separate(self) -> bool:
        """Whether the study is written from a child process."""
        return self._link is not None

    @property
    def process_id(self) -> int | None:
        """The child process's id (None when the study is written in this process)."""
        return self._link.pid if self._link is not None else None

    def check_reachable(self) -> None:
        """Raise :class:`~workbench.errors.WorkbenchError` (one line) when the store
        cannot be used; the child checked it as soon as it started."""
        if self._link is None:
            check_reachable(self.tracking_uri)
        else:
            self._link.request("reachable")
        patient_requests()  # this process's later reads and writes: retried through blips

    def study(self, experiment: str) -> Study:
        """The study of ``experiment`` (its methods run wherever the service writes)."""
        if self._link is None:
            self._studies.append(Study(self.tracking_uri, experiment))
            return self._studies[-1]
        return cast(Study, self._link.request("study", experiment))

    def close(self) -> None:
        """End a search run left open (KILLED), wait for the last writes, let the child exit."""
        link, self._link = self._link, None
        try:
            if link is not None:
                link.close()
            _end_open_searches(self._studies)
        finally:
            impatient_requests()

    def __enter__(self) -> TrackingService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Remote:
    """A Study or TrialRun that lives in the tracking process: attribute reads and
    method calls are round trips to it."""

    def __init__(self, link: _Link, handle: int, kind: str, methods: tuple[str, ...]) -> None:
        self._link = link
        self._handle = handle
        self._kind = kind
        self._methods = frozenset(methods)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in self._methods:

            def call(*args: Any, **kwargs: Any) -> Any:
                return self._link.request("call", self._handle, name, args, kwargs)

            return call
        return self._link.request("get", self._handle, name)

    def __deepcopy__(self, memo: dict[int, Any]) -> _Remote:
        return self  # one object in the tracking process, as the in-process one would be

    def __repr__(self) -> str:
        return f"<{self._kind} in the tracking process {self._link.pid}>"


class _Link:
    """The parent's end of the pipe: one request at a time, in order."""

    def __init__(self, process: Any, connection: Any, tracking_uri: str) -> None:
        self._process = process
        self._connection = connection
        self._uri = tracking_uri
        self._lock = threading.Lock()
        self._sequence = 0
        self.pid: int = process.pid

    @classmethod
    def start(cls, tracking_uri: str) -> _Link:
        import subprocess
        from multiprocessing import Pipe

        import workbench

        # A new interpreter, not multiprocessing's fork (TensorFlow's threads may already
        # run: a distributed worker) nor its spawn (which imports the caller's __main__
        # again: a script without a main guard would run twice).
        ours, theirs = Pipe()
        package_root = str(Path(workbench.__file__).resolve().parents[1])
        # Ignored signals stay ignored across exec: the child ignores Ctrl-C from its
        # first instruction, before it could set that itself.
        with _signals_ignored():
            process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, package_root, str(theirs.fileno()), tracking_uri],
                stdin=subprocess.DEVNULL,
                pass_fds=[theirs.fileno()],
            )
        theirs.close()
        return cls(process, ours, tracking_uri)

    def request(self, *message: Any, timeout: float | None = None) -> Any:
        """Send one request and return its answer (or raise its error)."""
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
            try:
                with _signals_blocked():  # a message is written whole
                    self._connection.send((sequence, message))
                while True:
                    # Wait where Ctrl-C may interrupt (nothing read yet); read where it may
                    # not. An answer left unread by an interruption is skipped next time.
                    if not self._connection.poll(timeout):
                        raise StoreFailed(
                            f"The process writing to the MLflow tracking store at {self._uri} "
                            f"did not answer within {timeout:.0f} s"
                        )
                    with _signals_blocked():
                        answered, kind, value = self._connection.recv()
                    if answered == sequence:
                        break
            except (EOFError, OSError):
                raise StoreFailed(
                    f"The process writing to the MLflow tracking store at {self._uri} ended "
                    f"unexpectedly (exit code {self._exit_code()})"
                ) from None
        if kind == "error":
            raise value
        if kind == "object":
            return _Remote(self, *value)
        return value

    def close(self) -> None:
        import subprocess

        try:
            with contextlib.suppress(StoreFailed):
                self.request("close", timeout=CLOSE_TIMEOUT_SECONDS)
        finally:
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
            self._connection.close()

    def _exit_code(self) -> int | None:
        import subprocess

        try:
            return self._process.wait(5)
        except subprocess.TimeoutExpired:
            return None


#: What the child runs: ``python -c _CHILD <package root> <pipe's descriptor> <tracking URI>``
#: (this process's workbench, not one in the working folder).
_CHILD = (
    "import sys; sys.path[0] = sys.argv[1]; "
    "from workbench.tracking.service import serve; serve(*sys.argv[2:])"
)


def serve(descriptor: str, tracking_uri: str) -> None:
    """The tracking process's main: answer the search on the pipe ``descriptor``."""
    from multiprocessing.connection import Connection

    _serve(Connection(int(descriptor)), tracking_uri)


def _serve(connection: Any, tracking_uri: str) -> None:
    """The child: check the store at once, then answer requests until told to close."""
    for signum in _SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    try:
        check_reachable(tracking_uri)
        unreachable: BaseException | None = None
        patient_requests()  # the search's writes from here on: retried through blips
    except Exception as exc:  # noqa: BLE001 - given to the search when it asks
        unreachable = exc
    objects: dict[int, Any] = {}
    while True:
        try:
            sequence, (operation, *arguments) = connection.recv()
        except (EOFError, OSError):
            _exit()  # the search's process is gone
        if operation == "close":
            _end_open_searches(objects.values())
            wait_for_writes()
            connection.send((sequence, "value", None))
            _exit()
        try:
            value = _answer(operation, arguments, tracking_uri, unreachable, objects)
            if isinstance(value, (Study, TrialRun)):
                objects[len(objects)] = value
                methods = tuple(
                    name
                    for name in dir(type(value))
                    if not name.startswith("_") and callable(getattr(type(value), name))
                )
                answer = (sequence, "object", (len(objects) - 1, type(value).__name__, methods))
            else:
                answer = (sequence, "value", value)
        except BaseException as exc:  # noqa: BLE001 - raised again in the search's process
            answer = (sequence, "error", exc)
        try:
            connection.send(answer)
        except Exception as exc:  # noqa: BLE001 - an answer that cannot be pickled
            connection.send((sequence, "error", RuntimeError(f"{type(exc).__name__}: {exc}")))


def _answer(
    operation: str,
    arguments: list[Any],
    tracking_uri: str,
    unreachable: BaseException | None,
    objects: dict[int, Any],
) -> Any:
    if operation == "reachable":
        if unreachable is not None:
            raise unreachable
        return None
    if operation == "study":
        return Study(tracking_uri, *arguments)
    if operation == "call":
        handle, name, args, kwargs = arguments
        return getattr(objects[handle], name)(*args, **kwargs)
    if operation == "get":
        handle, name = arguments
        return getattr(objects[handle], name)
    raise ValueError(f"Unknown tracking request {operation!r}")


def _end_open_searches(studies: Iterable[Any]) -> None:
    """A search interrupted while its run was being opened never learnt it was: end it."""
    for study in studies:
        if isinstance(study, Study):
            with contextlib.suppress(Exception):  # the store's errors were reported already
                study.end_search_if_open()


def _exit() -> None:
    """Exit at once: the writes are done, and a normal interpreter exit would spend most
    of a second collecting what MLflow holds."""
    with contextlib.suppress(Exception):
        wait_for_writes()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in _SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done (a message is read or written
    whole), then take effect as if they came then.

    Not a signal mask: the kernel hands the signal to another thread (TensorFlow's), and
    Python still raises it in this one. Python runs handlers in the main thread only, so
    a block in another thread needs nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, Any]] = []
    previous = {
        signum: signal.signal(signum, lambda signum, frame: caught.append((signum, frame)))
        for signum in _SIGNALS
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum, frame in caught:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)
