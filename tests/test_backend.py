"""Backend: GPU memory grown as needed (checked against a stand-in for ``tf.config``)."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_this_machines_tensorflow_accepts_the_call() -> None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    assert len(grow_gpu_memory(tf)) <= len(gpus)  # none here; on a GPU machine, each one


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
