"""Meters: the gradient probe against gradients computed by hand, and its clipping flags."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from workbench.search import meters
from workbench.search.meters import GradientProbe, PeakMemory, TrialMeter

W = np.array([0.5, -1.0, 2.0, 0.25], dtype="float32")
B = 0.1


def _linear_model(optimizer: keras.optimizers.Optimizer | None = None) -> keras.Model:
    """``p = sum_t w_t x_t + b`` over 4 steps of 1 feature, trained on MSE."""
    inputs = keras.Input(shape=(4, 1))
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.0), loss="mse")
    model.layers[-1].set_weights([W.reshape(4, 1), np.array([B], dtype="float32")])
    return model


def _batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4, 1)).astype("float32")
    y = rng.normal(size=(5, 1)).astype("float32")
    return x, y


def _probe(model: keras.Model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    probe = GradientProbe(x, y)
    probe.set_model(model)
    return probe.measure()


def test_probe_matches_the_gradient_computed_by_hand() -> None:
    x, y = _batch()
    values = _probe(_linear_model(), x, y)

    # loss = mean_i (p_i - y_i)^2  =>  dL/dw_t = 2/n sum_i e_i x_it, dL/db = 2/n sum_i e_i,
    # dL/dx_it = 2/n e_i w_t, with e = p - y.
    n = len(x)
    e = x[:, :, 0] @ W + B - y[:, 0]
    dw = 2 / n * (e @ x[:, :, 0])
    db = 2 / n * e.sum()
    assert values["grad_norm"] == pytest.approx(math.sqrt((dw**2).sum() + db**2), rel=1e-5)
    dx = 2 / n * np.outer(e, W)  # (samples, steps); a quarter of 4 steps is 1 step
    assert values["grad_input_early"] == pytest.approx(np.linalg.norm(dx[:, 0]), rel=1e-5)
    assert values["grad_input_late"] == pytest.approx(np.linalg.norm(dx[:, -1]), rel=1e-5)
    # w_0 = 0.5 and w_3 = 0.25: the early steps get twice the late steps' gradient here.
    assert values["grad_input_early"] == pytest.approx(2 * values["grad_input_late"], rel=1e-5)
    assert values["grad_clipped"] == 0.0  # no clipping configured


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "SimpleRNN"])
def test_probe_of_a_recurrent_model_matches_an_eager_gradient(cell: str) -> None:
    import tensorflow as tf

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((12, 2)), getattr(keras.layers, cell)(8), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 12, 2)).astype("float32")
    y = rng.normal(size=(6, 1)).astype("float32")

    values = _probe(model, x, y)

    tx = tf.constant(x)
    with tf.GradientTape() as tape:  # eager: no graph, no graph optimizer
        tape.watch(tx)
        loss = keras.losses.MeanSquaredError()(y, model(tx, training=False))
    *weight_grads, dx = tape.gradient(loss, [*model.trainable_variables, tx])
    norm = float(tf.linalg.global_norm(weight_grads))
    assert values["grad_norm"] == pytest.approx(norm, rel=1e-5)
    assert values["grad_input_early"] == pytest.approx(float(tf.norm(dx[:, :3])), rel=1e-5)
    assert values["grad_input_late"] == pytest.approx(float(tf.norm(dx[:, -3:])), rel=1e-5)


def test_on_padded_sequences_early_and_late_are_each_sequences_own_quarters() -> None:
    import tensorflow as tf

    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [keras.Input((12, 2)), keras.layers.Masking(mask_value=-9.0), keras.layers.GRU(6),
         keras.layers.Dense(1)]
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    rng = np.random.default_rng(2)
    lengths = [12, 8, 5, 4]
    x = rng.normal(size=(4, 12, 2)).astype("float32")
    for row, length in enumerate(lengths):
        x[row, length:] = -9.0  # right-padded, as the loaders pad
    y = rng.normal(size=(4, 1)).astype("float32")

    values = _probe(model, x, y)

    tx = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(tx)
        loss = keras.losses.MeanSquaredError()(y, model(tx, training=False))
    dx = tape.gradient(loss, tx).numpy()
    early = [dx[i, : max(1, n // 4)] for i, n in enumerate(lengths)]
    late = [dx[i, n - max(1, n // 4) : n] for i, n in enumerate(lengths)]
    norm = lambda parts: float(np.sqrt(sum((p**2).sum() for p in parts)))  # noqa: E731
    assert values["grad_input_early"] == pytest.approx(norm(early), rel=1e-5)
    assert values["grad_input_late"] == pytest.approx(norm(late), rel=1e-5)
    assert values["grad_input_late"] > 0  # the padded array's last quarter is all padding


def test_under_mixed_precision_the_probe_measures_in_float32() -> None:
    """float16 has no room for a vanishing gradient (below about 6e-8 it is 0), and the
    probe's loss is not loss-scaled: it measures the same weights in float32."""
    import tensorflow as tf

    def simple_rnn() -> keras.Model:
        keras.utils.set_random_seed(5)
        model = keras.Sequential(
            [keras.Input((60, 1)), keras.layers.SimpleRNN(8), keras.layers.Dense(1)]
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        return model

    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 60, 1)).astype("float32")
    y = rng.normal(size=(6, 1)).astype("float32")
    twin = simple_rnn()
    tx = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(tx)
        loss = keras.losses.MeanSquaredError()(y, twin(tx, training=False))
    dx = tape.gradient(loss, tx)
    early = float(tf.norm(dx[:, :15]))
    assert 0 < early < 1e-5  # vanishing: float16 holds it with 3 digits at best, or as 0
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = simple_rnn()
        model.set_weights(twin.get_weights())
        values = _probe(model, x, y)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert values["grad_input_early"] == pytest.approx(early, rel=1e-4)
    assert values["grad_input_late"] == pytest.approx(float(tf.norm(dx[:, -15:])), rel=1e-4)


