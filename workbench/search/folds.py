"""The folds: cross-validation splits of train + validation, for small validation parts."""

from __future__ import annotations

from typing import Any

from workbench.tasks import TaskData


def fold_splits(data: TaskData, folds: int, seed: int) -> list[tuple[tuple[Any, Any], Any]]:
    """``folds`` seeded splits of train + validation: stratified by class for a
    classification task, plain K-fold otherwise. Each sample is validated on once."""
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    if data.problem == "classification" and not data.sequence_output:
        splitter: Any = StratifiedKFold(folds, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(len(y)), y.reshape(len(y), -1)[:, 0])
    else:
        parts = KFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)))
    return [((x[train], y[train]), (x[val], y[val])) for train, val in parts]
