"""Masks that cuDNN accepts, checked on CPU with the functions Keras' cuDNN path calls.

On a GPU, Keras runs LSTM/GRU through cuDNN and asserts at run time that every mask is
right-padded and that no sample is fully masked; on a CPU that assertion never runs. Here
the same check (``keras.src.backend.tensorflow.rnn._assert_valid_mask``) runs over the
masks of every built-in task that has one and over the edge cases the loaders repair or
refuse, so a mask the GPU would reject fails here first.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.tasks import PAD_VALUE, TaskData, load_task, repair_texts


def _assert_cudnn_accepts(mask: np.ndarray) -> None:
    import tensorflow as tf
    from keras.src.backend.tensorflow.rnn import _assert_valid_mask

    _assert_valid_mask(tf.constant(mask, dtype=tf.bool))  # raises InvalidArgumentError


def _masks(data: TaskData) -> list[np.ndarray]:
    """The masks the model's first recurrent layer sees for each part of the data."""
    parts = [data.x_train, data.x_val] + ([data.x_test] if data.has_test else [])
    if data.text is not None:
        from workbench.models import text_vectorizer

        vectorize = text_vectorizer(data.text)
        return [np.asarray(vectorize(np.asarray(part, dtype=object))) != 0 for part in parts]
    return [np.any(part != PAD_VALUE, axis=-1) for part in parts]


def test_the_check_rejects_what_cudnn_rejects() -> None:
    import tensorflow as tf

    _assert_cudnn_accepts(np.array([[True, True, False], [True, False, False]]))
    for bad in ([[False, True, True]], [[True, False, True]], [[False, False, False]]):
        with pytest.raises(tf.errors.InvalidArgumentError):
            _assert_cudnn_accepts(np.array(bad))


@pytest.mark.parametrize("name", ["japanese_vowels", "bbc_news", "fine_food_reviews"])
def test_builtin_masks_are_right_padded_and_never_empty(
    name: str, builtin_tiny_options: dict[str, dict]
) -> None:
    data = load_task(name).with_options(**builtin_tiny_options[name]).load()
    assert data.masked or data.text is not None
    for mask in _masks(data):
        _assert_cudnn_accepts(mask)


def _npz(tmp_path: Path, x_train: np.ndarray) -> Path:
    path = tmp_path / "series.npz"
    rng = np.random.default_rng(0)
    x_val = rng.normal(size=(4,) + x_train.shape[1:]).astype("float32")
    np.savez(path, x_train=x_train, y_train=np.arange(len(x_train)) % 2,
             x_val=x_val, y_val=np.arange(4) % 2)
    task = tmp_path / "series.yaml"
    task.write_text(f"name: series\nloader: npz\noptions: {{path: {path.name}}}\n")
    return task


def test_left_padding_is_moved_right_with_a_note(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 5, 2)).astype("float32")
    x[0, :2] = PAD_VALUE  # left-padded, as keras' pad_sequences pads by default
    x[1, 3:] = PAD_VALUE  # already right-padded
    data = load_task(_npz(tmp_path, x)).load()
    for mask in _masks(data):
        _assert_cudnn_accepts(mask)
    moved = [i for i in range(len(data.x_train)) if np.allclose(data.x_train[i, :3], x[0, 2:])]
    assert moved and np.all(data.x_train[moved[0], 3:] == PAD_VALUE)
    assert any("left padding" in note and "1 sample" in note for note in data.notes)


@pytest.mark.parametrize(
    ("where", "message"),
    [(slice(0, 5), "sample 0 of x_train is all padding"), (slice(2, 3), "padding inside")],
)
def test_padding_cudnn_cannot_take_is_refused(tmp_path: Path, where: slice, message: str) -> None:
    x = np.random.default_rng(2).normal(size=(6, 5, 2)).astype("float32")
    x[0, where] = PAD_VALUE
    with pytest.raises(WorkbenchError, match=message):
        load_task(_npz(tmp_path, x)).load()


def test_a_text_empty_after_standardization_becomes_one_unknown_token(tmp_path: Path) -> None:
    rows = ["review,stars"] + [f"great tasty coffee {i},5" for i in range(12)]
    rows += [f"awful stale coffee {i},1" for i in range(12)] + ['"!!!",1', '"  ?? ",5']
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(rows) + "\n")
    task = tmp_path / "reviews.yaml"
    task.write_text(
        textwrap.dedent(
            f"""\
            name: reviews
            loader: csv_text
            options: {{path: {path.name}, text_column: review, label_column: stars,
                       vocab_size: 50, sequence_length: 6, embedding_dim: 4,
                       val_fraction: 0.2, test_fraction: 0.2}}
            """
        )
    )
    data = load_task(task).load()
    for mask in _masks(data):
        _assert_cudnn_accepts(mask)
    assert any("2 texts" in note and "[UNK]" in note for note in data.notes)
    assert list(repair_texts(np.array(["", "!!!", "Good."], dtype=object))[0]) == [
        "[UNK]",
        "[UNK]",
        "Good.",
    ]
