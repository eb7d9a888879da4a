"""The quick path: `workbench search --data FILE` builds a task file from a file and flags."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.tasks.spec import LOADERS, TaskSpec, load_task

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
    from workbench.yamlio import dump_yaml

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
    # Bad data stop here, before a file is written: their errors name the data file.
    LOADERS[loader](dataclasses.replace(spec, source=str(path)))
    text = (
        f"# Written by `workbench search --data {path.name}`. Reuse it (and edit it) with\n"
        f"#   workbench search --task {task_file}\n"
        + dump_yaml(
            {
                "name": spec.name,
                "description": spec.description,
                "loader": loader,
                "options": dict(spec.options),
            }
        )
    )
    if task_file.is_file():
        if task_file.read_text(encoding="utf-8") != text:
            other = _described_file(task_file)
            # sales.csv beside sales.parquet (by name: a task file whose path was made
            # relative, or a folder moved whole, still describes this file)
            if other and Path(other).name != path.name:
                raise WorkbenchError(
                    f"{task_file} exists and describes another data file, {other}. Expected "
                    f"one data file per name in a folder: rename {path.name}, or search the "
                    f"other with --task {task_file}"
                )
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


def _described_file(task_file: Path) -> str:
    """The data file an existing task file reads ("" where it cannot be told)."""
    from workbench.yamlio import read_yaml_mapping

    try:
        return str(read_yaml_mapping(task_file, "task")["options"]["path"])
    except (WorkbenchError, KeyError, TypeError):
        return ""


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
