"""Reading a user's CSV or Parquet table: the data path, columns, numbers, missing cells."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError, first_line
from workbench.tasks.options import _require
from workbench.tasks.spec import TaskSpec


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


def _read_table(
    spec: TaskSpec,
    path: Path,
    columns: Sequence[str],
    texts: Sequence[str] = (),
    labels: Sequence[str] = (),
) -> Any:
    """Read a CSV or Parquet file into a pandas DataFrame holding ``columns``; the
    ``texts`` columns as the file's own strings (a review reading "NA" or "null" is text,
    not a missing value), the ``labels`` columns too but for an empty cell, which is missing
    (a class named "NA" or "None" is a class).

    Raises:
        WorkbenchError: for an unreadable or empty file, or a missing column.
    """
    import pandas as pd

    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            _require(spec, "pyarrow")
            frame = pd.read_parquet(path)
        else:
            with warnings.catch_warnings():
                # More fields than the header: pandas would drop them (index_col=False) or
                # take the first ones for a row index, shifting every column by one.
                warnings.simplefilter("error", pd.errors.ParserWarning)
                converters: dict[str, Any] = {column: _label_cell for column in labels}
                converters.update({column: str for column in texts})
                frame = pd.read_csv(path, converters=converters, index_col=False)
    except WorkbenchError:
        raise
    except pd.errors.ParserWarning:
        raise WorkbenchError(f"{path}: {_longer_row(path)}") from None
    except pd.errors.EmptyDataError:
        raise WorkbenchError(f"{path}: the file is empty. Expected a header row and data") from None
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise WorkbenchError(f"{path}: cannot read the file: {first_line(exc)}") from None
    if path.suffix.lower() not in (".parquet", ".pq"):
        for column in [c for c in labels if c in frame.columns]:
            present = frame[column].dropna()
            if len(present) and pd.to_numeric(present, errors="coerce").notna().all():
                # Numbers, read as pandas reads them ("1" and "1.0" one class, 1), as before
                # labels were read as text; a class "NA" beside them keeps the column text.
                frame[column] = pd.to_numeric(frame[column])
        _check_unique(path, columns)
        # A trailing comma on the header line (spreadsheets write one): an empty header
        # cell, which pandas names "Unnamed: N", over no data. Not a column of the file's.
        empty = [
            c for c in frame.columns if str(c).startswith("Unnamed: ") and frame[c].isna().all()
        ]
        frame = frame.drop(columns=empty)
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


def _label_cell(cell: str) -> Any:
    """A CSV label cell as the file writes it, stripped; an empty one is missing (NaN)."""
    text = cell.strip()
    return text if text else np.nan


def _check_unique(path: Path, columns: Sequence[str]) -> None:
    """Refuse a CSV header naming a column the task reads twice: pandas would read the
    first and rename the other (``text.1``), whichever one the user meant."""
    import pandas as pd

    # The header as pandas reads the file (compressed too), its names not yet made unique.
    first = pd.read_csv(path, header=None, nrows=1, dtype=str, index_col=False)
    header = [str(name) for name in first.iloc[0].tolist()] if len(first) else []
    for column in columns:
        if header.count(column) > 1:
            places = [str(i + 1) for i, name in enumerate(header) if name == column]
            raise WorkbenchError(
                f"{path}: the header names column {column!r} {len(places)} times (columns "
                f"{', '.join(places)}). Expected each column the task reads named once"
            )


def _longer_row(path: Path) -> str:
    """Where a CSV file's first row longer than its header is (a trailing comma aside)."""
    import csv

    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        for row in reader:
            extra = row[len(header) :]
            if any(value.strip() for value in extra):
                return (
                    f"line {reader.line_num} has {len(row)} fields, the header "
                    f"{len(header)}. Expected one value per column"
                )
    return f"a row has more fields than the header's {len(header)}. Expected one per column"


def _shown(value: Any) -> str:
    """A cell value as the user wrote it (``2``, not ``np.int64(2)`` or ``2.0``)."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # integer columns read as floats next to an empty cell
    return repr(value)


def _row(path: Path, index: Any) -> str:
    """Where row ``index`` (0-based, as read) sits: a line of a CSV (header is line 1),
    counted as the file has them (blank lines, which pandas skips, and quoted line breaks)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return f"row {int(index) + 1}"
    starts = _record_lines(path)
    if int(index) < len(starts):
        return f"line {starts[int(index)]}"
    return f"data row {int(index) + 1}"


def _record_lines(path: Path) -> list[int]:
    """The line each data record of a CSV starts on, header and blank lines left out."""
    import csv

    starts, line = [], 1
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            for number, record in enumerate(reader):
                if record and number:  # not the header, not a blank line
                    starts.append(line)
                line = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return starts


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
