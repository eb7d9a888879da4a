"""Search: how to run a search. The public facade over KerasTuner.

:func:`run_search` takes a validated :class:`SearchConfig` (from
:func:`make_search_config`), runs the KerasTuner search, records every trial through
:mod:`workbench.tracking` and returns a :class:`SearchResult`.

The rooms, one line each:

- ``config``: the plain data a search shares with its readers (a leaf: imports nothing).
- ``runner``: validating the options, the study's state folder, the parent run.
- ``chief``: a distributed search's chief: KerasTuner's oracle over gRPC, its workers.
- ``worker``: a worker of a distributed search: joins the chief, runs its trials.
- ``wire``: what a chief tells its workers (the search as JSON) and their heartbeats.
- ``oracles``: what KerasTuner's oracles forget on reload (the grid's order, a restarted
  chief's running trials), restored.
- ``lock``: one process at a time drives a study's local state (an flock).
- ``hypermodel``: KerasTuner's HyperModel: declares the space, builds and fits a trial.
- ``tuner``: KerasTuner's Tuner: runs each trial and records it.
- ``internals``: the KerasTuner internals the search relies on, checked before it starts.
- ``folds``: cross-validation splits of train + validation (small validation parts).
- ``inputs``: the arrays the trials train on (a text task's texts as token ids, once).
- ``meters``: Keras callbacks measuring a trial (time, memory, divergence, gradients).
- ``stopping``: Ctrl-C and SIGTERM end the runs before the process stops.
- ``state``: the search state folder, and the refusal of a resume with other settings.
- ``backend``: loading TensorFlow quietly (GPU memory grown as needed), releasing a
  trial's graphs.
"""

from workbench.search.config import (
    PARAM_NAMES,
    TUNERS,
    ClusterConfig,
    SearchConfig,
    SearchReporter,
    SearchResult,
    TrialResult,
    trial_seed,
)
from workbench.search.runner import default_experiment, make_search_config, run_search

__all__ = [
    "PARAM_NAMES",
    "ClusterConfig",
    "TUNERS",
    "SearchConfig",
    "SearchReporter",
    "SearchResult",
    "TrialResult",
    "default_experiment",
    "make_search_config",
    "run_search",
    "trial_seed",
]
