"""The runner: validates a search's options and runs (or resumes) one study.

:func:`run_search` takes a validated :class:`SearchConfig`, runs the KerasTuner
search (the workers live in :mod:`workbench.search.tuner`), records every trial through
:mod:`workbench.tracking` and returns a :class:`SearchResult`. Progress is reported
to an optional :class:`SearchReporter`, so the library prints nothing itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from workbench import __version__
from workbench.errors import NoTrialFinished, WorkbenchError
from workbench.resources import command_reference
from workbench.search.config import (
    AUTO_FOLDS,
    DEFAULT_MAX_TRIALS,
    MAX_SEED,
    TUNERS,
    ClusterConfig,
    SearchConfig,
    SearchReporter,
    SearchResult,
    best_of,
    folds_for,
    hyperband_trials,
)
from workbench.search.folds import fold_baseline, fold_indices
from workbench.search.state import prepare_state_dir, state_folder
from workbench.spaces import SearchSpace
from workbench.tasks import TaskData, TaskSpec


def default_experiment(task: TaskSpec, space: SearchSpace) -> str:
    """The experiment name used when none is given: ``<task>-<space>``."""
    return f"{task.name}-{space.name}"


def make_search_config(
    *,
    task: TaskSpec,
    space: SearchSpace,
    tuner: str = "random",
    max_trials: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    deterministic: bool = False,
    mixed_precision: bool = False,
    gradient_probe: bool = True,
    steps_per_execution: int = 1,
    hyperband_iterations: int = 1,
    folds: int = 0,
    experiment: str | None = None,
    tracking_uri: str | None = None,
    state_root: str | Path = ".workbench",
    overwrite: bool = False,
    keep_checkpoints: int = 3,
    repeats: int = 1,
    cluster: ClusterConfig | None = None,
) -> SearchConfig:
    """Validate the search options (at the edge, once) into a :class:`SearchConfig`."""
    from workbench.tracking import resolve_tracking_uri

    if tuner not in TUNERS:
        raise WorkbenchError(f"Expected --tuner in {', '.join(TUNERS)}. Received: {tuner!r}")
    if max_trials is not None and max_trials < 1:
        raise WorkbenchError(f"Expected --max-trials >= 1. Received: {max_trials}")
    if keep_checkpoints < 1:
        raise WorkbenchError(f"Expected --keep-checkpoints >= 1. Received: {keep_checkpoints}")
    if repeats < 1:
        raise WorkbenchError(f"Expected --repeats >= 1. Received: {repeats}")
    if not 0 <= seed <= MAX_SEED:  # each training's seed adds the trial and repeat to it
        raise WorkbenchError(f"Expected --seed between 0 and {MAX_SEED}. Received: {seed}")
    if folds < 0:
        raise WorkbenchError(f"Expected --folds >= 0 (0: decide from the data). Received: {folds}")
    if not 1 <= steps_per_execution <= 10_000:  # Keras keeps it in an int64 counter
        raise WorkbenchError(
            "Expected --steps-per-execution from 1 to 10000 (steps per call; an epoch's "
            f"steps at most are used). Received: {steps_per_execution}"
        )
    if cluster is not None:
        _check_cluster(cluster)
    if tuner == "hyperband" and folds > 1:
        raise WorkbenchError(
            f"Expected --folds 1 (or none) with --tuner hyperband: its later rounds train on "
            "from an earlier round's weights, which with folds were trained on each fold's "
            f"validation rows. Received: --folds {folds}"
        )
    if experiment is not None and not experiment.strip():
        # An empty name fell back to the default one without a word.
        raise WorkbenchError(
            f"Expected a name for --experiment, or none for the default. Received: {experiment!r}"
        )
    if hyperband_iterations < 1:
        raise WorkbenchError(
            f"Expected --hyperband-iterations >= 1. Received: {hyperband_iterations}"
        )
    if hyperband_iterations != 1 and tuner != "hyperband":
        raise WorkbenchError(
            "Expected --hyperband-iterations with --tuner hyperband only (the other tuners "
            f"run --max-trials trials). Received: --tuner {tuner} --hyperband-iterations "
            f"{hyperband_iterations}"
        )
    if epochs is not None:
        if epochs < 1:
            raise WorkbenchError(f"Expected --epochs >= 1. Received: {epochs}")
        space = space.with_fixed(epochs=epochs)
    if tuner == "grid" and space.continuous:
        raise WorkbenchError(
            f"--tuner grid needs every range to have a step; {space.source}: "
            f"dimensions.{space.continuous[0]} is a continuous range. List its values or add "
            "a step."
        )
    notes: tuple[str, ...] = ()
    if tuner == "hyperband":
        # Hyperband runs whole brackets: its size, not --max-trials, ends the search.
        if max_trials is not None:
            notes = (
                f"--tuner hyperband sets its own number of trials from the space's epochs "
                f"and --hyperband-iterations: --max-trials {max_trials} is not used.",
            )
        max_trials = hyperband_trials(space.max_epochs, hyperband_iterations)
    elif tuner == "grid":
        # A grid is run whole unless asked otherwise (as KerasTuner's own grid search).
        size = space.grid_size or 1
        notes = _grid_notes(size, max_trials)
        max_trials = size if max_trials is None else min(max_trials, size)
    elif max_trials is None:
        max_trials = DEFAULT_MAX_TRIALS
    uri = resolve_tracking_uri(tracking_uri)
    name = experiment or default_experiment(task, space)
    state_dir = state_folder(Path(state_root).expanduser().resolve(), uri, name)
    return SearchConfig(
        task=task,
        space=space,
        tuner=tuner,
        max_trials=max_trials,
        seed=seed,
        experiment=name,
        tracking_uri=uri,
        state_dir=state_dir,
        overwrite=overwrite,
        keep_checkpoints=keep_checkpoints,
        repeats=repeats,
        deterministic=deterministic,
        hyperband_iterations=hyperband_iterations,
        folds=folds,
        mixed_precision=mixed_precision,
        gradient_probe=gradient_probe,
        steps_per_execution=steps_per_execution,
        cluster=cluster,
        notes=notes,
    )


@contextlib.contextmanager
def precision(mixed: bool) -> Iterator[None]:
    """Keras' global dtype policy for the models built in the block (``mixed_float16`` or
    ``float32``); the process's earlier policy is restored after it."""
    from workbench.search.backend import load_tensorflow

    load_tensorflow()
    import keras

    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


