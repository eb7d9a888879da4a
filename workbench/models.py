"""Models: what to build, from plain values (no KerasTuner, no MLflow in here).

:func:`build_model` stacks (bi)directional recurrent layers over an optional
masking layer and puts a head fitting the task on top. A text task's model trains on
token ids (the input pipeline vectorizes the texts once, :func:`text_vectorizer`) and
starts with an ``Embedding`` whose padding mask reaches the recurrent layers;
:func:`with_text_input` puts the vectorizer in front for raw strings (the exported
model). LSTM and GRU layers are
kept eligible for the cuDNN kernel (tanh / sigmoid, no recurrent dropout, unroll
off, GRU ``reset_after``); :func:`cudnn_eligibility` says whether a built model is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.errors import WorkbenchError
from workbench.spaces import CELLS, CLIPPINGS, READOUTS

if TYPE_CHECKING:
    import keras

    from workbench.tasks import TaskData, TextSettings

_KERAS_CELLS = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
#: Gates per cell: the factor in front of the SimpleRNN parameter formula.
_GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}


@dataclass(frozen=True)
class ModelConfig:
    """One point of the search space, as plain values."""

    cell: str
    depth: int = 1
    bidirectional: bool = False
    units: int = 32
    dropout: float = 0.0
    clipping: str = "none"
    clip_threshold: float | None = None
    learning_rate: float = 1e-3
    #: What the head reads: the last state, or the mean or max over time of the last
    #: layer's outputs (masked steps excluded).
    readout: str = "last"

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise WorkbenchError(f"Expected cell in {CELLS}. Received: cell={self.cell!r}")
        if self.clipping not in CLIPPINGS:
            raise WorkbenchError(
                f"Expected clipping in {CLIPPINGS}. Received: clipping={self.clipping!r}"
            )
        if self.clipping != "none" and not (self.clip_threshold and self.clip_threshold > 0):
            raise WorkbenchError(
                "Expected a positive clip_threshold with clipping="
                f"{self.clipping!r}. Received: clip_threshold={self.clip_threshold!r}"
            )
        if self.readout not in READOUTS:
            raise WorkbenchError(
                f"Expected readout in {READOUTS}. Received: readout={self.readout!r}"
            )
        if self.depth < 1 or self.units < 1:
            raise WorkbenchError(
                f"Expected depth >= 1 and units >= 1. Received: depth={self.depth}, "
                f"units={self.units}"
            )

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ModelConfig:
        """Build from a mapping such as a trial's hyperparameter values (extra keys ignored)."""
        clipping = str(values.get("clipping", "none"))
        threshold = values.get("clip_threshold")
        return cls(
            cell=str(values["cell"]),
            depth=int(values.get("depth", 1)),
            bidirectional=_as_bool(values.get("bidirectional", False)),
            units=int(values.get("units", 32)),
            dropout=float(values.get("dropout", 0.0)),
            clipping=clipping,
            clip_threshold=None if clipping == "none" or threshold is None else float(threshold),
            learning_rate=float(values.get("learning_rate", 1e-3)),
            readout=str(values.get("readout") or "last"),
        )


@dataclass(frozen=True)
class ModelSignature:
    """What the model's input and head must fit: taken from a task's data."""

    timesteps: int | None
    features: int
    problem: str  # "classification" or "regression"
    n_outputs: int
    sequence_output: bool = False
    masked: bool = False
    mask_value: float = 0.0
    #: A text task: the model takes token ids; ``timesteps``/``features`` are then the
    #: sequence length and the embedding size the recurrent layers see.
    text: TextSettings | None = None
    #: Per-feature mean and standard deviation of the training inputs (padding left out):
    #: a ``Normalization`` layer inside the model scales raw inputs with them. None for
    #: text and for tasks whose loader already scaled the inputs (forecasting).
    feature_mean: tuple[float, ...] | None = None
    feature_std: tuple[float, ...] | None = None

    @classmethod
    def from_task(cls, data: TaskData) -> ModelSignature:
        timesteps, features = data.input_shape
        mean = std = None
        if data.text is None and data.input_scale is None:
            x = np.asarray(data.x_train, dtype="float64")
            steps = x.reshape(-1, x.shape[-1])
            if data.masked:
                steps = steps[np.any(steps != data.mask_value, axis=1)]
            deviation = steps.std(axis=0)
            mean = tuple(float(v) for v in steps.mean(axis=0))
            std = tuple(float(v) if v > 0 else 1.0 for v in deviation)
        return cls(
            timesteps=timesteps,
            features=features,
            problem=data.problem,
            n_outputs=data.n_outputs,
            sequence_output=data.sequence_output,
            masked=data.masked,
            mask_value=data.mask_value,
            text=data.text,
            feature_mean=mean,
            feature_std=std,
        )

    @property
    def binary(self) -> bool:
        return self.problem == "classification" and self.n_outputs == 2

    @property
    def head_units(self) -> int:
        return 1 if self.binary else self.n_outputs


