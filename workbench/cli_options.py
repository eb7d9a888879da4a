"""The command line's shared options: everything a search takes (``search``, ``chief``),
and the checks every command's options get."""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource


class WorkbenchCommand(click.Command):
    """A command that refuses an option given empty on the command line (``--out ""``
    wrote into the current folder, ``--tracking-uri ""`` fell back to the default)."""

    def invoke(self, ctx: click.Context) -> Any:
        for param in self.params:
            given = ctx.get_parameter_source(param.name or "")
            if ctx.params.get(param.name) == "" and given is ParameterSource.COMMANDLINE:
                raise click.UsageError(
                    f"Expected a value for {param.opts[0]}. Received: an empty string.", ctx
                )
        return super().invoke(ctx)


def parse_task_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--task-option KEY=VALUE`` pairs as a mapping, each value read as YAML reads it."""
    from workbench.errors import WorkbenchError
    from workbench.yamlio import parse_scalar

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise WorkbenchError(f"Expected --task-option KEY=VALUE. Received: {pair!r}")
        options[key.strip()] = parse_scalar(value)
    return options


def search_options(command: Any) -> Any:
    """The options of a search, shared by ``search`` and ``chief``."""
    for option in reversed(SEARCH_OPTIONS):
        command = option(command)
    return command


def benchmark_options(command: Any) -> Any:
    """The options ``benchmark`` passes to every task's search."""
    for option in reversed(BENCHMARK_OPTIONS):
        command = option(command)
    return command


#: Shared by search, chief and benchmark (applied to each command: one Option each).
REPEATS = click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Train each configuration K times with different seeds; its score is the mean.",
)

FOLDS = click.option(
    "--folds",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Score each trial by K-fold cross-validation of train + validation (stratified "
    "for classes; rolling origins in time order for forecasting); 0 decides: 5 folds when "
    "the validation part has under 50 samples (not for forecasting, nor with --tuner "
    "hyperband), else none (1).",
)

STATE_DIR = click.option(
    "--state-dir",
    default=".workbench",
    show_default=True,
    help="Where KerasTuner keeps its per-study state (for resuming).",
)


BENCHMARK_OPTIONS = [
    REPEATS,
    FOLDS,
    click.option(
        "--seed",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Seeds every task's tuner and training; the same seed tries the same trials.",
    ),
    STATE_DIR,
]


SEARCH_OPTIONS = [
    click.option(
        "--task",
        "task_name",
        default=None,
        metavar="NAME|FILE.yaml",
        help="A built-in task (see `workbench tasks`) or a task file.",
    ),
    click.option(
        "--data",
        "data_file",
        default=None,
        metavar="FILE",
        help="Instead of --task: your .csv, .parquet or .npz; writes <stem>.task.yaml beside it.",
    ),
    click.option("--target-column", "--target", metavar="COL", help="With --data: forecast COL."),
    click.option("--time-column", metavar="COL", help="With --data: the time (or step) column."),
    click.option(
        "--window", type=click.IntRange(min=1), metavar="W", help="With --data: steps in."
    ),
    click.option(
        "--horizon", type=click.IntRange(min=1), metavar="H", help="With --data: steps out."
    ),
    click.option("--text-column", metavar="COL", help="With --data: the text column (text task)."),
    click.option("--label-column", metavar="COL", help="With --data: the class label column."),
    click.option("--id-column", metavar="COL", help="With --data: series id column (long format)."),
    click.option(
        "--space",
        "space_name",
        default="small",
        show_default=True,
        metavar="NAME|FILE.yaml",
        help="A shipped search space or a space file.",
    ),
    click.option(
        "--tuner",
        type=click.Choice(["random", "bayesian", "hyperband", "grid"]),
        default="random",
        show_default=True,
        help="KerasTuner oracle.",
    ),
    click.option(
        "--max-trials",
        type=click.IntRange(min=1),
        default=None,
        help="Trials to run (default 10; grid: every configuration of the space; hyperband "
        "runs whole brackets instead: see --hyperband-iterations).",
    ),
    click.option(
        "--hyperband-iterations",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="With --tuner hyperband: whole iterations of all its brackets.",
    ),
    click.option(
        "--epochs",
        type=click.IntRange(min=1),
        default=None,
        help="Fix the epochs of every trial (overrides the space).",
    ),
    click.option(
        "--seed",
        type=int,
        default=0,
        show_default=True,
        help="Seeds the tuner's choices and every training; the same seed tries the same trials.",
    ),
    click.option(
        "--deterministic",
        is_flag=True,
        help="TensorFlow's deterministic ops: bit-identical training on one machine (slower).",
    ),
    click.option(
        "--mixed-precision",
        is_flag=True,
        help="Train in mixed_float16 (float32 weights and head, loss scaling): faster on "
        "GPUs with tensor cores, slower on CPUs.",
    ),
    click.option(
        "--gradient-probe/--no-gradient-probe",
        default=True,
        show_default=True,
        help="Measure gradient health at each epoch end (pre-clipping norm, clipping, "
        "early/late input gradients); off saves its one trace per new architecture.",
    ),
    click.option(
        "--steps-per-execution",
        type=int,
        default=1,
        show_default=True,
        help="Training steps per call of Keras' traced training function (the same "
        "training, fewer round trips to Python): for small models on GPUs.",
    ),
    click.option("--experiment", default=None, help="MLflow experiment. Default: <task>-<space>."),
    click.option(
        "--tracking-uri",
        default=None,
        envvar="MLFLOW_TRACKING_URI",
        help="MLflow store. Default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db.",
    ),
    click.option(
        "--task-option",
        "task_options",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a loader option of the task, e.g. --task-option length=100.",
    ),
    STATE_DIR,
    click.option("--overwrite", is_flag=True, help="Start the study afresh instead of resuming."),
    click.option(
        "--keep-checkpoints",
        type=click.IntRange(min=1),
        default=3,
        show_default=True,
        help="Keep the best-epoch weights of the best K trials; delete the others' as they "
        "fall out.",
    ),
    FOLDS,
    REPEATS,
]
