#!/usr/bin/env python3
"""What the workbench costs over a hand-written Keras loop, measured side by side.

All three are whole processes (imports, data, four models built, fitted with validation and
evaluated on test), run in turn for several rounds on the same machine (each round starts
with the next one in line, so none always runs first):

- hand-written: plain Keras, LSTM and GRU x 32 and 64 units, one layer, Adam 3e-3 with
  norm clipping 1.0, batch 32, 4 epochs, on the adding problem (T=100, 4,000 sequences);
- hand-written + MLflow: the same script as someone who tracks by hand would write it:
  a parent run, a nested run per model with its parameters, each epoch's metrics and the
  test metrics, in the same kind of store as the workbench's;
- workbench: ``workbench search --tuner grid`` over exactly those 4 configurations, every
  trial recorded in MLflow (a store created before the first round: a new experiment a
  round, as a user's next study would be);
- with ``--without-probe``, a fourth arm: the same search with ``--no-gradient-probe``,
  which shows what the gradient probe costs.

``--two-arms`` runs only the hand-written script and the workbench: rounds half as long,
each pair back to back, so more rounds in an hour for the one ratio the goal is about.

Prints every round, the medians, their spread and the ratios of the medians (workbench
over each hand-written script, and what MLflow alone costs), with the median and range of
the per-round ratios (the arms of a round run back to back; from 3 rounds on, their
geometric mean with a 95% confidence interval), of the wall-clock time and of
the CPU time (user + system, the process and its children): on a shared machine the CPU
time moves less with what else runs. On Linux the CPU time is also split by process: the
workbench's child processes (its tracking process: MLflow's import, the store, the
study's writes) and its own process, whose ratio to the plain script's process says what
the workbench's own code costs besides MLflow.

Every arm also records what the machine did besides it, from ``/proc/stat`` (Linux):
the time the hypervisor gave this machine's CPUs to others (``steal``) and the CPU time
of other processes on this machine, each as a share of the arm's CPU capacity (its
wall-clock time x the CPUs). An arm is quiet when both stay at or under ``--quiet``
percent (2 by default). After the reading over every round comes each ratio again over
the rounds where both of its arms were quiet: a rule fixed before the run, not a choice
made after seeing the times.

    python scripts/bench_overhead.py [--rounds 3] [--n-train 4000] [--length 100] [--epochs 4]
                                     [--without-probe | --two-arms] [--quiet 2]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

HAND_WRITTEN = """\
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
from workbench.tasks import load_task

