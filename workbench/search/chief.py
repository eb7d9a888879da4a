"""The chief of a distributed search: KerasTuner's oracle over gRPC, and its watch.

KerasTuner's own distributed mode: one chief holds the Oracle behind a gRPC server and
workers (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``)
ask it for trials. KerasTuner's ``start_server`` blocks for ever once a worker is gone;
this chief serves the same ``OracleServicer`` and adds what a study needs around it:

- ``Join`` and ``Heartbeat`` (see :mod:`workbench.search.wire`), so workers need no flags
  and a worker silent for ``worker_timeout`` seconds is declared lost: its trial is
  recorded FAILED (its MLflow run KILLED) and the chief no longer waits for it;
- the trials reported on the console as the workers end them;
- the local workers of ``--workers N``: one per GPU when GPUs are present (memory growth
  on), else the CPU cores shared out (TensorFlow's intra-op threads per worker); they
  write their output to ``<state folder>/workers/<id>.log`` and stop with the chief. A
  local worker that exits while it runs a trial fails that trial at once; when every
  local worker has exited, the search goes on while remote workers are alive.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.search import wire
from workbench.search.config import ClusterConfig, SearchConfig, TrialResult

#: How often the chief looks at its workers and the oracle.
TICK_SECONDS = 0.5
#: The gRPC server's threads: KerasTuner serializes the oracle's calls (``synchronized``),
#: so while it thinks (a Bayesian oracle refits between trials) each worker asking for a
#: trial holds a thread; the rest answer heartbeats. More than the workers of any study
#: (idle threads cost nothing): with 4, four waiting workers left heartbeats unanswered.
SERVER_THREADS = 64
ENDED = ("COMPLETED", "FAILED", "INVALID")
#: Heartbeat intervals within which a worker of the same id is taken to be alive: a
#: second worker joining with that id is refused.
DUPLICATE_BEATS = 3
#: How long finished local workers get to exit before they are stopped.
WORKER_EXIT_SECONDS = 30.0


def gpu_indices() -> list[str]:
    """The host's NVIDIA GPUs (by ``nvidia-smi``, without starting TensorFlow)."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        # CUDA stops at the first invalid entry ("-1" is the usual way to hide them all).
        visible = []
        for entry in os.environ["CUDA_VISIBLE_DEVICES"].split(","):
            if not entry.strip() or entry.strip().startswith("-"):
                break
            visible.append(entry.strip())
        return visible
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listed = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listed.splitlines() if line.strip()]


#: The GPUs this process hid from itself for its local workers (:func:`hide_gpus`), and
#: whether the user named them (CUDA_VISIBLE_DEVICES: CUDA's numbering) or nvidia-smi did.
_hidden_gpus: list[str] = []
_named_by_user: list[bool] = [False]


def hide_gpus() -> None:
    """Keep the host's GPUs for the local workers: the chief only serves the oracle, so
    this process stops seeing them (before TensorFlow loads); its workers still get them."""
    gpus = gpu_indices()
    if gpus:
        _hidden_gpus[:] = gpus
        _named_by_user[0] = "CUDA_VISIBLE_DEVICES" in os.environ
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