@contextlib.contextmanager
def frozen_garbage_collector() -> Iterator[None]:
    """Leave what exists now (the imports, the data) out of the garbage collections.

    KerasTuner collects garbage before every trial, twice (``gc.collect()`` and Keras'
    ``clear_session()``); with TensorFlow, Keras and MLflow imported, each full pass walks
    a few hundred thousand objects (about 0.9 s a trial on 2 cores). Frozen, they are
    skipped; what the trials create is collected as before. Unfrozen at the end, so
    nothing frozen outlives the search. Only the young generations are collected before
    the freeze: a full pass here took 0.3-0.4 s and found a few dozen unreachable objects,
    which wait for the end of the search.
    """
    import gc

    gc.collect(1)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _check_cluster(cluster: ClusterConfig) -> None:
    if cluster.local_workers < 0:
        raise WorkbenchError(f"Expected --workers >= 0. Received: {cluster.local_workers}")
    if not 0 <= cluster.port < 65536:
        raise WorkbenchError(f"Expected --port in 0..65535 (0: any). Received: {cluster.port}")
    if not cluster.worker_timeout > cluster.heartbeat_seconds:  # NaN too
        raise WorkbenchError(
            f"Expected --worker-timeout above the {cluster.heartbeat_seconds:g} s heartbeat. "
            f"Received: {cluster.worker_timeout:g}"
        )


def run_search(config: SearchConfig, reporter: SearchReporter | None = None) -> SearchResult:
    """Run (or resume) the search and record it in MLflow.

    Input problems (bad data, an unreachable store, a study started with other options)
    raise :class:`WorkbenchError` before any run is created. A trial that diverges or
    fails ends FAILED and the search goes on; the parent run ends FINISHED, FAILED
    (no trial succeeded) or KILLED (interrupted: Ctrl-C or SIGTERM raise
    ``KeyboardInterrupt`` once the runs are ended).
    """
    from workbench.search import stopping
    from workbench.search.lock import study_lock

    with stopping.on_signals(), study_lock(config.state_dir, config.experiment):
        if config.cluster is not None:
            from workbench.search.chief import check_port

            check_port(config.cluster)  # a busy port is said before the study's run opens
        return _run_search(config, reporter)


def _run_search(config: SearchConfig, reporter: SearchReporter | None) -> SearchResult:
    from workbench import tracking

    # MLflow starts (imports, store) in its own process while TensorFlow loads in this one.
    with tracking.TrackingService(config.tracking_uri) as service:
        return _search(config, reporter, service)


