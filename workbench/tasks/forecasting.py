"""Forecasting: windows over one series, split in time order, naive baselines and metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError, first_line
from workbench.tasks.options import (
    _choice,
    _columns_option,
    _flag,
    _options,
    _positive,
    _require,
    _text_option,
)
from workbench.tasks.spec import Baseline, TaskData, TaskSpec, register_loader
from workbench.tasks.tables import _data_path, _drop_missing, _numeric, _read_table, _row, _shown

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
    names: tuple[str, ...] = (),
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
    for key in ("n_val", "n_test"):
        held = getattr(cut, key)
        if held < cut.horizon and (held > 0 or key == "n_val"):
            raise WorkbenchError(
                f"{spec.source}: options.{key}: expected at least horizon {cut.horizon} "
                f"steps{' (or 0: no test part)' if key == 'n_test' else ''}, a window's "
                f"targets. Received: {held!r}"
            )
    if steps < needed:
        raise WorkbenchError(
            f"{spec.source}: the series has {steps} steps; window {cut.window} + horizon "
            f"{cut.horizon} + {cut.n_val} validation + {cut.n_test} test steps need at least "
            f"{needed}"
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

    x_train, y_train, train_starts = cut_part(0, train_end)
    x_val, y_val, val_starts = cut_part(train_end, val_end)
    has_test = cut.n_test > 0
    x_test, y_test, test_starts = cut_part(val_end, steps) if has_test else (None, None, None)
    eval_starts, split = (test_starts, "test") if has_test else (val_starts, "validation")
    series = values[:, target].astype("float64")
    if cut.season > 1 and cut.season > int(eval_starts.min()):  # it would look back before
        raise WorkbenchError(  # the series
            f"{spec.source}: options.season: expected at most {int(eval_starts.min())} "
            f"(the seasonal-naive baseline looks one season back from the first {split} "
            f"step). Received: {cut.season!r}"
        )
    truth, candidates = _trivial_forecasts(series, eval_starts, cut)
    described = [
        _describe_errors(
            "naive (last value)" if name == "naive" else f"seasonal naive (s={cut.season})",
            _error_metrics(truth, forecast),
        )
        for name, forecast in candidates
    ]
    # The stronger trivial forecast on the part scored: beating the weaker is no skill.
    label, reference = min(candidates, key=lambda c: float(np.mean((c[1] - truth) ** 2)))
    if len(candidates) > 1:
        label += ", the stronger of the two here"
    squared = (((reference - truth) / std[target]) ** 2).mean(axis=1)
    scaled_mse = float(squared.mean())
    all_starts = np.concatenate([train_starts, val_starts])

    def folded(folds: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Baseline:
        # Rolling origins score a trial over blocks of train + validation windows: the
        # trivial forecasts on the same windows (they fit nothing), the stronger over all.
        scores: dict[str, list[float]] = {}
        for _, _, held in folds:
            starts = all_starts[held]
            truth, forecasts = _trivial_forecasts(series, starts, cut)
            for name, forecast in forecasts:
                errors = (((forecast - truth) / std[target]) ** 2).mean()
                scores.setdefault(name, []).append(float(errors))
        # Each forecast over every fold, as a trial is scored (seasonal naive has no season
        # of past in an early block: then naive alone).
        scores = {name: s for name, s in scores.items() if len(s) == len(folds)}
        label, value = min(((n, float(np.mean(s))) for n, s in scores.items()), key=lambda c: c[1])
        if len(scores) > 1:
            label += ", the stronger of the two here"
        return Baseline(
            value,
            f"{len(folds)}-fold rolling-origin MSE {value:.4g} in scaled units ({label}), on the "
            "windows the trials were scored on",
        )
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
            squared,
            folded,
        ),
        source=source,
        target_scale=(float(mean[target]), float(std[target])),
        input_scale=(tuple(float(m) for m in mean), tuple(float(s) for s in std)),
        notes=notes,
        time_ordered=True,
        feature_names=names,
    )


def _trivial_forecasts(
    series: np.ndarray, starts: np.ndarray, cut: _Windows
) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """The targets of the windows starting at ``starts``, and the trivial forecasts of them:
    naive (the last value), and seasonal naive (the value one season back) where the task
    has a season and every window has a season of past."""
    offsets = np.arange(cut.horizon)
    truth = series[starts[:, None] + offsets]
    forecasts = [("naive", np.repeat(series[starts - 1][:, None], cut.horizon, axis=1))]
    if cut.season > 1 and cut.season <= int(starts.min()):
        lags = cut.season * (offsets // cut.season + 1)
        forecasts.append(("seasonal naive", series[starts[:, None] + offsets - lags]))
    return truth, forecasts


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


@register_loader("sktime_series")
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
    leap years are regular, a missing month is not); in daily dates with no Saturday or
    Sunday (business days), Friday to Monday is one step.
    """
    import pandas as pd

    raw = frame[column]
    days = None
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers.notna().all():
        keys = numbers.to_numpy(dtype="float64")
    elif numbers.notna().any():  # numbers with something else among them: name the latter
        first = numbers.isna().idxmax()
        raise WorkbenchError(
            f"{path}: column {column!r}, {_row(path, first)}: the time column is not "
            f"sortable. Expected a number, as in its other rows. Received: {_shown(raw[first])}"
        )
    else:
        try:
            # Times in several zones (+00:00, +01:00: summer time) compare as instants.
            times = pd.to_datetime(raw.astype(str), errors="coerce", format="mixed", utc=True)
        except (ValueError, TypeError) as exc:
            raise WorkbenchError(
                f"{path}: column {column!r}: cannot read the times: {first_line(exc)}"
            ) from None
        if times.isna().any():
            first = times.isna().idxmax()
            raise WorkbenchError(
                f"{path}: column {column!r}, {_row(path, first)}: the time column is not "
                f"sortable. Expected a number or a date. Received: {_shown(raw[first])}"
            )
        keys = times.to_numpy(dtype="datetime64[ns]").astype("int64").astype("float64")
        days = times.dt.tz_localize(None).to_numpy().astype("datetime64[D]")
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
    daily = steps.min() == 86_400e9  # nanoseconds
    if len(gaps) and days is not None and daily and np.is_busday(days).all():
        # Business days (no Saturday or Sunday in the file): Friday to Monday is one step.
        gaps = gaps[np.busday_count(days[gaps], days[gaps + 1]) > 1]
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


@register_loader("csv_forecast")
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
    return _forecast_task(
        spec, values, columns.index(target), cut, source, notes, tuple(columns)
    )