def build_model(
    config: ModelConfig, signature: ModelSignature, steps_per_execution: int = 1
) -> keras.Model:
    """Build and compile the recurrent model for one configuration.

    Classification heads are softmax (sigmoid for two classes) with cross-entropy and
    accuracy; regression heads are linear with mean squared error. With
    ``signature.sequence_output`` every time step gets a prediction. A text signature
    starts from one sequence of token ids per sample (``TextVectorization``'s output, see
    :func:`text_vectorizer`) and an ``Embedding(mask_zero=True)``: the padding id 0 is
    masked, so the recurrent layers skip it and, padding being on the right, LSTM/GRU keep
    the cuDNN kernel. ``steps_per_execution`` is Keras' (training steps per call of the
    traced function): how the model runs, not what it learns.
    """
    import keras

    if signature.text is not None:
        text = signature.text
        inputs = keras.Input(shape=(text.sequence_length,), dtype="int64", name="tokens")
        x = keras.layers.Embedding(
            text.vocab_size, text.embedding_dim, mask_zero=True, name="embed"
        )(inputs)
    else:
        inputs = keras.Input(shape=(signature.timesteps, signature.features), name="series")
        x = inputs
    if signature.masked:
        # float32 under mixed precision too: in float16 the raw values lose their resolution
        # (and a value near the pad value would be masked) before the scaling sees them.
        x = keras.layers.Masking(mask_value=signature.mask_value, name="mask", dtype="float32")(x)
    if signature.feature_mean is not None:
        # After the mask: padded steps stay masked whatever the scaling makes of them.
        # float32 under mixed precision too: a variance above 65504 is inf in float16, and
        # the feature would come out as all zeros.
        x = keras.layers.Normalization(
            mean=list(signature.feature_mean),
            variance=[v * v for v in signature.feature_std or ()],
            name="scale_inputs",
            dtype="float32",
        )(x)
    pooled = config.readout != "last" and not signature.sequence_output
    if pooled and config.readout == "max" and (signature.masked or signature.text is not None):
        raise WorkbenchError(
            "readout max cannot leave out masked steps (Keras' GlobalMaxPooling1D ignores "
            "masks). Expected readout last or mean for a task with padded sequences"
        )
    layer_cls = getattr(keras.layers, _KERAS_CELLS[config.cell])
    for index in range(config.depth):
        last = index == config.depth - 1
        recurrent = layer_cls(
            config.units,
            return_sequences=signature.sequence_output or not last or pooled,
            name=f"{config.cell}_{index + 1}",
        )
        if config.bidirectional:
            recurrent = keras.layers.Bidirectional(recurrent, name=f"bi_{config.cell}_{index + 1}")
        x = recurrent(x)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{index + 1}")(x)
    if pooled:
        pooling = (
            keras.layers.GlobalAveragePooling1D
            if config.readout == "mean"
            else keras.layers.GlobalMaxPooling1D
        )
        x = pooling(name=f"readout_{config.readout}")(x)  # the mean leaves out masked steps
    if signature.problem == "classification":
        activation = "sigmoid" if signature.binary else "softmax"
        loss = "binary_crossentropy" if signature.binary else "sparse_categorical_crossentropy"
        metrics = ["accuracy"]
    else:
        activation, loss, metrics = "linear", "mse", ["mse"]
    # float32 even under mixed precision: the softmax and the loss stay numerically safe.
    outputs = keras.layers.Dense(
        signature.head_units, activation=activation, name="head", dtype="float32"
    )(x)
    model = keras.Model(inputs, outputs, name=f"{config.cell}_x{config.depth}")
    model.compile(
        optimizer=make_optimizer(config),
        loss=loss,
        metrics=metrics,
        steps_per_execution=steps_per_execution,
        # Keras' "auto" turns XLA on with a GPU for every model but one whose LSTM/GRU runs
        # on cuDNN: SimpleRNN trials would be timed under another compiler than the rest.
        jit_compile=False,
    )
    return model


def text_vectorizer(text: TextSettings) -> keras.layers.TextVectorization:
    """Strings to token ids: the task's fixed vocabulary (fitted on the training texts by
    the loader, never per trial), every text right-padded with 0 (or cut) to
    ``sequence_length`` tokens; 1 is ``[UNK]``."""
    import keras

    return keras.layers.TextVectorization(
        vocabulary=list(text.vocabulary),
        output_mode="int",
        output_sequence_length=text.sequence_length,
        name="vectorize",
    )


