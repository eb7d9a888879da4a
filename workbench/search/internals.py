"""KerasTuner's internals the workbench relies on, checked before a search starts."""

from __future__ import annotations

from typing import Any

from workbench.errors import WorkbenchError

#: KerasTuner internals the search relies on; pyproject.toml pins keras-tuner below 1.5.
KERAS_TUNER_INTERNALS = (
    ("keras_tuner.src.engine.tuner", "Tuner._build_and_fit_model"),  # seeds each repeat
    ("keras_tuner.src.engine.tuner", "Tuner._get_checkpoint_fname"),  # writes, prunes, exports
    ("keras_tuner.src.engine.tuner_utils", "SaveBestEpoch"),  # replaced by one write a trial
    ("keras_tuner.src.config", "DEBUG"),  # silences failed trials' tracebacks
    ("keras_tuner.src.tuners.gridsearch", "GridSearchOracle._compare"),  # grid resume
    ("keras_tuner.src.engine.oracle", "LOCKS"),  # the chief holds the oracle as it does
    ("keras_tuner.src.engine.oracle", "THREADS"),
)
KERAS_TUNER_SUPPORTED = "keras-tuner>=1.4.7,<1.5"


def check_keras_tuner() -> None:
    """Fail the whole search, before any run, when KerasTuner's internals have moved.

    Raises:
        WorkbenchError: naming the installed version and the first missing name.
    """
    import importlib

    import keras_tuner as kt

    for module_name, dotted in KERAS_TUNER_INTERNALS:
        try:
            found: Any = importlib.import_module(module_name)
            for part in dotted.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            raise WorkbenchError(
                f"keras-tuner {kt.__version__} has no {module_name}.{dotted}, which workbench "
                f"relies on. Expected {KERAS_TUNER_SUPPORTED}: "
                f"pip install '{KERAS_TUNER_SUPPORTED}'"
            ) from None
