"""The oracles: what KerasTuner's oracles forget when they are reloaded, restored."""

from __future__ import annotations

from typing import Any

#: The tuner id KerasTuner gives a search that runs without a chief.
PLAIN_SEARCH_ID = "tuner0"


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

    KerasTuner saves its state before it lets go of an ended trial, so the last trial of
    a finished study was queued too (a failed one trained again): only running trials
    stay queued. A trial a plain search (``tuner0``, which never asks a chief) was running
    when it stopped stays queued for the first worker.
    """
    import json
    from pathlib import Path

    saved = Path(oracle._get_oracle_fname())
    if not saved.is_file():
        return
    held = json.loads(saved.read_text()).get("ongoing_trials", {})
    oracle._retry_queue[:] = [
        trial_id
        for trial_id in oracle._retry_queue
        if trial_id in oracle.trials and oracle.trials[trial_id].status == "RUNNING"
    ]
    for tuner_id, trial_id in held.items():
        trial = oracle.trials.get(trial_id)
        if trial is None or trial.status != "RUNNING" or tuner_id == PLAIN_SEARCH_ID:
            continue
        oracle.ongoing_trials[tuner_id] = trial
        oracle.tuner_ids.add(tuner_id)
        while trial_id in oracle._retry_queue:
            oracle._retry_queue.remove(trial_id)
