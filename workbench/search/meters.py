"""Meters: what a trial measures while it trains (epoch metrics, time, memory, divergence).

:class:`TrialMeter` is a Keras callback. It hands each epoch's metrics to a sink
(the tracking run and the progress display), times epochs, measures peak memory
and stops a trial the moment its loss stops being finite. With repeats (the same
configuration trained several times) it keeps each repeat's epochs apart.

:class:`GradientProbe` is a Keras callback that measures gradient health on a fixed
probe batch at each epoch end: the global gradient norm before clipping, whether the
clipping would act, and the loss gradient with respect to early and late time steps.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np

from workbench.search import stopping
from workbench.search.backend import quiet_retracing
from workbench.search.config import best_of

#: The per-epoch metrics :class:`GradientProbe` adds to the epoch's logs.
PROBE_KEYS = ("grad_norm", "grad_clipped", "grad_input_early", "grad_input_late")


class Diverged(Exception):
    """The training loss became NaN or infinite."""

    def __init__(
        self, epoch: int, loss: float, repeat: int | None = None, fold: int | None = None
    ) -> None:
        where = f"epoch {epoch}" if repeat is None else f"epoch {epoch} of repeat {repeat}"
        where += "" if fold is None else f", fold {fold}"
        super().__init__(f"loss became {loss} at {where}")
        self.epoch = epoch
        self.loss = loss
        self.repeat = repeat
        self.fold = fold


class PeakMemory:
    """Peak memory of one trial, in MB.

    On a GPU: TensorFlow's peak allocation on ``GPU:0`` (reset at the start) above what
    was allocated then (earlier trials' leftovers are not this trial's); an allocator that
    cannot reset its statistics gives no figure. On a CPU: the highest resident set size
    while training minus the size at the start. On Linux the kernel keeps that peak
    (``VmHWM``); resetting it at the start (writing 5 to ``/proc/self/clear_refs``) makes it
    the trial's, exact and at no cost while training. Where the reset is refused, a thread
    samples ``/proc/self/statm`` every 20 ms instead (a peak shorter than that can be
    missed). Either way an honest upper bound for what the trial added, not an allocator
    figure.
    """

    def __init__(self) -> None:
        self.kind = "n/a"
        self._gpu = False
        self._high_water = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_rss = 0
        self._peak_rss = 0
        self._start_gpu = 0

    def start(self) -> None:
        import tensorflow as tf

        self._gpu = bool(tf.config.list_logical_devices("GPU"))
        if self._gpu:
            try:
                tf.config.experimental.reset_memory_stats("GPU:0")
                self._start_gpu = tf.config.experimental.get_memory_info("GPU:0")["current"]
            except (ValueError, RuntimeError, tf.errors.OpError):  # e.g. cuda_malloc_async
                self._gpu = False
                return
            self.kind = "gpu_peak"
            return
        if not os.path.exists("/proc/self/statm"):
            return
        self.kind = "rss_increase"
        self._start_rss = self._peak_rss = _rss_bytes()
        self._high_water = _reset_high_water()
        if self._high_water:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> float | None:
        if self._gpu:
            import tensorflow as tf

            try:
                peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
            except (ValueError, RuntimeError, tf.errors.OpError):
                return None
            return max(0, peak - self._start_gpu) / 2**20
        if self._high_water:
            self._high_water = False
            peak = _high_water_bytes()
            if peak is not None:
                return max(0, peak - self._start_rss) / 2**20
            return None
        if self._thread is None:
            return None
        self._stop.set()
        self._thread.join()
        self._thread = None
        return max(0, self._peak_rss - self._start_rss) / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._peak_rss = max(self._peak_rss, _rss_bytes())


def _reset_high_water() -> bool:
    """Reset the process's peak resident set size to the current one (Linux 4.0+)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return _high_water_bytes() is not None


