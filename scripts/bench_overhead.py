#!/usr/bin/env python3
"""What the workbench costs over a hand-written Keras loop, measured side by side.

Both are whole processes (imports, data, four models built, fitted with validation and
evaluated on test), run alternately for several rounds on the same machine:

- hand-written: plain Keras, LSTM and GRU x 32 and 64 units, one layer, Adam 3e-3 with
  norm clipping 1.0, batch 32, 4 epochs, on the adding problem (T=100, 4,000 sequences);
- workbench: ``workbench search --tuner grid`` over exactly those 4 configurations, every
  trial recorded in MLflow (a store created before the first round: a new experiment a
  round, as a user's next study would be).

Prints every round, the medians, their spread and the ratio workbench / hand-written, of
the wall-clock time and of the CPU time (user + system, the process and its threads): on a
shared machine the CPU time moves less with what else runs.

    python scripts/bench_overhead.py [--rounds 3] [--n-train 4000] [--epochs 4]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
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


def _timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one whole process."""
    cpu, start = _cpu_seconds(), time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds, cpu


def _summary(name: str, hands: list[float], benches: list[float]) -> None:
    hand_median, bench_median = statistics.median(hands), statistics.median(benches)
    ratios = [b / h for b, h in zip(benches, hands, strict=True)]
    print(
        f"{name}: hand-written median {hand_median:.1f} s ({min(hands):.1f}..{max(hands):.1f}), "
        f"workbench {bench_median:.1f} s ({min(benches):.1f}..{max(benches):.1f}); "
        f"ratio {bench_median / hand_median:.3f} (medians), per round "
        f"{min(ratios):.3f}..{max(ratios):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()

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
        space = folder / "space.yaml"
        space.write_text(textwrap.dedent(SPACE.format(epochs=args.epochs)))
        store = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
        from mlflow import MlflowClient

        MlflowClient(store).search_experiments()  # the store exists before round 1

        def workbench(round_number: int) -> list[str]:
            return [
                sys.executable, "-m", "workbench.cli", "search",
                "--task", "adding",
                "--task-option", f"length={args.length}",
                "--task-option", f"n_train={args.n_train}",
                "--space", str(space), "--tuner", "grid", "--max-trials", "4",
                "--folds", "1", "--tracking-uri", store,
                "--state-dir", str(folder / "state"),
                "--experiment", f"overhead-{round_number}",
            ]  # fmt: skip

        hands, benches, hand_cpu, bench_cpu = [], [], [], []
        for r in range(args.rounds):
            wall, cpu = _timed([sys.executable, str(hand)], env, folder)
            hands.append(wall)
            hand_cpu.append(cpu)
            wall, cpu = _timed(workbench(r), env, folder)
            benches.append(wall)
            bench_cpu.append(cpu)
            print(
                f"round {r + 1}: hand-written {hands[-1]:.1f} s (CPU {hand_cpu[-1]:.1f} s), "
                f"workbench {benches[-1]:.1f} s (CPU {bench_cpu[-1]:.1f} s), "
                f"ratio {benches[-1] / hands[-1]:.3f} (CPU {bench_cpu[-1] / hand_cpu[-1]:.3f})",
                flush=True,
            )
    _summary("wall-clock", hands, benches)
    _summary("CPU time  ", hand_cpu, bench_cpu)


if __name__ == "__main__":
    main()
