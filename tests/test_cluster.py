"""A distributed search: a chief (KerasTuner's oracle over gRPC) and workers, on loopback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

import workbench
from workbench.cli import main
from workbench.errors import WorkbenchError

#: Trials of a few seconds each, so every worker gets some and a kill lands mid-trial.
_TASK = """\
name: cluster_adding
description: The adding problem, small, for the distributed tests.
loader: adding
options: {length: 20, n_train: 384, n_val: 64, n_test: 32, seed: 3}
"""
_SPACE = """\
name: cluster
description: Configurations of a few seconds each.
dimensions:
  cell: [lstm, gru]
  units: [8, 12]
  learning_rate: 1e-2
  batch_size: 16
  epochs: 3
  patience: 3
"""


@pytest.fixture()
def task_and_space(workdir: Path) -> tuple[Path, Path]:
    task, space = workdir / "task.yaml", workdir / "space.yaml"
    task.write_text(_TASK)
    space.write_text(_SPACE)
    return task, space


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(Path(workbench.__file__).parents[1]),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(*args: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", *args],
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        env=_env(),
    )


def _search_args(task: Path, space: Path, store: str, trials: int) -> list[str]:
    return [
        *("--task", str(task), "--space", str(space), "--tracking-uri", store),
        *("--experiment", "study", "--max-trials", str(trials), "--folds", "1"),
        *("--tuner", "grid"),
    ]


def _trial_runs(store: str) -> list:
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("study")
    if experiment is None:
        return []
    return client.search_runs(
        [experiment.experiment_id], "tags.`workbench.role` = 'trial'", max_results=1000
    )


def _wait_for_running(store: str, worker: str, timeout: float = 180) -> str:
    """The trial id of the worker's RUNNING trial run, once it has one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in _trial_runs(store):
            tags = run.data.tags
            if run.info.status == "RUNNING" and tags.get("workbench.worker") == worker:
                return tags["workbench.trial_id"]
        time.sleep(0.2)
    raise AssertionError(f"{worker} ran no trial within {timeout} s")


def _finish(process: subprocess.Popen, timeout: float = 300) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def _exactly_once(store: str, trials: int) -> list:
    runs = _trial_runs(store)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    per_trial = Counter(r.data.tags["workbench.trial_id"] for r in finished)
    assert len(per_trial) == trials and set(per_trial.values()) == {1}, per_trial
    assert all(r.info.status in ("FINISHED", "KILLED", "FAILED") for r in runs)  # none RUNNING
    parents = {r.data.tags["mlflow.parentRunId"] for r in runs}
    assert len(parents) == 1
    return runs


def test_the_wire_carries_the_whole_search(store: str, tmp_path: Path) -> None:
    from workbench.search import make_search_config
    from workbench.search.wire import decode_assignment, encode_assignment
    from workbench.spaces import load_space
    from workbench.tasks import load_task

    space = load_space("small").with_fixed(epochs=2)
    task = load_task("adding").with_options(length=12)
    config = make_search_config(
        task=task,
        space=space,
        tuner="bayesian",
        max_trials=7,
        seed=4,
        repeats=2,
        folds=3,
        mixed_precision=True,
        gradient_probe=False,
        steps_per_execution=4,
        tracking_uri=store,
        experiment="e",
    )
    payload = encode_assignment(config, "3", "abc", 2.5)
    got = decode_assignment(payload, tmp_path / "w")
    assert (got.experiment_id, got.parent_run_id, got.heartbeat_seconds) == ("3", "abc", 2.5)
    assert got.config.space == space and got.config.task == task
    assert got.config.state_dir.parent == (tmp_path / "w").resolve()
    fields = ("tuner", "max_trials", "seed", "repeats", "folds", "tracking_uri")
    for field in (*fields, "mixed_precision", "gradient_probe", "steps_per_execution"):
        assert getattr(got.config, field) == getattr(config, field), field

    # A worker of another workbench version is told so, in one line.
    older = json.loads(payload)
    older["version"] -= 1
    with pytest.raises(WorkbenchError, match="run the same workbench version on the chief"):
        decode_assignment(json.dumps(older).encode(), tmp_path / "w")


