"""The folds: cross-validation splits of train + validation, for small validation parts."""

from __future__ import annotations

from typing import Any

from workbench.errors import WorkbenchError
from workbench.tasks import TaskData


def fold_splits(data: TaskData, folds: int, seed: int) -> list[tuple[tuple[Any, Any], Any]]:
    """``folds`` splits of train + validation as arrays: ((x, y) to train on, (x, y) to
    validate on) per fold, cut as :func:`fold_indices` says."""
    import numpy as np

    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    parts = fold_indices(data, folds, seed)
    return [((x[train], y[train]), (x[val], y[val])) for train, val in parts]


def fold_baseline(data: TaskData, folds: int, seed: int) -> TaskData:
    """The task with its trivial baseline scored on the folds, where a task without a test
    part is scored by cross-validation: its trials' scores are fold means over train +
    validation, the baseline's was the validation part's alone (other samples, and from
    8 of them an outlier made a noise model look 5 times better). Unchanged otherwise, or
    where the baseline's rule fits nothing."""
    import dataclasses

    import numpy as np

    baseline = data.baseline
    if folds <= 1 or data.has_test or baseline is None or baseline.folded is None:
        return data
    y = np.concatenate([data.y_train, data.y_val])
    parts = [(y[train], y[held], held) for train, held in fold_indices(data, folds, seed)]
    return dataclasses.replace(data, baseline=baseline.folded(parts))


def fold_indices(data: TaskData, folds: int, seed: int) -> list[tuple[Any, Any]]:
    """``folds`` splits of train + validation. Time-ordered data (forecasting windows):
    rolling origins over the later half, cut into ``folds`` consecutive blocks; each fold
    validates on its block and trains on every earlier window whose targets end before
    the block's first target, so the first trains on about half the series (the inputs'
    scaling statistics are the task's, from its whole training part). Otherwise
    seeded and shuffled: stratified by class for a classification task, plain K-fold
    otherwise, each sample validated on once.

    Raises:
        WorkbenchError: a time-ordered series too short for ``folds`` rolling origins.
    """
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    y = np.concatenate([data.y_train, data.y_val])
    windows = len(y)
    if data.time_ordered:
        # A window predicts its next n_outputs steps: the last n_outputs - 1 windows before
        # a block would have targets inside it.
        gap = data.n_outputs - 1
        block = (windows - gap) // (2 * folds)
        if block < 1:
            raise WorkbenchError(
                f"Expected --folds at most {max((windows - gap) // 2, 1)} for {data.name}: "
                f"its {windows} training and validation windows in time order leave no "
                f"window to validate on in each of {folds} rolling origins. "
                f"Received: --folds {folds}"
            )
        parts = TimeSeriesSplit(folds, gap=gap, test_size=block).split(np.zeros(windows))
    elif data.problem == "classification" and not data.sequence_output:
        splitter: Any = StratifiedKFold(folds, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(len(y)), y.reshape(len(y), -1)[:, 0])
    else:
        if folds > windows:  # a fold validates on one sample at least
            raise WorkbenchError(
                f"Expected --folds at most {windows} for {data.name}: its {windows} "
                f"training and validation samples. Received: --folds {folds}"
            )
        parts = KFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)))
    return list(parts)

