"""Backend: loading TensorFlow/Keras once, quietly, for the commands that train."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from workbench.errors import WorkbenchError


def load_tensorflow() -> ModuleType:
    """Import TensorFlow with Keras on its backend, without the C++ start-up chatter.

    TensorFlow's native code writes lines such as "Could not find cuda drivers" to
    file descriptor 2 before its log settings apply; they are held back here and
    shown only if the import fails.
    """
    if "tensorflow" in sys.modules:  # imported elsewhere first (a notebook, the API)
        tf = sys.modules["tensorflow"]
        grow_gpu_memory(tf)  # still in time unless its GPUs have started
        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != "tensorflow":
        raise WorkbenchError(
            "Expected Keras on its TensorFlow backend (the workbench's models, cuDNN checks "
            f"and exports are TensorFlow's). Received: Keras already imported on "
            f"{keras.backend.backend()!r}; import the workbench before Keras, or unset "
            "KERAS_BACKEND"
        )
    # A KERAS_BACKEND=jax set for other work would have this process import JAX.
    os.environ["KERAS_BACKEND"] = "tensorflow"
    with tempfile.TemporaryFile(mode="w+b") as held, _signals_after():
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow as tf

            grow_gpu_memory(tf)
            tf.config.list_logical_devices("GPU")  # device discovery prints too
        except Exception:  # its chatter may say why; not after Ctrl-C, which says nothing
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tf


@contextlib.contextmanager
def _signals_after() -> Iterator[None]:
    """Ctrl-C (or a handled SIGTERM/SIGHUP) during the block takes effect after it.

    Raised inside TensorFlow's import, ``KeyboardInterrupt`` came out of its native code as
    a ``SystemError`` with a long traceback; the import takes seconds, the wait is that.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    asked: list[int] = []
    names = ("SIGINT", "SIGTERM", "SIGHUP")
    ours = [sig for sig in (getattr(signal, n, None) for n in names) if sig is not None]
    previous = {sig: signal.getsignal(sig) for sig in ours}
    previous = {sig: handler for sig, handler in previous.items() if callable(handler)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: asked.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for sig in dict.fromkeys(asked):
        signal.raise_signal(sig)  # to the handler that was there


def grow_gpu_memory(tf: ModuleType) -> list[str]:
    """Let TensorFlow take GPU memory as it needs it instead of all of it at start.

    Without it, the first process on a GPU reserves nearly all its memory, and a second
    one (workers sharing a GPU, an export or a server beside a search) fails to start.
    Must run before TensorFlow initializes its GPUs (a later call changes nothing);
    returns the GPUs it set.
    """
    grown = []
    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(RuntimeError, ValueError):  # already initialized
            tf.config.experimental.set_memory_growth(gpu, True)
            grown.append(gpu.name)
    return grown


@contextlib.contextmanager
def released_graphs() -> Iterator[None]:
    """Let the graphs traced inside the block be freed once their models are gone.

    TensorFlow registers each ``tf.custom_gradient`` traced in graph mode in a
    process-wide gradient registry and never removes it; the registered function's
    closure keeps the whole traced graph alive, so every trial leaked about 15 MB
    (Keras' ``clear_session()`` does not reach it). The entries the block added are
    removed on exit: they are uniquely named and used only by the block's graphs.
    """
    from tensorflow.python.framework import ops

    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    before = set(registry) if isinstance(registry, dict) else None
    try:
        yield
    finally:
        if before is not None:
            for key in set(registry) - before:  # type: ignore[arg-type]
                if key.startswith("CustomGradient-"):
                    registry.pop(key, None)  # type: ignore[union-attr]


def cudnn_kernels_ran(model: Any, sample: Any) -> bool | None:
    """Whether every LSTM/GRU layer of the model (each direction of a ``Bidirectional``)
    calls cuDNN's RNN kernel in its training step, read from the op names of the traced
    graph (one ``CudnnRNN*`` op per layer that does); None without a GPU (there is none to
    run) or without an LSTM or GRU layer (SimpleRNN has no cuDNN kernel to run).

    Keras picks the cuDNN kernel at trace time when a GPU is present and the layer
    allows it, and falls back silently otherwise: the layer settings
    (:func:`workbench.models.cudnn_eligibility`) say what should happen, this says what
    did.
    """
    import tensorflow as tf

    from workbench.models import gated_layers

    gated = gated_layers(model)
    if not tf.config.list_logical_devices("GPU") or not gated:
        return None
    step = tf.function(lambda x: model(x, training=True))
    graph = step.get_concrete_function(tf.convert_to_tensor(sample)).graph
    names = [op.type for op in graph.get_operations()]
    for function in graph.as_graph_def().library.function:
        names += [node.op for node in function.node_def]
    # A forward trace: CudnnRNN, V2 or V3 once per layer on the kernel (no Backprop ops).
    calls = sum(name in ("CudnnRNN", "CudnnRNNV2", "CudnnRNNV3") for name in names)
    return calls >= len(gated)


def cudnn_ran_tag(model: Any, sample: Any) -> str:
    """:func:`cudnn_kernels_ran` as a trial tag: ``true``, ``false``, ``n/a`` (no GPU, or
    no LSTM/GRU)."""
    try:
        ran = cudnn_kernels_ran(model, sample)
    except Exception as exc:  # noqa: BLE001 - a measurement, never the trial's failure
        return f"unknown ({type(exc).__name__})"
    return "n/a" if ran is None else str(ran).lower()


@contextlib.contextmanager
def quiet_retracing() -> Iterator[None]:
    """TensorFlow's "N out of the last M calls ... triggered tf.function retracing" warning
    held back within the block: where each call is a new model's first (the models of a
    trial's repeats and folds), a trace each is the cost, not a fault to report."""
    import logging

    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
