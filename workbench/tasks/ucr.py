"""The UCR/UEA classification sets bundled with sktime, on their official splits."""

from __future__ import annotations

import numpy as np

from workbench.tasks.options import _choice, _fraction, _options, _require
from workbench.tasks.spec import PAD_VALUE, TaskData, TaskSpec, register_loader
from workbench.tasks.splits import (
    _encode_labels,
    _majority_baseline,
    _pad,
    _stratified_split,
    _subset,
)

#: The UCR/UEA data sets sktime ships in its own package (loaded offline, never downloaded).
SKTIME_BUNDLED = ("JapaneseVowels", "BasicMotions", "GunPoint", "ItalyPowerDemand", "UnitTest")


@register_loader("ucr")
def _load_ucr(spec: TaskSpec) -> TaskData:
    """A UCR/UEA classification data set bundled with sktime, with its official split.

    Validation is carved from the official training part (stratified, seeded); the
    official test part is the test split. Variable-length series are right-padded and masked.
    """
    opts = _options(spec, {"dataset": "", "val_fraction": 0.25, "limit": 0, "seed": 0})
    _choice(spec, opts, "dataset", SKTIME_BUNDLED)
    _fraction(spec, opts, "val_fraction")
    sktime_datasets = _require(spec, "sktime.datasets")
    name = opts["dataset"]
    parts = {}
    for split in ("train", "test"):
        frame, labels = sktime_datasets.load_UCR_UEA_dataset(
            name, split=split, return_type="nested_univ"
        )
        series = [
            np.stack([np.asarray(cell, dtype="float64") for cell in row], axis=-1)
            for row in frame.itertuples(index=False)
        ]
        parts[split] = (series, np.asarray(labels))
    (train_series, train_labels), (test_series, test_labels) = parts["train"], parts["test"]
    where = f"{spec.source} ({name})"
    (y_train_all, y_test), names = _encode_labels(where, train_labels, test_labels)
    rng = np.random.default_rng(opts["seed"])
    keep_train = _subset(y_train_all, opts["limit"], rng)
    keep_test = _subset(y_test, opts["limit"], rng)
    x_all, masked = _pad(train_series + test_series, where)
    x_train_all, x_test = x_all[: len(train_series)][keep_train], x_all[len(train_series) :]
    y_train_all, x_test, y_test = y_train_all[keep_train], x_test[keep_test], y_test[keep_test]
    train, val = _stratified_split(y_train_all, opts["val_fraction"], rng, where, names)
    return TaskData(
        name=spec.name,
        problem="classification",
        n_outputs=len(names),
        x_train=x_train_all[train],
        y_train=y_train_all[train],
        x_val=x_train_all[val],
        y_val=y_train_all[val],
        x_test=x_test,
        y_test=y_test,
        masked=masked,
        mask_value=PAD_VALUE if masked else 0.0,
        baseline=_majority_baseline(y_train_all[train], y_test, "test"),
        class_names=names,
        source=f"UCR/UEA archive: {name} (bundled with sktime)",
    )