def _high_water_bytes() -> int | None:
    """The process's peak resident set size since the last reset (``VmHWM``), or None."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _best(history: list[dict[str, float]], key: str, direction: str) -> float | None:
    return best_of((h[key] for h in history if key in h and math.isfinite(h[key])), direction)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class TrialMeter(keras.callbacks.Callback):
    """Measures one trial; shared across executions (deep copies return the same meter).

    ``epoch_seconds`` (and :meth:`mean_epoch_seconds`) leave out the gradient probe's time
    and each fit's first epoch, which traces the training step.

    Args:
        on_epoch: called with ``(epoch, metrics)`` after every epoch.
        keys: the metric names to pass on (e.g. ``loss``, ``val_loss``, ``mse``).
        probe: the trial's :class:`GradientProbe`, whose time is not training time.
    """

    def __init__(
        self,
        on_epoch: Callable[[int, Mapping[str, float]], None],
        keys: tuple[str, ...],
        probe: GradientProbe | None = None,
    ):
        super().__init__()
        self._probe = probe
        self._probe_seconds = 0.0
        #: Seconds of each epoch after a fit's first (tracing) one, probe time left out.
        self.steady_epoch_seconds: list[float] = []
        self._on_epoch = on_epoch
        self._keys = keys
        self.epoch_seconds: list[float] = []
        self.fit_seconds = 0.0
        self.history: list[dict[str, float]] = []
        #: One list of epoch metrics per repeat (``fit`` call) seen so far.
        self.repeats: list[list[dict[str, float]]] = []
        self.peak_memory_mb: float | None = None
        self._memory = PeakMemory()
        self._epoch = 0
        self._t_fit: float | None = None
        self._t_epoch = 0.0

    def __deepcopy__(self, memo: dict[int, Any]) -> TrialMeter:
        # KerasTuner deep-copies callbacks per execution; one meter must see them all.
        return self

    @property
    def memory_kind(self) -> str:
        return self._memory.kind

    @property
    def repeat(self) -> int:
        """The index of the repeat training now (or last trained), from 0."""
        return max(0, len(self.repeats) - 1)

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self.repeats.append([])
        self._t_fit = time.perf_counter()
        self._memory.start()

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._probe_seconds = self._probe.seconds if self._probe else 0.0
        self._t_epoch = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        stopping.check()
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise Diverged(self._epoch, float(loss))

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        probed = (self._probe.seconds if self._probe else 0.0) - self._probe_seconds
        seconds = time.perf_counter() - self._t_epoch - probed
        self.epoch_seconds.append(seconds)
        if epoch > 0:
            self.steady_epoch_seconds.append(seconds)
        metrics = {k: float(v) for k, v in (logs or {}).items() if k in self._keys}
        self.history.append(metrics)
        if not self.repeats:  # used outside fit()'s train-begin/end pairing
            self.repeats.append([])
        self.repeats[-1].append(metrics)
        self._on_epoch(epoch, metrics)
        stopping.check()
        for key in ("loss", "val_loss"):
            if key in metrics and not math.isfinite(metrics[key]):
                raise Diverged(epoch, metrics[key])

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        peak = self.stop_memory()
        if peak is not None:
            self.peak_memory_mb = max(self.peak_memory_mb or 0.0, peak)

    def repeat_bests(self, key: str, direction: str) -> list[float | None]:
        """Per repeat, the best value of ``key`` over its epochs (None: no finite value)."""
        return [_best(epochs, key, direction) for epochs in self.repeats]

    def mean_epoch_seconds(self) -> float | None:
        """Mean seconds per epoch without the probe and the first (tracing) epoch of each fit;
        all epochs when no fit ran more than one."""
        seconds = self.steady_epoch_seconds or self.epoch_seconds
        return statistics.fmean(seconds) if seconds else None

    def stop_memory(self) -> float | None:
        """Stop the fit's clock (into ``fit_seconds``) and memory sampling: at a fit's end,
        or an exception's; the fit's peak memory in MB, if measured."""
        if self._t_fit is not None:
            self.fit_seconds += time.perf_counter() - self._t_fit
            self._t_fit = None
        return self._memory.stop()


def _improved(logs: Any, objective: str, direction: str, best: float | None) -> float | None:
    """The epoch's ``objective`` if finite and strictly better than ``best``, else None."""
    value = float((logs or {}).get(objective, math.nan))
    if not math.isfinite(value):
        return None
    return value if best is None or (value < best if direction == "min" else value > best) else None