data = load_task("adding").with_options(length={length}, n_train={n_train}).load()
for cell in ("lstm", "gru"):
    for units in (32, 64):
        keras.utils.set_random_seed(0)
        layer = {{"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}}[cell]
        model = keras.Sequential(
            [keras.Input(data.x_train.shape[1:]), layer(units), keras.layers.Dense(1)]
        )
        model.compile(keras.optimizers.Adam(3e-3, clipnorm=1.0), "mse", metrics=["mse"])
        model.fit(
            data.x_train, data.y_train, batch_size=32, epochs={epochs},
            validation_data=(data.x_val, data.y_val), verbose=0,
        )
        model.evaluate(data.x_test, data.y_test, batch_size=256, verbose=0)
"""

HAND_WRITTEN_MLFLOW = """\
import os
import sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
import mlflow
from workbench.tasks import load_task


class EpochMetrics(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        mlflow.log_metrics(logs or {{}}, step=epoch)


mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment(sys.argv[2])
data = load_task("adding").with_options(length={length}, n_train={n_train}).load()
with mlflow.start_run(run_name="search"):
    for cell in ("lstm", "gru"):
        for units in (32, 64):
            with mlflow.start_run(run_name=f"{{cell}}-{{units}}", nested=True):
                mlflow.log_params(
                    {{"cell": cell, "units": units, "learning_rate": 3e-3, "clipnorm": 1.0,
                     "batch_size": 32, "epochs": {epochs}}}
                )
                keras.utils.set_random_seed(0)
                layer = {{"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}}[cell]
                model = keras.Sequential(
                    [keras.Input(data.x_train.shape[1:]), layer(units), keras.layers.Dense(1)]
                )
                model.compile(keras.optimizers.Adam(3e-3, clipnorm=1.0), "mse", metrics=["mse"])
                model.fit(
                    data.x_train, data.y_train, batch_size=32, epochs={epochs},
                    validation_data=(data.x_val, data.y_val), verbose=0,
                    callbacks=[EpochMetrics()],
                )
                test = model.evaluate(
                    data.x_test, data.y_test, batch_size=256, verbose=0, return_dict=True
                )
                mlflow.log_metrics({{f"test_{{name}}": value for name, value in test.items()}})
                mlflow.log_metric("parameters", model.count_params())
"""

HAND, HAND_MLFLOW, WORKBENCH = "hand-written", "hand-written + MLflow", "workbench"
NO_PROBE = "workbench, no probe"

SPACE = """\
name: overhead
description: The 4 configurations of scripts/bench_overhead.py.
dimensions:
  cell: [lstm, gru]
  depth: 1
  units: [32, 64]
  clipping: norm
  clip_threshold: 1.0
  learning_rate: 3e-3
  batch_size: 32
  epochs: {epochs}
  patience: {epochs}
"""


def _cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _machine_seconds() -> tuple[float, float] | None:
    """This machine's busy and stolen CPU seconds since boot (``/proc/stat``), or None."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 8:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / tick, steal / tick


@dataclass(frozen=True)
class Timing:
    """One arm's whole process: its times, and what else the machine did meanwhile."""

    wall: float
    cpu: float
    #: Shares of the arm's CPU capacity (wall-clock x CPUs), in percent; None off Linux.
    steal: float | None = None
    others: float | None = None
    #: The part of ``cpu`` spent in the processes the arm's process started (the
    #: workbench's tracking process); None off Linux.
    children: float | None = None

    @property
    def own_cpu(self) -> float | None:
        """CPU seconds of the arm's own process, its child processes left out."""
        return None if self.children is None else self.cpu - self.children

    def quiet(self, limit: float) -> bool:
        return all(v is not None and v <= limit for v in (self.steal, self.others))

    def in_children(self) -> str:
        if self.children is None or self.children < 0.05:
            return ""
        return f", {self.children:.1f} s of it in child processes"

    def disturbance(self) -> str:
        if self.steal is None or self.others is None:
            return ""
        return f", steal {self.steal:.1f}%, others {self.others:.1f}%"


def _children_seconds(pid: int) -> float | None:
    """CPU seconds of the child processes that ``pid`` started and waited for, read while
    ``pid`` has exited but is not yet reaped (``/proc/<pid>/stat``: cutime, cstime)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _timed(command: list[str], env: dict[str, str], cwd: Path) -> Timing:
    """Wall-clock and CPU seconds of one whole process, and the machine's disturbance."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        machine, cpu, start = _machine_seconds(), _cpu_seconds(), time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err, text=True)
        children = None
        try:
            if hasattr(os, "waitid"):  # wait for the exit, but leave the process to read it
                os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
                children = _children_seconds(process.pid)
            returncode = process.wait()
        except BaseException:  # Ctrl-C: no arm left running behind the script (as run())
            process.kill()
            process.wait()
            raise
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
        after = _machine_seconds()
        if returncode != 0:
            out.seek(0)
            err.seek(0)
            sys.exit(f"failed: {' '.join(command)}\n{out.read()[-2000:]}{err.read()[-2000:]}")
    if machine is None or after is None:
        return Timing(seconds, cpu, children=children)
    capacity = seconds * (os.cpu_count() or 1) / 100
    busy, steal = after[0] - machine[0], after[1] - machine[1]
    # This script's own work between the two readings is a few milliseconds.
    return Timing(seconds, cpu, steal / capacity, max(0.0, busy - cpu) / capacity, children)


def _ratio(what: str, over: str, medians: dict[str, float], rounds: list[dict[str, float]]) -> str:
    # Each round runs the arms back to back: its own ratio does not see the machine's
    # drift between rounds, so their median is given beside the ratio of the medians.
    per_round = [r[what] / r[over] for r in rounds]
    return (
        f"{what} / {over}: {medians[what] / medians[over]:.3f} "
        f"(per round: median {statistics.median(per_round):.3f}, "
        f"{min(per_round):.3f}..{max(per_round):.3f}{_interval(per_round)})"
    )


def _interval(ratios: list[float]) -> str:
    """The per-round ratios' geometric mean with its 95% confidence interval (Student's t
    on the log ratios): a goal is met only where the whole interval is below it."""
    if len(ratios) < 3:
        return ""
    from scipy import stats

    logs = [math.log(r) for r in ratios]
    mean, spread = statistics.fmean(logs), statistics.stdev(logs) / math.sqrt(len(logs))
    half = stats.t.ppf(0.975, len(logs) - 1) * spread
    return (
        f"; geometric mean {math.exp(mean):.3f}, "
        f"95% CI {math.exp(mean - half):.3f}..{math.exp(mean + half):.3f}"
    )


def _pairs(arms: list[str]) -> list[tuple[str, str]]:
    """The ratios printed, of those whose two arms ran: the workbench over each script,
    what MLflow alone costs, the workbench without the probe and the probe's own cost."""
    pairs = [
        (WORKBENCH, HAND),
        (WORKBENCH, HAND_MLFLOW),
        (HAND_MLFLOW, HAND),
        (NO_PROBE, HAND),
        (WORKBENCH, NO_PROBE),
    ]
    return [(what, over) for what, over in pairs if what in arms and over in arms]


def _summary(name: str, rounds: list[dict[str, float]], arms: list[str]) -> None:
    medians = {arm: statistics.median(r[arm] for r in rounds) for arm in arms}
    print(f"{name}:")
    for arm in arms:
        values = [r[arm] for r in rounds]
        print(f"  {arm:<22} median {medians[arm]:5.1f} s ({min(values):.1f}..{max(values):.1f})")
    for what, over in _pairs(arms):
        print("  " + _ratio(what, over, medians, rounds))


def _children_summary(rounds: list[dict[str, Timing]], arms: list[str]) -> None:
    """The workbench arms' CPU time split: their child processes (the tracking process,
    which imports MLflow and writes the study), and their own process over the plain
    script's own process (training, the probe, the rest of the workbench)."""
    if any(t.children is None for r in rounds for t in r.values()):
        return
    print("CPU time, split by process:")
    own = [{a: t.own_cpu for a, t in r.items()} for r in rounds]
    medians = {a: statistics.median(o[a] for o in own) for a in arms}
    for arm in (WORKBENCH, NO_PROBE):
        if arm not in arms:
            continue
        values = [r[arm].children for r in rounds]
        print(
            f"  {arm}: its child processes median {statistics.median(values):.1f} s "
            f"({min(values):.1f}..{max(values):.1f}), its own process "
            f"median {medians[arm]:.1f} s"
        )
        print("  own processes, " + _ratio(arm, HAND, medians, own))


def _quiet_summary(rounds: list[dict[str, Timing]], arms: list[str], limit: float) -> None:
    print(f"each ratio over the rounds where both its arms were quiet (at most {limit:g}%):")
    for what, over in _pairs(arms):
        calm = [r for r in rounds if r[what].quiet(limit) and r[over].quiet(limit)]
        if not calm:
            print(f"  {what} / {over}: no such round")
            continue
        for name, value in (("wall-clock", "wall"), ("CPU time", "cpu")):
            times = [{a: getattr(r[a], value) for a in (what, over)} for r in calm]
            medians = {a: statistics.median(t[a] for t in times) for a in (what, over)}
            ratio = _ratio(what, over, medians, times)
            print(f"  {name}, {len(calm)} of {len(rounds)} rounds: {ratio}")


def _positive(text: str) -> int:
    """An integer of at least 1, for argparse."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1, received {text!r}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example (about 2.5 minutes a round on 2 CPU cores):\n"
        "    python scripts/bench_overhead.py --two-arms --rounds 40\n"
        "a quick look:\n"
        "    python scripts/bench_overhead.py --rounds 3 --n-train 200 --epochs 1 --length 20",
    )
    parser.add_argument(
        "--rounds", type=_positive, default=3, help="rounds, each arm once a round (default 3)"
    )
    parser.add_argument(
        "--n-train",
        type=_positive,
        default=4000,
        help="training sequences of the adding problem (default 4000)",
    )
    parser.add_argument(
        "--length", type=_positive, default=100, help="sequence length T (default 100)"
    )
    parser.add_argument(
        "--epochs", type=_positive, default=4, help="epochs each model trains (default 4)"
    )
    parser.add_argument(
        "--without-probe",
        action="store_true",
        help="a fourth arm: the workbench with --no-gradient-probe (the probe's own cost)",
    )
    parser.add_argument(
        "--two-arms",
        action="store_true",
        help="only the hand-written script and the workbench (shorter rounds, each pair "
        "back to back)",
    )
    parser.add_argument(
        "--quiet",
        type=float,
        default=2.0,
        help="an arm is quiet when steal and other processes stay at most this percent "
        "of its CPU capacity (default 2); each ratio is read again over its quiet rounds",
    )
    args = parser.parse_args()
    arms = [HAND, HAND_MLFLOW, WORKBENCH, *([NO_PROBE] if args.without_probe else [])]
    if args.two_arms:
        if args.without_probe:
            parser.error("--two-arms and --without-probe do not go together")
        arms = [HAND, WORKBENCH]

    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    with tempfile.TemporaryDirectory(prefix="workbench-overhead-") as scratch:
        folder = Path(scratch)
        hand = folder / "hand_written.py"
        hand.write_text(
            HAND_WRITTEN.format(length=args.length, n_train=args.n_train, epochs=args.epochs)
        )
        tracked = folder / "hand_written_mlflow.py"
        tracked.write_text(
            HAND_WRITTEN_MLFLOW.format(length=args.length, n_train=args.n_train, epochs=args.epochs)
        )
        space = folder / "space.yaml"
        space.write_text(textwrap.dedent(SPACE.format(epochs=args.epochs)))
        store = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
        from workbench.tracking import client

        client(store).search_experiments()  # the store exists before round 1

        def workbench(round_number: int, name: str = "overhead") -> list[str]:
            return [
                sys.executable, "-m", "workbench.cli", "search",
                "--task", "adding",
                "--task-option", f"length={args.length}",
                "--task-option", f"n_train={args.n_train}",
                "--space", str(space), "--tuner", "grid", "--max-trials", "4",
                "--folds", "1", "--tracking-uri", store,
                "--state-dir", str(folder / "state"),
                "--experiment", f"{name}-{round_number}",
            ]  # fmt: skip

        commands = {
            HAND: lambda r: [sys.executable, str(hand)],
            HAND_MLFLOW: lambda r: [sys.executable, str(tracked), store, f"by-hand-{r}"],
            WORKBENCH: workbench,
            NO_PROBE: lambda r: [*workbench(r, "no-probe"), "--no-gradient-probe"],
        }
        rounds: list[dict[str, Timing]] = []
        for r in range(args.rounds):
            rounds.append({})
            for arm in arms[r % len(arms) :] + arms[: r % len(arms)]:
                rounds[-1][arm] = _timed(commands[arm](r), env, folder)
            print(
                f"round {r + 1}: "
                + ", ".join(
                    f"{arm} {t.wall:.1f} s (CPU {t.cpu:.1f} s{t.in_children()}{t.disturbance()}"
                    f"{'' if t.quiet(args.quiet) else ', not quiet'})"
                    for arm, t in ((arm, rounds[-1][arm]) for arm in arms)
                ),
                flush=True,
            )
    _summary("wall-clock", [{a: t.wall for a, t in r.items()} for r in rounds], arms)
    _summary("CPU time", [{a: t.cpu for a, t in r.items()} for r in rounds], arms)
    _children_summary(rounds, arms)
    _quiet_summary(rounds, arms, args.quiet)


if __name__ == "__main__":
    main()