def fit_to_data(config: SearchConfig, data: TaskData) -> tuple[SearchConfig, int]:
    """The search as the task's data allow it: the folds decided (and cut once, so a
    series too short for them stops here), and the samples validated on with folds (0
    without). What a benchmark checks for every task before its first search.

    Raises:
        WorkbenchError: a readout the data cannot use, or more folds than they allow.
    """
    notes = list(config.notes)
    readout = config.space["readout"]
    fixed = getattr(readout, "values", ("last",))
    if data.sequence_output and (not readout.is_fixed or fixed[0] != "last"):
        # Every step is predicted: the readout is not used, and its values would only
        # train each configuration again under another name.
        config = dataclasses.replace(config, space=config.space.with_fixed(readout="last"))
        if config.tuner == "grid":  # half the grid, or less, is left
            size = config.space.grid_size or 1
            asked = config.max_trials if any(n.startswith(_GRID_NOTE) for n in notes) else None
            notes = [n for n in notes if not n.startswith(_GRID_NOTE)]
            notes += _grid_notes(size, asked)
            config = dataclasses.replace(config, max_trials=min(config.max_trials, size))
        how = "instead of training each configuration again" if not readout.is_fixed else ""
        notes.append(
            f"{config.task.name} predicts every time step, so the space's readout does not "
            f"apply: fixed (logged as last) {how or f'where the space fixed {fixed[0]}'}."
        )
    if (data.masked or data.text is not None) and "max" in getattr(
        config.space["readout"], "values", ()
    ):
        raise WorkbenchError(
            f"{config.space.source or config.space.name}: dimensions.readout: max cannot "
            f"leave out the padded steps of {config.task.name}'s sequences. Expected last "
            "or mean for a task with padded or text inputs"
        )
    smallest = None
    if data.problem == "classification" and not data.sequence_output:
        pool = np.concatenate([data.y_train, data.y_val]).reshape(-1)
        smallest = int(np.bincount(pool.astype(int)).min(initial=len(pool)) or 1)
    samples = len(data.x_train) + len(data.x_val)
    folds = folds_for(config.folds, len(data.x_val), smallest, data.time_ordered, samples)
    if config.tuner == "hyperband" and folds > 1:
        folds = 1
        notes.append(
            f"Hyperband trains its later rounds on from earlier rounds' weights, so no "
            f"cross-validation: scores rest on the validation part of {len(data.x_val)} "
            f"samples (with --tuner random or bayesian, {AUTO_FOLDS} folds)."
        )
    validated = sum(len(v) for _, v in fold_indices(data, folds, config.seed)) if folds > 1 else 0
    return dataclasses.replace(config, folds=folds, notes=tuple(notes)), validated


