"""The oracles: what KerasTuner's oracles forget when they are reloaded, restored."""

from __future__ import annotations

from typing import Any


def restore_grid_order(oracle: Any) -> None:
    """Give a reloaded grid oracle back the order of its tried combinations.

    KerasTuner's ``GridSearchOracle`` keeps that order (``_ordered_ids``) and the trials
    whose next combination is due (``_populate_next``) in memory only: reloaded, it
    found no next combination (a resumed grid stopped early, "no untried configuration
    left") or failed on a trial id it did not know (a restarted chief). Every tried
    trial, in grid order, is due again; one whose next combination was tried is skipped.
    """
    import functools

    trials = sorted(
        oracle.trials.values(),
        key=functools.cmp_to_key(
            lambda a, b: oracle._compare(a.hyperparameters.values, b.hyperparameters.values)
        ),
    )
    oracle._ordered_ids = type(oracle._ordered_ids)()
    for trial in trials:
        oracle._ordered_ids.insert(trial.trial_id)
    oracle._populate_next = [trial.trial_id for trial in trials]


def keep_running_trials(oracle: Any) -> None:
    """Give a restarted chief's reloaded oracle back the trials its workers were running.

    KerasTuner's reload moves every running trial to its retry queue and forgets which
    worker held it: the next worker to ask got it, while a remote worker that outlived its
    chief still trained it (two runs of one trial), and a trial finished meanwhile stayed
    in the queue to be handed out again. Back with their workers (from the saved state's
    ``ongoing_trials``), a worker that comes back carries on with its trial; one that does
    not is lost after the worker timeout, as a worker lost while the chief ran.
    """
    import json
    from pathlib import Path

    saved = Path(oracle._get_oracle_fname())
    if not saved.is_file():
        return
    held = json.loads(saved.read_text()).get("ongoing_trials", {})
    for tuner_id, trial_id in held.items():
        trial = oracle.trials.get(trial_id)
        if trial is None or trial.status != "RUNNING":
            continue
        oracle.ongoing_trials[tuner_id] = trial
        oracle.tuner_ids.add(tuner_id)
        while trial_id in oracle._retry_queue:
            oracle._retry_queue.remove(trial_id)
