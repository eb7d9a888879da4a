"""Tasks: what to learn. A task is a small YAML file naming a loader and its options.

The built-in tasks live in ``datasets/`` in the same form as a user's own::

    name: adding
    description: The adding problem ...
    loader: adding
    options: {length: 50, n_train: 1000, n_val: 250, n_test: 250, seed: 0}

:func:`load_task` validates the file into a :class:`TaskSpec`; :meth:`TaskSpec.load`
runs the loader and returns the arrays as a :class:`TaskData`. Adding a task is one
YAML file; a new data format is one more loader function registered in :data:`LOADERS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError
from workbench.resources import resolve_named_file, shipped_names
from workbench.yamlio import read_yaml_mapping

_TOP_LEVEL_KEYS = ("name", "description", "loader", "options")


@dataclass(frozen=True)
class Baseline:
    """A trivial predictor's score, so a result can be read against it."""

    value: float
    description: str


@dataclass(frozen=True)
class TaskData:
    """A task's arrays and what the model head, loss and objective need to know.

    ``x_*`` arrays are ``(samples, timesteps, features)`` float32; variable-length
    series are right-padded with ``mask_value`` and ``masked`` is True. ``y_*`` hold
    class indices (classification) or float targets (regression); with
    ``sequence_output`` there is one target per time step.
    """

    name: str
    problem: str  # "classification" or "regression"
    n_outputs: int  # classes, or regression targets per step
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    sequence_output: bool = False
    masked: bool = False
    mask_value: float = 0.0
    baseline: Baseline | None = None
    class_names: tuple[str, ...] | None = None
    source: str = ""

    @property
    def metric(self) -> str:
        """The task metric's Keras name: ``accuracy`` or ``mse``."""
        return "accuracy" if self.problem == "classification" else "mse"

    @property
    def objective(self) -> tuple[str, str]:
        """The search objective and its direction."""
        if self.problem == "classification":
            return "val_accuracy", "max"
        return "val_loss", "min"

    @property
    def input_shape(self) -> tuple[int | None, int]:
        timesteps = None if self.masked else int(self.x_train.shape[1])
        return timesteps, int(self.x_train.shape[2])

    @property
    def has_test(self) -> bool:
        return self.x_test is not None and self.y_test is not None

    def digest(self) -> str:
        """A short content hash of all splits, to tell datasets apart in MLflow."""
        sha = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            if array is not None:
                sha.update(np.ascontiguousarray(array).tobytes())
        return sha.hexdigest()[:16]

    def sizes(self) -> str:
        test = f"/{len(self.x_test)}" if self.has_test else ""
        return f"{len(self.x_train)}/{len(self.x_val)}{test}"


@dataclass(frozen=True)
class TaskSpec:
    """A validated task definition. Build it with :func:`load_task`."""

    name: str
    description: str
    loader: str
    options: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def with_options(self, **overrides: Any) -> TaskSpec:
        """Return a copy with some loader options replaced (e.g. smaller sample counts)."""
        return TaskSpec(
            self.name, self.description, self.loader, {**self.options, **overrides}, self.source
        )

    def load(self) -> TaskData:
        """Run the loader and return the task's arrays."""
        return LOADERS[self.loader](self)


def list_tasks() -> list[TaskSpec]:
    """The built-in tasks, sorted by name."""
    return [load_task(name) for name in shipped_names("datasets")]


def load_task(name_or_path: str | Path) -> TaskSpec:
    """Load a built-in task by name (``adding``) or a task file (``my_task.yaml``).

    Raises:
        WorkbenchError: for an unknown name, a missing file, unknown keys or loaders.
    """
    path = resolve_named_file(str(name_or_path), "datasets", "task")
    data = read_yaml_mapping(path, "task")
    unknown = sorted(set(map(str, data)) - set(_TOP_LEVEL_KEYS))
    if unknown:
        raise WorkbenchError(
            f"{path}: unknown key {unknown[0]!r}. Expected keys: {', '.join(_TOP_LEVEL_KEYS)}"
        )
    loader = data.get("loader")
    if loader not in LOADERS:
        raise WorkbenchError(
            f"{path}: loader: expected one of {', '.join(sorted(LOADERS))}. Received: {loader!r}"
        )
    options = data.get("options") or {}
    if not isinstance(options, Mapping):
        raise WorkbenchError(f"{path}: options: expected a mapping. Received: {options!r}")
    name = data.get("name", path.stem)
    description = str(data.get("description", "")).strip()
    return TaskSpec(str(name), description, loader, dict(options), str(path))


# --- option checking shared by the loaders ----------------------------------------------------


def _options(spec: TaskSpec, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a task's options over a loader's defaults, rejecting unknown and mistyped keys."""
    unknown = sorted(set(spec.options) - set(defaults))
    if unknown:
        raise WorkbenchError(
            f"{spec.source}: options.{unknown[0]}: unknown option for loader {spec.loader!r}. "
            f"Expected: {', '.join(defaults)}"
        )
    merged = {**defaults, **spec.options}
    for key, default in defaults.items():
        value = merged[key]
        wants_int = isinstance(default, int) and not isinstance(default, bool)
        if wants_int and (isinstance(value, bool) or not isinstance(value, int)):
            raise WorkbenchError(
                f"{spec.source}: options.{key}: expected an integer. Received: {value!r}"
            )
    return merged


def _positive(spec: TaskSpec, opts: Mapping[str, Any], *keys: str) -> None:
    for key in keys:
        if opts[key] < 1:
            raise WorkbenchError(
                f"{spec.source}: options.{key}: expected a positive integer. "
                f"Received: {opts[key]!r}"
            )


# --- loaders ----------------------------------------------------------------------------------


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
    rng = np.random.default_rng(opts["seed"])
    splits = []
    for n in (opts["n_train"], opts["n_val"], opts["n_test"]):
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
    baseline_mse = float(np.mean((y_test - 1.0) ** 2))
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
        ),
        source=spec.source,
    )


#: Loader functions by the name a task file gives in ``loader:``.
LOADERS: dict[str, Callable[[TaskSpec], TaskData]] = {
    "adding": _load_adding,
}