def _search(config: SearchConfig, reporter: SearchReporter | None, service: Any) -> SearchResult:
    from workbench import tracking
    from workbench.search import backend

    if config.cluster and config.cluster.local_workers and "tensorflow" not in sys.modules:
        from workbench.search.chief import hide_gpus

        hide_gpus()  # the GPUs are the workers'; the chief only serves the oracle
    tf = backend.load_tensorflow()
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    from workbench.search import tuner as _tuner
    from workbench.search.internals import check_keras_tuner

    check_keras_tuner()
    # The store's answer is in by now (its process started with TensorFlow's import):
    # an unreachable store is said before the data load, which may take long.
    service.check_reachable()

    data = config.task.load()
    config, validated = fit_to_data(config, data)
    data = fold_baseline(data, config.folds, config.seed)
    study = service.study(config.experiment)
    since = None  # when the study's runs were read: any started later are another process's
    if not config.overwrite and not (config.state_dir / "study.json").is_file():
        since = time.time()
        recorded = study.recorded_runs()
        if recorded:
            _refuse_lost_state(config, recorded, study.running_search_since())
    digest = data.digest()  # hashes every array: once, for the study's identity and MLflow
    resume = prepare_state_dir(config, data, digest)
    if resume:
        _refuse_lost_runs(config, study.recorded_runs(deleted=True))

    objective, direction = data.objective
    try:
        resumed = study.open_search(
            params={
                "task": config.task.name,
                "space": config.space.name,
                "tuner": config.tuner,
                "seed": config.seed,
                "repeats": config.repeats,
                "deterministic": config.deterministic,
                "mixed_precision": config.mixed_precision,
                "gradient_probe": config.gradient_probe,
                "folds": config.folds,
                "fold_scheme": "rolling" if data.time_ordered and config.folds > 1 else "shuffled",
                # Hyperband's full budget: the report compares only trials trained to it.
                "max_epochs": config.space.max_epochs,
                # What one validation sample is worth: rankings closer than 1/val_samples flip.
                "val_samples": validated or len(data.x_val),
                "objective": objective,
                "direction": direction,
            },
            tags={
                "task": config.task.name,
                "space": config.space.name,
                "tuner": config.tuner,
                "workbench.version": __version__,
                "workbench.state_dir": str(config.state_dir),
                "max_trials": config.max_trials,
                # The loader options in effect (the task file artifact holds the file's own).
                "task_options": json.dumps(dict(config.task.options), sort_keys=True, default=str),
                # Where the task file was: its data files' relative paths start from there.
                "workbench.task_source": str(Path(config.task.source).resolve())
                if config.task.source
                else "",
                # How a command names this task and space again (the report suggests searches).
                "workbench.task_ref": command_reference(
                    config.task.source or "", config.task.name, "datasets"
                ),
                "workbench.space_ref": command_reference(
                    config.space.source, config.space.name, "search_spaces"
                ),
                "workbench.space_continuous": ",".join(config.space.continuous),
                "mlflow.note.content": config.space.description,
                # The task's trivial predictor, so a report can read scores against it.
                **(
                    {"baseline": data.baseline.description, "baseline_value": data.baseline.value}
                    if data.baseline
                    else {}
                ),
            },
            resume=resume,
            run_name=f"search-{config.tuner}",
            kill_running=config.cluster is None,
            since=since,
        )
    except BaseException as exc:
        # Begun just now, by this search: nothing to resume from it, unless a Ctrl-C came
        # once its search run was made (ended KILLED: the same command resumes it, and
        # without the folder refused to).
        interrupted = isinstance(exc, KeyboardInterrupt) and _search_run_made(study)
        if not resume and not interrupted:
            shutil.rmtree(config.state_dir, ignore_errors=True)
        raise
    status = "FAILED"
    try:
        if not resumed:
            _log_inputs(study, config, data, digest)
        search = _tuner.Search(config, data, study, reporter)
        with precision(config.mixed_precision), frozen_garbage_collector():
            trials = search.run()
        best = best_of(
            (t for t in trials if t.status == "completed" and t.score is not None),
            direction,
            key=lambda t: t.score,  # type: ignore[arg-type,return-value]
        )
        completed = [t for t in trials if t.status == "completed"]
        summary = {
            "n_trials": len(trials),
            "n_completed": len(completed),
            "n_failed": len(trials) - len(completed),
        }
        best_tags = {"best_trial_id": best.trial_id} if best else {}
        if best:
            summary["best_score"] = best.score  # type: ignore[assignment]
            if best.run_id:
                best_tags["best_run_id"] = best.run_id
        answer: tuple[str, ...] = ()
        if completed:
            from workbench.report import study_answer

            try:
                answer = tuple(study_answer(config.tracking_uri, config.experiment))
            except WorkbenchError as exc:  # every trial is recorded: the search stands
                store = f" --tracking-uri {shlex.quote(config.tracking_uri)}"
                answer = (
                    f"The answer could not be read back ({exc}); "
                    f"`workbench report --experiment {shlex.quote(config.experiment)}{store}` "
                    "gives it once the store answers.",
                )
            # The MLflow UI shows a run's description: the short answer, then the space's.
            best_tags["mlflow.note.content"] = "\n\n".join(
                [*answer, f"Search space: {config.space.description}"]
            )
        study.log_search_summary(summary, best_tags, best.values if best else None)
        if not completed:
            kinds = {t.status for t in trials}
            # What each kind of failure asks for: a lost worker's trial no learning rate fixes.
            advice = [
                text
                for kind, text in (
                    ("diverged", "lower the learning rate or add clipping"),
                    ("oom", "fewer units or layers, or a smaller batch"),
                )
                if kind in kinds
            ]
            raise NoTrialFinished(
                f"No trial of the search finished: {len(trials)} failed "
                f"({', '.join(sorted(kinds))}). "
                + "".join(f"{text.capitalize()}; " for text in advice)
                + ("look" if advice else "Look")
                + " at the failed runs' 'failure' tags in the MLflow UI."
            )
        status = "FINISHED"
        return SearchResult(
            experiment=config.experiment,
            parent_run_id=study.parent_run_id or "",
            tracking_uri=config.tracking_uri,
            objective=objective,
            direction=direction,
            trials=tuple(trials),
            best=best,
            resumed=resumed,
            max_trials=config.max_trials,
            answer=answer,
            links=tuple(
                tracking.study_links(
                    str(study.experiment_id),
                    [t.run_id for t in completed if t.run_id],
                    direction,
                    base=tracking.served_ui(config.tracking_uri),  # a server's own UI
                ).lines()
            ),
        )
    except (KeyboardInterrupt, SystemExit):
        status = "KILLED"
        raise
    finally:
        if status == "FINISHED":
            study.end_search(status)
        else:
            # An error is on its way out (maybe the store's own failure): ending the parent
            # run must not replace it. A run the store could not end is ended on resume.
            with contextlib.suppress(tracking.StoreFailed):
                study.end_search(status)


