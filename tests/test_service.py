"""The tracking service: a study written from a child process behaves as one written here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

import workbench
from workbench.errors import WorkbenchError
from workbench.tracking import StoreFailed, TrackingService


def _write_a_search(service: TrackingService) -> tuple[str, str]:
    service.check_reachable()
    study = service.study("exp")
    study.open_search(
        params={"task": "adding"}, tags={"task": "adding"}, resume=False, run_name="s"
    )
    run = study.start_trial(
        "0", params={"cell": "gru", "units": 8}, tags={"cell": "gru"}, run_name="t"
    )
    for epoch in range(3):
        run.log_epoch(epoch, {"loss": 1.0 / (epoch + 1)})
    run.finish({"score": 0.25}, {"checkpoint": "none"})
    study.end_search("FINISHED")
    return study.parent_run_id, run.run_id


def test_a_study_written_from_the_child_process_lands_as_one_written_here(store: str) -> None:
    written, children = {}, []
    for separate in (True, False):
        with TrackingService(store, separate=separate) as service:
            assert service.separate is separate
            assert (service.process_id is not None) is separate
            children.append(service.process_id)
            parent_id, run_id = _write_a_search(service)
        client = MlflowClient(store)
        parent, trial = client.get_run(parent_id), client.get_run(run_id)
        history = [m.value for m in client.get_metric_history(run_id, "loss")]
        written[separate] = (
            parent.info.status,
            trial.info.status,
            trial.data.params,
            trial.data.metrics["score"],
            history,
        )
    assert written[True] == written[False]
    assert written[True][:2] == ("FINISHED", "FINISHED")
    assert written[True][4] == [1.0, 0.5, 1.0 / 3]
    assert not _alive(children[0])  # closing waited for the child's exit


def test_a_search_run_that_was_opened_but_not_ended_ends_killed_on_close(store: str) -> None:
    # What a Ctrl-C while the search's run is being opened leaves: the run exists, and the
    # search never got to end it.
    for separate in (True, False):
        with TrackingService(store, separate=separate) as service:
            study = service.study(f"opened-{separate}")
            study.open_search(params={}, tags={}, resume=False, run_name="s")
            parent = study.parent_run_id
        assert MlflowClient(store).get_run(parent).info.status == "KILLED"


def test_an_unreachable_store_is_one_line_from_the_child(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    service = TrackingService(f"sqlite:///{blocked}/mlflow.db", separate=True)
    try:
        with pytest.raises(WorkbenchError, match="Cannot create the tracking store folder"):
            service.check_reachable()
    finally:
        service.close()


def test_a_store_lost_mid_search_fails_the_call_with_store_failed(store: str) -> None:
    with TrackingService(store, separate=True) as service:
        study = service.study("exp")
        study.open_search(params={}, tags={}, resume=False, run_name="s")
        Path(store.removeprefix("sqlite:///")).rename(
            Path(store.removeprefix("sqlite:///")).with_suffix(".gone")
        )
        with pytest.raises(StoreFailed, match="failed"):
            study.start_trial("0", params={}, tags={}, run_name="t")


def test_a_child_that_dies_makes_the_next_call_fail_with_store_failed(store: str) -> None:
    with TrackingService(store, separate=True) as service:
        study = service.study("exp")
        os.kill(service.process_id, signal.SIGKILL)  # type: ignore[arg-type]
        with pytest.raises(StoreFailed, match="ended unexpectedly"):
            study.open_search(params={}, tags={}, resume=False, run_name="s")


def test_the_child_ignores_ctrl_c_and_exits_when_the_search_process_is_killed(
    store: str, tmp_path: Path
) -> None:
    # A script without a main guard, as users write them: it runs once (the child is a new
    # interpreter, it does not import the script again).
    script = tmp_path / "search.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import time
            from workbench.tracking import TrackingService

            print("started", flush=True)
            service = TrackingService({store!r}, separate=True)
            service.check_reachable()
            print(service.process_id, flush=True)
            input()  # after the test's Ctrl-C: does the child still answer?
            print(service.study("exp").recorded_runs(), flush=True)
            time.sleep(600)
            """
        )
    )
    process = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(workbench.__file__).parents[1])},
        start_new_session=True,
    )
    try:
        assert process.stdout.readline() == "started\n"  # type: ignore[union-attr]
        child = int(process.stdout.readline())  # type: ignore[union-attr]
        os.kill(child, signal.SIGINT)  # Ctrl-C reaches the whole process group
        time.sleep(0.5)
        process.stdin.write("\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]
        assert process.stdout.readline() == "0\n"  # type: ignore[union-attr]
        process.kill()
        process.wait(timeout=30)
        deadline = time.monotonic() + 15
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the tracking process outlived the search's process"
    finally:
        if process.poll() is None:
            process.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_ctrl_c_during_a_message_waits_until_it_is_whole() -> None:
    import subprocess
    import sys

    # In a fresh interpreter, with a second thread alive (as TensorFlow's): the kernel
    # hands a signal the main thread blocks to that thread, and Python still raises it.
    script = """
import os, signal, threading, time
from workbench.tracking.service import _signals_blocked
stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
try:
    with _signals_blocked():
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:  # where the message would be written
            pass
        print("the block ran to its end", flush=True)
except KeyboardInterrupt:
    print("interrupted after it", flush=True)
stop.set()
other.join()
"""
    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": root},
    )  # fmt: skip
    assert done.stdout.splitlines() == ["the block ran to its end", "interrupted after it"], (
        done.stdout + done.stderr
    )
