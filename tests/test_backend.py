"""Backend: GPU memory grown as needed, and the cuDNN kernel read from traced graphs (checked
against stand-ins for `tf.config` and for a GPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from workbench.search.backend import grow_gpu_memory


def _fake_tf(gpus: list[str], initialized: set[str]) -> tuple[SimpleNamespace, list[str]]:
    calls: list[str] = []

    def set_memory_growth(device: SimpleNamespace, enable: bool) -> None:
        if device.name in initialized:
            raise RuntimeError("Physical devices cannot be modified after being initialized")
        assert enable is True
        calls.append(device.name)

    config = SimpleNamespace(
        list_physical_devices=lambda kind: [SimpleNamespace(name=n) for n in gpus],
        experimental=SimpleNamespace(set_memory_growth=set_memory_growth),
    )
    return SimpleNamespace(config=config), calls


def test_every_gpu_grows_its_memory_as_needed() -> None:
    tf, calls = _fake_tf(["/physical_device:GPU:0", "/physical_device:GPU:1"], set())
    assert grow_gpu_memory(tf) == calls == ["/physical_device:GPU:0", "/physical_device:GPU:1"]


def test_an_initialized_gpu_or_none_is_no_error() -> None:
    tf, calls = _fake_tf(["/physical_device:GPU:0"], {"/physical_device:GPU:0"})
    assert grow_gpu_memory(tf) == [] and calls == []
    tf, calls = _fake_tf([], set())
    assert grow_gpu_memory(tf) == []


def test_on_a_gpu_every_gpu_grows_its_memory_and_lstm_runs_on_cudnn() -> None:
    """In a fresh process (memory growth must be set before TensorFlow starts its GPUs)."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        pytest.skip("no GPU on this machine: scripts/gpu_check.py is the GPU check")
    script = (
        "from workbench.search import backend\n"
        "import keras, numpy as np\n"
        "tf = backend.load_tensorflow()\n"
        "gpus = tf.config.list_physical_devices('GPU')\n"
        "assert all(tf.config.experimental.get_memory_growth(g) for g in gpus), gpus\n"
        "x = np.zeros((2, 5, 3), 'float32')\n"
        "def model(**kw):\n"
        "    i = keras.Input((5, 3)); return keras.Model(i, keras.layers.LSTM(4, **kw)(i))\n"
        "assert backend.cudnn_kernels_ran(model(), x) is True\n"
        "assert backend.cudnn_kernels_ran(model(use_cudnn=False), x) is False\n"
        "i = keras.Input((5, 3)); plain = keras.Model(i, keras.layers.SimpleRNN(4)(i))\n"
        "assert backend.cudnn_kernels_ran(plain, x) is None  # no cuDNN kernel to run\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_this_machines_tensorflow_has_the_calls_the_stand_in_mimics() -> None:
    import tensorflow as tf

    physical = tf.config.list_physical_devices("GPU")
    assert all(device.device_type == "GPU" for device in physical)
    assert callable(tf.config.experimental.set_memory_growth)
    assert callable(tf.config.experimental.get_memory_growth)
    grown = grow_gpu_memory(tf)  # each GPU not yet started; none where there is none
    assert set(grown) <= {device.name for device in physical}


def test_a_keras_backend_set_for_other_work_does_not_stop_the_workbench() -> None:
    # KERAS_BACKEND=jax (or torch) in a user's shell: Keras would import JAX (not installed
    # here: a traceback) and the models would not be TensorFlow's.
    code = (
        "from workbench.search import backend; backend.load_tensorflow(); import keras; "
        "print(keras.backend.backend())"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "tensorflow"


def test_ctrl_c_while_tensorflow_imports_takes_effect_after_the_import(tmp_path: Path) -> None:
    # Raised inside TensorFlow's native import code, KeyboardInterrupt came out as a
    # SystemError with an 80-line traceback. A stand-in package is interrupted mid-import.
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "import os, signal, time\n"
        "from types import SimpleNamespace\n"
        "os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, half-way through\n"
        "time.sleep(0.2)\n"
        "config = SimpleNamespace(list_physical_devices=lambda kind: [],\n"
        "                         list_logical_devices=lambda kind: [])\n"
        "print('imported whole', flush=True)\n"
    )
    code = (
        "from workbench.search import backend\n"
        "try:\n    backend.load_tensorflow()\n"
        "except KeyboardInterrupt:\n    print('interrupted after')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.splitlines() == ["imported whole", "interrupted after"], done.stderr


@pytest.fixture
def traced_as_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keras and the workbench told a GPU is there: tracing builds the graph a GPU would run
    (running it here would fail, CudnnRNNV3 having no CPU kernel; tracing does not run it)."""
    import importlib

    from workbench.search.backend import load_tensorflow

    tf = load_tensorflow()
    rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")
    listed = tf.config.list_logical_devices
    monkeypatch.setattr(rnn, "_is_gpu_available", lambda: True)
    monkeypatch.setattr(
        tf.config,
        "list_logical_devices",
        lambda kind=None: [SimpleNamespace(name="/GPU:0")] if kind == "GPU" else listed(kind),
    )


@pytest.mark.parametrize("precision", ["float32", "mixed_float16"])
def test_every_lstm_and_gru_the_workbench_builds_is_traced_onto_cudnn(
    traced_as_on_a_gpu: None, precision: str
) -> None:
    """What `cudnn_eligible` says of each model the search space can build, `cudnn_ran`
    finds in the graph a GPU would run: masked, unmasked and text inputs, stacked,
    bidirectional, every readout, sequence outputs, under both precisions."""
    import keras
    import numpy as np

    from workbench.models import ModelConfig, ModelSignature, build_model, cudnn_eligibility
    from workbench.search.backend import cudnn_kernels_ran
    from workbench.tasks.spec import TextSettings

    text = TextSettings(vocabulary=("a", "b"), sequence_length=6, embedding_dim=4)
    series = np.zeros((2, 6, 3), "float32")
    signatures = [
        (ModelSignature(6, 3, "regression", 1, masked=True, mask_value=-1.0), series),
        (ModelSignature(6, 3, "classification", 4, sequence_output=True), series),
        (ModelSignature(6, 4, "classification", 2, text=text), np.ones((2, 6), "int64")),
    ]
    keras.mixed_precision.set_global_policy(precision)
    try:
        seen = []
        for signature, sample in signatures:
            for cell in ("lstm", "gru", "simple_rnn"):
                for bidirectional in (False, True):
                    for readout in ("last", "mean"):
                        values = {"cell": cell, "depth": 2, "bidirectional": bidirectional}
                        model = build_model(
                            ModelConfig.from_values({**values, "readout": readout, "units": 4}),
                            signature,
                        )
                        eligible, detail = cudnn_eligibility(model)
                        ran = cudnn_kernels_ran(model, sample)
                        expected = {"lstm": "true", "gru": "true", "simple_rnn": "n/a"}[cell]
                        assert eligible == expected, (values, detail)
                        assert {"true": True, "n/a": None}[eligible] is ran, (values, signature)
                        seen.append(ran)
        assert seen.count(True) == 24 and seen.count(None) == 12
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_layer_off_the_kernel_makes_the_model_not_run_on_cudnn(traced_as_on_a_gpu: None) -> None:
    """One LSTM of two off cuDNN (recurrent dropout): the other still calls the kernel, but
    the model does not run on it, and its settings say why."""
    import keras
    import numpy as np

    from workbench.models import cudnn_eligibility
    from workbench.search.backend import cudnn_kernels_ran

    def two_layers(second: dict) -> keras.Model:
        inputs = keras.Input((5, 3))
        x = keras.layers.LSTM(4, return_sequences=True, name="on")(inputs)
        return keras.Model(inputs, keras.layers.LSTM(4, name="second", **second)(x))

    sample = np.zeros((2, 5, 3), "float32")
    assert cudnn_kernels_ran(two_layers({}), sample) is True
    model = two_layers({"recurrent_dropout": 0.1})
    assert cudnn_kernels_ran(model, sample) is False
    assert cudnn_eligibility(model) == ("false", "second: recurrent_dropout is 0 fails")
