"""Inputs: the arrays a search trains on, made from a task's data once, before the trials.

A text task's models train on token ids, not strings: the texts go through the task's
``TextVectorization`` here, once per search, instead of inside every training step of
every trial (string operations run on the CPU; inside the model they would hold a GPU's
step on the host). The exported model keeps the vectorizer inside and takes raw strings
(:func:`workbench.models.with_text_input`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from workbench.tasks import TaskData

#: Texts vectorized per call: bounds the memory of the string tensors.
_CHUNK = 4096


def token_ids(data: TaskData) -> TaskData:
    """For a text task, ``data`` with each ``x_*`` as int64 token ids of shape
    ``(samples, sequence_length)``; any other task's data unchanged."""
    if data.text is None or data.x_train.dtype.kind not in "OUS":
        return data
    from workbench.models import text_vectorizer

    vectorize = text_vectorizer(data.text)

    def ids(texts: np.ndarray | None) -> np.ndarray | None:
        if texts is None:
            return None
        texts = np.asarray(texts, dtype=object)
        parts = [
            np.asarray(vectorize(texts[start : start + _CHUNK]), dtype="int64")
            for start in range(0, len(texts), _CHUNK)
        ]
        if not parts:
            return np.zeros((0, data.text.sequence_length), dtype="int64")  # type: ignore[union-attr]
        return np.concatenate(parts)

    return dataclasses.replace(
        data, x_train=ids(data.x_train), x_val=ids(data.x_val), x_test=ids(data.x_test)
    )
