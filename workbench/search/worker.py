"""A worker of a distributed search: asks the chief for trials, trains and records them.

``workbench worker --chief HOST:PORT`` joins a chief (:mod:`workbench.search.chief`),
receives the whole search (:mod:`workbench.search.wire`), then runs KerasTuner's own
worker loop: the oracle hands it trials until none is left. A worker started again
with the same ``--worker-id`` gets back the trial it held (KerasTuner's behaviour); the
earlier run of that trial is ended KILLED when the trial starts again.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.search import wire
from workbench.search.config import SearchReporter, TrialResult

#: How long a worker waits for its chief to answer the first time.
JOIN_TIMEOUT_SECONDS = 60.0
#: How long a local worker whose chief died gets to end its trial's run before it exits.
ORPHAN_EXIT_SECONDS = 20.0
#: The longest a worker waits before it tries to reach its chief again.
RECONNECT_MS = 5000
#: Missed heartbeats after which a worker says its chief is silent.
SILENT_BEATS = 3


@dataclass(frozen=True)
class WorkerResult:
    """What one worker did."""

    worker: str
    experiment: str
    tracking_uri: str
    trials: tuple[TrialResult, ...]

    def summary(self) -> str:
        """One line: what this worker ran, for the end of its output."""
        completed = sum(1 for t in self.trials if t.status == "completed" and not t.late)
        late = sum(1 for t in self.trials if t.late)
        counts = f"{completed} completed" + (f", {late} too late for the study" if late else "")
        return (
            f"Worker {self.worker}: the search has no trial left; this worker ran "
            f"{len(self.trials)} ({counts}) of study {self.experiment} in {self.tracking_uri}."
        )


def default_worker_id() -> str:
    """``<host>``: a worker started again on the same host gets its trial back. (KerasTuner
    takes any id holding "chief" for the chief: a host named so is written otherwise.)"""
    return socket.gethostname().replace("chief", "chf")


def parse_chief(address: str) -> tuple[str, int]:
    """``HOST:PORT`` into its parts.

    Raises:
        WorkbenchError: for anything but a host and a port number.
    """
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise WorkbenchError(
            f"Expected --chief HOST:PORT, e.g. 10.0.0.5:8470. Received: {address!r}"
        )
    return host.strip("[]"), int(port)


def run_worker(
    chief: str,
    worker_id: str,
    state_root: str | Path = ".workbench",
    threads: int | None = None,
    reporter: SearchReporter | None = None,
) -> WorkerResult:
    """Join the chief at ``chief`` and run trials until the search has none left.

    Raises:
        WorkbenchError: the chief cannot be reached, or the task or store cannot be used.
    """
    from workbench.search import stopping

    host, port = parse_chief(chief)
    if not worker_id or "chief" in worker_id:
        # KerasTuner runs as the chief whatever id holds the word: the worker would serve
        # an oracle of its own on the chief's port and never train.
        raise WorkbenchError(
            f"Expected a --worker-id without the word 'chief'. Received: {worker_id!r}"
        )
    import grpc

    # An IPv6 address goes in brackets before its port, for gRPC and for KerasTuner.
    bracketed = wire.bracketed(host)
    # Reconnect soon after a chief's restart (gRPC backs off up to 120 s by default, the
    # default worker timeout: a live worker could be declared lost meanwhile).
    channel = grpc.insecure_channel(
        f"{bracketed}:{port}", options=[("grpc.max_reconnect_backoff_ms", RECONNECT_MS)]
    )
    if reporter is not None:
        reporter.worker_joining(f"{bracketed}:{port}", JOIN_TIMEOUT_SECONDS)
    # Every call names this process too: a Leave from another process of the same id
    # (one that outlived a partition, or its chief) must not hand back this one's trial.
    hello = json.dumps({"worker": worker_id, "process": uuid.uuid4().hex}).encode()
    assignment = wire.decode_assignment(_join(channel, hello, host, port), state_root)
    # KerasTuner reads its distributed mode from the environment when a tuner is built.
    os.environ.update(
        {
            "KERASTUNER_TUNER_ID": worker_id,
            "KERASTUNER_ORACLE_IP": bracketed,
            "KERASTUNER_ORACLE_PORT": str(port),
        }
    )
    if threads:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    heartbeat = _Heartbeat(
        channel, hello, assignment.heartbeat_seconds, f"{bracketed}:{port}", reporter
    )
    heartbeat.start()
    try:
        with stopping.on_signals():
            trials = _run(assignment, worker_id, reporter)
    except BaseException:
        heartbeat.stop()
        # A beat in flight landing after the Leave would tell the chief the worker is back.
        heartbeat.join(assignment.heartbeat_seconds + 1)
        _leave(channel, hello)  # its trial's run is ended: the chief requeues the trial
        raise
    finally:
        heartbeat.stop()
        channel.close()
    config = assignment.config
    return WorkerResult(worker_id, config.experiment, config.tracking_uri, tuple(trials))


def _run(assignment: wire.Assignment, worker_id: str, reporter: Any) -> list[TrialResult]:
    from workbench import tracking

    config = assignment.config
    # MLflow starts (imports, store) in its own process while TensorFlow loads in this one.
    with tracking.TrackingService(config.tracking_uri) as service:
        return _work(assignment, worker_id, reporter, service)


def _work(
    assignment: wire.Assignment, worker_id: str, reporter: Any, service: Any
) -> list[TrialResult]:
    from workbench.search import backend

    config = assignment.config
    # Before anything imports Keras: the TensorFlow backend, quiet, GPU memory grown.
    tf = backend.load_tensorflow()
    from workbench.search import tuner as _tuner
    from workbench.search.internals import check_keras_tuner

    if config.deterministic:
        tf.config.experimental.enable_op_determinism()

    check_keras_tuner()
    service.check_reachable()  # before the data load, which may take long
    from workbench.search.folds import fold_baseline

    data = fold_baseline(config.task.load(), config.folds, config.seed)  # as the chief's
    try:
        config.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(
            f"Cannot write the worker's state folder {config.state_dir}: {exc.strerror}"
        ) from None
    study = service.study(config.experiment)
    study.attach(assignment.experiment_id, assignment.parent_run_id)
    wire.quiet_keras_tuner_protos()
    search = _tuner.Search(config, data, study, reporter, worker=worker_id)
    from workbench.search.runner import frozen_garbage_collector, precision

    with precision(config.mixed_precision), frozen_garbage_collector():
        return search.run_worker()


def _join(channel: Any, hello: bytes, host: str, port: int) -> bytes:
    """The chief's assignment; a worker restarted with its id waits until the chief no
    longer hears the old one."""
    import grpc

    deadline = None
    while True:
        try:
            return channel.unary_unary(wire.JOIN)(  # type: ignore[no-any-return]
                hello,
                wait_for_ready=True,
                timeout=JOIN_TIMEOUT_SECONDS,
            )
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                unresolved = _unresolved(host, port)
                if unresolved:  # a name that may appear late (a service starting): waited
                    raise WorkbenchError(
                        f"Cannot resolve the chief's host {host!r} within "
                        f"{JOIN_TIMEOUT_SECONDS:g} s ({unresolved}). Expected --chief "
                        "HOST:PORT with a host name or address this machine can reach"
                    ) from None
                raise WorkbenchError(
                    f"Cannot reach the chief at {host}:{port} within "
                    f"{JOIN_TIMEOUT_SECONDS:g} s ({exc.code().name}). Start it first "
                    "(workbench chief ...) and check the address."
                ) from None
            refusal = json.loads(exc.details())
        now = time.monotonic()
        deadline = deadline if deadline is not None else now + refusal["window"] + 1.0
        if now >= deadline:
            raise WorkbenchError(
                f"Another worker with --worker-id {json.loads(hello)['worker']!r} is "
                f"working for the chief at {host}:{port} (its last heartbeat "
                f"{refusal['ago']:.0f} s ago). Expected one --worker-id per worker: give "
                "each worker on a host its own."
            )
        time.sleep(0.5)


def _unresolved(host: str, port: int) -> str:
    """Why ``host`` does not resolve, or "" when it does."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return getattr(exc, "strerror", None) or str(exc)
    return ""