class BestEpoch(keras.callbacks.Callback):
    """The best epoch's weights over all of a trial's fits, kept in memory.

    The rule of KerasTuner's ``SaveBestEpoch``, which it replaces (that one writes the
    weights file at every better epoch, inside training; the trial writes this one's
    weights once, when it ends): only a strictly better objective replaces them, so they
    come from the first fit that reached the best. :meth:`restore` puts them back into
    that fit's own model, whose functions are already traced: evaluating it on test costs
    no rebuild, no reload and no new trace. KerasTuner's deep copies of the callback
    return this one.
    """

    def __init__(self, objective: str, direction: str) -> None:
        super().__init__()
        self.objective = objective
        self.direction = direction
        self.value: float | None = None
        #: The best epoch's index in its fit (from 0): its weights trained ``epoch + 1`` epochs.
        self.epoch: int | None = None
        self._weights: list[Any] | None = None
        self._model: Any = None

    def __deepcopy__(self, memo: dict[int, Any]) -> BestEpoch:
        return self

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = _improved(logs, self.objective, self.direction, self.value)
        if value is not None:
            self.value = value
            self.epoch = epoch
            self._weights = self.model.get_weights()
            self._model = self.model

    def restore(self) -> Any:
        """The model of the best fit with its best epoch's weights; None if none was seen."""
        if self._model is None:
            return None
        self._model.set_weights(self._weights)
        return self._model


class TestOutputs(keras.callbacks.Callback):
    """Each fit's outputs on the test part, at that fit's own best epoch (BestEpoch's rule).

    With repeats or folds a trial's test score is the mean over its models, as on validation
    (the best fit's alone favours the cell whose seeds vary most); the kept weights' among them.
    """

    def __init__(self, objective: str, direction: str, x: Any) -> None:
        super().__init__()
        self.objective = objective
        self.direction = direction
        self.x = x
        #: One array per fit that reached a finite objective, in the order they trained.
        self.outputs: list[np.ndarray] = []
        self._value, self._weights = None, None

    def __deepcopy__(self, memo: dict[int, Any]) -> TestOutputs:
        return self

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._value, self._weights = None, None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = _improved(logs, self.objective, self.direction, self._value)
        if value is not None:
            self._value, self._weights = value, self.model.get_weights()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._weights is None:  # no finite epoch: the trial fails as diverged
            return
        last = self.model.get_weights()
        self.model.set_weights(self._weights)
        with quiet_retracing():  # each fit is a new model: one trace each, not a fault
            self.outputs.append(self.model.predict(self.x, batch_size=256, verbose=0))
        self.model.set_weights(last)
        self._weights = None


