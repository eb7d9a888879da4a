"""The folds: cross-validation splits of train + validation, for small validation parts."""

from __future__ import annotations

from typing import Any

from workbench.errors import WorkbenchError
from workbench.tasks import TaskData


def fold_splits(data: TaskData, folds: int, seed: int) -> list[tuple[tuple[Any, Any], Any]]:
    """``folds`` splits of train + validation. Time-ordered data (forecasting windows):
    rolling origins over the later half, cut into ``folds`` consecutive blocks; each fold
    validates on its block and trains on every earlier window whose targets end before
    the block's first target, so the first trains on about half the series. Otherwise
    seeded and shuffled: stratified by class for a classification task, plain K-fold
    otherwise, each sample validated on once.

    Raises:
        WorkbenchError: a time-ordered series too short for ``folds`` rolling origins.
    """
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    if data.time_ordered:
        # A window predicts its next n_outputs steps: the last n_outputs - 1 windows before
        # a block would have targets inside it.
        gap = data.n_outputs - 1
        block = (len(x) - gap) // (2 * folds)
        if block < 1:
            raise WorkbenchError(
                f"Expected --folds at most {max((len(x) - gap) // 2, 1)} for {data.name}: "
                f"its {len(x)} training and validation windows in time order leave no "
                f"window to validate on in each of {folds} rolling origins. "
                f"Received: --folds {folds}"
            )
        parts = TimeSeriesSplit(folds, gap=gap, test_size=block).split(x)
    elif data.problem == "classification" and not data.sequence_output:
        splitter: Any = StratifiedKFold(folds, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(len(y)), y.reshape(len(y), -1)[:, 0])
    else:
        parts = KFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)))
    return [((x[train], y[train]), (x[val], y[val])) for train, val in parts]

