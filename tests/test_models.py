"""Models: every cell x depth x direction x clipping builds with the Keras parameter counts."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import keras
import numpy as np
import pytest

from workbench.models import (
    ModelConfig,
    ModelSignature,
    build_model,
    cudnn_eligibility,
    expected_param_count,
    recurrent_macs,
)

FEATURES, STEPS = 3, 7
REGRESSION = ModelSignature(timesteps=STEPS, features=FEATURES, problem="regression", n_outputs=1)


def keras_formula(cell: str, depth: int, bidirectional: bool, units: int, head: int) -> int:
    """The published per-layer formulas (docs/references.md), written out independently."""
    total, width = 0, FEATURES
    for _ in range(depth):
        u, i = units, width
        layer = {
            "simple_rnn": u * (u + i) + u,
            "lstm": 4 * (u * (u + i) + u),
            "gru": 3 * (u * (u + i) + 2 * u),
        }[cell]
        total += layer * (2 if bidirectional else 1)
        width = units * (2 if bidirectional else 1)
    return total + width * head + head


COMBOS = list(
    itertools.product(
        ["simple_rnn", "lstm", "gru"], [1, 2, 3], [False, True], ["none", "norm", "value"]
    )
)


@pytest.mark.parametrize(("cell", "depth", "bidirectional", "clipping"), COMBOS)
def test_every_combination_builds_with_keras_parameter_count(
    cell: str, depth: int, bidirectional: bool, clipping: str
) -> None:
    config = ModelConfig(
        cell=cell,
        depth=depth,
        bidirectional=bidirectional,
        units=5,
        clipping=clipping,
        clip_threshold=None if clipping == "none" else 0.5,
    )
    model = build_model(config, REGRESSION)
    assert model.count_params() == keras_formula(cell, depth, bidirectional, 5, 1)
    assert expected_param_count(config, REGRESSION) == model.count_params()
    # Multiply-adds per step = the recurrent layers' kernel + recurrent_kernel sizes.
    kernels = sum(
        int(np.prod(w.shape))
        for w in model.weights
        if w.path.endswith(("/kernel", "/recurrent_kernel")) and "head" not in w.path
    )
    assert recurrent_macs(config, REGRESSION) == kernels
    assert model.output_shape == (None, 1)
    recurrent = [layer for layer in model.layers if cell in layer.name]
    assert len(recurrent) == depth
    # every layer but the last passes the whole sequence on
    for layer in recurrent[:-1]:
        assert len(layer.output.shape) == 3
    assert len(recurrent[-1].output.shape) == 2
    optimizer = model.optimizer
    assert optimizer.global_clipnorm == (0.5 if clipping == "norm" else None)
    assert optimizer.clipvalue == (0.5 if clipping == "value" else None)
    out = model.predict(np.zeros((2, STEPS, FEATURES), "float32"), verbose=0)
    assert out.shape == (2, 1)


def test_cudnn_eligibility_reported_per_cell() -> None:
    for cell, expected in (("lstm", "true"), ("gru", "true"), ("simple_rnn", "n/a")):
        model = build_model(ModelConfig(cell=cell, bidirectional=True, units=4), REGRESSION)
        assert cudnn_eligibility(model)[0] == expected


def test_cudnn_ineligible_layers_are_named() -> None:
    inputs = keras.Input((STEPS, FEATURES))
    x = keras.layers.GRU(4, recurrent_dropout=0.1, reset_after=False, name="slow_gru")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    status, reason = cudnn_eligibility(model)
    assert status == "false"
    assert "slow_gru: recurrent_dropout is 0 fails" in reason
    assert "slow_gru: reset_after is on fails" in reason


def test_classification_heads_and_masked_sequence_output() -> None:
    multi = ModelSignature(STEPS, FEATURES, problem="classification", n_outputs=4)
    model = build_model(ModelConfig(cell="gru", units=4), multi)
    assert model.layers[-1].activation.__name__ == "softmax" and model.output_shape == (None, 4)
    binary = ModelSignature(STEPS, FEATURES, problem="classification", n_outputs=2)
    model = build_model(ModelConfig(cell="lstm", units=4), binary)
    assert model.layers[-1].activation.__name__ == "sigmoid" and model.output_shape == (None, 1)
    ragged = ModelSignature(
        timesteps=None,
        features=FEATURES,
        problem="classification",
        n_outputs=3,
        sequence_output=True,
        masked=True,
    )
    model = build_model(ModelConfig(cell="gru", depth=2, units=4), ragged)
    assert model.layers[1].name == "mask"
    out = model.predict(np.zeros((2, 11, FEATURES), "float32"), verbose=0)
    assert out.shape == (2, 11, 3)


def test_dropout_sits_between_layers_never_recurrent() -> None:
    model = build_model(ModelConfig(cell="lstm", depth=2, units=4, dropout=0.2), REGRESSION)
    names = [layer.name for layer in model.layers]
    assert names.index("dropout_1") == names.index("lstm_1") + 1
    assert all(getattr(layer, "recurrent_dropout", 0) == 0 for layer in model.layers)


def test_bad_config_is_a_clear_error() -> None:
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="Expected a positive clip_threshold"):
        ModelConfig(cell="gru", clipping="norm")
    with pytest.raises(WorkbenchError, match="Received: cell='rnn'"):
        ModelConfig(cell="rnn")


def _text_signature(sequence_length: int) -> ModelSignature:
    from workbench.tasks import TextSettings

    text = TextSettings(("good", "bad", "coffee"), sequence_length, embedding_dim=3)
    return ModelSignature(sequence_length, 3, problem="classification", n_outputs=3, text=text)


def test_text_model_trains_on_token_ids_and_exports_on_strings() -> None:
    from workbench.models import text_vectorizer, with_text_input

    signature = _text_signature(6)
    config = ModelConfig(cell="gru", depth=2, bidirectional=True, units=4)
    model = build_model(config, signature)
    assert model.inputs[0].dtype == "int64" and tuple(model.inputs[0].shape) == (None, 6)
    embedding = 5 * 3  # (vocabulary + padding + [UNK]) x embedding size 3 (= FEATURES)
    assert model.count_params() == keras_formula("gru", 2, True, 4, 3) + embedding
    assert model.count_params() == expected_param_count(config, signature)
    assert cudnn_eligibility(model)[0] == "true"
    texts = np.array(["Good coffee!", "bad, BAD coffee", ""], dtype=object)
    vectorize = text_vectorizer(signature.text)
    assert vectorize.get_vocabulary() == ["", "[UNK]", "good", "bad", "coffee"]
    ids = np.asarray(vectorize(texts))
    assert ids.tolist()[:2] == [[2, 4, 0, 0, 0, 0], [3, 3, 4, 0, 0, 0]]
    on_strings = with_text_input(model, signature.text)
    assert on_strings.inputs[0].dtype == "string"
    assert on_strings.count_params() == model.count_params()
    np.testing.assert_allclose(
        on_strings.predict(texts[:2], verbose=0), model.predict(ids[:2], verbose=0), atol=1e-6
    )


def test_an_exported_text_model_reads_a_text_without_words_as_unknown(tmp_path: Path) -> None:
    from workbench.models import with_text_input
    from workbench.tasks.text import EMPTY_TEXT

    signature = _text_signature(5)
    model = build_model(ModelConfig(cell="lstm", units=4), signature)
    inference = keras.Model(model.input, model.output)  # as exported: no optimizer
    on_strings = with_text_input(inference, signature.text)
    on_strings.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True, compile=False)
    unknown = on_strings.predict(np.array([EMPTY_TEXT], dtype=object), verbose=0)
    # As the loader reads such a text for training and `workbench predict` reads it; an
    # MLflow server gave an all-padding sequence's output (and cuDNN refuses one).
    for reader in (on_strings, loaded):
        read = reader.predict(np.array(["", "!!", " ", "good"], dtype=object), verbose=0)
        np.testing.assert_allclose(read[:3], np.repeat(unknown, 3, axis=0), atol=1e-6)
        assert not np.allclose(read[3], unknown[0], atol=1e-6)


def test_the_loaders_stand_in_for_a_text_without_words_is_out_of_vocabulary() -> None:
    from workbench.models import text_vectorizer
    from workbench.search.inputs import token_ids
    from workbench.tasks import TaskData, TextSettings, fit_vocabulary, repair_texts

    # Many punctuation-only training texts: each became "[UNK]", which standardizes to the
    # word "unk", the most frequent word; training read them as its id, the exported model
    # (which puts id 1 in an empty row) and an MLflow server as out-of-vocabulary.
    texts, _ = repair_texts(np.array(["!!!", "???", "...", "good coffee", "unk"], dtype=object))
    vocabulary = fit_vocabulary(texts.tolist(), 10)
    assert "unk" not in vocabulary and vocabulary == ("coffee", "good")
    text = TextSettings(vocabulary, 4, 3)
    data = TaskData(
        name="t", problem="classification", n_outputs=2, x_train=texts,
        y_train=np.array([0, 0, 0, 1, 1]), x_val=texts[:1], y_val=np.array([0]), text=text,
    )  # fmt: skip
    trained_on = token_ids(data).x_train
    assert trained_on[:3].tolist() == [[1, 0, 0, 0]] * 3  # what the model's repair gives
    assert np.asarray(text_vectorizer(text)(np.array(["unk"]))).tolist() == [[1, 0, 0, 0]]


def test_text_padding_is_masked() -> None:
    """Padding to 12 tokens gives the same output as no padding: the recurrent layers skip it."""
    from workbench.models import with_text_input

    config = ModelConfig(cell="lstm", depth=2, bidirectional=True, units=4)
    keras.utils.set_random_seed(0)
    padded = build_model(config, _text_signature(12))
    exact = build_model(config, _text_signature(3))
    exact.set_weights(padded.get_weights())
    texts = np.array(["good bad coffee", "coffee coffee good"], dtype=object)
    np.testing.assert_allclose(
        with_text_input(padded, _text_signature(12).text).predict(texts, verbose=0),
        with_text_input(exact, _text_signature(3).text).predict(texts, verbose=0),
        atol=1e-6,
    )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_mean_readout_leaves_out_masked_steps(cell: str) -> None:
    """Mean over time with padding equals the mean without it; cuDNN eligibility stays."""
    from workbench.errors import WorkbenchError
    from workbench.tasks import PAD_VALUE

    config = ModelConfig(cell=cell, units=4, readout="mean")
    masked = ModelSignature(None, FEATURES, "regression", 1, masked=True, mask_value=PAD_VALUE)
    keras.utils.set_random_seed(0)
    model = build_model(config, masked)
    assert model.get_layer("readout_mean") is not None
    assert cudnn_eligibility(model)[0] == "true"
    rng = np.random.default_rng(0)
    short = rng.normal(size=(2, 3, FEATURES)).astype("float32")
    padded = np.concatenate([short, np.full((2, 4, FEATURES), PAD_VALUE, "float32")], axis=1)
    np.testing.assert_allclose(
        model.predict(padded, verbose=0), model.predict(short, verbose=0), atol=1e-5
    )
    with pytest.raises(WorkbenchError, match="readout max cannot leave out masked steps"):
        build_model(ModelConfig(cell=cell, units=4, readout="max"), masked)
    unmasked = build_model(ModelConfig(cell=cell, units=4, readout="max"), REGRESSION)
    assert unmasked.get_layer("readout_max") is not None


def test_inputs_are_scaled_inside_the_model_with_training_statistics() -> None:
    from workbench.tasks import PAD_VALUE, TaskData

    rng = np.random.default_rng(0)
    x = rng.normal(loc=50.0, scale=10.0, size=(40, 6, 2)).astype("float32")
    x[:5, 4:] = PAD_VALUE  # padding must not move the statistics
    y = rng.normal(size=(40, 1)).astype("float32")
    data = TaskData(
        name="t", problem="regression", n_outputs=1, x_train=x, y_train=y, x_val=x[:4],
        y_val=y[:4], masked=True, mask_value=PAD_VALUE,
    )
    signature = ModelSignature.from_task(data)
    real = x.reshape(-1, 2)[np.any(x.reshape(-1, 2) != PAD_VALUE, axis=1)]
    np.testing.assert_allclose(signature.feature_mean, real.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(signature.feature_std, real.std(axis=0), rtol=1e-5)
    model = build_model(ModelConfig(cell="gru", units=4), signature)
    scale = model.get_layer("scale_inputs")
    inner = keras.Model(model.inputs, scale.output)
    scaled = np.asarray(inner(x[5:10]))
    expected = (x[5:10] - real.mean(axis=0)) / real.std(axis=0)
    np.testing.assert_allclose(scaled, expected, rtol=1e-4, atol=1e-4)
    assert model.count_params() == expected_param_count(ModelConfig(cell="gru", units=4), signature)


def test_inputs_are_scaled_in_float32_under_mixed_precision() -> None:
    from workbench.search.runner import precision

    # A feature of std 1000: its variance (1e6) is inf in float16, which scaled it to zeros.
    signature = ModelSignature(
        timesteps=STEPS, features=1, problem="regression", n_outputs=1,
        feature_mean=(5000.0,), feature_std=(1000.0,),
    )  # fmt: skip
    x = np.linspace(3000.0, 7000.0, STEPS, dtype="float32").reshape(1, STEPS, 1)
    with precision(True):
        model = build_model(ModelConfig(cell="lstm", units=4), signature)
    scale = model.get_layer("scale_inputs")
    assert scale.compute_dtype == "float32"
    scaled = np.asarray(keras.Model(model.input, scale.output)(x))
    np.testing.assert_allclose(scaled, (x - 5000.0) / 1000.0, rtol=1e-5)
    assert np.isfinite(np.asarray(model(x))).all()
    # Padded series too: the mask before the scaling keeps float32 (in float16, 5000.3 is
    # 5000.0: the raw values lost their resolution before they were scaled).
    masked = dataclasses.replace(signature, masked=True, mask_value=-1000.0)
    with precision(True):
        model = build_model(ModelConfig(cell="lstm", units=4), masked)
    scale = model.get_layer("scale_inputs")
    fine = np.full((1, STEPS, 1), 5000.3, dtype="float32")
    scaled = np.asarray(keras.Model(model.input, scale.output)(fine))
    np.testing.assert_allclose(scaled, (fine - 5000.0) / 1000.0, rtol=1e-3)


@pytest.mark.parametrize(
    ("problem", "n_outputs", "sequence_output"),
    [("regression", 3, False), ("classification", 2, False), ("classification", 4, False),
     ("classification", 4, True)],
)  # fmt: skip
def test_test_metrics_from_one_prediction_match_keras_evaluate(
    problem: str, n_outputs: int, sequence_output: bool
) -> None:
    from workbench.tasks import test_metrics

    rng = np.random.default_rng(0)
    x = rng.normal(size=(70, 5, 2)).astype("float32")
    if problem == "regression":
        y = rng.normal(size=(70, n_outputs)).astype("float32")
    else:
        y = rng.integers(0, n_outputs, size=(70, 5) if sequence_output else (70,))
    signature = ModelSignature(
        5, 2, problem=problem, n_outputs=n_outputs, sequence_output=sequence_output
    )
    model = build_model(ModelConfig(cell="gru", units=4), signature)
    model.fit(x, y, epochs=1, verbose=0)  # not the initial weights' near-uniform outputs
    expected = model.evaluate(x, y, batch_size=256, verbose=0, return_dict=True)
    measured = test_metrics(problem, y, model.predict(x, verbose=0))
    assert measured.keys() == expected.keys()
    for name, value in expected.items():
        assert measured[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name

