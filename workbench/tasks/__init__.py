"""Tasks: what to learn. A task is a small YAML file naming a loader and its options.

The built-in tasks live in ``datasets/`` in the same form as a user's own::

    name: adding
    description: The adding problem ...
    loader: adding
    options: {length: 50, n_train: 1000, n_val: 250, n_test: 250, seed: 0}

:func:`load_task` validates the file into a :class:`TaskSpec`; :meth:`TaskSpec.load`
runs the loader and returns the arrays as a :class:`TaskData`. Adding a task is one YAML
file; a new data format is one loader function decorated with :func:`register_loader` in
the module of its family (and that module imported below).

The rooms, one line each:

- ``spec``: the contract (``TaskSpec``, ``TaskData``, ``load_task``, the loader registry).
- ``options`` / ``splits`` / ``tables``: option checks, seeded splits and labels, and
  reading a user's CSV or Parquet table, shared by the loaders.
- ``probes``: synthetic long-memory probes (adding, copy_memory, sequential_digits).
- ``ucr``: the UCR/UEA classification sets bundled with sktime.
- ``forecasting``: windows over one series, naive baselines, ``forecast_metrics``.
- ``text``: tokens, vocabulary and the text corpora (bbc_news, fine_food_reviews, csv_text).
- ``files``: the user's sequence files (csv_sequences, npz).
- ``quick``: ``workbench search --data FILE``, a task file built from a data file and flags.
- ``scores``: scores per sample; a model against the trivial baseline, sample by sample.
"""

from workbench.tasks import files, forecasting, probes, text, ucr  # noqa: F401 - they register
from workbench.tasks.forecasting import forecast_metrics
from workbench.tasks.quick import DataFlags, search_task, task_from_data
from workbench.tasks.scores import against_baseline, sample_scores, test_measures, test_metrics
from workbench.tasks.spec import (
    LOADERS,
    PAD_VALUE,
    Baseline,
    Published,
    TaskData,
    TaskSpec,
    TextSettings,
    list_tasks,
    load_task,
    register_loader,
)
from workbench.tasks.text import fit_vocabulary, repair_texts, text_tokens

__all__ = [
    "LOADERS",
    "PAD_VALUE",
    "Baseline",
    "DataFlags",
    "Published",
    "TaskData",
    "TaskSpec",
    "TextSettings",
    "against_baseline",
    "fit_vocabulary",
    "forecast_metrics",
    "list_tasks",
    "load_task",
    "register_loader",
    "repair_texts",
    "sample_scores",
    "search_task",
    "task_from_data",
    "test_measures",
    "test_metrics",
    "text_tokens",
]