def test_grad_clipped_follows_the_optimizers_clipping() -> None:
    x, y = _batch()
    norm = _probe(_linear_model(), x, y)["grad_norm"]
    below = keras.optimizers.SGD(0.0, global_clipnorm=norm * 1.01)
    above = keras.optimizers.SGD(0.0, global_clipnorm=norm * 0.99)
    assert _probe(_linear_model(below), x, y)["grad_clipped"] == 0.0
    assert _probe(_linear_model(above), x, y)["grad_clipped"] == 1.0

    # Per element: the share of the 5 gradient elements (4 weights, 1 bias) above the value.
    e = x[:, :, 0] @ W + B - y[:, 0]
    elements = np.abs(np.append(2 / len(x) * (e @ x[:, :, 0]), 2 / len(x) * e.sum()))
    threshold = float(np.median(elements))  # the middle one: 2 of 5 are above it
    clipped = _probe(_linear_model(keras.optimizers.SGD(0.0, clipvalue=threshold)), x, y)
    assert clipped["grad_clipped"] == pytest.approx(np.mean(elements > threshold)) == 0.4
    assert clipped["grad_norm"] == pytest.approx(norm)  # measured before clipping


def test_nan_weights_give_nan_values_not_an_exception() -> None:
    x, y = _batch()
    model = _linear_model(keras.optimizers.SGD(0.0, global_clipnorm=1.0))
    model.layers[-1].set_weights([np.full((4, 1), np.nan, "float32"), np.zeros(1, "float32")])
    probe = GradientProbe(x, y)
    probe.set_model(model)
    values = probe.measure()
    assert math.isnan(values["grad_norm"]) and values["grad_clipped"] == 0.0
    assert probe.max_norm is None