def test_a_worker_without_a_chief_says_so_in_one_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.search import worker

    bad = CliRunner().invoke(main, ["worker", "--chief", "nohost"])
    assert bad.exit_code == 2 and "Expected --chief HOST:PORT" in bad.output
    monkeypatch.setattr(worker, "JOIN_TIMEOUT_SECONDS", 1.0)
    gone = CliRunner().invoke(main, ["worker", "--chief", f"127.0.0.1:{_free_port()}"])
    assert gone.exit_code == 2, gone.output
    # What it waits for, said before the wait (it was a minute of silence), then one line.
    joining, error = gone.output.strip().splitlines()
    assert joining.startswith("Joining the chief at 127.0.0.1:") and "up to 1 s" in joining
    assert error.startswith("Error: Cannot reach the chief at 127.0.0.1:")
    # A host no resolver knows (it may appear late, a service starting: waited for) is
    # named so, not DEADLINE_EXCEEDED.
    nowhere = CliRunner().invoke(main, ["worker", "--chief", "no-such-host.invalid:8470"])
    assert nowhere.exit_code == 2, nowhere.output
    error = nowhere.output.strip().splitlines()[-1]
    assert error.startswith("Error: Cannot resolve the chief's host 'no-such-host.invalid' ")
    # KerasTuner takes any id holding "chief" for the chief: refused, and a host so named
    # is written otherwise as the default id.
    named = CliRunner().invoke(
        main, ["worker", "--chief", "127.0.0.1:1", "--worker-id", "gpu-chief-1"]
    )
    assert named.exit_code == 2 and "without the word 'chief'" in named.output
    monkeypatch.setattr(worker.socket, "gethostname", lambda: "ml-chief-2")
    assert "chief" not in worker.default_worker_id()


def test_a_second_chief_on_a_port_in_use_is_refused(tmp_path: Path) -> None:
    import keras_tuner as kt

    from workbench.errors import WorkbenchError
    from workbench.search.chief import ChiefServer
    from workbench.search.config import ClusterConfig

    oracle = kt.oracles.RandomSearchOracle(kt.Objective("score", "min"), max_trials=1)
    oracle._set_project_dir(str(tmp_path), "study")
    cluster = ClusterConfig(host="127.0.0.1", port=_free_port())
    first = ChiefServer(oracle, b"", cluster)
    first.server.start()
    try:  # gRPC's SO_REUSEPORT let it bind too, and split the workers between two studies
        with pytest.raises(WorkbenchError, match="The chief cannot listen on 127.0.0.1:"):
            ChiefServer(oracle, b"", cluster)
    finally:
        first.server.stop(0)


