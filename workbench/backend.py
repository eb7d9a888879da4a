"""Backend: loading TensorFlow/Keras once, quietly, for the commands that train."""

from __future__ import annotations

import os
import sys
import tempfile
from types import ModuleType


def load_tensorflow() -> ModuleType:
    """Import TensorFlow with Keras on its backend, without the C++ start-up chatter.

    TensorFlow's native code writes lines such as "Could not find cuda drivers" to
    file descriptor 2 before its log settings apply; they are held back here and
    shown only if the import fails.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with tempfile.TemporaryFile(mode="w+b") as held:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_logical_devices("GPU")  # device discovery prints too
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tf
