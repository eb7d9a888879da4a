"""The gradient probe's cost: the same model trained with and without it, side by side.

Each round builds one model configuration twice from the same seed and trains it once
without and once with :class:`workbench.meters.GradientProbe` (alternating which goes
first, so a busy machine hurts both alike). Prints, per setting, the fit times, the
time the probe measured itself (its tf.function tracing included) and the probe's share
of the training time:

    python scripts/bench_grad_probe.py                  # a realistic trial and a short one
    python scripts/bench_grad_probe.py --rounds 3 --cell gru --units 64 --length 200

The "realistic" setting is the adding problem at 100 steps, 2,000 training sequences,
an LSTM of 64 units, batch 32, 5 epochs (63 batches an epoch); the "short" one is the
size of the test suite's trials, where tracing the probe once is most of its cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.datasets import TaskData

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@dataclass(frozen=True)
class Setting:
    """One trial shape to measure."""

    name: str
    length: int
    n_train: int
    cell: str
    units: int
    epochs: int
    batch_size: int = 32


def _fit(setting: Setting, data: TaskData, probe: bool, seed: int) -> tuple[float, float]:
    """Train once; return (fit seconds, seconds the probe spent)."""
    import keras

    from workbench.meters import GradientProbe
    from workbench.models import ModelConfig, ModelSignature, build_model

    keras.utils.set_random_seed(seed)
    config = ModelConfig(cell=setting.cell, units=setting.units, clipping="norm", clip_threshold=1)
    model = build_model(config, ModelSignature.from_task(data))
    callbacks = [GradientProbe(data.x_train[:32], data.y_train[:32])] if probe else []
    start = time.perf_counter()
    model.fit(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        epochs=setting.epochs,
        batch_size=setting.batch_size,
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    keras.backend.clear_session()
    return seconds, callbacks[0].seconds if probe else 0.0


def measure(setting: Setting, rounds: int) -> None:
    """Run ``rounds`` pairs of fits and print the comparison."""
    from workbench.datasets import load_task

    task = load_task("adding").with_options(
        length=setting.length, n_train=setting.n_train, n_val=setting.n_train // 4, n_test=8
    )
    data = task.load()
    plain, probed, probe_seconds = [], [], []
    for r in range(rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        for with_probe in order:
            seconds, spent = _fit(setting, data, with_probe, seed=r)
            (probed if with_probe else plain).append(seconds)
            if with_probe:
                probe_seconds.append(spent)
    steps = -(-setting.n_train // setting.batch_size)
    median = statistics.median
    share = [p / f for p, f in zip(probe_seconds, probed, strict=True)]
    print(
        f"{setting.name}: adding length {setting.length}, {setting.n_train} train sequences, "
        f"{setting.cell} {setting.units} units, {setting.epochs} epochs x {steps} batches, "
        f"{rounds} round(s)"
    )
    print(f"  fit without probe   median {median(plain):7.2f} s  ({_all(plain)})")
    print(f"  fit with probe      median {median(probed):7.2f} s  ({_all(probed)})")
    print(f"  probe's own time    median {median(probe_seconds):7.3f} s  ({_all(probe_seconds)})")
    print(
        f"  probe share of the training time: {100 * median(share):.2f}% (probe's own time / "
        f"fit with probe); wall difference {100 * (median(probed) / median(plain) - 1):+.2f}%"
    )


def _all(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cell", default="lstm", choices=["simple_rnn", "lstm", "gru"])
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--skip-short", action="store_true", help="Only the realistic setting.")
    args = parser.parse_args()

    from workbench.backend import load_tensorflow

    tf = load_tensorflow()
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    print(f"TensorFlow {tf.__version__} on {device}")
    settings = [Setting("realistic", args.length, args.n_train, args.cell, args.units, args.epochs)]
    if not args.skip_short:
        settings.append(Setting("short", 10, 48, args.cell, 4, 2, batch_size=16))
    for setting in settings:
        measure(setting, args.rounds)


if __name__ == "__main__":
    main()
