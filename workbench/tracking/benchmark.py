"""The benchmark run: one run per benchmark, in its own experiment, holding the report."""

from __future__ import annotations

from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.tracking.store import ROLE, _all_runs, client
from workbench.tracking.study import NOTE, open_experiment

#: The benchmark run's tag listing its tasks, comma-separated, in order.
TASKS = "workbench.benchmark_tasks"


def log_benchmark(
    tracking_uri: str, name: str, tasks: list[str], files: list[Path], summary: str
) -> str:
    """Record a benchmark: a finished run in experiment ``name`` with its report files
    (under ``benchmark/``), its tasks and a one-paragraph summary; returns the run id.

    A benchmark run over the same tasks is updated in place (its report replaced), so
    rebuilding the report or resuming the benchmark leaves one run, not one per call; one
    whose report had a file this one has not is replaced by a new run.
    """
    mlflow_client = client(tracking_uri)
    experiment_id = open_experiment(mlflow_client, tracking_uri, name, {ROLE: "benchmark"})
    listed = ",".join(tasks)
    earlier = [
        run
        for run in _all_runs(mlflow_client, experiment_id, f"tags.`{ROLE}` = 'benchmark'", True)
        if run.data.tags.get(TASKS) == listed and run.info.status == "FINISHED"
    ]
    if earlier:
        run_id = earlier[0].info.run_id
        held = {Path(f.path).name for f in mlflow_client.list_artifacts(run_id, "benchmark")}
        if held <= {path.name for path in files}:
            mlflow_client.set_tag(run_id, NOTE, summary)
            for path in files:
                mlflow_client.log_artifact(run_id, str(path), "benchmark")
            return run_id
        # The earlier report has a file this one has not (a diagram of a ranking there is
        # no longer): MLflow deletes no artifact, so the run starts afresh (it stays
        # restorable).
        for run in earlier:
            mlflow_client.delete_run(run.info.run_id)
    run = mlflow_client.create_run(
        experiment_id,
        run_name=f"benchmark-{len(tasks)}-tasks",
        tags={ROLE: "benchmark", TASKS: listed, NOTE: summary},
    )
    status = "FAILED"
    try:
        for path in files:
            mlflow_client.log_artifact(run.info.run_id, str(path), "benchmark")
        status = "FINISHED"
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: killed, as a search's runs
        status = "KILLED"
        raise
    finally:
        mlflow_client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def benchmark_tasks(tracking_uri: str, name: str) -> list[str]:
    """The tasks of the newest benchmark run named ``name``.

    Raises:
        WorkbenchError: no such benchmark in the store.
    """
    mlflow_client = client(tracking_uri)
    existing = mlflow_client.get_experiment_by_name(name)
    runs = (
        _all_runs(mlflow_client, existing.experiment_id, f"tags.`{ROLE}` = 'benchmark'", True)
        if existing is not None
        else []
    )
    if not runs:
        raise WorkbenchError(
            f"No benchmark {name!r} in {tracking_uri}. Run workbench benchmark --name {name} first"
        )
    return [t for t in runs[0].data.tags.get(TASKS, "").split(",") if t]
