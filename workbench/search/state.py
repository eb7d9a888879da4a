"""The search state folder: KerasTuner's files for one study, and what the study was started
with (``study.json``), so the same command resumes it and another is refused."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError, first_line
from workbench.search.config import SearchConfig
from workbench.spaces import Choice, Range, SearchSpace, changed_dimensions
from workbench.tasks import TaskData

#: Why a setting may differ though the command did not change (workbench changes).
_CHANGED = {
    "data": "; the task's data or its loader changed since: e.g. adding and copy_memory "
    "draw their validation and test parts apart from the training part since 2026-12-07",
    "space": "; the space as searched may have changed with the workbench since 2026-12-07: "
    "a float range with a step is searched as its list of values, and a task that predicts "
    "every step fixes readout",
    "hyperband_folds": "; Hyperband no longer cross-validates since 2026-12-07: its later "
    "rounds trained on from weights that had seen each fold's validation rows",
    "vocabulary": "; the text vocabulary the models read was fitted otherwise: the word "
    "'unk' is out of every vocabulary since 2026-12-08",
    "fold_scheme": "; forecasting tasks no longer switch to shuffled folds, which trained "
    "on the future: they keep their time-ordered validation part, and --folds K cuts "
    "rolling origins, which cannot continue a study scored on shuffled folds",
}


def state_folder(root: Path, tracking_uri: str, experiment: str) -> Path:
    """The study's search state folder under ``root``.

    A study begun before 2026-12-07 keeps the folder it was begun in, where its
    ``study.json`` names it (another name that read alike as a folder does not take it).
    """
    from workbench.tracking import state_key  # tracking imports search's config first

    folder = root / state_key(tracking_uri, experiment)
    older = root / state_key(tracking_uri, experiment, before_2026_12_07=True)
    if older != folder and not folder.exists():
        try:
            begun = json.loads((older / "study.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return folder
        if isinstance(begun, dict) and begun.get("experiment") == experiment:
            return older
    return folder


def _steps(space: SearchSpace) -> str:
    """Each integer range's step (a float range with a step is a list in the space's line):
    changing it changes what the search tries."""
    stepped = [
        f"{name} step {dim.step:g}"
        for name, dim in space.dimensions
        if isinstance(dim, Range) and dim.step not in (None, 1)
    ]
    return ", ".join(stepped) or "none"


def _listed(space: SearchSpace, was: str, now: str) -> bool:
    """Whether a changed dimension is a float range with a step that the space now holds
    as its list of values (the workbench's change), not a range the user edited."""
    before = dict(t.split("=", 1) for t in was.split() if "=" in t)
    after = dict(t.split("=", 1) for t in now.split() if "=" in t)
    for name, old in before.items():
        dim = space[name] if name in after else None
        if ".." not in old or not isinstance(dim, Choice) or len(dim.values) < 2:
            continue
        if not all(isinstance(v, float) for v in dim.values):
            continue
        if all(v.is_integer() for v in dim.values):
            continue
        try:
            low, high = (float(bound) for bound in old.split("..", 1))
        except ValueError:
            continue
        # The steps from min to max, as the space now lists them: evenly spaced (a linear
        # step) or by a constant factor (a log step). Another list is the user's edit.
        values = sorted(dim.values)
        gaps = [b - a for a, b in zip(values, values[1:], strict=False)]
        factors = [b / a for a, b in zip(values, values[1:], strict=False) if a]
        even = all(math.isclose(g, gaps[0], rel_tol=1e-6) for g in gaps)
        scaled = len(factors) == len(gaps) and all(
            math.isclose(f, factors[0], rel_tol=1e-6) for f in factors
        )
        ends = math.isclose(values[0], low, rel_tol=1e-9) and math.isclose(
            values[-1], high, rel_tol=1e-9
        )
        if ends and (even or scaled):
            return True
    return False


def _check_readable(folder: Path, other: str) -> None:
    """Refuse a resume from a state folder whose files are cut short or garbled."""
    for path in sorted(folder.rglob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WorkbenchError(
                f"The search state file {path} is damaged ({first_line(exc)}): the study "
                "cannot resume from it. Add --overwrite to start afresh (the earlier runs "
                f"are deleted; MLflow keeps them restorable), or pick another {other}."
            ) from None


def prepare_state_dir(config: SearchConfig, data: TaskData, digest: str) -> bool:
    """Create or check the study's local KerasTuner folder; True when resuming."""
    if config.overwrite and config.state_dir.exists():
        shutil.rmtree(config.state_dir)
    if check_state_dir(config, data, digest):
        return True
    try:
        config.state_dir.mkdir(parents=True, exist_ok=True)
        marker = config.state_dir / "study.json"
        marker.write_text(json.dumps(_identity(config, data, digest), indent=2, default=str))
    except OSError as exc:
        raise WorkbenchError(
            f"Cannot write the search state folder {config.state_dir}: {exc.strerror}"
        ) from None
    return False


def check_state_dir(
    config: SearchConfig, data: TaskData, digest: str, other: str = "--experiment"
) -> bool:
    """Whether the study resumes from its state folder (False: it has none, or
    ``--overwrite``); raises when the study was started with other settings. Writes
    nothing. ``other``: the option that names another study (``--name`` for a benchmark)."""
    marker = config.state_dir / "study.json"
    if config.overwrite or not marker.is_file():
        return False
    identity = _identity(config, data, digest)
    # Study folders written before these options existed ran with their defaults (their
    # data digest is unknown: not compared).
    defaults = {
        "data": identity["data"],
        # Not compared before 2026-12-07 (the space's line leaves steps out).
        "space_steps": identity["space_steps"],
        "fold_scheme": "shuffled",
        "repeats": 1,
        "hyperband_iterations": 1,
        "folds": 1,
        "mixed_precision": False,
        "gradient_probe": True,
        # Not compared before 2026-12-07 (its parent run logged the first session's only).
        "deterministic": identity["deterministic"],
        # Not recorded before 2026-12-08.
        "vocabulary": identity["vocabulary"],
    }
    _check_readable(config.state_dir, other)
    previous = json.loads(marker.read_text(encoding="utf-8"))
    before = {k: previous.get(k, defaults.get(k)) for k in identity}
    changed = [k for k in identity if before[k] != identity[k]]
    if changed:
        key = changed[0]
        why = _CHANGED.get(key, "")
        if key in ("folds", "fold_scheme") and data.time_ordered:
            why = _CHANGED["fold_scheme"]
        elif key == "folds" and config.tuner == "hyperband":
            why = _CHANGED["hyperband_folds"]
        was, now = before[key], identity[key]
        if key == "space":  # the dimensions that differ, not two whole lines
            was, now = changed_dimensions(was, now)
            why = why if "readout=" in was or _listed(config.space, was, now) else ""
        raise WorkbenchError(
            f"Study {config.experiment!r} was started with other settings ({key}: "
            f"{was!r}, now {now!r}{why}). Rerun with the same options "
            f"to resume, add --overwrite to start afresh, or pick another {other}."
        )
    return True


def _vocabulary_digest(data: TaskData) -> str:
    """A short hash of a text task's vocabulary; "" for any other task."""
    import hashlib

    if data.text is None:
        return ""
    return hashlib.sha256("\n".join(data.text.vocabulary).encode("utf-8")).hexdigest()[:16]


def _identity(config: SearchConfig, data: TaskData, digest: str) -> dict[str, Any]:
    """What a study's state folder records of its settings, to resume only on the same."""
    return {
        "experiment": config.experiment,
        "tracking_uri": config.tracking_uri,
        "task": config.task.name,
        "task_options": dict(config.task.options),
        "space": config.space.describe(),
        "space_steps": _steps(config.space),
        "tuner": config.tuner,
        "seed": config.seed,
        "repeats": config.repeats,
        "hyperband_iterations": config.hyperband_iterations,
        "folds": config.folds,
        "mixed_precision": config.mixed_precision,
        "gradient_probe": config.gradient_probe,
        "deterministic": config.deterministic,
        "fold_scheme": "rolling" if data.time_ordered and config.folds > 1 else "shuffled",
        # A text task's vocabulary (a new version of the loader may fit it otherwise): the
        # models of one study read the same token ids.
        "vocabulary": _vocabulary_digest(data),
        # Last, so a changed option is named first: the data the trials are scored on (a
        # changed file or loader must not mix two validation or test sets in one study).
        "data": digest,
    }
