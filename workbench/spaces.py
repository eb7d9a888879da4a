"""Search spaces: what to try, read from YAML and validated once into frozen objects.

A space file names the dimensions of the search. Each dimension is written as

- a single value (the dimension is fixed): ``depth: 2``
- a list of choices: ``cell: [lstm, gru]``
- a range, for numeric dimensions: ``learning_rate: {min: 1e-4, max: 1e-2, sampling: log}``

Example (``search_spaces/small.yaml``)::

    name: small
    description: Tiny space for trying the workbench out and for tests.
    dimensions:
      cell: [simple_rnn, lstm, gru]
      depth: [1, 2]
      units: [8, 16]
      learning_rate: {min: 1e-3, max: 1e-2, sampling: log}
      epochs: 2

Dimensions left out take the defaults in :data:`DEFAULTS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.resources import resolve_named_file, shipped_names
from workbench.yamlio import read_yaml_mapping

CELLS = ("simple_rnn", "lstm", "gru")
CLIPPINGS = ("none", "norm", "value")
READOUTS = ("last", "mean", "max")

#: The value a dimension takes when the space file leaves it out.
DEFAULTS: Mapping[str, Any] = {
    "cell": ("lstm", "gru"),
    "depth": 1,
    "bidirectional": False,
    "units": 32,
    "clipping": "none",
    "clip_threshold": 1.0,
    "learning_rate": 1e-3,
    "dropout": 0.0,
    "batch_size": 32,
    "epochs": 10,
    "readout": "last",
    #: Early stopping: epochs without a better objective before a training stops.
    "patience": 5,
}
DIMENSIONS = tuple(DEFAULTS)
_TOP_LEVEL_KEYS = ("name", "description", "dimensions")
_RANGE_KEYS = ("min", "max", "step", "sampling")


@dataclass(frozen=True)
class Choice:
    """A categorical dimension: one of ``values`` (a single value means fixed)."""

    values: tuple[Any, ...]

    @property
    def is_fixed(self) -> bool:
        return len(self.values) == 1


@dataclass(frozen=True)
class Range:
    """A numeric dimension sampled between ``low`` and ``high`` (inclusive)."""

    low: float
    high: float
    integer: bool
    step: float | None = None
    sampling: str = "linear"

    @property
    def is_fixed(self) -> bool:
        return self.low == self.high


Dimension = Choice | Range


def _count(dim: Dimension) -> int:
    """How many values a grid takes from ``dim`` (KerasTuner's count for a stepped range)."""
    if isinstance(dim, Choice):
        return len(dim.values)
    if dim.is_fixed:
        return 1
    step = 1 if dim.step is None else dim.step  # an integer linear range (see continuous)
    if dim.sampling == "log":
        return int(math.log(dim.high / dim.low, step) + 1e-8) + 1
    return int((dim.high - dim.low) // step + 1)


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space. Build it with :func:`load_space`."""

    name: str
    description: str
    source: str
    dimensions: tuple[tuple[str, Dimension], ...]

    def __getitem__(self, key: str) -> Dimension:
        for name, dim in self.dimensions:
            if name == key:
                return dim
        raise KeyError(key)

    @property
    def continuous(self) -> tuple[str, ...]:
        """The ranges ``--tuner grid`` cannot enumerate: without a step, but for integer
        ranges on a linear scale (KerasTuner steps those by 1); ``clip_threshold`` only
        where a clipping value uses it (KerasTuner declares it then only)."""
        clipped = any(v != "none" for v in getattr(self["clipping"], "values", ("norm",)))
        return tuple(
            name
            for name, dim in self.dimensions
            if isinstance(dim, Range)
            and not dim.is_fixed
            and dim.step is None
            and not (dim.integer and dim.sampling == "linear")
            and (name != "clip_threshold" or clipped)
        )

    @property
    def grid_size(self) -> int | None:
        """The configurations ``--tuner grid`` runs (as KerasTuner's grid enumerates them:
        ``clip_threshold`` only with clipping); None where a range has no step."""
        if self.continuous:
            return None
        size = 1
        for name, dim in self.dimensions:
            if name not in ("clipping", "clip_threshold"):
                size *= _count(dim)
        clipping = _count(self["clipping"])
        clipped = sum(1 for v in self["clipping"].values if v != "none")  # type: ignore[union-attr]
        return size * (clipping - clipped + clipped * _count(self["clip_threshold"]))

    @property
    def max_epochs(self) -> int:
        dim = self["epochs"]
        if isinstance(dim, Range):
            return int(dim.high)
        return int(max(dim.values))

    def with_fixed(self, **values: Any) -> SearchSpace:
        """Return a copy with some dimensions fixed, e.g. ``space.with_fixed(epochs=3)``."""
        dims = dict(self.dimensions)
        for key, value in values.items():
            if key not in dims:
                raise WorkbenchError(f"Unknown dimension {key!r}. Expected one of: {DIMENSIONS}")
            dims[key] = _parse_dimension(key, value, where=f"{self.source} (override {key})")
        return SearchSpace(self.name, self.description, self.source, tuple(dims.items()))

    def to_mapping(self) -> dict[str, Any]:
        """The space as :func:`parse_space` reads it (e.g. to send it to a worker)."""
        dims: dict[str, Any] = {}
        for name, dim in self.dimensions:
            if isinstance(dim, Choice):
                dims[name] = list(dim.values)
            else:
                spec: dict[str, Any] = {"min": dim.low, "max": dim.high, "sampling": dim.sampling}
                if dim.step is not None:
                    spec["step"] = dim.step
                dims[name] = spec
        return {"name": self.name, "description": self.description, "dimensions": dims}

    def describe(self) -> str:
        """One compact line per dimension, for listings and logs."""
        parts = []
        for name, dim in self.dimensions:
            if isinstance(dim, Choice):
                shown = dim.values[0] if dim.is_fixed else "|".join(map(str, dim.values))
            else:
                shown = f"{dim.low:g}..{dim.high:g}" + (" log" if dim.sampling == "log" else "")
            parts.append(f"{name}={shown}")
        return " ".join(parts)


def changed_dimensions(before: str, now: str) -> tuple[str, str]:
    """What two :meth:`SearchSpace.describe` lines differ in, each side as ``name=value``
    pairs (a space's whole line buries the one changed dimension)."""

    def pairs(line: str) -> dict[str, str]:
        found: dict[str, str] = {}
        name = ""
        for token in line.split():
            if "=" in token:
                name, value = token.split("=", 1)
                found[name] = value
            elif name:  # "units=16..128 log": the scale belongs to the range before it
                found[name] += f" {token}"
        return found

    old, new = pairs(before), pairs(now)
    names = [n for n in {**old, **new} if old.get(n) != new.get(n)]
    return (
        " ".join(f"{n}={old.get(n, '(none)')}" for n in names),
        " ".join(f"{n}={new.get(n, '(none)')}" for n in names),
    )


def list_spaces() -> list[SearchSpace]:
    """The shipped search spaces, sorted by name."""
    return [load_space(name) for name in shipped_names("search_spaces")]


def load_space(name_or_path: str | Path) -> SearchSpace:
    """Load a shipped space by name (``small``) or a space file (``my_space.yaml``).

    Raises:
        WorkbenchError: naming the file and key, for unknown keys, wrong types, empty
            choices and impossible ranges.
    """
    path = resolve_named_file(str(name_or_path), "search_spaces", "search space")
    return parse_space(read_yaml_mapping(path, "search space"), source=str(path))


def parse_space(data: Mapping[str, Any], source: str = "<memory>") -> SearchSpace:
    """Validate a mapping (as read from YAML) into a :class:`SearchSpace`."""
    unknown = sorted(set(map(str, data)) - set(_TOP_LEVEL_KEYS))
    if unknown:
        raise WorkbenchError(
            f"{source}: unknown key {unknown[0]!r}. Expected keys: {', '.join(_TOP_LEVEL_KEYS)}"
        )
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name.strip():
        raise WorkbenchError(f"{source}: name: expected a non-empty string. Received: {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise WorkbenchError(f"{source}: description: expected a string. Received: {description!r}")
    raw_dims = data.get("dimensions")
    if not isinstance(raw_dims, Mapping) or not raw_dims:
        raise WorkbenchError(
            f"{source}: dimensions: expected a mapping of dimension names to values. "
            f"Received: {raw_dims!r}"
        )
    unknown = sorted(set(map(str, raw_dims)) - set(DIMENSIONS))
    if unknown:
        raise WorkbenchError(
            f"{source}: dimensions.{unknown[0]}: unknown dimension. "
            f"Expected one of: {', '.join(DIMENSIONS)}"
        )
    dims = tuple(
        (key, _parse_dimension(key, raw_dims.get(key, DEFAULTS[key]), where=source))
        for key in DIMENSIONS
    )
    return SearchSpace(name=name, description=description.strip(), source=source, dimensions=dims)


# --- validation of one dimension -------------------------------------------------------------

_YAML_BOOL_HINT = (
    " (YAML 1.1 reads unquoted yes/no/on/off as booleans; quote the value, e.g. 'none')"
)


def _parse_dimension(key: str, raw: Any, where: str) -> Dimension:
    label = f"{where}: dimensions.{key}"
    if isinstance(raw, Mapping):
        return _parse_range(key, raw, label)
    values = tuple(raw) if isinstance(raw, (list, tuple)) else (raw,)
    if not values:
        raise WorkbenchError(f"{label}: expected at least one value. Received: []")
    checked = tuple(_check_value(key, value, label) for value in values)
    if len(set(checked)) != len(checked):
        raise WorkbenchError(f"{label}: choices must be distinct. Received: {list(values)}")
    return Choice(checked)


def _check_value(key: str, value: Any, label: str) -> Any:
    if key == "cell":
        if value not in CELLS:
            hint = _YAML_BOOL_HINT if isinstance(value, bool) else ""
            raise WorkbenchError(
                f"{label}: expected one of {', '.join(CELLS)}. Received: {value!r}{hint}"
            )
        return value
    if key == "clipping":
        if value not in CLIPPINGS:
            hint = _YAML_BOOL_HINT if isinstance(value, bool) else ""
            raise WorkbenchError(
                f"{label}: expected one of {', '.join(CLIPPINGS)}. Received: {value!r}{hint}"
            )
        return value
    if key == "readout":
        if value not in READOUTS:
            raise WorkbenchError(
                f"{label}: expected one of {', '.join(READOUTS)}. Received: {value!r}"
            )
        return value
    if key == "bidirectional":
        if not isinstance(value, bool):
            raise WorkbenchError(f"{label}: expected true or false. Received: {value!r}")
        return value
    if key in ("depth", "units", "batch_size", "epochs", "patience"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise WorkbenchError(f"{label}: expected a positive integer. Received: {value!r}")
        if key == "depth" and value > 8:
            raise WorkbenchError(f"{label}: expected at most 8 stacked layers. Received: {value}")
        return value
    # Floats: learning_rate, clip_threshold, dropout.
    number = _as_float(value)
    if number is None:
        raise WorkbenchError(f"{label}: expected a number. Received: {value!r}")
    if key == "dropout":
        if not 0.0 <= number < 1.0:
            raise WorkbenchError(f"{label}: expected 0 <= dropout < 1. Received: {value!r}")
    elif number <= 0.0:
        raise WorkbenchError(f"{label}: expected a positive number. Received: {value!r}")
    return number


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:  # Spaces built in code may still carry YAML 1.1 strings such as "1e-4".
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _parse_range(key: str, raw: Mapping[str, Any], label: str) -> Dimension:
    if key in ("cell", "clipping", "bidirectional", "readout"):
        raise WorkbenchError(
            f"{label}: a range ({{min, max}}) only fits numeric dimensions; "
            f"list the choices instead. Received: {dict(raw)!r}"
        )
    unknown = sorted(set(map(str, raw)) - set(_RANGE_KEYS))
    if unknown:
        raise WorkbenchError(
            f"{label}: unknown range key {unknown[0]!r}. Expected: {', '.join(_RANGE_KEYS)}"
        )
    if "min" not in raw or "max" not in raw:
        raise WorkbenchError(f"{label}: a range needs both min and max. Received: {dict(raw)!r}")
    low = _check_value(key, raw["min"], label + ".min")
    high = _check_value(key, raw["max"], label + ".max")
    if low > high:
        raise WorkbenchError(f"{label}: impossible range, min {low!r} is above max {high!r}")
    sampling = raw.get("sampling", "linear")
    if sampling not in ("linear", "log"):
        raise WorkbenchError(f"{label}.sampling: expected linear or log. Received: {sampling!r}")
    if sampling == "log" and low <= 0:
        raise WorkbenchError(f"{label}: log sampling needs min > 0. Received: {low!r}")
    step = raw.get("step")
    if step is not None:
        step_value = _as_float(step)
        if step_value is None or step_value <= 0:
            raise WorkbenchError(f"{label}.step: expected a positive number. Received: {step!r}")
        if isinstance(low, int) and not step_value.is_integer():
            raise WorkbenchError(
                f"{label}.step: expected a whole number for an integer range. Received: {step!r}"
            )
        if sampling == "log" and step_value <= 1:
            # KerasTuner reads a log range's step as a factor (min, min*step, ...).
            raise WorkbenchError(
                f"{label}.step: with log sampling the step is a factor, expected above 1. "
                f"Received: {step!r}"
            )
        step = int(step_value) if isinstance(low, int) else step_value
        return _stepped(Range(low, high, isinstance(low, int), step, sampling), label)
    return Range(low=low, high=high, integer=isinstance(low, int), step=step, sampling=sampling)


def _stepped(dim: Range, label: str) -> Dimension:
    """A range with a step, checked to reach its max. On a float range, the values as a
    choice: KerasTuner counts a float range's values by floor division, which drops the max
    to rounding (0 to 0.3 by 0.1 gave 0, 0.1, 0.2) and logs sums like 0.30000000000000004."""
    assert dim.step is not None
    if dim.sampling == "log":
        steps = math.log(dim.high / dim.low) / math.log(dim.step)
    else:
        steps = (dim.high - dim.low) / dim.step
    whole = round(steps)
    if abs(steps - whole) > 1e-9 * max(1.0, steps):
        below = _nth(dim, math.floor(steps + 1e-9))
        raise WorkbenchError(
            f"{label}: max {dim.high:g} is not reached from min {dim.low:g} in steps of "
            f"{dim.step:g}{' (a factor)' if dim.sampling == 'log' else ''}: the values would "
            f"stop at {below:g}. Expected a max on the steps, e.g. {below:g} or "
            f"{_nth(dim, math.floor(steps + 1e-9) + 1):g}"
        )
    if dim.integer:
        return dim
    return Choice(tuple(float(f"{_nth(dim, i):.12g}") for i in range(whole + 1)))


def _nth(dim: Range, index: int) -> float:
    assert dim.step is not None
    if dim.sampling == "log":
        return dim.low * dim.step**index
    return dim.low + index * dim.step
