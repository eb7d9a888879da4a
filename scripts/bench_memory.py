"""Memory across trials: RSS after trial 3 and after trial 30 of one small search.

Prints the resident set size of this process as each trial ends, then the difference
between trial 30 and trial 3 (the goal: within 150 MB; KerasTuner issues 395, 873 and
1031 report growth when models pile up). Runs on CPU in a few minutes:

    python scripts/bench_memory.py [--trials 30] [--out /tmp/bench-memory]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from workbench.search import make_search_config, run_search
from workbench.spaces import load_space
from workbench.tasks import load_task

SPACE = """
name: bench-memory
dimensions:
  cell: [simple_rnn, lstm, gru]
  depth: [1, 2]
  bidirectional: [false, true]
  units: [8, 16, 32]
  learning_rate: {min: 1e-3, max: 1e-2, sampling: log}
  batch_size: 32
  epochs: 1
"""


def rss_mb() -> float:
    """This process's resident set size in MB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Recorder:
    def __init__(self) -> None:
        self.rss: list[float] = []

    def search_started(self, *args: Any) -> None: ...

    def trial_started(self, *args: Any) -> None: ...

    def epoch_ended(self, *args: Any) -> None: ...

    def trial_ended(self, result: Any) -> None:
        self.rss.append(rss_mb())
        print(f"trial {len(self.rss):3d} {result.status:9s} RSS {self.rss[-1]:8.1f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--trials", type=int, default=30, help="trials of the search (default 30; at least 3)"
    )
    parser.add_argument("--out", default=None, help="folder for the store (default: a temp one)")
    args = parser.parse_args()
    if args.trials < 3:  # the figures compare each later trial with trial 3
        parser.error(f"argument --trials: expected at least 3, received {args.trials}")
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-memory-"))
    out.mkdir(parents=True, exist_ok=True)
    space_file = out / "bench-memory.yaml"
    space_file.write_text(SPACE)
    task = load_task("adding").with_options(length=50, n_train=256, n_val=64, n_test=64)
    config = make_search_config(
        task=task,
        space=load_space(str(space_file)),
        max_trials=args.trials,
        tracking_uri=f"sqlite:///{out / 'mlflow.db'}",
        state_root=out / "state",
        overwrite=True,
    )
    recorder = _Recorder()
    run_search(config, recorder)
    rss = recorder.rss
    if len(rss) >= 30:
        print(
            f"\nRSS after trial 3: {rss[2]:.1f} MB; after trial 30: {rss[29]:.1f} MB; "
            f"growth {rss[29] - rss[2]:+.1f} MB (goal: within 150 MB)"
        )
    else:
        print(f"\nRSS after trial 3: {rss[2]:.1f} MB; after trial {len(rss)}: {rss[-1]:.1f} MB")


if __name__ == "__main__":
    main()