def test_a_second_worker_with_a_live_workers_id_is_refused(
    tmp_path: Path, workdir: Path
) -> None:
    import threading

    import grpc
    import keras_tuner as kt

    from workbench.search import wire
    from workbench.search.chief import ChiefServer
    from workbench.search.config import ClusterConfig

    oracle = kt.oracles.RandomSearchOracle(kt.Objective("score", "min"), max_trials=1)
    oracle._set_project_dir(str(tmp_path), "study")
    cluster = ClusterConfig(host="127.0.0.1", port=0, heartbeat_seconds=0.5)
    server = ChiefServer(oracle, b'{"version": 0}', cluster)
    server.start()
    address = f"127.0.0.1:{server.port}"
    alive = threading.Event()
    alive.set()

    def first_worker() -> None:  # beats as a live worker "w" does
        with grpc.insecure_channel(address) as channel:
            beat = channel.unary_unary(wire.HEARTBEAT)
            while alive.is_set():
                beat(json.dumps({"worker": "w"}).encode(), timeout=5)
                time.sleep(0.2)

    thread = threading.Thread(target=first_worker, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        # Joined, it trained every trial the other trained (one id, one trial at a time).
        twin = CliRunner().invoke(main, ["worker", "--chief", address, "--worker-id", "w"])
        assert twin.exit_code == 2, twin.output
        joining, refused = twin.output.strip().splitlines()
        assert joining.startswith(f"Joining the chief at {address} ")
        assert refused.startswith("Error: Another worker with --worker-id 'w' is working for")
        alive.clear()
        thread.join()
        # The same id once the first is gone (a restarted worker): let in, and told of
        # the chief's version, which this stand-in chief gets wrong on purpose.
        again = CliRunner().invoke(main, ["worker", "--chief", address, "--worker-id", "w"])
        assert "The chief speaks wire version 0" in again.output, again.output
    finally:
        alive.clear()
        server.stop()


def test_a_restarted_chief_refuses_a_second_worker_of_a_running_trials_id(
    tmp_path: Path,
) -> None:
    import grpc
    import keras_tuner as kt

    from workbench.search.chief import DUPLICATE_BEATS, ChiefServer
    from workbench.search.config import ClusterConfig

    class Refused(Exception):
        pass

    def refuse(code: Any, details: str) -> None:
        raise Refused(code)

    oracle = kt.oracles.RandomSearchOracle(kt.Objective("score", "min"), max_trials=2)
    oracle._set_project_dir(str(tmp_path), "study")
    oracle.create_trial("w")  # reloaded as running: its worker may still be training it
    cluster = ClusterConfig(host="127.0.0.1", port=0, heartbeat_seconds=0.5)
    server = ChiefServer(oracle, b"{}", cluster)
    join = json.dumps({"worker": "w"}).encode()
    # A second "w" (another --state-dir) was let in at once and trained the trial again.
    with pytest.raises(Refused) as refused:
        server._join(join, SimpleNamespace(abort=refuse))
    assert refused.value.args[0] == grpc.StatusCode.ALREADY_EXISTS
    # No heartbeat for the window: the first is gone, a restarted "w" is let in.
    server.last_beat["w"] -= DUPLICATE_BEATS * cluster.heartbeat_seconds + 1
    assert server._join(join, SimpleNamespace(abort=refuse)) == b"{}"


def test_a_chief_on_a_busy_port_is_refused_before_anything_is_recorded(
    task_and_space: tuple[Path, Path], store: str
) -> None:
    task, space = task_and_space
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        args = ["chief", *_search_args(task, space, store, 2), "--port", port]
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: The chief cannot listen on 127.0.0.1:"), result.output
    # It was said after the study's run had opened: a FAILED search run was left.
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("study")
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []


def test_a_chief_host_not_of_this_host_or_a_nan_timeout_is_refused_before_anything_is_recorded(
    task_and_space: tuple[Path, Path], store: str
) -> None:
    task, space = task_and_space
    # With --port 0 the host went unchecked: the study opened, gRPC logged its failure,
    # and the error blamed the port.
    args = ["chief", *_search_args(task, space, store, 2), "--host", "192.0.2.1", "--port", "0"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.output == (
        "Error: The chief cannot listen on 192.0.2.1: not an address of this host. Expected "
        "--host to be one of its addresses or names (or 0.0.0.0 for every one).\n"
    )
    # NaN passed every comparison: every trial's worker was "lost (no heartbeat for nan s)".
    args = ["search", *_search_args(task, space, store, 2), "--workers", "1"]
    result = CliRunner().invoke(main, [*args, "--worker-timeout", "nan"])
    assert result.exit_code == 2, result.output
    assert "Expected --worker-timeout above the 5 s heartbeat. Received: nan" in result.output
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("study")
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []


def test_local_workers_get_a_gpu_each_or_a_share_of_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workbench.search import chief as chief_module
    from workbench.search.chief import worker_environments

    monkeypatch.setattr(chief_module, "_hidden_gpus", [])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    envs = worker_environments(3)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["2", "3", "2"]
    assert all(e["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" for e in envs)
    assert all("CUDA_DEVICE_ORDER" not in e for e in envs)  # the user's numbering, kept
    # "-1" hides every GPU (CUDA reads up to the first invalid entry): the CPU share.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert all(e["CUDA_VISIBLE_DEVICES"] == "" for e in worker_environments(2))
    # GPUs listed by nvidia-smi are numbered in PCI bus order: the workers' CUDA too.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    listed = subprocess.CompletedProcess([], 0, stdout="0\n1\n", stderr="")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: listed)
    envs = worker_environments(2)
    assert [(e["CUDA_VISIBLE_DEVICES"], e["CUDA_DEVICE_ORDER"]) for e in envs] == [
        ("0", "PCI_BUS_ID"),
        ("1", "PCI_BUS_ID"),
    ]
    monkeypatch.undo()
    monkeypatch.setattr(chief_module, "_hidden_gpus", [])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    envs = worker_environments(4)
    assert [e["TF_NUM_INTRAOP_THREADS"] for e in envs] == ["4"] * 4
    assert all(e["CUDA_VISIBLE_DEVICES"] == "" for e in envs)


def test_a_chief_that_hides_the_gpus_from_itself_still_gives_them_to_its_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workbench.search import chief

    monkeypatch.setattr(chief, "_hidden_gpus", [])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    chief.hide_gpus()
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""  # the chief's TensorFlow sees none
    envs = chief.worker_environments(2)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1"]


@pytest.mark.e2e
def test_two_local_workers_run_each_trial_once_under_one_parent(
    task_and_space: tuple[Path, Path], store: str, workdir: Path
) -> None:
    task, space = task_and_space
    result = CliRunner().invoke(
        main, ["search", *_search_args(task, space, store, 4), "--workers", "2"]
    )
    assert result.exit_code == 0, result.output
    runs = _exactly_once(store, 4)
    assert len(runs) == 4  # no duplicate, no retry
    assert {r.data.tags["workbench.worker"] for r in runs} == {"worker-0", "worker-1"}
    assert "[worker-0]" in result.output and "[worker-1]" in result.output
    assert "4 of 4 trials completed" in result.output


def _local_worker(chief: int, worker: str) -> int:
    """The process id of the chief's local worker ``worker``."""
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == chief and worker.encode() in command:
            return int(entry.name)
    raise AssertionError(f"no local worker {worker} under {chief}")


@pytest.mark.e2e
def test_a_local_worker_that_crashes_fails_its_trial_and_remote_workers_finish(
    task_and_space: tuple[Path, Path], store: str, workdir: Path
) -> None:
    task, space = task_and_space
    port = _free_port()
    # Trials that outlast the kill: a 1-second trial could end FINISHED between the test
    # seeing it run and the kill landing (a race that failed this test about 1 run in 4).
    longer = ("--task-option", "n_train=6000")
    args = ["chief", *_search_args(task, space, store, 4), *longer, "--workers", "1"]
    chief = _cli(*args, "--port", str(port), log=workdir / "chief.log")
    remote = _cli(
        "worker", "--chief", f"127.0.0.1:{port}", "--worker-id", "remote", log=workdir / "remote"
    )
    try:
        _wait_for_running(store, "remote")
        held = _wait_for_running(store, "worker-0")
        os.kill(_local_worker(chief.pid, "worker-0"), signal.SIGKILL)
        # The chief used to give up here ("All 1 workers stopped") with a live remote worker.
        assert _finish(remote) == 0, (workdir / "remote").read_text()
        assert _finish(chief, timeout=120) == 0, (workdir / "chief.log").read_text()
    finally:
        for process in (chief, remote):
            process.kill()
    runs = _trial_runs(store)
    of_held = [r for r in runs if r.data.tags["workbench.trial_id"] == held]
    # Failed at once (its worker is gone), not after the worker timeout, not left RUNNING.
    assert [r.info.status for r in of_held] == ["KILLED"]
    assert of_held[0].data.tags["failure"] == "worker_exited"
    assert sum(r.info.status == "FINISHED" for r in runs) == 3
    output = (workdir / "chief.log").read_text()
    assert "worker worker-0 was killed by SIGKILL while it ran the trial" in output, output
    assert "3 of 4 trials completed (1 failed)" in output, output


@pytest.mark.e2e
def test_the_chief_prints_why_a_worker_failed_a_trial(
    tiny_task: Path, store: str, workdir: Path
) -> None:
    space = workdir / "oom.yaml"
    # 150,000 LSTM units: a real allocation failure (ResourceExhaustedError) in the worker.
    space.write_text("dimensions: {cell: lstm, units: [4, 150000], epochs: 1}\n")
    args = [*_search_args(tiny_task, space, store, 2), "--workers", "1"]
    result = CliRunner().invoke(main, ["search", *args])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    # KerasTuner's wire carries no reason: the console printed "FAILED (0.0 s)".
    assert "-> OOM ResourceExhaustedError: " in output and "(0.0 s)" not in output, output
    assert "1 of 2 trials completed (1 failed)" in output, output


@pytest.mark.e2e
@pytest.mark.parametrize("host", ["127.0.0.2", "0.0.0.0"])
def test_a_chief_on_one_address_or_every_one_reaches_its_local_workers(
    task_and_space: tuple[Path, Path], store: str, host: str
) -> None:
    import socket

    task, space = task_and_space
    port = _free_port()
    args = [*_search_args(task, space, store, 1), "--host", host, "--port", str(port)]
    result = CliRunner().invoke(main, ["chief", *args, "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert len(_exactly_once(store, 1)) == 1
    # Every interface: the address a worker elsewhere dials is this host's name; never
    # "localhost" (a hosts file mapping the host name to 127.0.0.1 makes getfqdn say so).
    fqdn = socket.getfqdn()
    loopback = fqdn == "localhost" or fqdn.startswith(("localhost.", "ip6-"))
    shown = (socket.gethostname() if loopback else fqdn) if host == "0.0.0.0" else host
    assert shown != "localhost"
    assert f"Chief on {shown}:{port}: 1 local workers" in " ".join(result.output.split())


@pytest.mark.e2e
def test_a_worker_killed_mid_trial_gets_its_trial_back(
    task_and_space: tuple[Path, Path], store: str, workdir: Path
) -> None:
    task, space = task_and_space
    port = _free_port()
    chief = _cli(
        "chief",
        *_search_args(task, space, store, 3),
        "--port",
        str(port),
        log=workdir / "chief.log",
    )
    worker = ["worker", "--chief", f"127.0.0.1:{port}", "--worker-id", "w1"]
    try:
        first = _cli(*worker, log=workdir / "w1.log")
        held = _wait_for_running(store, "w1")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        again = _cli(*worker, log=workdir / "w1.log")
        assert _finish(again) == 0, (workdir / "w1.log").read_text()
        assert _finish(chief) == 0, (workdir / "chief.log").read_text()
    finally:
        chief.kill()
    runs = _exactly_once(store, 3)
    of_held = [r for r in runs if r.data.tags["workbench.trial_id"] == held]
    assert sorted(r.info.status for r in of_held) == ["FINISHED", "KILLED"]


@pytest.mark.e2e
def test_a_worker_that_never_comes_back_does_not_hang_the_chief(
    task_and_space: tuple[Path, Path], store: str, workdir: Path
) -> None:
    task, space = task_and_space
    port = _free_port()
    args = [*_search_args(task, space, store, 3), "--port", str(port), "--worker-timeout", "8"]
    chief = _cli("chief", *args, log=workdir / "chief.log")
    try:
        lost = _cli(
            "worker",
            "--chief",
            f"127.0.0.1:{port}",
            "--worker-id",
            "lost",
            log=workdir / "lost.log",
        )
        held = _wait_for_running(store, "lost")
        lost.send_signal(signal.SIGKILL)
        lost.wait(timeout=30)
        other = _cli(
            "worker",
            "--chief",
            f"127.0.0.1:{port}",
            "--worker-id",
            "other",
            log=workdir / "other.log",
        )
        assert _finish(other) == 0, (workdir / "other.log").read_text()
        assert _finish(chief, timeout=120) == 0, (workdir / "chief.log").read_text()
    finally:
        chief.kill()
    runs = _trial_runs(store)
    of_held = [r for r in runs if r.data.tags["workbench.trial_id"] == held]
    assert [r.info.status for r in of_held] == ["KILLED"]
    assert of_held[0].data.tags["failure"] == "worker_lost"
    assert sum(r.info.status == "FINISHED" for r in runs) == 2
    output = (workdir / "chief.log").read_text()
    assert "2 of 3 trials completed (1 failed)" in output, output
    assert "worker lost was lost" in output, output


@pytest.mark.e2e
def test_a_worker_stopped_with_ctrl_c_gives_its_trial_back_at_once(
    task_and_space: tuple[Path, Path], store: str, workdir: Path
) -> None:
    task, space = task_and_space
    port = _free_port()
    # The default worker timeout (120 s): the chief waited it out, then said the worker
    # was lost and failed its trial for good, while the worker had said "Interrupted".
    # Trials that outlast the signal (see the crash test above): one ended before it lands
    # would leave the worker between trials, with nothing to give back.
    longer = ("--task-option", "n_train=6000")
    chief = _cli("chief", *_search_args(task, space, store, 3), *longer, "--port", str(port),
                 log=workdir / "chief.log")  # fmt: skip
    worker = ["worker", "--chief", f"127.0.0.1:{port}"]
    try:
        first = _cli(*worker, "--worker-id", "w1", log=workdir / "w1.log")
        held = _wait_for_running(store, "w1")
        first.send_signal(signal.SIGINT)
        assert _finish(first, timeout=60) == 130, (workdir / "w1.log").read_text()
        other = _cli(*worker, "--worker-id", "w2", log=workdir / "w2.log")
        assert _finish(other) == 0, (workdir / "w2.log").read_text()
        assert _finish(chief, timeout=60) == 0, (workdir / "chief.log").read_text()
    finally:
        chief.kill()
    output = (workdir / "chief.log").read_text()
    number = int(held) + 1
    assert f"Trial {number}/3 [w1] back in the queue: its worker stopped" in output, output
    assert "3 of 3 trials completed (0 failed)" in output and "was lost" not in output, output
    runs = _exactly_once(store, 3)
    of_held = [r for r in runs if r.data.tags["workbench.trial_id"] == held]
    assert sorted(r.info.status for r in of_held) == ["FINISHED", "KILLED"]


@pytest.mark.e2e
def test_a_chief_killed_and_started_again_resumes_the_study(
    task_and_space: tuple[Path, Path], store: str, workdir: Path
) -> None:
    task, space = task_and_space
    args = ["search", *_search_args(task, space, store, 4), "--workers", "2"]
    chief = _cli(*args, log=workdir / "first.log")
    try:
        held = _wait_for_running(store, "worker-0")
        chief.send_signal(signal.SIGKILL)
        chief.wait(timeout=30)
        # Its local workers stop with it and end their trials' runs (not left RUNNING).
        deadline = time.monotonic() + 60
        while any(r.info.status == "RUNNING" for r in _trial_runs(store)):
            assert time.monotonic() < deadline, [r.info.status for r in _trial_runs(store)]
            time.sleep(0.5)
    finally:
        chief.kill()
    (interrupted,) = [
        r for r in _trial_runs(store) if r.data.tags["workbench.trial_id"] == held
    ]
    assert interrupted.info.status == "KILLED"
    again = _cli(*args, log=workdir / "second.log")
    assert _finish(again) == 0, (workdir / "second.log").read_text()
    runs = _exactly_once(store, 4)
    assert any(r.info.status == "KILLED" for r in runs)  # the trial the kill interrupted
    clients = MlflowClient(store)
    parents = clients.search_runs([runs[0].info.experiment_id], "tags.`workbench.role` = 'search'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


@pytest.mark.e2e
def test_remote_workers_outlive_a_restarted_chief_and_each_finishes_its_own_trial(
    task_and_space: tuple[Path, Path], store: str, workdir: Path
) -> None:
    task, space = task_and_space
    port = _free_port()
    # Trials that outlast the chief's restart: both workers are still training when it is
    # back, so the first to finish asks for a trial while the other still runs its own.
    longer = ("--task-option", "n_train=12000")
    args = [*_search_args(task, space, store, 4), *longer, "--port", str(port)]
    chief = _cli("chief", *args, log=workdir / "chief.log")
    names = ("w0", "w1")
    workers: list[subprocess.Popen] = []
    try:
        for name in names:
            address = f"127.0.0.1:{port}"
            workers.append(
                _cli("worker", "--chief", address, "--worker-id", name, log=workdir / name)
            )
        held = _wait_for_running(store, "w0")
        chief.send_signal(signal.SIGKILL)
        chief.wait(timeout=30)
        chief = _cli("chief", *args, log=workdir / "chief-again.log")
        for name, worker in zip(names, workers, strict=True):
            assert _finish(worker) == 0, (workdir / name).read_text()
        assert _finish(chief, timeout=120) == 0, (workdir / "chief-again.log").read_text()
    finally:
        for process in (chief, *workers):
            process.kill()
    runs = _exactly_once(store, 4)
    # w0 carried on with its trial; no other worker was handed it meanwhile.
    of_held = [r for r in runs if r.data.tags["workbench.trial_id"] == held]
    assert [(r.info.status, r.data.tags["workbench.worker"]) for r in of_held] == [
        ("FINISHED", "w0")
    ]


@pytest.mark.e2e
def test_a_chief_and_a_worker_on_ipv6_loopback(
    task_and_space: tuple[Path, Path], store: str, workdir: Path
) -> None:
    task, space = task_and_space
    port = _free_port()
    args = [*_search_args(task, space, store, 2), "--host", "::1", "--port", str(port)]
    chief = _cli("chief", *args, log=workdir / "chief.log")
    worker = _cli("worker", "--chief", f"[::1]:{port}", "--worker-id", "v6", log=workdir / "v6")
    try:
        assert _finish(worker) == 0, (workdir / "v6").read_text()
        assert _finish(chief, timeout=120) == 0, (workdir / "chief.log").read_text()
    finally:
        chief.kill()
        worker.kill()
    _exactly_once(store, 2)
    assert f"workbench worker --chief [::1]:{port}" in (workdir / "chief.log").read_text()


@pytest.fixture()
def postgres_uri() -> Iterator[str]:
    """A PostgreSQL 15 server on loopback for the test, stopped after it."""
    from pg_server import INSTALL, running_postgres, server_bin

    if server_bin() is None:
        if os.environ.get("WORKBENCH_REQUIRE_SYSTEM_PACKAGES") == "1":
            pytest.fail("WORKBENCH_REQUIRE_SYSTEM_PACKAGES=1 but PostgreSQL is missing")
        pytest.skip(f"no PostgreSQL server binaries: {INSTALL}")
    with running_postgres() as uri:
        yield uri


@pytest.mark.e2e
def test_a_two_worker_study_on_postgresql_is_the_same_study_as_on_sqlite(
    task_and_space: tuple[Path, Path], store: str, postgres_uri: str, workdir: Path
) -> None:
    from workbench.report import make_report

    task, space = task_and_space
    scores = {}
    for uri in (store, postgres_uri):
        args = ["search", *_search_args(task, space, uri, 4), "--workers", "2"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        runs = _exactly_once(uri, 4)
        assert {r.data.tags["workbench.worker"] for r in runs} <= {"worker-0", "worker-1"}
        scores[uri] = {
            (r.data.params["cell"], r.data.params["units"]): r.data.metrics["score"] for r in runs
        }
        report = make_report("study", workdir / f"report-{len(scores)}", tracking_uri=uri)
        assert report.files, uri
    assert scores[postgres_uri].keys() == scores[store].keys()
    for key, value in scores[store].items():
        assert scores[postgres_uri][key] == pytest.approx(value, rel=1e-4), key


@pytest.mark.e2e
def test_two_searches_may_open_a_new_postgresql_store_at_once(postgres_uri: str) -> None:
    # Both create MLflow's tables; the second failed on the first's ("Cannot reach ...:
    # (psycopg.errors.UniqueViolation) duplicate key value violates unique constraint").
    code = (
        "import sys; from workbench.tracking import check_reachable; "
        "check_reachable(sys.argv[1]); print('reached')"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, postgres_uri],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(),
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs


def _oracle(directory: Path, max_trials: int) -> Any:
    """A KerasTuner oracle over one integer, its state in ``directory`` (as a chief's)."""
    import keras_tuner as kt

    made = kt.oracles.RandomSearchOracle(
        kt.Objective("score", "min"), max_trials=max_trials, seed=1
    )
    made._set_project_dir(str(directory), "study")
    hp = kt.HyperParameters()
    hp.Int("units", 1, 1000)
    made.update_space(hp)
    return made


def test_a_restarted_chief_keeps_each_running_trial_for_its_worker(tmp_path: Path) -> None:
    from workbench.search.oracles import keep_running_trials

    def oracle() -> Any:
        return _oracle(tmp_path, max_trials=6)

    before = oracle()
    running = {w: before.create_trial(w).trial_id for w in ("worker-0", "worker-1")}
    before.save()  # what the chief left when it was killed
    after = oracle()
    after.reload()  # KerasTuner queues both trials for whichever worker asks first
    assert sorted(after._retry_queue) == sorted(running.values())
    keep_running_trials(after)
    assert after._retry_queue == []
    assert {w: t.trial_id for w, t in after.ongoing_trials.items()} == running
    # The worker that comes back gets its own trial again, not the other's.
    assert after.create_trial("worker-1").trial_id == running["worker-1"]


def test_a_restarted_chief_does_not_hand_out_a_trial_that_had_ended(tmp_path: Path) -> None:
    from workbench.search.oracles import keep_running_trials

    def oracle() -> Any:
        return _oracle(tmp_path, max_trials=2)

    before = oracle()
    for worker, status in (("worker-0", "COMPLETED"), ("worker-1", "FAILED")):
        trial = before.create_trial(worker)
        trial.status = status
        if status == "COMPLETED":
            before.update_trial(trial.trial_id, {"score": 1.0})
        before.end_trial(trial)  # KerasTuner saves its state before it lets go of the trial
    after = oracle()
    after.reload()
    keep_running_trials(after)
    # The study is over: a rerun's worker is told so, not handed the failed trial again.
    assert after.create_trial("worker-0").status == "STOPPED"


def test_a_chief_hands_out_the_trial_a_stopped_plain_search_was_running(
    tmp_path: Path,
) -> None:
    from workbench.search.oracles import keep_running_trials

    def oracle() -> Any:
        return _oracle(tmp_path, max_trials=1)

    before = oracle()
    running = before.create_trial("tuner0").trial_id  # a plain search, killed mid-trial
    before.save()
    after = oracle()
    after.reload()
    keep_running_trials(after)  # the same study, now run with --workers
    # Held for tuner0, which never asks a chief, every worker was told "stopped".
    assert after.create_trial("worker-0").trial_id == running


def test_a_lost_worker_whose_run_finished_the_trial_completes_it(tmp_path: Path) -> None:
    from workbench.search.chief import _record_lost

    killed: list[str] = []

    def search(recorded: Any) -> Any:
        study = SimpleNamespace(
            finished_trial=lambda trial_id: recorded,
            kill_trial_runs=lambda trial_id, failure, detail: killed.append(trial_id),
        )
        return SimpleNamespace(study=study)

    oracle = _oracle(tmp_path, max_trials=3)
    finished, lost = oracle.create_trial("w1"), oracle.create_trial("w2")
    # w1 finished its trial while no chief listened (its run FINISHED), then stopped: the
    # restarted chief failed it (and took the next best trial for the study's best).
    _record_lost(search(("run1", {"score": 0.175})), oracle, finished, "worker_lost", "lost")
    assert oracle.trials[finished.trial_id].status == "COMPLETED"
    assert oracle.trials[finished.trial_id].score == 0.175 and killed == []
    _record_lost(search(None), oracle, lost, "worker_lost", "lost")
    assert oracle.trials[lost.trial_id].status == "FAILED" and killed == [lost.trial_id]
    assert [t.trial_id for t in oracle.get_best_trials(1)] == [finished.trial_id]


def test_a_workers_closing_line_counts_a_trial_finished_too_late_apart() -> None:
    from workbench.search.config import TrialResult
    from workbench.search.worker import WorkerResult

    trials = (
        TrialResult("0", 1, {}, "completed", 0.2, {}, "r0"),
        TrialResult("1", 2, {}, "completed", 0.3, {}, "r1", late=True),
    )
    line = WorkerResult("w1", "study", "sqlite:///s.db", trials).summary()
    # It said "ran 2 (2 completed)" while the second trial's line said "too late".
    assert "this worker ran 2 (1 completed, 1 too late for the study) of study study" in line


def test_a_leave_from_another_process_of_the_id_keeps_the_holders_trial(tmp_path: Path) -> None:
    from workbench.search.chief import ChiefServer
    from workbench.search.config import ClusterConfig

    def hello(process: str) -> bytes:
        return json.dumps({"worker": "w1", "process": process}).encode()

    oracle = _oracle(tmp_path, max_trials=2)
    server = ChiefServer(oracle, b"{}", ClusterConfig(host="127.0.0.1", port=0))
    server._join(hello("new"), None)
    held = oracle.create_trial("w1")
    # An older process of w1 (it outlived a partition, or the chief it was started by)
    # stops: the new process's trial stayed with it (it was handed back and trained twice).
    server._leave(hello("old"), None)
    assert server.requeue_departed() == [] and oracle.ongoing_trials == {"w1": held}
    server._leave(hello("new"), None)
    assert server.requeue_departed() == [("w1", held)] and oracle._retry_queue == [held.trial_id]


def test_a_chief_whose_last_workers_left_or_were_lost_ends_when_no_trial_is_left(
    tmp_path: Path,
) -> None:
    from workbench.search.chief import ChiefServer
    from workbench.search.config import ClusterConfig

    oracle = _oracle(tmp_path, max_trials=2)
    server = ChiefServer(oracle, b"{}", ClusterConfig(host="127.0.0.1", port=0))
    done = oracle.create_trial("w1")
    oracle.update_trial(done.trial_id, {"score": 1.0})
    done.status = "COMPLETED"
    oracle.end_trial(done)
    held = oracle.create_trial("w2")
    # w2 says it stopped: forgotten at once, its trial handed back for the next worker.
    server._leave(json.dumps({"worker": "w2"}).encode(), None)
    assert server.requeue_departed() == [("w2", held)] and not oracle.ongoing_trials
    assert oracle._retry_queue == [held.trial_id]
    assert not server.finished()  # a trial waits for a worker
    # ... even after another worker was told there is none left (the chief ended at once).
    server.servicer.stop_triggered = True
    assert not server.finished()
    # w4's request for a trial was in flight when it left: the trial it was handed late
    # goes back to the queue (it was held by nobody, for ever).
    server._leave(json.dumps({"worker": "w4"}).encode(), None)
    assert server.requeue_departed() == []
    assert oracle.create_trial("w4").trial_id == held.trial_id
    assert server.requeue_departed() == [("w4", held)]
    assert oracle._retry_queue == [held.trial_id]
    server.servicer.stop_triggered = False
    assert oracle.create_trial("w3").trial_id == held.trial_id
    held.status = "FAILED"
    server.forget("w3")
    oracle.end_trial(held)
    oracle.tuner_ids.discard("w1")  # w1 asked for nothing more (lost, or stopped by kill -9)
    # No worker left to be told "stopped": the chief waited for one for ever.
    assert not server.servicer.stop_triggered and server.finished()


def test_a_worker_says_when_its_chief_goes_silent_and_when_it_answers_again() -> None:
    from workbench.search.worker import SILENT_BEATS, _Heartbeat

    beats: list[int] = []

    def beat(request: bytes, timeout: float) -> bytes:
        beats.append(1)
        if 2 <= len(beats) <= 8:  # the chief gone for 7 beats, then back
            raise ConnectionError("unavailable")
        return b"{}"

    said: list[tuple[str, Any]] = []
    reporter = SimpleNamespace(chief_silent=lambda *args: said.append(args))
    channel = SimpleNamespace(unary_unary=lambda path: beat)
    heartbeat = _Heartbeat(channel, b'{"worker": "w1"}', 0.05, "10.0.0.5:8470", reporter)
    heartbeat.start()
    deadline = time.monotonic() + 10
    while len(beats) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    heartbeat.stop()
    heartbeat.join()
    # A worker whose chief was gone waited in silence (KerasTuner's client waits an hour).
    (silent, back) = said
    assert silent[0] == "10.0.0.5:8470" and silent[1] >= SILENT_BEATS * 0.05
    assert back == ("10.0.0.5:8470", None)