def _leave(channel: Any, hello: bytes) -> None:
    """Tell the chief this worker stops without its trial (else it waits out the worker
    timeout, then records the trial failed); a chief that is gone is not waited for."""
    import contextlib

    import grpc

    # An older chief (UNIMPLEMENTED), or none: it finds out by the worker timeout.
    with contextlib.suppress(grpc.RpcError):
        channel.unary_unary(wire.LEAVE)(hello, timeout=5)


class _Heartbeat(threading.Thread):
    """Tells the chief every few seconds that this worker lives, and the reporter when the
    chief stops answering and when it answers again; a local worker (started by
    ``--workers``) also stops when its chief process is gone."""

    def __init__(
        self, channel: Any, hello: bytes, seconds: float, address: str, reporter: Any = None
    ) -> None:
        super().__init__(name="workbench-heartbeat", daemon=True)
        self._beat = channel.unary_unary(wire.HEARTBEAT)
        self._request = hello
        self._seconds = seconds
        self._address = address
        self._reporter = reporter
        self._silent_since: float | None = None
        self._said = False
        self._stopped = threading.Event()
        chief_pid = os.environ.get("WORKBENCH_CHIEF_PID")
        self._chief_pid = int(chief_pid) if chief_pid and chief_pid.isdigit() else None

    def run(self) -> None:
        tick = min(1.0, self._seconds)
        next_beat = 0.0
        while not self._stopped.wait(tick):
            if self._chief_pid is not None and os.getppid() != self._chief_pid:
                # The chief died: stop as on its SIGTERM (the trial's run ends KILLED; the
                # chief's restart hands the trial out again), for certain if that is stuck.
                os.kill(os.getpid(), signal.SIGTERM)
                if not self._stopped.wait(ORPHAN_EXIT_SECONDS):
                    os._exit(3)
                return
            if time.monotonic() < next_beat:
                continue
            next_beat = time.monotonic() + self._seconds
            try:
                self._beat(self._request, timeout=self._seconds)
            except Exception:  # noqa: BLE001 - a missed beat is retried at the next tick
                self._silence()
                continue
            if self._said and self._reporter is not None:
                self._reporter.chief_silent(self._address, None)
            self._silent_since, self._said = None, False

    def _silence(self) -> None:
        """A missed beat: after :data:`SILENT_BEATS` of them, say the chief is silent (once)."""
        now = time.monotonic()
        self._silent_since = self._silent_since or now
        silent = now - self._silent_since
        if not self._said and silent >= SILENT_BEATS * self._seconds:
            self._said = True
            if self._reporter is not None:
                self._reporter.chief_silent(self._address, silent)

    def stop(self) -> None:
        self._stopped.set()
