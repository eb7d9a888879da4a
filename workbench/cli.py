"""The ``workbench`` command line: each command parses, calls one library function, prints.

Heavy libraries (TensorFlow, Keras, KerasTuner, MLflow) are imported inside the
commands that need them, so ``workbench --help`` answers at once.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

from workbench import __version__
from workbench.cli_options import (
    WorkbenchCommand,
    benchmark_options,
    parse_task_options,
    search_options,
)
from workbench.errors import WorkbenchError
from workbench.shutdown import skip_final_collection


class _Group(click.Group):
    """Turns :class:`WorkbenchError` and click's own usage errors (a missing option, a value
    out of range) into ``Error: <one line>`` and exit code 2."""

    command_class = WorkbenchCommand

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The group's own options (``workbench --bogus``): one line too, not click's usage.
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            click.echo(f"Error: {exc.format_message()} See '{ctx.command_path} --help'.", err=True)
            ctx.exit(2)

    def invoke(self, ctx: click.Context) -> Any:
        from workbench.search.stopping import on_signals

        try:
            # SIGTERM and SIGHUP stop every command as Ctrl-C does, through its cleanup
            # (they killed a benchmark mid-write, its run left RUNNING for good).
            with on_signals(interrupt=False):
                return super().invoke(ctx)
        except WorkbenchError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(2)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else ctx.command_path
            click.echo(f"Error: {exc.format_message()} See '{where} --help'.", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            resumes = ctx.invoked_subcommand in ("search", "chief", "worker", "benchmark")
            kept = " Finished trials are kept; run the same command again to resume."
            click.echo("\nInterrupted." + (kept if resumes else ""), err=True)
            ctx.exit(130)


@click.group(name="workbench", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="workbench")
def main() -> None:
    """Which recurrent architecture should I use for this sequence task?

    Searches over cell type (SimpleRNN / LSTM / GRU), depth, direction, hidden size and
    gradient clipping with KerasTuner, and records every trial in MLflow.

    \b
    Example:
      workbench search --task adding --space small --tuner random --max-trials 6
      workbench ui
    """
    skip_final_collection()


@main.command()
def tasks() -> None:
    """List the built-in tasks, one line each: type, shape, train/val/test sizes, metric, source.

    Shapes read steps x features -> outputs.

    \b
    Example:
      workbench tasks
    """
    from workbench.tasks import list_tasks

    for task in list_tasks():
        click.echo(task.summary())


@main.command()
def spaces() -> None:
    """List the shipped search spaces, one line each.

    \b
    Example:
      workbench spaces
    """
    from workbench.spaces import list_spaces

    for space in list_spaces():
        click.echo(f"{space.name:<14} {space.describe()}")


def _run_search(options: dict[str, Any], cluster: Any = None) -> None:
    from workbench.console import ConsoleReporter, print_search_result
    from workbench.search import make_search_config, run_search
    from workbench.spaces import load_space
    from workbench.tasks import DataFlags, search_task

    o = options
    flags = DataFlags(
        o["target_column"],
        o["time_column"],
        o["window"],
        o["horizon"],
        o["text_column"],
        o["label_column"],
        o["id_column"],
    )
    task, task_file = search_task(
        o["task_name"], o["data_file"], flags, parse_task_options(o["task_options"])
    )
    if task_file is not None:
        reuse = shlex.quote(str(task_file))
        click.echo(f"Task file {task_file} (reuse it: workbench search --task {reuse})")
    config = make_search_config(
        task=task,
        space=load_space(o["space_name"]),
        tuner=o["tuner"],
        max_trials=o["max_trials"],
        epochs=o["epochs"],
        seed=o["seed"],
        deterministic=o["deterministic"],
        mixed_precision=o["mixed_precision"],
        gradient_probe=o["gradient_probe"],
        steps_per_execution=o["steps_per_execution"],
        hyperband_iterations=o["hyperband_iterations"],
        experiment=o["experiment"],
        tracking_uri=o["tracking_uri"],
        state_root=o["state_dir"],
        overwrite=o["overwrite"],
        keep_checkpoints=o["keep_checkpoints"],
        folds=o["folds"],
        repeats=o["repeats"],
        cluster=cluster,
    )
    with ConsoleReporter() as reporter:
        result = run_search(config, reporter)
    print_search_result(reporter.console, result)


_WORKER_TIMEOUT = click.option(
    "--worker-timeout",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Seconds without a heartbeat after which a worker is lost: its trial is recorded "
    "FAILED and the search goes on without it.",
)


@main.command()
@search_options
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Run the trials in N worker processes on this host, one per GPU (else the CPU "
    "cores shared out); this process is their chief. 0: this process runs them.",
)
@_WORKER_TIMEOUT
def search(workers: int, worker_timeout: float, **options: Any) -> None:
    """Search recurrent architectures for a task; every trial lands in MLflow.

    Running the same command again resumes the study where it stopped. With --data FILE
    instead of --task, the task is built from your file and written to <stem>.task.yaml
    next to it, for reuse with --task.

    \b
    Example:
      workbench search --task adding --space small --tuner random --max-trials 6
      workbench search --task adding --space gru_vs_lstm --tuner grid --repeats 3
      workbench search --task adding --space small --max-trials 8 --workers 2
      workbench search --data sales.csv --time-column month --target-column sales \\
          --window 12 --horizon 3
    """
    from workbench.search import ClusterConfig

    cluster = ClusterConfig(
        local_workers=workers,
        worker_timeout=worker_timeout,
        heartbeat_seconds=min(5.0, worker_timeout / 4),
    )
    _run_search(options, cluster if workers else None)


@main.command()
@search_options
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on: 0.0.0.0 for workers on other hosts (no authentication: "
    "a trusted network only).",
)
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=8470,
    show_default=True,
    help="Port to listen on (0: any free port). Keep it fixed: a restarted chief is found "
    "by its workers at the same address.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also start N workers on this host.",
)
@_WORKER_TIMEOUT
def chief(host: str, port: int, workers: int, worker_timeout: float, **options: Any) -> None:
    """Serve a search to workers on other hosts (KerasTuner's chief), and record it.

    Takes every option of `workbench search`. Workers join with `workbench worker --chief
    HOST:PORT` and get the task, space and tracking store from the chief. Use a tracking
    store every host reaches (an `mlflow server` or a postgresql:// URI). Stopped, the
    same command resumes the study; each running trial stays with its worker.

    \b
    Example:
      workbench chief --task adding --space small --max-trials 40 --host 0.0.0.0 \\
          --tracking-uri http://mlflow.internal:5000
      workbench worker --chief 10.0.0.5:8470          # on each GPU host
    """
    from workbench.search import ClusterConfig

    cluster = ClusterConfig(
        local_workers=workers,
        host=host,
        port=port,
        worker_timeout=worker_timeout,
        heartbeat_seconds=min(5.0, worker_timeout / 4),
    )
    _run_search(options, cluster)


@main.command()
@click.option(
    "--tasks",
    required=True,
    metavar="TASK,TASK,...",
    help="Built-in tasks or task files, comma-separated: one study each.",
)
@click.option(
    "--space",
    "space_name",
    default="demo",
    show_default=True,
    metavar="NAME|FILE",
    help="The search space of every study (demo: the three cells on matched settings).",
)
@click.option(
    "--name",
    default=None,
    help="The benchmark's name; its studies are <name>-<task>. Default: benchmark-<space>.",
)
@click.option(
    "--tuner",
    type=click.Choice(["random", "bayesian", "hyperband", "grid"]),
    default="grid",
    show_default=True,
)
@click.option(
    "--max-trials",
    type=click.IntRange(min=1),
    default=None,
    help="Trials per task (default: the whole grid; 10 with another tuner).",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="Fix every trial's epochs."
)
@benchmark_options
@click.option(
    "--task-option",
    "task_options",
    multiple=True,
    metavar="[TASK:]KEY=VALUE",
    help="A loader option for every task, or with TASK: for one.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Report folder.")
@click.option(
    "--tracking-uri",
    default=None,
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow store. Default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Start every task's study afresh (its earlier runs deleted; MLflow keeps them "
    "restorable) instead of resuming it.",
)
def benchmark(
    tasks: str,
    space_name: str,
    name: str | None,
    tuner: str,
    max_trials: int | None,
    epochs: int | None,
    repeats: int,
    folds: int,
    seed: int,
    task_options: tuple[str, ...],
    out: str,
    tracking_uri: str | None,
    state_dir: str,
    overwrite: bool,
) -> None:
    """Compare the cells over several tasks: one study per task, then ranks and tests.

    Each task's study (<name>-<task>) is resumable like any search and trains nothing
    again once complete. The report (benchmark.md, benchmark.html, the critical-difference
    diagram) ranks the cells per task, averages the ranks, and tests them (Friedman,
    Nemenyi, Holm-corrected Wilcoxon; Demsar 2006); it is logged on a run in experiment
    <name>. `workbench report --benchmark NAME` rebuilds it.

    \b
    Example:
      workbench benchmark --tasks adding,copy_memory,japanese_vowels --space demo \\
          --tuner grid --max-trials 9 --name cells --out reports/cells
    """
    from workbench.benchmark import run_benchmark
    from workbench.console import ConsoleReporter
    from workbench.spaces import load_space

    space = load_space(space_name)
    with ConsoleReporter() as reporter:
        result = run_benchmark(
            name=name or f"benchmark-{space.name}",
            tasks=[t.strip() for t in tasks.split(",") if t.strip()],
            space=space,
            out=out,
            tuner=tuner,
            max_trials=max_trials,
            epochs=epochs,
            seed=seed,
            repeats=repeats,
            folds=folds,
            task_options=parse_task_options(task_options),
            tracking_uri=tracking_uri,
            state_root=state_dir,
            overwrite=overwrite,
            reporter=reporter,
        )
    for line in result.lines():
        click.echo(line)


@main.command()
@click.option("--chief", "chief_address", required=True, metavar="HOST:PORT", help="The chief.")
@click.option(
    "--worker-id",
    default=None,
    help="This worker's name (default: the host name). Started again with the same id, a "
    "worker gets back the trial it held.",
)
@click.option(
    "--state-dir",
    default=".workbench",
    show_default=True,
    help="Where this worker keeps its KerasTuner state and checkpoints.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="TensorFlow's intra-op threads (default: all cores).",
)
def worker(chief_address: str, worker_id: str | None, state_dir: str, threads: int | None) -> None:
    """Run trials for a chief until its search has none left.

    \b
    Example:
      workbench worker --chief 10.0.0.5:8470
      CUDA_VISIBLE_DEVICES=1 workbench worker --chief 10.0.0.5:8470 --worker-id gpu1
    """
    from workbench.console import ConsoleReporter
    from workbench.search.worker import default_worker_id, run_worker

    with ConsoleReporter() as reporter:
        result = run_worker(
            chief_address, worker_id or default_worker_id(), state_dir, threads, reporter
        )
    click.echo(result.summary())


@main.command()
@click.option("--experiment", required=True, help="The MLflow experiment of the search.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write model.keras, saved_model/, hyperparameters.json, MODEL_CARD.md.",
)
@click.option("--trial", default=None, help="A trial number or run id instead of the best trial.")
@click.option(
    "--retrain",
    is_flag=True,
    help="Train the trial's configuration again on train + validation (same seed, for the "
    "trial's best_epoch epochs).",
)
@click.option(
    "--register", default=None, help="Registered model name. Default: the experiment's name."
)
@click.option(
    "--tracking-uri",
    default=None,
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow store. Default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db.",
)
def export(
    experiment: str,
    out: str,
    trial: str | None,
    retrain: bool,
    register: str | None,
    tracking_uri: str | None,
) -> None:
    """Export the best finished trial of a search as a model to load, serve and trust.

    Rebuilds the trial from its logged hyperparameters and kept best-epoch weights, checks
    its validation and test scores against the logged ones, writes the model files and
    registers it in the MLflow Model Registry with the alias `champion`.

    \b
    Example:
      workbench export --experiment adding-small --out models/adding
      workbench export --experiment adding-small --out models/adding-t2 --trial 2 --retrain
    """
    from workbench.export import export_best

    result = export_best(
        experiment,
        out,
        trial=trial,
        retrain=retrain,
        register=register,
        tracking_uri=tracking_uri,
        progress=lambda line: click.echo(line, err=True),
    )
    for line in result.lines():
        click.echo(line)


@main.command()
@click.option("--experiment", default=None, help="The MLflow experiment of the search.")
@click.option(
    "--benchmark",
    default=None,
    help="Instead of --experiment: rebuild a benchmark's report from its studies.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write report.html, report.md, trials.csv and the PNG figures.",
)
@click.option(
    "--tracking-uri",
    default=None,
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow store. Default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db.",
)
def report(
    experiment: str | None, benchmark: str | None, out: str, tracking_uri: str | None
) -> None:
    """Compare the architectures of a finished search: statistics, cost, claims check.

    Reads the trials back from MLflow and writes report.html (self-contained), report.md,
    trials.csv (one row per trial and repeat) and PNG figures into --out; also logs them
    under report/ on the search's parent run.

    \b
    Example:
      workbench search --task adding --space gru_vs_lstm --tuner grid --repeats 3
      workbench report --experiment adding-gru_vs_lstm --out reports/adding
      workbench report --benchmark cells --out reports/cells
    """
    from workbench.report import make_report

    if (experiment is None) == (benchmark is None):
        raise WorkbenchError("Expected --experiment NAME or --benchmark NAME (one of them)")
    if benchmark is not None:
        from workbench.benchmark import report_benchmark

        for line in report_benchmark(benchmark, out, tracking_uri).lines():
            click.echo(line)
        return
    result = make_report(experiment, out, tracking_uri=tracking_uri)
    for line in result.lines():
        click.echo(line)


@main.command()
@click.option(
    "--model",
    "model_dir",
    required=True,
    metavar="DIR",
    help="A folder written by `workbench export`.",
)
@click.option(
    "--data",
    "data_file",
    required=True,
    metavar="FILE",
    help="Inputs: .npz (array x) or .csv (one input per row; a series for forecasting).",
)
@click.option("--out", default=None, metavar="FILE", help="CSV to write. Default: stdout.")
@click.option(
    "--header/--no-header",
    default=None,
    help="Whether the CSV's first row is column names. Default: it is, unless it holds "
    "numbers only (then it is the first input, and a note says so).",
)
def predict(model_dir: str, data_file: str, out: str | None, header: bool | None) -> None:
    """Predict with an exported model: one CSV row per input (class and probabilities, or values).

    \b
    Example:
      workbench predict --model models/adding --data new_inputs.npz --out predictions.csv
    """
    from workbench.export import predict_file

    result = predict_file(model_dir, data_file, out, header)
    for note in result.notes:
        click.echo(f"Note: {note}", err=True)
    if result.out is None:
        click.echo(result.csv_text, nl=False)
    else:
        click.echo(f"Wrote {result.rows} predictions to {result.out}", err=True)


@main.command()
@click.option(
    "--tracking-uri",
    default=None,
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow store. Default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option(
    "--experiment",
    default=None,
    help="A study to open: prints the links to its runs and to the compare page of its trials.",
)
def ui(tracking_uri: str | None, port: int, experiment: str | None) -> None:
    """Start the MLflow UI on 127.0.0.1 over the same store as `search`.

    \b
    Example:
      workbench ui --port 5000     # then open http://127.0.0.1:5000
      workbench ui --experiment adding-demo
    """
    from workbench.tracking import (
        check_ui,
        resolve_tracking_uri,
        serve_ui,
        served_ui,
        study_links_for,
    )

    uri = resolve_tracking_uri(tracking_uri)
    links = study_links_for(uri, experiment, port=port).lines() if experiment else []
    check_ui(uri, port=port)  # said before any link is printed
    served = served_ui(uri)
    if served:
        click.echo(f"{uri} is an MLflow server: its own UI is at {served}")
    else:
        click.echo(f"MLflow UI for {uri} on http://127.0.0.1:{port} (Ctrl-C to stop)")
    for line in links:
        click.echo(f"  {line}")
    if not served:
        sys.exit(serve_ui(uri, port=port))


if __name__ == "__main__":
    main()
