"""HyperModel: what one trial builds, from KerasTuner's hyperparameters (KerasTuner's
HyperModel builds, its Oracle chooses, its Tuner runs).

:func:`declare` puts a search space's dimensions on KerasTuner's ``HyperParameters``;
:class:`RecurrentHyperModel` builds and fits the model of one trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import keras_tuner as kt

from workbench.models import ModelConfig, ModelSignature, build_model
from workbench.search.config import batch_size_used
from workbench.spaces import Choice, Range, SearchSpace


def declare(space: SearchSpace, hp: Any) -> dict[str, Any]:
    """Declare the space's dimensions on a KerasTuner ``HyperParameters`` and return the values.

    ``clip_threshold`` only exists while ``clipping`` is ``norm`` or ``value``.
    """
    values: dict[str, Any] = {}
    for name, dim in space.dimensions:
        if name == "clip_threshold":
            continue
        values[name] = _declare_one(hp, name, dim)
    clipping = space["clipping"]
    clipped = [v for v in clipping.values if v != "none"]  # type: ignore[union-attr]
    if clipped:
        with hp.conditional_scope("clipping", clipped):
            threshold = _declare_one(hp, "clip_threshold", space["clip_threshold"])
        values["clip_threshold"] = threshold if values["clipping"] != "none" else None
    else:
        values["clip_threshold"] = None
    return values


def _declare_one(hp: Any, name: str, dim: Any) -> Any:
    if isinstance(dim, Choice):
        if dim.is_fixed:
            return hp.Fixed(name, dim.values[0])
        return hp.Choice(name, list(dim.values))
    if dim.is_fixed:
        return hp.Fixed(name, dim.low)
    if dim.integer:
        value = hp.Int(name, int(dim.low), int(dim.high), step=dim.step, sampling=dim.sampling)
        return round(value)
    return hp.Float(name, dim.low, dim.high, step=dim.step, sampling=dim.sampling)


def whole_numbers(space: SearchSpace, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with each integer range's value as an int: KerasTuner's grid hands a log
    range with a step its values as floats (8.0, 16.0), which Keras refuses as a batch size
    or epochs, and which the logs and run names would show as 8.0."""
    out = dict(values)
    for name, dim in space.dimensions:
        if isinstance(dim, Range) and dim.integer and isinstance(out.get(name), float):
            out[name] = round(out[name])
    return out


class RecurrentHyperModel(kt.HyperModel):
    """Builds one recurrent model per trial from the space and the task's signature.

    Training stops early when the objective has not improved for the space's ``patience``
    epochs (its ``epochs`` is the maximum); KerasTuner keeps the best epoch's weights.
    """

    def __init__(
        self,
        space: SearchSpace,
        signature: ModelSignature,
        objective: str,
        direction: str,
        policy: str = "float32",
        steps_per_execution: int = 1,
    ) -> None:
        super().__init__(name="recurrent")
        self.space = space
        self.signature = signature
        self.objective = objective
        self.direction = direction
        #: Keras' dtype policy of every model: ``float32`` or ``mixed_float16``.
        self.policy = policy
        #: Keras' training steps per call of the traced training function.
        self.steps_per_execution = steps_per_execution

    def build(self, hp: Any) -> keras.Model:
        # KerasTuner clears Keras' session (its global dtype policy too) before each build.
        keras.mixed_precision.set_global_policy(self.policy)
        config = ModelConfig.from_values(declare(self.space, hp))
        return build_model(config, self.signature, self.steps_per_execution)

    def fit(self, hp: Any, model: keras.Model, x: Any, *args: Any, **kwargs: Any) -> Any:
        values = whole_numbers(self.space, hp.values)
        # Hyperband passes its own epochs; the other tuners take the space's.
        kwargs.setdefault("epochs", values["epochs"])
        stop = keras.callbacks.EarlyStopping(
            monitor=self.objective, mode=self.direction, patience=values["patience"]
        )
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), stop]
        batch = batch_size_used(values["batch_size"], len(x))
        return model.fit(x, *args, batch_size=batch, **kwargs)
