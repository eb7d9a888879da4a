"""Seeded splits, label encoding, trivial baselines and padding, shared by the loaders."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError
from workbench.tasks.spec import PAD_VALUE, Baseline

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
            shown = names[int(label)] if names is not None else label.item()
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


def _subset(
    y: np.ndarray, limit: int, rng: np.random.Generator, per_class: int = 2
) -> np.ndarray:
    """A seeded stratified subset of about ``limit`` samples (all when ``limit`` is 0),
    keeping at least ``per_class`` of each class (where it has them): 2 for a split in
    two, 3 for training, validation and test parts."""
    if limit <= 0 or limit >= len(y):
        return np.arange(len(y))
    classes, counts = _class_counts(y)
    picked = []
    for label, count in zip(classes, counts, strict=True):
        take = int(min(max(round(limit * count / len(y)), min(per_class, count)), count))
        picked.append(rng.permutation(np.flatnonzero(y == label))[:take])
    return np.sort(np.concatenate(picked))


def _majority_hits(y_train: np.ndarray, y_eval: np.ndarray) -> tuple[np.ndarray, int]:
    """Per evaluated sample, the accuracy of always predicting ``y_train``'s most frequent
    class; and how many classes tie for it."""
    classes, counts = _class_counts(y_train)
    tied = classes[counts == counts.max()]
    # Classes tied for the most frequent: one picked at random, in expectation (argmax's
    # pick, the first, made the figure depend on the classes' order).
    hits = np.mean([(y_eval == label) for label in tied], axis=0)
    return hits.reshape(len(y_eval), -1).mean(axis=1).astype("float64"), len(tied)


def _majority_baseline(y_train: np.ndarray, y_eval: np.ndarray, split: str) -> Baseline:
    per_sample, tied = _majority_hits(y_train, y_eval)
    accuracy = float(per_sample.mean())
    which = (
        "the most frequent class"
        if tied == 1
        else f"one of the {tied} classes tied for the most frequent (expected)"
    )
    return Baseline(
        accuracy,
        f"always predict {which}: {split} accuracy {accuracy:.3f}",
        per_sample,
        _folded(_majority_hits, "the most frequent class of each fold's training part", "accuracy"),
    )


def _squared_errors(y_train: np.ndarray, y_eval: np.ndarray) -> tuple[np.ndarray, int]:
    """Per evaluated sample, the squared error (averaged over its targets) of always
    predicting ``y_train``'s mean."""
    errors = (y_eval - y_train.mean(axis=0)) ** 2
    return errors.reshape(len(errors), -1).mean(axis=1).astype("float64"), 1


def _mean_baseline(y_train: np.ndarray, y_eval: np.ndarray, split: str) -> Baseline:
    squared, _ = _squared_errors(y_train, y_eval)
    mse = float(squared.mean())
    return Baseline(
        mse,
        f"always predict the training mean: {split} MSE {mse:.4g}",
        squared,
        _folded(_squared_errors, "the mean of each fold's training part", "MSE"),
    )


def _folded(
    scores: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, int]], what: str, measure: str
) -> Callable[[Sequence[tuple[np.ndarray, np.ndarray]]], Baseline]:
    """A baseline rule scored over cross-validation folds as a trial is: the mean over the
    folds of each fold's mean score on its held-out samples."""

    def folded(folds: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Baseline:
        value = float(np.mean([scores(train, held)[0].mean() for train, held, _ in folds]))
        shown = f"{value:.3f}" if measure == "accuracy" else f"{value:.4g}"
        return Baseline(
            value, f"always predict {what}: {len(folds)}-fold cross-validation {measure} {shown}"
        )

    return folded


def _pad(series: list[np.ndarray], where: str) -> tuple[np.ndarray, bool]:
    """Stack ``(steps, features)`` arrays; right-pad with :data:`PAD_VALUE` if lengths differ."""
    # Compared as stored: a value within float32's rounding of the pad value would be masked.
    series = [s.astype("float32") for s in series]
    lengths = {len(s) for s in series}
    if len(lengths) == 1:
        return np.stack(series), False
    if any(np.any(s == PAD_VALUE) for s in series):
        raise WorkbenchError(
            f"{where}: the data contain the padding value {PAD_VALUE:g}; "
            "variable-length series cannot be masked"
        )
    out = np.full((len(series), max(lengths), series[0].shape[1]), PAD_VALUE, dtype="float32")
    for i, s in enumerate(series):
        out[i, : len(s)] = s
    return out, True


def _three_per_class(y: np.ndarray, where: str, names: Any) -> None:
    """Refuse a class too small for a stratified split into train, validation and test
    (said up front: the second split would count what the first left)."""
    classes, counts = _class_counts(y)
    for label, count in zip(classes, counts, strict=True):
        if len(classes) > 1 and count < 3:
            raise WorkbenchError(
                f"{where}: class {names[int(label)]!r} has {count} sample"
                f"{'s' if count > 1 else ''}; a stratified split into train, validation and "
                "test needs at least 3 per class"
            )


def _three_way_split(
    y: np.ndarray, opts: Mapping[str, Any], rng: np.random.Generator, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``(train, val, test)`` of a seeded split, stratified by the labels ``y`` (as
    the file has them, so an error names a class as the user knows it)."""
    labels, codes = np.unique(y, return_inverse=True)
    _three_per_class(codes, where, [v.item() if isinstance(v, np.generic) else v for v in labels])
    rest, test = _stratified_split(codes, opts["test_fraction"], rng, where, None)
    train, val = _stratified_split(codes[rest], opts["val_fraction"], rng, where, None)
    return rest[train], rest[val], test


def _right_padded(x: np.ndarray, where: str, split: str) -> tuple[np.ndarray, int]:
    """Padding (:data:`PAD_VALUE` in every feature) moved to the end of each sample.

    cuDNN reads a mask as a sequence length, so only right padding works on a GPU:
    left padding (Keras' ``pad_sequences`` default) is moved right and counted; padding
    inside a sample, or a sample that is all padding, is refused.
    """
    steps = np.any(x != PAD_VALUE, axis=2)
    lengths = steps.sum(axis=1)
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise WorkbenchError(
            f"{where}: sample {int(empty[0])} of x_{split} is all padding ({PAD_VALUE:g}). "
            "Expected at least one real step per sample (cuDNN cannot take an empty one)"
        )
    positions = np.arange(x.shape[1])
    right = steps == (positions[None, :] < lengths[:, None])
    left = steps == (positions[None, :] >= (x.shape[1] - lengths)[:, None])
    bad = np.flatnonzero(~right.all(axis=1) & ~left.all(axis=1))
    if bad.size:
        raise WorkbenchError(
            f"{where}: sample {int(bad[0])} of x_{split} has padding inside the series. "
            f"Expected the padding ({PAD_VALUE:g}) at the end of each sample only"
        )
    moved = np.flatnonzero(~right.all(axis=1))
    if moved.size == 0:
        return x, 0
    x = x.copy()
    for i in moved:
        kept = x[i, steps[i]]
        x[i] = PAD_VALUE
        x[i, : len(kept)] = kept
    return x, int(moved.size)