def test_token_inputs_skip_the_input_gradient() -> None:
    inputs = keras.Input(shape=(6,), dtype="int32")
    x = keras.layers.Embedding(10, 3)(inputs)
    outputs = keras.layers.Dense(1)(keras.layers.SimpleRNN(2)(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    tokens = np.arange(24, dtype="int32").reshape(4, 6) % 10
    values = _probe(model, tokens, np.ones((4, 1), "float32"))
    assert set(values) == {"grad_norm", "grad_clipped"}
    assert values["grad_norm"] > 0


def test_probe_uses_the_compiled_loss_on_integer_labels() -> None:
    """Binary labels of shape (n,) against a (n, 1) sigmoid, as the UCR tasks have them."""
    inputs = keras.Input(shape=(4, 1))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    x, _ = _batch()
    labels = np.array([0, 1, 1, 0, 1], dtype="int64")
    values = _probe(model, x, labels)
    # d BCE / d logit = sigmoid(z) - label, so d loss / d bias = mean(p - label).
    p = model.predict(x, verbose=0)[:, 0]
    kernel = model.layers[-1].get_weights()[0][:, 0]
    dw = (p - labels) @ x[:, :, 0] / len(x)
    db = (p - labels).mean()
    assert values["grad_norm"] == pytest.approx(math.sqrt((dw**2).sum() + db**2), rel=1e-4)
    assert values["grad_input_late"] == pytest.approx(
        np.linalg.norm((p - labels) * kernel[-1] / len(x)), rel=1e-4
    )


def test_probe_and_meter_log_per_epoch_over_repeats() -> None:
    """The probe's values reach the meter's sink each epoch; the meter keeps repeats apart."""
    x, y = _batch()
    logged: list[tuple[int, dict[str, float]]] = []
    meter = TrialMeter(lambda epoch, m: logged.append((epoch, dict(m))), ("loss", "grad_norm"))
    probe = GradientProbe(x, y)
    for rate in (0.01, 0.05):  # two repeats, as KerasTuner's executions_per_trial runs them
        model = _linear_model(keras.optimizers.SGD(rate))
        model.fit(x, y, epochs=2, verbose=0, callbacks=[probe, meter])
    assert [epoch for epoch, _ in logged] == [0, 1, 0, 1]
    assert all(m["grad_norm"] > 0 for _, m in logged)
    assert len(meter.repeats) == 2 and meter.repeat == 1
    assert probe.norms == [m["grad_norm"] for _, m in logged]
    assert probe.max_norm == max(probe.norms) and probe.seconds > 0
    # Traced once for the trial: the second repeat's model reuses the first one's trace,
    # and still gets its own gradient (its weights, not the first model's).
    assert probe._function.experimental_get_tracing_count() == 1
    assert 0 < probe.trace_seconds < probe.seconds
    assert probe.norms[1] != probe.norms[3]  # the repeats trained differently
    assert _probe(model, x, y)["grad_norm"] == pytest.approx(probe.measure()["grad_norm"])
    assert meter.repeat_bests("loss", "min") == [
        min(m["loss"] for m in meter.repeats[0]),
        min(m["loss"] for m in meter.repeats[1]),
    ]


def test_epoch_seconds_leave_out_the_probe_and_the_tracing_epoch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import workbench.search.meters as meters

    clock = SimpleNamespace(now=100.0)  # the meter's clock, moved only by the probe below
    monkeypatch.setattr(meters, "time", SimpleNamespace(perf_counter=lambda: clock.now))

    class SlowProbe(GradientProbe):
        def measure(self) -> dict[str, float]:
            # The epoch's training (5 s, then 1 s, then 2 s), then a 1000 s probe.
            clock.now += [5.0, 1.0, 2.0][len(self.norms)] + 1000.0
            self.seconds += 1000.0
            self.norms.append(0.0)
            return {}

    x, y = _batch()
    probe = SlowProbe(x, y)
    meter = TrialMeter(lambda epoch, m: None, ("loss",), probe)
    _linear_model(keras.optimizers.SGD(0.01)).fit(
        x, y, epochs=3, verbose=0, callbacks=[probe, meter]
    )
    assert meter.epoch_seconds == [5.0, 1.0, 2.0]  # the probe's time left out
    assert meter.steady_epoch_seconds == [1.0, 2.0]  # and the first (tracing) epoch
    assert meter.mean_epoch_seconds() == 1.5
    one = TrialMeter(lambda epoch, m: None, ("loss",))
    _linear_model().fit(x, y, epochs=1, verbose=0, callbacks=[one])
    assert one.mean_epoch_seconds() == pytest.approx(one.epoch_seconds[0])


def test_a_loss_that_stops_being_finite_stops_the_fit_within_the_epoch() -> None:
    from workbench.search.meters import Diverged

    x = np.repeat(_batch()[0], 20, axis=0)  # 100 samples: 100 batches of 1
    y = np.full((len(x), 1), 1e30, dtype="float32")  # squares overflow float32: inf loss
    epochs: list[int] = []
    meter = TrialMeter(lambda epoch, m: epochs.append(epoch), ("loss",))
    with pytest.raises(Diverged) as raised:
        _linear_model().fit(x, y, batch_size=1, epochs=2, verbose=0, callbacks=[meter])
    assert raised.value.epoch == 0 and not math.isfinite(raised.value.loss)
    assert epochs == []  # stopped before the first epoch ended
    # The fit it cut short cost time: counted when the trial stops the meter (it was 0, and
    # a study whose trials all diverged reported "Compute: 0.0 s").
    assert meter.fit_seconds == 0.0
    meter.stop_memory()
    assert meter.fit_seconds > 0.0
    spent = meter.fit_seconds
    meter.stop_memory()  # once: the clock stopped
    assert meter.fit_seconds == spent


def test_a_stop_request_stops_the_fit_at_a_batch_end() -> None:
    from workbench.search import stopping

    x, y = _batch()
    x, y = np.repeat(x, 40, axis=0), np.repeat(y, 40, axis=0)  # 200 batches of 1

    ended: list[int] = []

    class Requests(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            if batch == 3:
                stopping._requested.set()  # what Ctrl-C does during training

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            ended.append(batch)

    seen: list[int] = []
    meter = TrialMeter(lambda epoch, m: seen.append(epoch), ("loss",))
    try:
        with pytest.raises(KeyboardInterrupt):
            _linear_model().fit(
                x, y, batch_size=1, epochs=1, verbose=0, callbacks=[Requests(), meter]
            )
    finally:
        stopping._requested.clear()
    assert seen == []  # no epoch recorded
    assert ended == [0, 1, 2, 3]  # stopped at the end of the batch it was asked in


def _allocate_and_free(megabytes: int, hold_seconds: float) -> None:
    block = np.ones(megabytes * 2**20, dtype=np.uint8)  # touched: resident
    time.sleep(hold_seconds)
    del block


def _gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def test_peak_memory_counts_an_allocation_freed_before_the_trial_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if _gpu():
        pytest.skip("on a GPU a trial's peak is the GPU's: test_peak_memory_on_a_gpu")
    try:  # asked of the kernel here, not of the code under test
        Path("/proc/self/clear_refs").write_text("5")
        resettable = "VmHWM:" in Path("/proc/self/status").read_text()
    except OSError:
        resettable = False
    if not resettable:
        pytest.skip("this kernel does not let a process reset its peak resident set size")
    monkeypatch.setattr(PeakMemory, "_sample", lambda self: None)  # the kernel's figure alone
    memory = PeakMemory()
    memory.start()
    _allocate_and_free(64, 0.0)  # too short for a sampler: the kernel's peak sees it
    peak = memory.stop()
    assert memory.kind == "rss_increase"
    assert peak is not None and 60 <= peak < 1024


def test_peak_memory_samples_where_the_peak_cannot_be_reset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if _gpu():
        pytest.skip("on a GPU a trial's peak is the GPU's: test_peak_memory_on_a_gpu")
    monkeypatch.setattr(meters, "_reset_high_water", lambda: False)
    memory = PeakMemory()
    memory.start()
    _allocate_and_free(64, 0.2)
    peak = memory.stop()
    assert memory.kind == "rss_increase"
    assert peak is not None and 60 <= peak < 1024


def test_peak_memory_on_a_gpu() -> None:
    if not _gpu():
        pytest.skip("no GPU on this machine (the CPU tests above measure the resident set)")
    import tensorflow as tf

    with tf.device("GPU:0"):
        kept = tf.ones((32 * 2**20 // 4,), dtype=tf.float32)  # in use before: not counted
    memory = PeakMemory()
    memory.start()
    with tf.device("GPU:0"):
        block = tf.ones((64 * 2**20 // 4,), dtype=tf.float32)  # 64 MiB on the GPU
        float(tf.reduce_sum(block))
    del block
    peak = memory.stop()
    assert memory.kind == "gpu_peak"
    assert peak is not None and 60 <= peak < 90  # the 64 MiB, not the 32 already there
    del kept


def _dropout_model(rate: float, optimizer: keras.optimizers.Optimizer) -> keras.Model:
    """The linear model with a dropout layer in front (no effect in inference mode)."""
    inputs = keras.Input(shape=(4, 1))
    dropped = keras.layers.Dropout(rate)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(dropped))
    model.compile(optimizer=optimizer, loss="mse")
    model.layers[-1].set_weights([W.reshape(4, 1), np.array([B], dtype="float32")])
    return model


def test_a_later_trial_of_the_same_architecture_reuses_the_trace_with_its_own_settings() -> None:
    x, y = _batch()
    norm = _probe(_linear_model(), x, y)["grad_norm"]
    first = GradientProbe(x, y)
    first.set_model(_dropout_model(0.1, keras.optimizers.SGD(0.1, global_clipnorm=norm * 1.01)))
    assert first.measure()["grad_clipped"] == 0.0

    keras.backend.clear_session()  # as KerasTuner does before every trial
    second = GradientProbe(x, y)
    # Another dropout rate, learning rate and clip threshold: the same trace...
    second.set_model(_dropout_model(0.5, keras.optimizers.Adam(0.5, global_clipnorm=norm * 0.99)))
    values = second.measure()
    assert second._function is first._function
    assert second._function.experimental_get_tracing_count() == 1
    # ... with this trial's threshold, and this model's weights.
    assert values["grad_clipped"] == 1.0 and values["grad_norm"] == pytest.approx(norm)
    second.model.layers[-1].set_weights([2 * W.reshape(4, 1), np.array([B], dtype="float32")])
    assert second.measure()["grad_norm"] != pytest.approx(norm)

    # Another architecture (a hidden layer) gets a function of its own.
    inputs = keras.Input(shape=(4, 1))
    hidden = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))
    other = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    other.compile(optimizer=keras.optimizers.SGD(0.1, global_clipnorm=1.0), loss="mse")
    third = GradientProbe(x, y)
    third.set_model(other)
    third.measure()
    assert third._function is not first._function


def test_a_second_ctrl_c_stops_at_once_inside_training() -> None:
    import os
    import signal

    from workbench.search import stopping

    with stopping.on_signals(), stopping.deferred():
        os.kill(os.getpid(), signal.SIGINT)  # the first waits for a safe point
        time.sleep(0.05)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the second does not
            time.sleep(1)
        stopping._requested.clear()


def test_a_sigterm_after_ctrl_c_still_waits_for_the_safe_point() -> None:
    import os
    import signal

    from workbench.search import stopping

    # A distributed search's worker: the terminal's Ctrl-C, then the chief's SIGTERM. It
    # stopped at once, in the middle of recording a trial that had finished training.
    with stopping.on_signals(), stopping.deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        with pytest.raises(KeyboardInterrupt):
            stopping.check()  # at the safe point
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)  # the same signal twice: at once
            time.sleep(1)
        stopping._requested.clear()


def test_test_outputs_hold_each_fit_at_its_own_best_epoch() -> None:
    # A trial with repeats: two fits, each scored on test at its own best validation epoch
    # (not the last epoch, not the best fit's alone), the model left as it trained.
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 4, 1)).astype("float32"), rng.normal(size=(40, 1))
    x_val, y_val = rng.normal(size=(20, 4, 1)).astype("float32"), rng.normal(size=(20, 1))
    x_test = rng.normal(size=(8, 4, 1)).astype("float32")
    tests = meters.TestOutputs("val_loss", "min", x_test)
    expected, best_epochs = [], []
    for rate in (0.6, 0.05):  # the first overshoots: its best epoch is its first
        model = _linear_model(keras.optimizers.SGD(rate))
        seen: list = []

        def record_epoch(epoch: int, logs: dict, m: keras.Model = model, s: list = seen) -> None:
            s.append((logs["val_loss"], m.get_weights()))

        record = keras.callbacks.LambdaCallback(on_epoch_end=record_epoch)
        model.fit(x, y, validation_data=(x_val, y_val), epochs=5, batch_size=8, shuffle=False,
                  verbose=0, callbacks=[record, tests])  # fmt: skip
        after = model.get_weights()  # the last epoch's, as the fit left them
        assert all(np.array_equal(a, b) for a, b in zip(after, seen[-1][1], strict=True))
        best = min(range(len(seen)), key=lambda i: seen[i][0])
        best_epochs.append(best)
        model.set_weights(seen[best][1])
        expected.append(model.predict(x_test, verbose=0))
    assert best_epochs[0] < 4, best_epochs  # so the last epoch's outputs would differ
    assert len(tests.outputs) == 2
    for got, want in zip(tests.outputs, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)



@contextlib.contextmanager
def _tensorflow_log() -> Iterator[list[logging.LogRecord]]:
    """The records TensorFlow's logger writes within the block."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_the_models_of_a_trials_fits_predict_on_test_without_a_retracing_warning() -> None:
    # Each repeat or fold is a new model, traced once for its test outputs: TensorFlow's
    # "N out of the last M calls ... triggered tf.function retracing" is no fault there.
    x, _ = _batch()
    tests = meters.TestOutputs("val_loss", "min", x)
    with _tensorflow_log() as records:
        for _ in range(7):  # as the fits of a trial end, each on a new model
            tests.set_model(_linear_model())
            tests.on_train_begin()
            tests.on_epoch_end(0, {"val_loss": 1.0})
            tests.on_train_end()
    assert len(tests.outputs) == 7
    assert not [r for r in records if "retracing" in r.getMessage()], records


def test_the_probe_traces_each_new_architecture_without_a_retracing_warning() -> None:
    # A search's trials are new architectures, each traced once by the probe (a Hyperband
    # or long random search printed "5 out of the last 13 calls to <function
    # GradientProbe._make_function.<locals>.probe> triggered tf.function retracing").
    x, y = _batch()
    with _tensorflow_log() as records:
        for hidden in range(2, 10):  # 8 architectures: 8 traces
            inputs = keras.Input(shape=(4, 1))
            h = keras.layers.Dense(hidden)(keras.layers.Flatten()(inputs))
            model = keras.Model(inputs, keras.layers.Dense(1)(h))
            model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
            assert _probe(model, x, y)["grad_norm"] > 0
    assert not [r for r in records if "retracing" in r.getMessage()], records