def with_text_input(model: keras.Model, text: TextSettings) -> keras.Model:
    """``model`` (built for token ids) behind :func:`text_vectorizer`: one raw string per
    sample in, the same outputs (what an exported text model takes).

    A text with no token (empty, or punctuation only) reads as one ``[UNK]``, as the
    loader reads it for training: an all-padding sequence has no step to read, and cuDNN
    refuses it on a GPU. In the model, so an MLflow server or pyfunc caller gets the same
    answer as ``workbench predict``.
    """
    import keras

    inputs = keras.Input(shape=(), dtype="string", name="text")
    ids = text_vectorizer(text)(inputs)
    empty = keras.ops.all(keras.ops.equal(ids, 0), axis=1, keepdims=True)
    # 1 ([UNK]) at the first step of an empty row, 0 elsewhere.
    unknown = keras.ops.pad(
        keras.ops.cast(empty, ids.dtype), [[0, 0], [0, text.sequence_length - 1]]
    )
    return keras.Model(inputs, model(keras.ops.add(ids, unknown)), name=model.name)


def make_optimizer(config: ModelConfig) -> keras.optimizers.Optimizer:
    """Adam with the configuration's clipping.

    ``norm`` clips the global gradient norm (Pascanu et al. 2013), ``value`` clips each
    gradient element to ``[-threshold, threshold]``.
    """
    import keras

    kwargs: dict[str, float] = {}
    if config.clipping == "norm":
        kwargs["global_clipnorm"] = float(config.clip_threshold)  # type: ignore[arg-type]
    elif config.clipping == "value":
        kwargs["clipvalue"] = float(config.clip_threshold)  # type: ignore[arg-type]
    return keras.optimizers.Adam(learning_rate=config.learning_rate, **kwargs)


def expected_param_count(config: ModelConfig, signature: ModelSignature) -> int:
    """Trainable parameters by the Keras formulas (input size i, units u).

    SimpleRNN ``u(u+i)+u``; LSTM ``4(u(u+i)+u)``; GRU with ``reset_after``
    ``3(u(u+i)+2u)``; Bidirectional doubles; plus the dense head; for text, plus the
    embedding table (vocabulary size x embedding size).
    """
    u = config.units
    total = signature.text.vocab_size * signature.text.embedding_dim if signature.text else 0
    width = signature.features
    for _ in range(config.depth):
        bias = 2 * u if config.cell == "gru" else u
        layer = _GATES[config.cell] * (u * (u + width) + bias)
        directions = 2 if config.bidirectional else 1
        total += directions * layer
        width = directions * u
    return total + width * signature.head_units + signature.head_units


def recurrent_macs(config: ModelConfig, signature: ModelSignature) -> int:
    """Multiply-adds of the recurrent layers per time step (one sample, forward pass).

    Each gate multiplies the layer's input (width ``i``) and its state (``u``) by a weight
    matrix: ``gates * u * (i + u)`` per direction and layer (SimpleRNN 1 gate, LSTM 4,
    GRU 3), i.e. the sizes of Keras' ``kernel`` and ``recurrent_kernel``. Unlike the
    parameter count it leaves out biases, the head and a text model's embedding table,
    which cost no multiply-adds per step.
    """
    u = config.units
    width = signature.features
    total = 0
    for _ in range(config.depth):
        directions = 2 if config.bidirectional else 1
        total += directions * _GATES[config.cell] * u * (width + u)
        width = directions * u
    return total


def cudnn_eligibility(model: keras.Model) -> tuple[str, str]:
    """Whether the model's LSTM/GRU layers can run on the cuDNN kernel.

    Returns ``("true"|"false"|"n/a", reason)``; ``n/a`` when the model has no LSTM or
    GRU layer (SimpleRNN has no cuDNN kernel in Keras).
    """
    import keras

    problems: list[str] = []
    layers = gated_layers(model)
    for layer in layers:
        cell = layer.cell
        checks = {
            "activation is tanh": cell.activation is keras.activations.tanh,
            "recurrent_activation is sigmoid": cell.recurrent_activation
            is keras.activations.sigmoid,
            "recurrent_dropout is 0": not cell.recurrent_dropout,
            "unroll is off": not layer.unroll,
            "use_bias is on": cell.use_bias,
            "use_cudnn is not False": getattr(layer, "use_cudnn", "auto") is not False,
        }
        if isinstance(layer, keras.layers.GRU):
            checks["reset_after is on"] = cell.reset_after
        problems += [f"{layer.name}: {name} fails" for name, ok in checks.items() if not ok]
    if not layers:
        return "n/a", "no LSTM or GRU layer"
    if problems:
        return "false", "; ".join(problems)
    return "true", "all LSTM/GRU layers meet the cuDNN conditions"


def gated_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's LSTM and GRU layers, each direction of a ``Bidirectional`` apart: the
    layers that may run on cuDNN, one kernel call each."""
    import keras

    found = []
    for layer in model.layers:
        if hasattr(layer, "forward_layer"):  # Bidirectional wraps two RNN layers
            found += [layer.forward_layer, layer.backward_layer]
        else:
            found.append(layer)
    return [layer for layer in found if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU))]


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)
