"""Inputs: a text task's texts become the token ids its models train on, once."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.models import text_vectorizer
from workbench.search import inputs
from workbench.tasks import TaskData, TextSettings

TEXT = TextSettings(("good", "bad", "coffee"), sequence_length=4, embedding_dim=3)


def _text_data() -> TaskData:
    texts = np.array(["Good coffee!", "bad, BAD", "", "tea", "coffee good bad coffee good"])
    return TaskData(
        name="reviews",
        problem="classification",
        n_outputs=2,
        x_train=texts.astype(object),
        y_train=np.array([1, 0, 0, 1, 1]),
        x_val=texts[:2].astype(object),
        y_val=np.array([1, 0]),
        text=TEXT,
    )


def test_texts_become_the_vectorizers_token_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "_CHUNK", 2)  # three chunks: the same ids as one call
    data = _text_data()
    ids = inputs.token_ids(data)
    assert ids.x_train.dtype == np.int64 and ids.x_train.shape == (5, 4)
    assert ids.x_train.tolist() == np.asarray(text_vectorizer(TEXT)(data.x_train)).tolist()
    assert ids.x_train.tolist()[:4] == [[2, 4, 0, 0], [3, 3, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    assert ids.x_train[4].tolist() == [4, 2, 3, 4]  # cut to sequence_length
    assert ids.x_val.tolist() == ids.x_train[:2].tolist() and ids.x_test is None
    assert ids.text == TEXT and ids.y_train is data.y_train
    assert inputs.token_ids(ids) is ids  # already ids: unchanged


def test_other_tasks_are_unchanged() -> None:
    x = np.zeros((3, 5, 2), dtype="float32")
    data = TaskData("series", "regression", 1, x, np.zeros(3), x, np.zeros(3))
    assert inputs.token_ids(data) is data