class GradientProbe(keras.callbacks.Callback):
    """Gradient health at each epoch end, on one fixed probe batch.

    Adds to the epoch's logs (so the :class:`TrialMeter` after it, and the History, see
    them):

    - ``grad_norm``: the global L2 norm of the loss gradient over all trainable weights,
      before any clipping (the quantity ``global_clipnorm`` clips).
    - ``grad_clipped``: with a global-norm clip (``global_clipnorm``), 1.0 when
      ``grad_norm`` is above the threshold, else 0.0; with a per-element clip
      (``clipvalue``), the fraction of gradient elements above it in absolute value; with
      a per-variable clip (``clipnorm``), the fraction of variables whose norm is above
      it; 0.0 without clipping. Read from the model's optimizer.
    - ``grad_input_early`` / ``grad_input_late``: the L2 norm of the loss gradient with
      respect to the inputs of the first / last quarter of the time steps (at least one
      step each): a vanishing gradient shows as early much smaller than late. Only for
      float inputs of shape ``(batch, steps, features)``; left out otherwise (token ids,
      strings).

    The loss is the model's compiled loss on the probe batch in inference mode (no
    dropout), so epochs compare on the same function. A ``tf.function`` runs a copy
    (``keras.models.clone_model``) of the first model of its architecture on the current
    weights, passed in as values (``stateless_call``). The functions of the last few
    architectures (layers and settings, dropout and names left out; clipping kind; loss;
    probe batch shape) are kept: a repeat's new model, a later trial with another
    learning rate, batch size or clip threshold, a Hyperband round, reuse the trace
    (0.2-0.6 s against a call's 10-20 ms on 2 cores). State held neither in weights nor
    in a layer's config would not reach the copy. A NaN anywhere gives NaN values,
    never an exception (the divergence check decides). ``max_norm`` and ``seconds``
    (probing time, tracing included) cover every ``fit`` the probe saw; KerasTuner's
    deep copies of the callback return this same probe.

    Args:
        x: the probe inputs, e.g. the first 32 training samples.
        y: their targets.
    """

    def __init__(self, x: Any, y: Any) -> None:
        super().__init__()
        self._x = x
        self._y = y
        self._function: Any = None
        self._key: tuple[Any, ...] | None = None
        self._keyed_model: Any = None
        self._model_key: tuple[Any, ...] = ()
        self.norms: list[float] = []
        self.seconds = 0.0
        #: The part of ``seconds`` spent in calls that traced the function (once per fit).
        self.trace_seconds = 0.0

    def __deepcopy__(self, memo: dict[int, Any]) -> GradientProbe:
        return self

    @property
    def max_norm(self) -> float | None:
        """The largest finite ``grad_norm`` seen, or None."""
        finite = [n for n in self.norms if math.isfinite(n)]
        return max(finite) if finite else None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = self.measure()
        if logs is not None:
            logs.update(values)

    def measure(self) -> dict[str, float]:
        """Probe the model now and return the metrics (see the class docstring)."""
        import tensorflow as tf

        start = time.perf_counter()
        model = self.model
        if not tf.is_tensor(self._x):  # once: later calls reuse the tensors
            self._x = tf.convert_to_tensor(self._x)
            self._y = tf.convert_to_tensor(self._y)
        clip_kind, threshold = _clipping(model.optimizer)
        if model is not self._keyed_model:  # the key once per model, not every epoch (~2 ms)
            self._keyed_model = model
            self._model_key = (
                _architecture(model),
                tuple(tuple(w.shape) for w in model.weights),
                clip_kind,
                str(model.loss),
                tuple((tuple(a.shape), a.dtype.name) for a in (self._x, self._y)),
            )
        key = self._model_key
        tracing = key != self._key
        try:
            if tracing:
                self._function = _FUNCTIONS.pop(key, None) or self._make_function(clip_kind)
                _FUNCTIONS[key] = self._function  # the most recent last
                while len(_FUNCTIONS) > _KEPT_FUNCTIONS:
                    _FUNCTIONS.pop(next(iter(_FUNCTIONS)))
                self._key = key
            trainable = [_tensor(w) for w in model.trainable_variables]
            fixed = [_tensor(w) for w in model.non_trainable_variables]
            with quiet_retracing():  # a new architecture's first call traces, once
                outputs = self._function(self._x, self._y, trainable, fixed, tf.constant(threshold))
            values = {key: float(value) for key, value in outputs.items()}
        finally:
            spent = time.perf_counter() - start
            self.seconds += spent
            if tracing:
                self.trace_seconds += spent
        self.norms.append(values["grad_norm"])
        return values

    def _make_function(self, clip_kind: str) -> Any:
        import tensorflow as tf

        # The architecture without its state, computing in float32: under mixed precision
        # a vanishing gradient is 0 in float16, and this loss is not loss-scaled.
        model = keras.models.clone_model(self.model, clone_function=_in_float32)
        model.compile(loss=self.model.loss)
        for mine, theirs in (
            (model.trainable_variables, self.model.trainable_variables),
            (model.non_trainable_variables, self.model.non_trainable_variables),
        ):
            if [tuple(w.shape) for w in mine] != [tuple(w.shape) for w in theirs]:
                name = self.model.name
                raise ValueError(f"Cannot probe the gradient of {name}: its clone differs")
        float_input = self._x.dtype.is_floating and self._x.shape.rank == 3
        steps = int(self._x.shape[1]) if float_input else 0
        quarter = max(1, steps // 4)
        # Padded (masked) sequences: early and late are the quarters of each sequence's
        # own steps, not of the padded array, whose last quarter is padding (gradient 0).
        masking = [layer for layer in model.layers if isinstance(layer, keras.layers.Masking)]
        mask_value = float(masking[0].mask_value) if masking else None

        # No AutoGraph: the body has no tensor-dependent Python control flow (as Keras' own
        # train step, which is not converted either); it saves part of the tracing.
        @tf.function(autograph=False, reduce_retracing=True)
        def probe(
            x: Any, y: Any, trainable: list[Any], fixed: list[Any], threshold: Any
        ) -> dict[str, Any]:
            with tf.GradientTape() as tape:
                tape.watch(trainable)
                if float_input:
                    tape.watch(x)
                # The weights go in as values: nothing is copied into the clone's variables.
                predicted, _ = model.stateless_call(trainable, fixed, x, training=False)
                # The compiled loss, as training computes it (it aligns integer labels of
                # shape (n,) with a (n, 1) sigmoid, and averages over the batch).
                loss = model.compute_loss(x=x, y=y, y_pred=predicted, training=False)
            sources = [*trainable, x] if float_input else list(trainable)
            grads = tape.gradient(loss, sources, unconnected_gradients="zero")
            weight_grads = grads[: len(trainable)]
            norm = tf.linalg.global_norm(weight_grads)
            out = {"grad_norm": norm, "grad_clipped": tf.constant(0.0)}
            if clip_kind == "global_norm":
                out["grad_clipped"] = tf.cast(norm > threshold, tf.float32)
            elif clip_kind == "value":
                above = tf.add_n(
                    [
                        tf.reduce_sum(tf.cast(tf.abs(g) > threshold, tf.float32))
                        for g in weight_grads
                    ]
                )
                total = sum(int(np.prod(t.shape)) for t in trainable)
                out["grad_clipped"] = above / float(max(total, 1))
            elif clip_kind == "variable_norm":
                above = tf.add_n(
                    [tf.cast(tf.norm(g) > threshold, tf.float32) for g in weight_grads]
                )
                out["grad_clipped"] = above / float(max(len(weight_grads), 1))
            if float_input and mask_value is None:
                dx = grads[-1]
                out["grad_input_early"] = tf.norm(dx[:, :quarter, :])
                out["grad_input_late"] = tf.norm(dx[:, -quarter:, :])
            elif float_input:
                dx = grads[-1]
                real = tf.reduce_any(tf.not_equal(x, mask_value), axis=-1)  # right-padded
                length = tf.reduce_sum(tf.cast(real, tf.int32), axis=1, keepdims=True)
                own = tf.maximum(1, length // 4)
                step = tf.range(steps)[None, :]
                early = tf.cast((step < own) & (step < length), dx.dtype)[..., None]
                late = tf.cast((step >= length - own) & (step < length), dx.dtype)[..., None]
                out["grad_input_early"] = tf.norm(dx * early)
                out["grad_input_late"] = tf.norm(dx * late)
            return out

        return probe


#: The probe functions of the last few architectures, the most recently used last.
_FUNCTIONS: dict[tuple[Any, ...], Any] = {}
_KEPT_FUNCTIONS = 8
#: Layer settings that do not change a forward pass in inference mode, nor the gradient.
_NOT_ARCHITECTURE = frozenset({"name", "dropout", "rate", "seed"})


def _architecture(model: Any) -> str:
    """What the probe's trace depends on: each layer's type and settings, names left out."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in _NOT_ARCHITECTURE}
        if isinstance(value, (list, tuple)):
            return [strip(v) for v in value]
        return value

    layers = [(type(layer).__name__, strip(layer.get_config())) for layer in model.layers]
    return json.dumps(layers, sort_keys=True, default=str)


def _tensor(weight: Any) -> Any:
    """A weight's current value as a tensor (a copy: the call must not trace by variable)."""
    import tensorflow as tf

    return tf.convert_to_tensor(getattr(weight, "value", weight))


def _clipping(optimizer: Any) -> tuple[str, float]:
    """The optimizer's clipping: ``("global_norm"|"value"|"variable_norm"|"none", threshold)``."""
    # Mixed precision wraps the optimizer in a LossScaleOptimizer; the clipping is inside.
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    for attribute, kind in (
        ("global_clipnorm", "global_norm"),
        ("clipvalue", "value"),
        ("clipnorm", "variable_norm"),
    ):
        threshold = getattr(optimizer, attribute, None)
        if threshold:
            return kind, float(threshold)
    return "none", 0.0


def _in_float32(layer: Any) -> Any:
    """A new layer like ``layer`` (Keras' own clone), with any mixed precision policy in
    its config, nested layers' included, made float32."""
    return layer.__class__.from_config(_float32_policies(layer.get_config()))


def _float32_policies(value: Any) -> Any:
    if isinstance(value, dict):
        name = str(value.get("config", {}).get("name", "")) if "config" in value else ""
        if str(value.get("class_name", "")).endswith("DTypePolicy") and name.startswith("mixed"):
            return "float32"
        return {key: _float32_policies(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_float32_policies(item) for item in value]
    return value


def repeat_measures(bests: list[float], probe: GradientProbe | None) -> dict[str, float | None]:
    """Each repeat's score, their spread, and the gradient probe's summary (if it ran)."""
    measures: dict[str, float | None] = {f"score_r{r}": best for r, best in enumerate(bests)}
    if len(bests) > 1:  # a sample standard deviation needs two repeats
        measures["score_std"] = statistics.stdev(bests)
    if probe is not None:
        measures["grad_norm_max"] = probe.max_norm
        measures["grad_probe_seconds"] = probe.seconds
    return measures
