"""``workbench predict``: read new inputs, check them against the model, write predictions."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError, first_line
from workbench.export.layout import HYPERPARAMETERS_FILE, MODEL_FILE
from workbench.tasks import repair_texts


@dataclass(frozen=True)
class PredictResult:
    """What :func:`predict_file` produced: the CSV text, and the file it went to (if any)."""

    rows: int
    columns: tuple[str, ...]
    out: Path | None
    csv_text: str
    #: How the input was read where it could be read two ways (a CSV's first row).
    notes: tuple[str, ...] = ()


# --- predict ----------------------------------------------------------------------------------


def predict_file(
    model_dir: str | Path,
    data_file: str | Path,
    out: str | Path | None = None,
    header: bool | None = None,
) -> PredictResult:
    """Predict with an exported model on the inputs in ``data_file``; write CSV to ``out``.

    Inputs:
        ``.npz``: an array named ``x`` (or ``x_test``) of shape ``(samples, steps, features)``
        (``(samples,)`` strings for a text model).
        ``.csv``: one input per row, ``steps * features`` numeric columns in time order
        (features of one step side by side); for a text model the column ``text`` (or the
        only column) holds one raw text per row. For a forecasting model (one feature) a CSV
        with a single column is read as one series: every window of ``steps`` consecutive
        values is one input, the last one forecasts past the end of the series.

    ``header``: whether a CSV's first row is column names; None decides: a first row of
    numbers only is data (said in the result's notes), anything else a header. A text
    model's CSV always has one.

    Output: one CSV row per input; classification: ``class`` and ``p_<class>`` per class;
    regression: ``y`` (or ``y_1..y_k``); forecasting series CSVs also get ``end_row``.

    Raises:
        WorkbenchError: missing model or file, missing key or column, wrong shape or dtype.
    """
    model_path = Path(model_dir)
    meta_path = model_path / HYPERPARAMETERS_FILE
    if not (model_path / MODEL_FILE).is_file() or not meta_path.is_file():
        raise WorkbenchError(
            f"Expected an exported model folder with {MODEL_FILE} and {HYPERPARAMETERS_FILE}. "
            f"Received: --model {model_dir} (run workbench export first)"
        )
    try:
        interface = json.loads(meta_path.read_text())["interface"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WorkbenchError(
            f"{meta_path}: not a readable export description ({type(exc).__name__}: {exc}); "
            "export the model again"
        ) from None
    x, ends, notes = _read_inputs(Path(data_file), interface, header)
    _check_inputs(x, interface)
    if interface["input_dtype"] == "string":
        # Keras takes strings as a 1-D object array (not numpy's fixed-width str dtype).
        texts = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in x]
        # A text without words reads as [UNK]: the model does so itself since 2026-12-07;
        # here for models exported before.
        x, _ = repair_texts(np.array(texts, dtype=object))
    from workbench.search import backend

    backend.load_tensorflow()
    import keras

    try:
        model = keras.saving.load_model(model_path / MODEL_FILE, safe_mode=True, compile=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:  # a truncated or partial copy
        raise WorkbenchError(
            f"{model_path / MODEL_FILE}: not a readable Keras model ({first_line(exc)}); "
            "copy the export folder again, or export the model again"
        ) from None
    predictions = np.asarray(model.predict(x, batch_size=256, verbose=0))
    columns, rows = _prediction_rows(predictions, interface)
    if ends is not None:
        columns = ("end_row", *columns)
        rows = [[end, *row] for end, row in zip(ends, rows, strict=True)]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    target = None
    if out is not None:
        target = Path(out)
        try:
            target.write_text(text.getvalue())
        except OSError as exc:
            raise WorkbenchError(f"Cannot write {out}: {exc.strerror or exc}") from None
    return PredictResult(len(rows), tuple(columns), target, text.getvalue(), notes)


def _read_inputs(
    path: Path, interface: Mapping[str, Any], header: bool | None
) -> tuple[np.ndarray, list[int] | None, tuple[str, ...]]:
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "no such file"
        raise WorkbenchError(f"Cannot read --data {path}: {what}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                keys = list(archive.keys())
                key = next((k for k in ("x", "x_test") if k in keys), None)
                if key is None:
                    raise WorkbenchError(
                        f"{path}: expected an array named 'x' or 'x_test'. "
                        f"Received keys: {', '.join(keys) or 'none'}"
                    )
                try:
                    x = np.asarray(archive[key])
                except ValueError as exc:
                    if "allow_pickle" not in str(exc):  # e.g. an array cut short
                        raise
                    # An archive, but an array of Python objects in it (loading one
                    # runs pickle, which predict does not).
                    expected = (
                        "a NumPy string array, e.g. np.array(texts, dtype=str)"
                        if interface["input_dtype"] == "string"
                        else "an equal-length numeric array, padded as the model was trained"
                    )
                    raise WorkbenchError(
                        f"{path}: {key} is an object array"
                        + ("" if interface["input_dtype"] == "string" else " (ragged sequences?)")
                        + f". Expected {expected}"
                    ) from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            # NumPy takes any file that is not an archive for a pickle, and offers to load it.
            why = "not a NumPy archive" if "allow_pickle" in str(exc) else first_line(exc)
            raise WorkbenchError(f"{path}: not a readable .npz file ({why})") from None
        shape = interface["input_shape"]
        if x.ndim == 2 and len(shape) == 3 and shape[2] == 1:
            x = x[..., None]  # (samples, steps) of a one-feature model, as training takes it
        return x, None, ()
    if suffix == ".csv":
        return _read_csv(path, interface, header)
    raise WorkbenchError(f"Expected --data to be a .npz or .csv file. Received: {path}")


def _read_csv(
    path: Path, interface: Mapping[str, Any], header: bool | None
) -> tuple[np.ndarray, list[int] | None, tuple[str, ...]]:
    # A long document is one field: past the csv module's 131,072-character default.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:  # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise WorkbenchError(
            f"{path}: expected UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except (OSError, csv.Error) as exc:
        raise WorkbenchError(f"{path}: cannot read it as CSV ({first_line(exc)})") from None
    while rows and not rows[-1]:  # trailing blank lines; a blank line inside is a row
        rows.pop()
    text = interface["input_dtype"] == "string"
    notes: tuple[str, ...] = ()
    headed = header if header is not None else True
    if header is None and not text and rows and all(_is_number(v) for v in rows[0]):
        headed = False  # numbers in every cell: data (pandas' default names 0,1,... too)
        notes = (
            f"{path}: its first row is all numbers, read as the first input; "
            "--header reads it as column names",
        )
    elif header is None and not text and rows and not all(
        v.strip() and not _is_number(v) for v in rows[0]
    ):
        # Numbers beside an empty or text cell: a data row with a missing value, most
        # likely; read as a header it would shift every output against its input.
        raise WorkbenchError(
            f"{path}: line 1 is neither a header (names only) nor a row of numbers: "
            f"{', '.join(repr(v) for v in rows[0][:5])}. Fill its missing values, or "
            "pass --header if it is the header"
        )
    if len(rows) < 1 + headed:
        expected = "a header row and at least one data row" if headed else "a data row"
        raise WorkbenchError(f"{path}: expected {expected}")
    names, body = (rows[0], rows[1:]) if headed else ([], rows)
    shape = interface["input_shape"]
    if headed and not text:
        uneven = next(
            (n for n, row in enumerate(body, start=2) if len(row) != len(names)), None
        )
        if uneven is not None:
            raise WorkbenchError(
                f"{path}: line {uneven} has {len(body[uneven - 2])} values under a header "
                f"of {len(names)} columns"
            )
    if text:
        column = "text" if "text" in names else (names[0] if len(names) == 1 else None)
        if not headed:
            column = "1"  # --no-header: the first column
        if column is None:
            raise WorkbenchError(
                f"{path}: expected a column named 'text'. Received columns: {', '.join(names)}"
            )
        index = names.index(column) if headed else 0
        first = 2 if headed else 1
        if header is None and column != "text":
            notes = (
                f"{path}: its first row, {column!r}, was read as the column's name; "
                "--no-header reads it as a text",
            )
        short = next(
            (n for n, row in enumerate(body, start=first) if row and len(row) <= index), None
        )
        if short is not None:
            raise WorkbenchError(f"{path}: line {short} has no value in the column {column!r}")
        # A blank line of a one-column file is an empty text, kept so rows stay aligned.
        texts = np.array([row[index] if row else "" for row in body], dtype=object)
        return texts, None, notes
    steps, features = shape[1], shape[2]
    named = list(interface.get("features") or [])
    # A forecast's series by the header's names (only those columns are read: a date
    # beside them is fine); the column count alone cannot tell a series from windows.
    by_name = bool(
        interface.get("forecast")
        and steps
        and headed
        and named
        and all(names.count(name) == 1 for name in named)  # a windows file repeats them
        # ... or repeats them as pandas renames repeated names (sales, sales.1, ...).
        and not any(re.fullmatch(rf"{re.escape(n)}\.\d+", c) for n in named for c in names)
    )
    picked = [names.index(name) for name in named] if by_name else None
    missing = [name for name in named if name not in names]
    if (
        interface.get("forecast")
        and headed
        and missing
        and (set(named) & set(names) or len(names) != steps * features)
        and not (features == 1 and len(names) == 1)  # one column: the series, any name
    ):
        # A series' header without some of the model's columns: one left out or named
        # otherwise, not a file of windows (as many columns as a window's values).
        raise WorkbenchError(
            f"{path}: expected a header naming the series' columns {', '.join(named)}; "
            f"missing: {', '.join(missing)}. Received columns: {', '.join(names)}"
        )
    cells = [[row[i] for i in picked] for row in body] if picked else body
    uneven = next((n for n, row in enumerate(cells) if len(row) != len(cells[0])), None)
    if uneven is not None:  # (with a header, checked above against it)
        raise WorkbenchError(
            f"{path}: expected the same number of columns in every row. Received: "
            f"{len(cells[0])} on line 1, {len(cells[uneven])} on line {uneven + 1}"
        )
    columns = [names[i] for i in picked] if picked else names
    try:
        values = np.array([[float(v) for v in row] for row in cells], dtype="float64")
    except ValueError as exc:
        where = f"the columns {', '.join(named)}" if picked else "every column"
        exc = f"{exc}; {_cell(cells, columns, headed, _is_number)}"
        layout = (
            f"; predict reads one sample per row, its {steps} steps x {features} features "
            "side by side, or an .npz of (samples, steps, features)"
            if steps and not interface.get("forecast")
            else "; this model's series is one column of values (it recorded no column "
            "names): give that column alone"
            if interface.get("forecast") and not named and features == 1 and len(cells[0]) > 1
            and len(cells[0]) != steps
            else ""
        )
        raise WorkbenchError(f"{path}: expected numbers in {where} ({exc}){layout}") from None
    series = by_name or bool(
        interface.get("forecast") and steps and values.shape[1] != steps * features
    )
    if series and features > 1 and not by_name:
        # A series over several columns is read by name, in the model's order (a file's own
        # column order would silently feed one column's values as another's).
        raise WorkbenchError(
            f"{path}: expected a header naming the series' columns "
            f"{', '.join(named) or '(not recorded by this export)'}, or rows of "
            f"{steps * features} values ({steps} steps x {features} features). Received "
            f"columns: {', '.join(names) or 'none (no header)'}"
        )
    if series and values.shape[1] == features:
        if not np.isfinite(values).all():  # named where the file has it, not by its window
            raise WorkbenchError(
                f"{path}: expected finite numbers in the series. Received: NaN or infinite "
                f"value at {_cell(cells, columns, headed, _is_finite)}"
            )
        if len(values) < steps:
            raise WorkbenchError(
                f"{path}: expected a series of at least {steps} values (the model's window). "
                f"Received: {len(values)} values"
            )
        windows = np.stack([values[i - steps : i] for i in range(steps, len(values) + 1)])
        return windows, list(range(steps, len(values) + 1)), notes
    if steps is None:
        raise WorkbenchError(
            f"{path}: this model takes variable-length series; give them as an .npz array "
            "padded with the model's pad value"
        )
    if values.shape[1] != steps * features:
        raise WorkbenchError(
            f"{path}: expected {steps * features} value columns per row ({steps} steps x "
            f"{features} features). Received: {values.shape[1]} columns"
            + (f" ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else "")
        )
    return values.reshape(len(values), steps, features), None, notes


def _cell(
    cells: list[list[str]], columns: list[str], headed: bool, good: Callable[[str], bool]
) -> str:
    """Where the first cell that is not ``good`` is: its line of the file and its column."""
    for n, row in enumerate(cells):
        for i, value in enumerate(row):
            if not good(value):
                column = repr(columns[i]) if i < len(columns) else str(i + 1)
                return f"line {n + 1 + headed}, column {column}: {value!r}"
    return "a cell"


def _is_finite(value: str) -> bool:
    return _is_number(value) and np.isfinite(float(value))


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _shape_text(shape: Sequence[int | None]) -> str:
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + (",)" if len(shape) == 1 else ")")
    )


def _check_inputs(x: np.ndarray, interface: Mapping[str, Any]) -> None:
    shape = interface["input_shape"]
    expected = _shape_text(shape)
    if interface["input_dtype"] == "string":
        if x.dtype.kind not in "OUS":
            raise WorkbenchError(f"Expected input of dtype string. Received: x.dtype={x.dtype}")
    elif x.dtype.kind not in "fiub":
        raise WorkbenchError(
            f"Expected input of dtype {interface['input_dtype']}. Received: x.dtype={x.dtype}"
        )
    wrong_rank = x.ndim != len(shape)
    wrong_size = any(d is not None and d != n for d, n in zip(shape[1:], x.shape[1:], strict=False))
    if wrong_rank or wrong_size:
        raise WorkbenchError(
            f"Expected input of shape {expected}. Received: x.shape={_shape_text(x.shape)}"
        )
    if len(x) == 0:
        raise WorkbenchError(
            f"Expected at least one sample to predict. Received: x.shape={_shape_text(x.shape)}"
        )
    if x.dtype.kind in "fiub":
        bad = ~np.isfinite(x.astype("float64"))
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise WorkbenchError(
                f"Expected finite numbers. Received: NaN or infinite value in x[{row}]"
            )
    if interface.get("masked") and x.ndim == 3:
        pad = interface["pad_value"]
        empty = np.flatnonzero(~np.any(x != pad, axis=(1, 2)))
        if empty.size:  # the search refuses these too: no step to read (cuDNN fails on it)
            raise WorkbenchError(
                f"Expected at least one real step per sample. Received: x[{int(empty[0])}] "
                f"is all padding ({pad:g})"
            )


def _prediction_rows(
    predictions: np.ndarray, interface: Mapping[str, Any]
) -> tuple[tuple[str, ...], list[list[Any]]]:
    n = len(predictions)
    if interface["problem"] == "classification":
        names = list(interface["class_names"])
        if interface["binary"]:
            p1 = predictions.reshape(predictions.shape[:-1])
            probs = np.stack([1.0 - p1, p1], axis=-1)
        else:
            probs = predictions
        classes = np.asarray(names, dtype=object)[np.argmax(probs, axis=-1)]
        if interface["sequence_output"]:
            steps = probs.shape[1]
            columns = tuple(f"class_t{t}" for t in range(steps))
            return columns, [list(classes[i]) for i in range(n)]
        columns = ("class", *(f"p_{name}" for name in names))
        return columns, [[classes[i], *(f"{p:.9g}" for p in probs[i])] for i in range(n)]
    flat = predictions.reshape(n, -1)
    if flat.shape[1] == 1:
        columns: tuple[str, ...] = ("y",)
    else:
        columns = tuple(f"y_{k + 1}" for k in range(flat.shape[1]))
    # float32's 7 significant digits, and 2 more, so no figure is rounded away.
    return columns, [[f"{v:.9g}" for v in flat[i]] for i in range(n)]
