"""Meters: what a trial measures while it trains (epoch metrics, time, memory, divergence).

:class:`TrialMeter` is a Keras callback. It hands each epoch's metrics to a sink
(the tracking run and the progress display), times epochs, measures peak memory
and stops a trial the moment its loss stops being finite.
"""

from __future__ import annotations

import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import keras

from workbench import stopping


class Diverged(Exception):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(f"loss became {loss} at epoch {epoch}")
        self.epoch = epoch
        self.loss = loss


class PeakMemory:
    """Peak memory of one trial, in MB.

    On a GPU: TensorFlow's peak allocation on ``GPU:0`` (reset at the start). On a
    CPU: the highest resident set size seen while training minus the size at the
    start, sampled every 20 ms from ``/proc/self/statm`` (Linux) — an honest upper
    bound for what the trial added, not an allocator figure.
    """

    def __init__(self) -> None:
        self.kind = "n/a"
        self._gpu = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_rss = 0
        self._peak_rss = 0

    def start(self) -> None:
        import tensorflow as tf

        self._gpu = bool(tf.config.list_logical_devices("GPU"))
        if self._gpu:
            self.kind = "gpu_peak"
            tf.config.experimental.reset_memory_stats("GPU:0")
            return
        if not os.path.exists("/proc/self/statm"):
            return
        self.kind = "rss_increase"
        self._start_rss = self._peak_rss = _rss_bytes()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> float | None:
        if self._gpu:
            import tensorflow as tf

            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        if self._thread is None:
            return None
        self._stop.set()
        self._thread.join()
        self._thread = None
        return max(0, self._peak_rss - self._start_rss) / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._peak_rss = max(self._peak_rss, _rss_bytes())


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class TrialMeter(keras.callbacks.Callback):
    """Measures one trial; shared across executions (deep copies return the same meter).

    Args:
        on_epoch: called with ``(epoch, metrics)`` after every epoch.
        keys: the metric names to pass on (e.g. ``loss``, ``val_loss``, ``mse``).
    """

    def __init__(self, on_epoch: Callable[[int, Mapping[str, float]], None], keys: tuple[str, ...]):
        super().__init__()
        self._on_epoch = on_epoch
        self._keys = keys
        self.epoch_seconds: list[float] = []
        self.fit_seconds = 0.0
        self.history: list[dict[str, float]] = []
        self.peak_memory_mb: float | None = None
        self._memory = PeakMemory()
        self._epoch = 0
        self._t_fit = 0.0
        self._t_epoch = 0.0

    def __deepcopy__(self, memo: dict[int, Any]) -> TrialMeter:
        # KerasTuner deep-copies callbacks per execution; one meter must see them all.
        return self

    @property
    def memory_kind(self) -> str:
        return self._memory.kind

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._t_fit = time.perf_counter()
        self._memory.start()

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._t_epoch = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        stopping.check()
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise Diverged(self._epoch, float(loss))

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._t_epoch)
        metrics = {k: float(v) for k, v in (logs or {}).items() if k in self._keys}
        self.history.append(metrics)
        self._on_epoch(epoch, metrics)
        stopping.check()
        for key in ("loss", "val_loss"):
            if key in metrics and not math.isfinite(metrics[key]):
                raise Diverged(epoch, metrics[key])

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self.fit_seconds += time.perf_counter() - self._t_fit
        peak = self._memory.stop()
        if peak is not None:
            self.peak_memory_mb = max(self.peak_memory_mb or 0.0, peak)

    def best(self, key: str, direction: str) -> float | None:
        """The best value of ``key`` over the epochs seen (min or max)."""
        values = [h[key] for h in self.history if key in h and math.isfinite(h[key])]
        if not values:
            return None
        return min(values) if direction == "min" else max(values)

    def mean_epoch_seconds(self) -> float | None:
        return statistics.fmean(self.epoch_seconds) if self.epoch_seconds else None

    def stop_memory(self) -> None:
        """Stop sampling memory when training ended by an exception."""
        self._memory.stop()