def worker_environments(count: int) -> list[dict[str, str]]:
    """Per local worker: the GPU it owns, or its share of the CPU cores."""
    if _hidden_gpus:
        gpus, by_user = _hidden_gpus, _named_by_user[0]
    else:
        gpus, by_user = gpu_indices(), "CUDA_VISIBLE_DEVICES" in os.environ
    if gpus:
        # nvidia-smi numbers the GPUs in PCI bus order; CUDA, unless told, fastest first.
        order = {} if by_user else {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
        return [
            {
                "CUDA_VISIBLE_DEVICES": gpus[k % len(gpus)],
                "TF_FORCE_GPU_ALLOW_GROWTH": "true",
                **order,
            }
            for k in range(count)
        ]
    # The cores this process may use (an affinity mask or a cgroup cpuset), not the host's.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // count)
    return [
        {
            "CUDA_VISIBLE_DEVICES": "",
            "TF_NUM_INTRAOP_THREADS": str(threads),
            "TF_NUM_INTEROP_THREADS": "1" if threads < 4 else "2",
        }
        for _ in range(count)
    ]


@contextlib.contextmanager
def oracle_lock(oracle: Any) -> Iterator[None]:
    """Hold the oracle as KerasTuner's ``synchronized`` methods do (its gRPC handlers run
    in other threads): what is read or changed inside is one step for them."""
    from keras_tuner.src.engine import oracle as oracle_module

    name = threading.current_thread().name
    if oracle_module.THREADS[oracle] == name:  # already held here
        yield
        return
    with oracle_module.LOCKS[oracle]:
        oracle_module.THREADS[oracle] = name
        try:
            yield
        finally:
            oracle_module.THREADS[oracle] = None


def local_worker_id(k: int) -> str:
    """The ``--worker-id`` of the chief's ``k``-th local worker (``--workers``)."""
    return f"worker-{k}"


def check_port(cluster: ClusterConfig) -> None:
    """Refuse a host or fixed port this host cannot listen on, before anything is recorded
    (port 0, any free port: the host alone).

    Raises:
        WorkbenchError: the port is in use, or the host is not an address of this host.
    """
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            cluster.host or None, cluster.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            # As gRPC binds: a port whose last connections linger in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError:
        raise _cannot_listen(cluster) from None


def _cannot_listen(cluster: ClusterConfig) -> WorkbenchError:
    if not cluster.port:  # any free port: the host is what is wrong
        return WorkbenchError(
            f"The chief cannot listen on {cluster.host}: not an address of this host. "
            "Expected --host to be one of its addresses or names (or 0.0.0.0 for every one)."
        )
    return WorkbenchError(
        f"The chief cannot listen on {cluster.host}:{cluster.port} (in use, or not an "
        "address of this host). Expected a free --port, or 0 for any."
    )


class ChiefServer:
    """KerasTuner's ``OracleServicer`` plus ``workbench.Chief`` on one gRPC port."""

    def __init__(self, oracle: Any, assignment: bytes, cluster: ClusterConfig) -> None:
        import grpc
        from keras_tuner.src import protos
        from keras_tuner.src.distribute.oracle_chief import OracleServicer

        chief = self

        class _Servicer(OracleServicer):  # type: ignore[misc,valid-type]
            def CreateTrial(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC name
                chief.seen(request.tuner_id)
                return super().CreateTrial(request, context)

        self.oracle = oracle
        self.cluster = cluster
        self.servicer = _Servicer(oracle)
        self.last_seen: dict[str, float] = {}
        #: When each worker's last heartbeat came (only a live worker process sends them).
        self.last_beat: dict[str, float] = {}
        #: Ids that said they stopped (``Leave``) and have not joined or beaten since: the
        #: serving loop forgets them, and a trial the oracle hands one of them late (its
        #: request was in flight) goes back to the queue too.
        self._left: set[str] = set()
        #: Each id's worker process (a token it sends), as of its last join, or its first
        #: heartbeat to a restarted chief: a ``Leave`` from another process of that id (one
        #: that outlived a partition, or an orphan of an earlier chief) is not its trial's.
        self._process: dict[str, str | None] = {}
        self._assignment = assignment
        # No SO_REUSEPORT (gRPC's default): a second chief on the same port would bind too
        # and split the workers between two studies without a word.
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=SERVER_THREADS),
            options=[("grpc.so_reuseport", 0)],
        )
        protos.get_service_grpc().add_OracleServicer_to_server(self.servicer, self.server)
        handlers = {
            "Join": grpc.unary_unary_rpc_method_handler(self._join),
            "Heartbeat": grpc.unary_unary_rpc_method_handler(self._heartbeat),
            "Leave": grpc.unary_unary_rpc_method_handler(self._leave),
        }
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(wire.SERVICE, handlers),)
        )
        try:
            listen = f"{wire.bracketed(cluster.host)}:{cluster.port}"
            self.port = self.server.add_insecure_port(listen)
        except RuntimeError:
            self.port = 0
        if not self.port:
            raise _cannot_listen(cluster)
        # Trials the oracle reloaded as running (a restarted chief): their workers get
        # ``worker_timeout`` to come back for them, and count as alive for a join: a second
        # worker of that id waits out the duplicate window as beside a live one (a worker
        # that outlived the chief keeps beating; one restarted is let in after the window).
        # The local workers this chief starts are new: the old ones died with their chief.
        now = time.monotonic()
        local = {local_worker_id(k) for k in range(cluster.local_workers)}
        for tuner_id in list(oracle.ongoing_trials):
            self.last_seen[tuner_id] = now
            if tuner_id not in local:
                self.last_beat[tuner_id] = now

    @property
    def address(self) -> str:
        """Where workers on other hosts reach this chief."""
        return wire.advertised(self.cluster.host, self.port)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=2).wait(5)

    def seen(self, worker: str) -> None:
        self.last_seen[worker] = time.monotonic()

    def _join(self, request: bytes, context: Any) -> bytes:
        import grpc

        hello = json.loads(request)
        worker = hello["worker"]
        window = DUPLICATE_BEATS * self.cluster.heartbeat_seconds
        ago = time.monotonic() - self.last_beat.get(worker, -math.inf)
        if ago < window:
            # A worker of that id is alive: two would train every trial twice. One that
            # was restarted is let in once its old heartbeats have stopped for the window.
            context.abort(
                grpc.StatusCode.ALREADY_EXISTS, json.dumps({"ago": ago, "window": window})
            )
        self._left.discard(worker)
        self._process[worker] = hello.get("process")
        self.seen(worker)
        return self._assignment

    def _heartbeat(self, request: bytes, context: Any) -> bytes:
        hello = json.loads(request)
        worker = hello["worker"]
        self.last_beat[worker] = time.monotonic()
        self._process.setdefault(worker, hello.get("process"))
        self._left.discard(worker)
        self.seen(worker)
        return b"{}"

    def _leave(self, request: bytes, context: Any) -> bytes:
        hello = json.loads(request)
        worker = hello["worker"]
        if self._process.get(worker, hello.get("process")) != hello.get("process"):
            return b"{}"  # another process of that id than the one holding its trial
        self.last_beat.pop(worker, None)  # gone: a worker started again with its id joins
        self._left.add(worker)
        return b"{}"

    def requeue_departed(self) -> list[tuple[str, Any]]:
        """Forget the workers that said they stopped and put each running trial they held
        back in the oracle's queue (saved), at once rather than after the worker timeout;
        the requeued trials with their workers."""
        requeued = []
        with oracle_lock(self.oracle):
            known = {*self.last_seen, *self.oracle.tuner_ids, *self.oracle.ongoing_trials}
            for worker in sorted(self._left & known):
                trial = self.forget(worker)
                if trial is not None and trial.status == "RUNNING":
                    self.oracle._retry_queue.append(trial.trial_id)
                    requeued.append((worker, trial))
            if requeued:
                self.oracle.save()
        return requeued

    def forget(self, worker: str) -> Any:
        """A worker known to be gone: the trial it held (or None), no longer waited for."""
        self.last_seen.pop(worker, None)
        self.oracle.tuner_ids.discard(worker)
        return self.oracle.ongoing_trials.pop(worker, None)

    def others_alive(self, workers: set[str]) -> bool:
        """Whether a worker outside ``workers`` was heard from within the worker timeout."""
        return any(worker not in workers for worker in self.last_seen)

    def lost_workers(self) -> list[tuple[str, Any]]:
        """Workers silent past the timeout, with the trial each held (or None); the
        oracle forgets them, so the search can end without them."""
        deadline = time.monotonic() - self.cluster.worker_timeout
        lost = []
        for worker, seen in list(self.last_seen.items()):
            if seen >= deadline:
                continue
            lost.append((worker, self.forget(worker)))
        return lost

    def finished(self) -> bool:
        """The oracle has no trial left to hand out and none is running."""
        oracle = self.oracle
        with oracle_lock(oracle):
            # A trial back in the queue waits for a worker, whatever any was told before.
            if oracle.ongoing_trials or oracle.tuner_ids or oracle._retry_queue:
                return False
            if self.servicer.stop_triggered:  # a worker asked and was told there is none
                return True
            # No worker asks when the last ones were lost: the oracle would say none is left.
            return (
                bool(oracle.max_trials)
                and len(oracle.trials) >= oracle.max_trials
                and all(trial.status in ENDED for trial in oracle.trials.values())
            )


