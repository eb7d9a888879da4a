#!/usr/bin/env python3
"""How many trials an hour one chief can hand out: the oracle's own time per trial.

A distributed search's chief runs KerasTuner's oracle one call at a time (its calls are
``synchronized``); per trial a worker makes four of them (create, get, update, end), and
each create and end also saves the oracle's state to disk. This times those calls on the
workbench's ``small`` space, without training, as the study grows, and prints the
ceiling that sets: 3600 / (seconds per trial) trials an hour, whatever the GPUs.

    python scripts/bench_chief.py [--trials 300] [--oracles random,bayesian]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--trials", type=int, default=300, help="trials the study grows to (default 300)"
    )
    parser.add_argument(
        "--oracles",
        default="random,bayesian",
        help="comma-separated oracles to time (default random,bayesian)",
    )
    parser.add_argument(
        "--space", default="small", help="a shipped search space or a space file (default small)"
    )
    args = parser.parse_args()

    from workbench.search.backend import load_tensorflow

    load_tensorflow()  # quietly
    warnings.simplefilter("ignore")  # scikit-learn's GP fit warnings (the Bayesian oracle)
    import keras_tuner as kt

    from workbench.search.hypermodel import declare
    from workbench.spaces import load_space

    space = load_space(args.space)
    marks = sorted({m for m in (10, 30, 100, 300, 1000) if m <= args.trials} | {args.trials})
    kinds = {
        "random": kt.oracles.RandomSearchOracle,
        "bayesian": kt.oracles.BayesianOptimizationOracle,
    }
    print(
        f"space {space.name}: oracle seconds per trial (create + get + update + end, "
        "with its saves), by trials so far"
    )
    print(f"{'oracle':<10}" + "".join(f"{m:>10}" for m in marks) + "   trials/hour at the last")
    for name in args.oracles.split(","):
        hp = kt.HyperParameters()
        declare(space, hp)
        oracle = kinds[name](
            objective=kt.Objective("val_loss", "min"),
            max_trials=args.trials + 1,
            hyperparameters=hp,
            seed=1,
        )
        oracle.verbose = 0  # as in the chief: no per-trial table
        rng = random.Random(0)
        row, window = [], []
        with tempfile.TemporaryDirectory() as folder:
            oracle._set_project_dir(folder, "bench")
            for done in range(1, args.trials + 1):
                start = time.perf_counter()
                trial = oracle.create_trial("worker")
                oracle.get_trial(trial.trial_id)
                oracle.update_trial(trial.trial_id, {"val_loss": rng.random()})
                trial.status = "COMPLETED"
                oracle.end_trial(trial)
                window.append(time.perf_counter() - start)
                if done in marks:
                    # the mean of the last few trials: the cost at this size of study
                    recent = window[-min(len(window), 5) :]
                    row.append(sum(recent) / len(recent))
        cells = "".join(f"{seconds:>10.4f}" for seconds in row)
        print(f"{name:<10}{cells}   {3600 / row[-1]:,.0f}")


if __name__ == "__main__":
    main()
