"""The user's own sequence files: a long CSV/Parquet table (csv_sequences) or an npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workbench.errors import WorkbenchError, first_line
from workbench.tasks.options import (
    _choice,
    _columns_option,
    _flag,
    _fraction,
    _options,
    _text_option,
)
from workbench.tasks.spec import PAD_VALUE, TaskData, TaskSpec, register_loader
from workbench.tasks.splits import (
    _encode_labels,
    _majority_baseline,
    _mean_baseline,
    _pad,
    _random_split,
    _right_padded,
    _stratified_split,
    _three_per_class,
)
from workbench.tasks.tables import (
    _data_path,
    _drop_missing,
    _numeric,
    _read_table,
    _row,
    _shown,
    _split_parts,
)


@register_loader("csv_sequences")
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
    twice = [c for c in [*named, *features] if [*named, *features].count(c) > 1]
    if twice:  # a label among the features: the model learnt it
        raise WorkbenchError(
            f"{spec.source}: column {twice[0]!r} is named for two of id_column, label_column, "
            "time_column, split_column and feature_columns. Expected one role per column"
        )
    frame = _read_table(spec, path, [*named, *features], labels=[label])
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
        labels = labels.astype("int64")  # Parquet: integer labels as floats by gaps
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
        if len(train) == 0:  # the label check below would say "a single class None"
            raise WorkbenchError(f"{path}: column {split_column!r}: expected rows marked train")
        (_, y_all), names = _encode_labels(where, y_raw[train], y_raw)
        if len(val) == 0:
            rest, picked = _stratified_split(y_all[train], opts["val_fraction"], rng, where, names)
            train, val = train[rest], train[picked]
    else:
        (y_all,), names = _encode_labels(where, y_raw)
        _three_per_class(y_all, where, names)
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
        raise WorkbenchError(f"{path}: cannot read the file: {first_line(exc)}") from None
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
                    f"{PAD_VALUE:g} (workbench.tasks.PAD_VALUE) to have them masked"
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


@register_loader("npz")
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
        if x.ndim != 3 or x.dtype.kind not in "iufb" or 0 in x.shape[1:]:
            raise WorkbenchError(
                f"{path}: x_{split}: expected numbers of shape (samples, steps) or (samples, "
                f"steps, features), at least one step and one feature. Received: shape "
                f"{arrays[f'x_{split}'].shape}, dtype {x.dtype}"
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
        if len(x) == 0:
            raise WorkbenchError(f"{path}: x_{split} has no samples. Expected at least one")
        if x.shape[1:] != xs.get("train", x).shape[1:]:
            raise WorkbenchError(
                f"{path}: x_{split} has steps x features {x.shape[1:]}, x_train "
                f"{xs['train'].shape[1:]}. Expected the same in every split"
            )
        # As the model gets it: a value that rounds to the pad value in float32 is padding,
        # and one beyond float32's range is infinite.
        with np.errstate(over="ignore"):
            x = x.astype("float32")
            bad = ~np.isfinite(x).all(axis=(1, 2))
            if y.dtype.kind in "iuf":
                bad |= ~np.isfinite(y.astype("float32").reshape(len(y), -1)).all(axis=1)
        if bad.any() and not drop:
            raise WorkbenchError(
                f"{path}: sample {int(np.argmax(bad))} of x_{split}/y_{split} (0-based) has a "
                "NaN or infinite value (or one beyond float32's range, about 3.4e38). Expected "
                "finite numbers, or set options.drop_missing: true to drop such samples"
            )
        if np.all(x == PAD_VALUE, axis=2).any():
            # Here, before any sample is dropped or carved off: errors name the file's own
            # sample numbers.
            x, moved = _right_padded(x, str(path), split)
            if moved:
                notes.append(
                    f"moved the left padding of {moved} sample{'s' if moved > 1 else ''} of "
                    f"x_{split} to the right (cuDNN reads masks as right padding)"
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
        for split, y in ys.items():
            if y.shape[1] != ys["train"].shape[1]:
                raise WorkbenchError(
                    f"{path}: y_{split} has {y.shape[1]} target(s) per sample, y_train "
                    f"{ys['train'].shape[1]}. Expected the same in every split"
                )
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
        baseline = _mean_baseline(ys["train"], ys[evaluated], evaluated)
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