def serve(search: Any, tuner: Any) -> list[TrialResult]:
    """Run the chief until the oracle's trials are all ended; the trials, in order."""
    from workbench.search import stopping

    config: SearchConfig = search.config
    cluster = config.cluster
    assert cluster is not None
    wire.quiet_keras_tuner_protos()
    oracle = tuner.oracle
    oracle.verbose = 0
    tuner.save()
    assignment = wire.encode_assignment(
        wire.config_for_worker(config),
        str(search.study.experiment_id),
        str(search.study.parent_run_id),
        cluster.heartbeat_seconds,
    )
    server = ChiefServer(oracle, assignment, cluster)
    server.start()
    logs = config.state_dir / "workers"
    search.reporter.chief_started(server.address, cluster.local_workers, str(logs))
    reported = {t for t, trial in oracle.trials.items() if trial.status in ENDED}
    workers: dict[str, subprocess.Popen] = {}
    exited: set[str] = set()
    try:
        workers = _start_local_workers(config, wire.local(cluster.host, server.port))
        while not server.finished():
            stopping.check()
            time.sleep(TICK_SECONDS)
            # Stopped by its user, not failed by its trial: the next worker runs it.
            for worker, trial in server.requeue_departed():
                search.reporter.trial_requeued(int(trial.trial_id) + 1, worker)
            for worker, trial in server.lost_workers():
                if trial is not None:
                    timeout = cluster.worker_timeout
                    message = (
                        f"worker {worker} was lost (no heartbeat for {timeout:g} s) while it "
                        "ran the trial"
                    )
                    _record_lost(search, oracle, trial, "worker_lost", message)
            for worker, process in workers.items():
                if worker in exited or process.poll() is None:
                    continue
                exited.add(worker)
                trial = server.forget(worker)
                if trial is not None:  # it ended its trial before it exited, unless it crashed
                    message = (
                        f"worker {worker} {_exit_reason(process.returncode)} while it ran "
                        f"the trial; its output: {logs / f'{worker}.log'}"
                    )
                    _record_lost(search, oracle, trial, "worker_exited", message)
            for trial_id, trial in list(oracle.trials.items()):
                if trial_id not in reported and trial.status in ENDED:
                    reported.add(trial_id)
                    search.report_ended(trial)
            # Remote workers may still hold trials (or take those left) after the local
            # ones were told there was none left for them.
            alone = workers and len(exited) == len(workers) and not server.others_alive(exited)
            if alone and not server.finished():
                raise WorkbenchError(
                    f"All {len(workers)} workers stopped before the search ended; their "
                    f"output is in {logs}. Run the same command again to resume."
                )
        # The oracle is done: the workers are on their way out; let them end by themselves.
        _wait_for(list(workers.values()), WORKER_EXIT_SECONDS)
    finally:
        _stop_workers(workers, search, oracle)
        server.stop()
    return search.collect(tuner)


