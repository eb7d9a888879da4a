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
