"""Synthetic long-memory probes: the adding problem, copy memory, sequential digits."""

from __future__ import annotations

import numpy as np

from workbench.errors import WorkbenchError
from workbench.tasks.options import _fraction, _options, _positive, _require
from workbench.tasks.spec import Baseline, TaskData, TaskSpec, register_loader
from workbench.tasks.splits import _majority_baseline, _stratified_split, _subset

# --- loaders ----------------------------------------------------------------------------------


def _parts(opts: dict) -> list[tuple[int, np.random.Generator]]:
    """The size and generator of each part (train, validation, test). One generator per
    part: the validation and test parts do not depend on ``n_train`` or ``n_val``, so
    studies that vary the training size are scored on the same sequences. The training
    part keeps the task seed's own generator."""
    seed = opts["seed"]
    return [
        (opts["n_train"], np.random.default_rng(seed)),
        (opts["n_val"], np.random.default_rng([seed, 1])),
        (opts["n_test"], np.random.default_rng([seed, 2])),
    ]


@register_loader("adding")
def _load_adding(spec: TaskSpec) -> TaskData:
    """The adding problem (Hochreiter & Schmidhuber 1997), as in Arjovsky et al. 2016.

    Channel 0 holds uniform random values, channel 1 marks exactly two of them: one in
    the first half of the sequence, one in the second. The target is their sum.
    """
    opts = _options(spec, {"length": 50, "n_train": 1000, "n_val": 250, "n_test": 250, "seed": 0})
    _positive(spec, opts, "n_train", "n_val", "n_test")
    length = opts["length"]
    if length < 2:
        raise WorkbenchError(
            f"{spec.source}: options.length: expected at least 2 steps. Received: {length!r}"
        )
    splits = []
    for n, rng in _parts(opts):
        values = rng.uniform(0.0, 1.0, size=(n, length))
        markers = np.zeros((n, length))
        half = length // 2
        first = rng.integers(0, half, size=n)
        second = rng.integers(half, length, size=n)
        rows = np.arange(n)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        x = np.stack([values, markers], axis=-1).astype("float32")
        y = (values[rows, first] + values[rows, second]).astype("float32").reshape(n, 1)
        splits.append((x, y))
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits
    squared = ((y_test - 1.0) ** 2).reshape(len(y_test), -1).mean(axis=1).astype("float64")
    baseline_mse = float(squared.mean())
    return TaskData(
        name=spec.name,
        problem="regression",
        n_outputs=1,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        baseline=Baseline(
            baseline_mse,
            f"always predict 1: test MSE {baseline_mse:.3f} "
            "(1/6 = 0.167 in expectation; Arjovsky et al. 2016)",
            squared,
        ),
        source=spec.source,
    )


@register_loader("copy_memory")
def _load_copy_memory(spec: TaskSpec) -> TaskData:
    """The copy task (Hochreiter & Schmidhuber 1997), as in Arjovsky et al. 2016.

    Inputs are one-hot over 10 symbols: 10 data symbols drawn from 0-7, ``length - 1``
    blanks (8), the delimiter (9) and 10 more blanks. The target is blank (8) at every
    step except the last 10, which repeat the data symbols. The model predicts one of
    9 classes at every step.
    """
    opts = _options(spec, {"length": 50, "n_train": 2000, "n_val": 250, "n_test": 250, "seed": 0})
    _positive(spec, opts, "n_train", "n_val", "n_test", "length")
    delay = opts["length"]
    steps = delay + 20
    splits = []
    for n, rng in _parts(opts):
        symbols = rng.integers(0, 8, size=(n, 10))
        tokens = np.full((n, steps), 8)
        tokens[:, :10] = symbols
        tokens[:, delay + 9] = 9
        target = np.full((n, steps), 8, dtype="int32")
        target[:, -10:] = symbols
        x = np.eye(10, dtype="float32")[tokens]
        splits.append((x, target))
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits
    entropy = 10 * np.log(8) / steps
    accuracy = (steps - 10 + 10 / 8) / steps
    return TaskData(
        name=spec.name,
        problem="classification",
        n_outputs=9,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        sequence_output=True,
        # In the objective's own measure (accuracy): the answer reads test accuracy against it.
        baseline=Baseline(
            float(accuracy),
            f"memoryless (blanks, then a uniform guess): per-step accuracy {accuracy:.3f}, "
            f"cross-entropy 10 ln 8 / (T + 20) = {entropy:.4f} (Arjovsky et al. 2016)",
            np.full(len(y_test), float(accuracy)),  # the guess's expected accuracy per sample
        ),
        class_names=tuple(str(i) for i in range(8)) + ("blank",),
        source=spec.source,
    )


@register_loader("sequential_digits")
def _load_sequential_digits(spec: TaskSpec) -> TaskData:
    """scikit-learn's 8x8 handwritten digits read row by row: 8 steps of 8 pixels in [0, 1]."""
    opts = _options(spec, {"val_fraction": 0.15, "test_fraction": 0.2, "limit": 0, "seed": 0})
    _fraction(spec, opts, "val_fraction", "test_fraction")
    sklearn_datasets = _require(spec, "sklearn.datasets")
    digits = sklearn_datasets.load_digits()
    x = (digits.images / 16.0).astype("float32")
    y = digits.target.astype("int32")
    rng = np.random.default_rng(opts["seed"])
    keep = _subset(y, opts["limit"], rng, per_class=3)
    x, y = x[keep], y[keep]
    where = f"{spec.source}"
    rest, test = _stratified_split(y, opts["test_fraction"], rng, where)
    train, val = _stratified_split(y[rest], opts["val_fraction"], rng, where)
    train, val = rest[train], rest[val]
    return TaskData(
        name=spec.name,
        problem="classification",
        n_outputs=10,
        x_train=x[train],
        y_train=y[train],
        x_val=x[val],
        y_val=y[val],
        x_test=x[test],
        y_test=y[test],
        baseline=_majority_baseline(y[train], y[test], "test"),
        class_names=tuple(str(i) for i in range(10)),
        source="scikit-learn load_digits (UCI optdigits test set)",
    )
