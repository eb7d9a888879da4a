#!/usr/bin/env python3
"""Time `workbench report` on a synthetic 1,000-trial study (goal: seconds, issue 4: < 10 s).

    python scripts/bench_report.py [--trials 1000] [--epochs 10] [--repeats 3]

Writes the study into a temporary SQLite store the way a search records it (a parent run,
nested trial runs with params, per-epoch metrics incl. the gradient probe's, per-repeat
scores, ~5% diverged), then runs the real command in a fresh process and prints its time.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_study(uri: str, experiment: str, trials: int, epochs: int, repeats: int) -> None:
    from mlflow.entities import Metric, Param, RunTag

    from workbench import tracking
    from workbench.tracking.study import _param_value

    rng = np.random.default_rng(0)
    study = tracking.Study(uri, experiment)
    study.open_search(
        params={
            "task": "synthetic",
            "space": "bench",
            "tuner": "random",
            "objective": "val_accuracy",
            "direction": "max",
        },
        tags={
            "task": "synthetic",
            "space": "bench",
            "tuner": "random",
            "baseline": "majority class: accuracy 0.5",
        },
        resume=False,
        run_name="search-random",
    )
    client = tracking.client(uri)
    gain = {"simple_rnn": 0.0, "lstm": 0.12, "gru": 0.11}
    for number in range(1, trials + 1):
        cell = str(rng.choice(list(gain)))
        depth, units = int(rng.choice([1, 2])), int(rng.choice([16, 32, 64]))
        bi, clipping = bool(rng.random() < 0.5), str(rng.choice(["none", "norm"]))
        lr = float(10 ** rng.uniform(-4, -2))
        params = {
            "cell": cell,
            "depth": depth,
            "bidirectional": bi,
            "units": units,
            "clipping": clipping,
            "clip_threshold": 1.0 if clipping == "norm" else "none",
            "learning_rate": lr,
            "dropout": float(rng.choice([0.0, 0.2])),
            "batch_size": 32,
            "epochs": epochs,
            "repeats": repeats,
        }
        run = client.create_run(
            study.experiment_id,
            run_name=f"trial-{number:03d}",
            tags={
                "cell": cell,
                tracking.ROLE: "trial",
                tracking.TRIAL_ID: str(number - 1),
                "workbench.trial_number": str(number),
                tracking.PARENT: study.parent_run_id,
            },
        )
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        level = (
            0.6
            + gain[cell]
            + 0.03 * bi
            + 0.02 * math.log2(units / 16)
            - 0.05 * abs(math.log10(lr) + 2.5)
        )
        diverged = cell == "simple_rnn" and clipping == "none" and rng.random() < 0.15
        metrics, scores = [], []
        for repeat in range(repeats):
            suffix = f"_r{repeat}" if repeat else ""
            final = level + rng.normal(0, 0.02)
            scores.append(final)
            for epoch in range(epochs):
                value = final * (1 - math.exp(-(epoch + 1) / 3))
                norm = float(rng.lognormal(0, 0.5)) * (3 if cell == "simple_rnn" else 1)
                metrics += [
                    Metric(f"loss{suffix}", 1 - value, now, epoch),
                    Metric(f"val_loss{suffix}", 1.05 - value, now, epoch),
                    Metric(f"accuracy{suffix}", value + 0.01, now, epoch),
                    Metric(f"val_accuracy{suffix}", value, now, epoch),
                    Metric(f"grad_norm{suffix}", norm, now, epoch),
                    Metric(
                        f"grad_clipped{suffix}", float(clipping == "norm" and norm > 1), now, epoch
                    ),
                    Metric(f"grad_input_early{suffix}", norm * 0.01, now, epoch),
                    Metric(f"grad_input_late{suffix}", norm * 0.5, now, epoch),
                ]
        size = units * units * {"simple_rnn": 1, "lstm": 4, "gru": 3}[cell] * depth * (1 + bi)
        fit = epochs * (0.5 + size / 20000)
        if not diverged:
            metrics += [Metric(f"score_r{r}", s, now, 0) for r, s in enumerate(scores)]
            metrics += [
                Metric(k, v, now, 0)
                for k, v in {
                    "score": float(np.mean(scores)),
                    "score_std": float(np.std(scores)),
                    "n_params": size,
                    "epoch_seconds": fit / epochs,
                    "fit_seconds": fit,
                    "peak_memory_mb": 400 + size / 100,
                    "grad_norm_max": 5.0,
                    "grad_probe_seconds": fit * 0.01,
                }.items()
            ]
        tags = [RunTag("failure", "diverged")] if diverged else []
        for start in range(0, len(metrics), 1000):  # MLflow's batch limit
            client.log_batch(
                run_id,
                metrics=metrics[start : start + 1000],
                params=[Param(k, _param_value(v)) for k, v in params.items()]
                if start == 0
                else [],
                tags=tags if start == 0 else [],
            )
        client.set_terminated(run_id, status="FAILED" if diverged else "FINISHED")
    study.end_search("FINISHED")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--trials", type=int, default=1000, help="trials of the synthetic study (default 1000)"
    )
    parser.add_argument(
        "--epochs", type=int, default=10, help="epochs recorded per trial (default 10)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="repeats (scores) per trial (default 3)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        uri = f"sqlite:///{Path(folder) / 'mlflow.db'}"
        start = time.perf_counter()
        write_study(uri, "bench", args.trials, args.epochs, args.repeats)
        print(
            f"Wrote {args.trials} trials x {args.repeats} repeats x {args.epochs} epochs "
            f"in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        command = [
            sys.executable,
            "-m",
            "workbench.cli",
            "report",
            "--experiment",
            "bench",
            "--out",
            str(Path(folder) / "report"),
            "--tracking-uri",
            uri,
        ]
        start = time.perf_counter()
        done = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        )
        seconds = time.perf_counter() - start
        print(done.stdout + done.stderr, end="")
        if done.returncode != 0:
            return done.returncode
        print(
            f"workbench report on {args.trials} trials: {seconds:.2f} s "
            "(whole command: interpreter start, reading, analysis, drawing, logging)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