def _search_run_made(study: Any) -> bool:
    """Whether the study's search run exists (asked after its opening was interrupted: the
    tracking process answers once the opening it was doing is done)."""
    try:
        return bool(study.parent_run_id)
    except Exception:  # noqa: BLE001 - a lost store: as if none was made
        return False


def _refuse_lost_state(config: SearchConfig, recorded: int, running_since: float | None) -> None:
    """A study with runs in MLflow but no local state: never start it afresh silently."""
    if running_since is not None:  # --overwrite would delete a live search's runs under it
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(running_since))
        raise WorkbenchError(
            f"Study {config.experiment!r} already has {recorded} runs in {config.tracking_uri} "
            f"and its search run is RUNNING, started {since}, but its search state folder "
            f"{config.state_dir} is not here: it may be going on in another folder or on "
            "another host (--overwrite would delete its runs under it). Run from the folder "
            "that holds it (or pass its --state-dir), or pick another --experiment; to "
            "search one study from several hosts, run a chief and workers."
        )
    raise WorkbenchError(
        f"Study {config.experiment!r} already has {recorded} runs in {config.tracking_uri}, "
        f"but its search state folder {config.state_dir} is missing (another working "
        "folder or host, or .workbench/ was cleaned). Run from the folder that holds it "
        "(or pass its --state-dir), pick another --experiment, or add --overwrite to "
        "start afresh (the earlier runs are deleted; MLflow keeps them restorable)."
    )


_GRID_NOTE = "The grid has "


def _grid_notes(size: int, max_trials: int | None) -> tuple[str, ...]:
    """What a --max-trials below the grid's size leaves out, said before the search."""
    if max_trials is None or max_trials >= size:
        return ()
    return (
        f"{_GRID_NOTE}{size} configurations; --max-trials {max_trials} runs the first "
        f"{max_trials} in the space's order (the cells one after another), so later cells "
        "get fewer or none. Leave --max-trials out to run them all.",
    )


def _refuse_lost_runs(config: SearchConfig, recorded: int) -> None:
    """Local state with trials but no runs in MLflow: resuming would skip the trials as
    done and then find none of them recorded."""
    trials = len(list((config.state_dir / "tuner").glob("trial_*")))
    if trials and not recorded:
        raise WorkbenchError(
            f"Study {config.experiment!r} has {trials} trials in its search state folder "
            f"{config.state_dir}, but {config.tracking_uri} holds none of its runs (that store "
            "was deleted or cleaned, or it was recorded in another). Pass the store it was "
            "recorded in as --tracking-uri, or add --overwrite to start afresh."
        )


def _log_inputs(study: Any, config: SearchConfig, data: TaskData, digest: str) -> None:
    described: dict[str, Any] = {
        "x": list(data.x_train.shape[1:]),
        "x_dtype": "string" if data.text is not None else str(data.x_train.dtype),
        "y": list(data.y_train.shape[1:]),
        "problem": data.problem,
        "n_outputs": data.n_outputs,
    }
    if data.text is not None:
        described["text"] = {
            "vocab_size": data.text.vocab_size,
            "sequence_length": data.text.sequence_length,
            "embedding_dim": data.text.embedding_dim,
        }
    schema = json.dumps(described)
    profile = json.dumps(
        {
            "train": len(data.x_train),
            "val": len(data.x_val),
            "test": len(data.x_test) if data.has_test else 0,
        }
    )
    study.log_dataset(data.name, digest, data.source or data.name, schema, profile)
    for path, folder in ((config.task.source, "task"), (config.space.source, "space")):
        if path and Path(path).is_file():
            study.log_artifact(path, folder)
