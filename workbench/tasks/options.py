"""Checking a task file's loader options, shared by every loader."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError
from workbench.tasks.spec import DATA_EXTRA, TaskSpec

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
    if "seed" in defaults and not 0 <= merged["seed"] < 2**32:  # NumPy's generators' range
        raise WorkbenchError(
            f"{spec.source}: options.seed: expected 0 to {2**32 - 1}. Received: {merged['seed']!r}"
        )
    if "limit" in defaults and merged["limit"] < 0:  # 0 is every sample; below it, a typo
        raise WorkbenchError(
            f"{spec.source}: options.limit: expected 0 (every sample) or a positive number of "
            f"samples. Received: {merged['limit']!r}"
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