def _record_lost(search: Any, oracle: Any, trial: Any, failure: str, message: str) -> None:
    """End the trial of a worker gone mid-trial: FAILED, unless its run says the worker
    finished it (while no chief listened: it could not say so), then COMPLETED with the
    recorded score."""
    recorded = search.study.finished_trial(trial.trial_id)
    if recorded is not None:
        _, metrics = recorded
        oracle.update_trial(trial.trial_id, {oracle.objective.name: metrics["score"]})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        return
    search.study.kill_trial_runs(trial.trial_id, failure, message)
    trial.status = "FAILED"
    trial.message = message
    oracle.end_trial(trial)


def _exit_reason(code: int) -> str:
    import signal

    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _start_local_workers(config: SearchConfig, chief: str) -> dict[str, subprocess.Popen]:
    cluster = config.cluster
    assert cluster is not None
    if not cluster.local_workers:
        return {}
    logs = config.state_dir / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    state_root = config.state_dir.parent
    started = {}
    for k, env in enumerate(worker_environments(cluster.local_workers)):
        worker = local_worker_id(k)
        command = [
            sys.executable,
            "-m",
            "workbench.cli",
            "worker",
            "--chief",
            chief,
            "--worker-id",
            worker,
            "--state-dir",
            str(state_root),
        ]
        environment = {
            **os.environ,
            **env,
            "PYTHONUNBUFFERED": "1",
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
            # The workbench this process runs, whichever way it is installed.
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
            ).rstrip(os.pathsep),
            # A local worker stops when its chief is gone (even by kill -9).
            "WORKBENCH_CHIEF_PID": str(os.getpid()),
        }
        log = (logs / f"{worker}.log").open("a")
        started[worker] = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=environment, close_fds=True
        )
        log.close()
    return started


def _wait_for(workers: list[subprocess.Popen], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    for process in workers:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return


def _stop_workers(workers: dict[str, subprocess.Popen], search: Any, oracle: Any) -> None:
    import contextlib
    import signal

    from workbench.tracking import StoreFailed

    for process in workers.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # each ends its running trial's run KILLED
    deadline = time.monotonic() + WORKER_EXIT_SECONDS
    for worker, process in workers.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            trial = oracle.ongoing_trials.get(worker)
            if trial is not None:
                # Its run would stay RUNNING until a restart; the trial stays the worker's.
                with contextlib.suppress(StoreFailed):
                    search.study.kill_trial_runs(
                        trial.trial_id,
                        "interrupted",
                        f"worker {worker} did not stop within {WORKER_EXIT_SECONDS:g} s of "
                        "the chief's stop and was killed",
                    )
