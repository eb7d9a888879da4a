"""The gradient probe's cost: the same model trained with and without it, side by side.

Each round builds one model configuration twice from the same seed and trains it once
without and once with :class:`workbench.search.meters.GradientProbe` (alternating which goes
first, so a busy machine hurts both alike). Prints, per setting, the fit times, the time
the probe measured itself, split into its first call of each fit (which traces the
``tf.function``) and the later calls, the probe's share of the training time, and the
wall and process CPU time of the fits with the probe against those without:

    python scripts/bench_grad_probe.py                 # the three settings below
    python scripts/bench_grad_probe.py --rounds 3 --only study
    python scripts/bench_grad_probe.py --repeats 3   # a trial of `search --repeats 3`

Settings (all on the adding problem, batch 32, norm clipping, 5 epochs unless noted):

- ``study``: 100 steps, 5,000 training sequences, LSTM of 64 units (157 batches an
  epoch): a trial of a real comparison study.
- ``default``: the task as ``workbench search --task adding`` ships it (50 steps, 1,000
  training sequences), LSTM of 32 units as in the ``gru_vs_lstm`` space (32 batches).
- ``short``: the size of the test suite's trials (10 steps, 48 sequences, 4 units, 2
  epochs), where tracing the probe once is most of its cost.

The probe costs about one training step per epoch plus one trace per trial (the
repeats of a trial share it), so its share falls as epochs get longer and repeats more.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.tasks import TaskData

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@dataclass(frozen=True)
class Setting:
    """One trial shape to measure."""

    name: str
    length: int
    n_train: int
    units: int
    epochs: int = 5
    batch_size: int = 32
    cell: str = "lstm"


SETTINGS = {
    "study": Setting("study", length=100, n_train=5000, units=64),
    "default": Setting("default", length=50, n_train=1000, units=32),
    "short": Setting("short", length=10, n_train=48, units=4, epochs=2, batch_size=16),
}


@dataclass(frozen=True)
class Fit:
    """One training: its wall time and the probe's (0 without the probe)."""

    seconds: float
    cpu_seconds: float
    probe_seconds: float = 0.0
    trace_seconds: float = 0.0


def _fit(setting: Setting, data: TaskData, probe: bool, seed: int, repeats: int) -> Fit:
    """One trial: ``repeats`` trainings of the configuration, one probe for all of them."""
    import keras

    from workbench.models import ModelConfig, ModelSignature, build_model
    from workbench.search.meters import GradientProbe

    config = ModelConfig(
        cell=setting.cell, units=setting.units, clipping="norm", clip_threshold=1.0
    )
    probes = [GradientProbe(data.x_train[:32], data.y_train[:32])] if probe else []
    seconds = cpu = 0.0
    for repeat in range(repeats):
        keras.utils.set_random_seed(seed + 100003 * repeat)
        model = build_model(config, ModelSignature.from_task(data))
        start, cpu_start = time.perf_counter(), time.process_time()
        model.fit(
            data.x_train,
            data.y_train,
            validation_data=(data.x_val, data.y_val),
            epochs=setting.epochs,
            batch_size=setting.batch_size,
            callbacks=probes,
            verbose=0,
        )
        seconds += time.perf_counter() - start
        cpu += time.process_time() - cpu_start
    keras.backend.clear_session()
    if not probes:
        return Fit(seconds, cpu)
    return Fit(seconds, cpu, probes[0].seconds, probes[0].trace_seconds)


def measure(setting: Setting, rounds: int, repeats: int = 1) -> None:
    """Run ``rounds`` pairs of fits of ``setting`` and print the comparison."""
    from workbench.tasks import load_task

    task = load_task("adding").with_options(
        length=setting.length, n_train=setting.n_train, n_val=setting.n_train // 4, n_test=8
    )
    data = task.load()
    plain: list[Fit] = []
    probed: list[Fit] = []
    for r in range(rounds):
        for with_probe in (False, True) if r % 2 == 0 else (True, False):
            fit = _fit(setting, data, with_probe, seed=r, repeats=repeats)
            (probed if with_probe else plain).append(fit)

    median = statistics.median
    fit_plain = [f.seconds for f in plain]
    fit_probed = [f.seconds for f in probed]
    probe = [f.probe_seconds for f in probed]
    trace = [f.trace_seconds for f in probed]
    calls = setting.epochs * repeats - 1
    later = [(f.probe_seconds - f.trace_seconds) / max(1, calls) for f in probed]
    share = [f.probe_seconds / f.seconds for f in probed]
    batches = -(-setting.n_train // setting.batch_size)
    batch = median(fit_plain) / (repeats * setting.epochs * batches)  # validation included
    print(
        f"{setting.name}: adding length {setting.length}, {setting.n_train} train sequences, "
        f"{setting.cell} {setting.units} units, {setting.epochs} epochs x {batches} batches "
        f"of {setting.batch_size}, {repeats} repeat(s) a trial, {rounds} round(s)"
    )
    print(f"  fits without probe  median {median(fit_plain):7.2f} s  ({_all(fit_plain)})")
    print(f"  fits with probe     median {median(fit_probed):7.2f} s  ({_all(fit_probed)})")
    print(f"  probe's own time   median {median(probe):7.3f} s  ({_all(probe)})")
    print(
        f"    first call of the trial (traces) {median(trace):.3f} s; later calls "
        f"{1000 * median(later):.1f} ms each (one training batch: {1000 * batch:.1f} ms)"
    )
    wall = median(fit_probed) / median(fit_plain) - 1
    cpu = median(f.cpu_seconds for f in probed) / median(f.cpu_seconds for f in plain) - 1
    print(
        f"  probe share of the training time: {100 * median(share):.2f}% (probe's own time / "
        "fits with probe)"
    )
    print(
        f"  with vs without: wall time {100 * wall:+.1f}%, process CPU time {100 * cpu:+.1f}% "
        "(wall time is noisy on a shared machine; CPU time counts only this process's work)"
    )


def _all(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="pairs of fits per setting (default 2)"
    )
    parser.add_argument(
        "--only", choices=sorted(SETTINGS), help="run one setting only (default: all three)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="trainings per trial (default 1)")
    args = parser.parse_args()

    from workbench.search.backend import load_tensorflow

    tf = load_tensorflow()
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    print(f"TensorFlow {tf.__version__} on {device} ({os.cpu_count()} CPU cores visible)")
    for name in [args.only] if args.only else list(SETTINGS):
        measure(SETTINGS[name], args.rounds, args.repeats)


if __name__ == "__main__":
    main()
