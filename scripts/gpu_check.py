#!/usr/bin/env python3
"""On a GPU: do LSTM and GRU with masks run on cuDNN through the workbench, and what do
mixed precision and cuDNN buy?

    python scripts/gpu_check.py [--samples 4096] [--steps 100]

1. A 2-trial search (LSTM, GRU) on japanese_vowels (padded, masked series) through the
   workbench; prints each trial's ``cudnn_eligible`` (the layer settings) and
   ``cudnn_ran`` (the op names of its traced training step) tags.
2. The workbench's LSTM and GRU models on right-padded masked sequences, timed per epoch
   in float32 and mixed_float16, each with the cuDNN kernel allowed and with
   ``use_cudnn=False``, and whether cuDNN's kernel ran; one table.
3. The same models in float32 with ``--steps-per-execution`` 1 and 16, timed per epoch.
4. Python's work between two training steps: Keras' callback dispatch alone and with the
   callbacks a workbench trial adds (its meter, probe and best-epoch keeper, early
   stopping, KerasTuner's own), in microseconds per batch, against part 3's LSTM step.

Without a GPU it prints "no GPU: skipped" and exits 0; where the host has NVIDIA GPUs
(a driver, nvidia-smi) that TensorFlow cannot see, it says why and exits 1. Meant to take
under two minutes on one GPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _through_the_workbench(folder: Path) -> list[str]:
    from mlflow import MlflowClient

    from workbench.search import make_search_config, run_search
    from workbench.spaces import parse_space
    from workbench.tasks import load_task

    store = f"sqlite:///{folder / 'mlflow.db'}"
    space = parse_space({"name": "gpu_check", "dimensions": {"cell": ["lstm", "gru"], "epochs": 2}})
    config = make_search_config(
        task=load_task("japanese_vowels"),
        space=space,
        tuner="grid",
        max_trials=2,
        folds=1,
        tracking_uri=store,
        experiment="gpu-check",
        state_root=folder / "state",
    )
    result = run_search(config)
    client = MlflowClient(store)
    lines = []
    for trial in result.trials:
        tags = client.get_run(trial.run_id).data.tags if trial.run_id else {}
        lines.append(
            f"  {trial.values['cell']:<5} eligible={tags.get('cudnn_eligible')} "
            f"ran={tags.get('cudnn_ran')} device={tags.get('device')} "
            f"epoch {trial.metrics.get('epoch_seconds', float('nan')):.2f} s"
        )
    return lines


def _masked_data(samples: int, steps: int):  # noqa: ANN202 - arrays and their signature
    import numpy as np

    from workbench.models import ModelSignature

    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, steps, 8)).astype("float32")
    lengths = rng.integers(steps // 2, steps + 1, size=samples)
    x[np.arange(steps)[None, :] >= lengths[:, None]] = 0.0  # right padding, masked
    y = x.sum(axis=(1, 2)).astype("float32")[:, None] / steps
    signature = ModelSignature(
        timesteps=steps, features=8, problem="regression", n_outputs=1, masked=True
    )
    return x, y, signature


def _epoch_seconds(model, x, y) -> float:  # noqa: ANN001 - a keras.Model and arrays
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)  # traces
    start = time.perf_counter()
    model.fit(x, y, batch_size=128, epochs=2, verbose=0)
    return (time.perf_counter() - start) / 2


def _timed_variants(samples: int, steps: int) -> list[tuple[str, str, str, str, float]]:
    import keras

    from workbench.models import ModelConfig, build_model
    from workbench.search.backend import cudnn_kernels_ran

    x, y, signature = _masked_data(samples, steps)
    rows = []
    for cell in ("lstm", "gru"):
        for policy in ("float32", "mixed_float16"):
            for kernel in ("cudnn allowed", "use_cudnn=False"):
                keras.mixed_precision.set_global_policy(policy)
                config = ModelConfig.from_values(
                    {"cell": cell, "units": 128, "learning_rate": 1e-3, "batch_size": 128}
                )
                model = build_model(config, signature)
                if kernel == "use_cudnn=False":
                    model = _without_cudnn(model)
                ran = cudnn_kernels_ran(model, x[:2])
                per_epoch = _epoch_seconds(model, x, y)
                rows.append((cell, policy, kernel, str(ran).lower(), per_epoch))
    keras.mixed_precision.set_global_policy("float32")
    return rows


def _timed_steps_per_execution(samples: int, steps: int) -> list[tuple[str, int, float]]:
    from workbench.models import ModelConfig, build_model

    x, y, signature = _masked_data(samples, steps)
    rows = []
    for cell in ("lstm", "gru"):
        for per_call in (1, 16):
            config = ModelConfig.from_values(
                {"cell": cell, "units": 128, "learning_rate": 1e-3, "batch_size": 128}
            )
            model = build_model(config, signature, steps_per_execution=per_call)
            rows.append((cell, per_call, _epoch_seconds(model, x, y)))
    return rows


def _callback_microseconds(batches: int = 20_000) -> tuple[float, float]:
    """Keras' per-batch callback dispatch, alone and with a workbench trial's callbacks
    (those of ``Search._run_trial`` and the hypermodel's early stopping): microseconds
    per batch, best of three."""
    import keras
    import numpy as np
    import tensorflow as tf
    from keras_tuner.src.engine.tuner_utils import TunerCallback

    from workbench.search.meters import BestEpoch, GradientProbe, TrialMeter

    model = keras.Sequential([keras.Input((8, 2)), keras.layers.LSTM(4), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mse"])

    class Tuner:  # KerasTuner's per-batch hooks do nothing by default
        def on_batch_begin(self, *args, **kwargs) -> None: ...  # noqa: ANN002, ANN003

        def on_batch_end(self, *args, **kwargs) -> None: ...  # noqa: ANN002, ANN003

    probe = GradientProbe(np.zeros((4, 8, 2), "float32"), np.zeros((4, 1), "float32"))
    workbench = [
        probe,
        TrialMeter(lambda epoch, metrics: None, ("loss", "val_loss"), probe),
        BestEpoch("val_loss", "min"),
        keras.callbacks.EarlyStopping(patience=3),
        TunerCallback(Tuner(), None),
    ]
    logs = {"loss": tf.constant(0.5), "mse": tf.constant(0.5)}  # as a step returns them

    def per_batch(callbacks: list) -> float:
        best = float("inf")
        for _ in range(3):
            dispatch = keras.callbacks.CallbackList(callbacks, add_history=True, model=model)
            start = time.perf_counter()
            for batch in range(batches):
                dispatch.on_train_batch_begin(batch)
                dispatch.on_train_batch_end(batch, logs)
            best = min(best, (time.perf_counter() - start) / batches * 1e6)
        return best

    return per_batch([]), per_batch(workbench)


def _without_cudnn(model):  # noqa: ANN001, ANN202 - a keras.Model in, one out
    import keras

    def clone(layer):  # noqa: ANN001, ANN202
        config = layer.get_config()
        if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
            config["use_cudnn"] = False
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    # As the workbench compiles (no XLA, the same metrics): only the kernel differs.
    copy.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mse"], jit_compile=False
    )
    return copy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument(
        "--run-on-cpu", action="store_true", help="Run anyway without a GPU (to check the script)."
    )
    args = parser.parse_args()

    from workbench.search.backend import load_tensorflow

    tf = load_tensorflow()
    tf.get_logger().setLevel("ERROR")  # each timed model traces its own functions, on purpose
    gpus = tf.config.list_logical_devices("GPU")
    from workbench.search.chief import gpu_indices

    driver = shutil.which("nvidia-smi") or Path("/proc/driver/nvidia").exists()
    if not gpus and driver and gpu_indices() and not args.run_on_cpu:
        # The host has NVIDIA GPUs that TensorFlow cannot use: not a pass.
        build = tf.sysconfig.get_build_info()
        needs = (
            f"it was built for CUDA {build.get('cuda_version')} and cuDNN "
            f"{build.get('cudnn_version')}; install them with the gpu extra "
            "(pip install -e '.[gpu]': tensorflow[and-cuda]), or check the driver"
            if build.get("is_cuda_build")
            else "this TensorFlow is a CPU-only build; install tensorflow[and-cuda]"
        )
        print(
            f"This host's GPU(s) {', '.join(gpu_indices())} (CUDA_VISIBLE_DEVICES, else "
            f"nvidia-smi) are not visible to TensorFlow {tf.__version__}: {needs}.",
            file=sys.stderr,
        )
        return 1
    if not gpus and not args.run_on_cpu:
        print("no GPU: skipped")
        return 0
    # load_tensorflow() set memory growth before the GPUs were initialized (setting it now,
    # after list_logical_devices, would raise RuntimeError).
    growth = [
        tf.config.experimental.get_memory_growth(d) for d in tf.config.list_physical_devices("GPU")
    ]
    print(
        f"GPU: {gpus[0].name if gpus else 'none (CPU run)'}; TensorFlow {tf.__version__}; "
        f"memory growth: {all(growth) if growth else 'n/a'}"
    )
    with tempfile.TemporaryDirectory(prefix="workbench-gpu-check-") as scratch:
        print("1. Through the workbench (japanese_vowels, masked):")
        for line in _through_the_workbench(Path(scratch)):
            print(line)
    rows = _timed_variants(args.samples, args.steps)
    print(f"2. {args.samples} masked sequences of {args.steps} steps, 128 units, batch 128:")
    print(f"  {'cell':<5} {'precision':<14} {'kernel':<16} {'cuDNN ran':<9} {'s/epoch':>8}")
    base = {(cell, policy): s for cell, policy, kernel, _, s in rows if kernel != "cudnn allowed"}
    for cell, policy, kernel, ran, seconds in rows:
        slower = base.get((cell, policy))
        gain = f"  {slower / seconds:.2f}x vs use_cudnn=False" if kernel == "cudnn allowed" else ""
        print(f"  {cell:<5} {policy:<14} {kernel:<16} {ran:<9} {seconds:>8.3f}{gain}")
    print("3. The same in float32, by --steps-per-execution:")
    one = {}
    for cell, per_call, seconds in _timed_steps_per_execution(args.samples, args.steps):
        one.setdefault(cell, seconds)
        gain = f"  {one[cell] / seconds:.2f}x vs 1" if per_call > 1 else ""
        print(f"  {cell:<5} steps per execution {per_call:<3} {seconds:>8.3f} s/epoch{gain}")
    keras_alone, with_workbench = _callback_microseconds()
    step_ms = one["lstm"] / -(-args.samples // 128) * 1e3  # batch 128
    added = with_workbench - keras_alone
    print(
        f"4. Per batch, callbacks: Keras alone {keras_alone:.1f} us, with a workbench trial's "
        f"{with_workbench:.1f} us ({added:+.1f} us, {added / (step_ms * 1e3):.2%} of "
        f"part 3's LSTM step of {step_ms:.2f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
