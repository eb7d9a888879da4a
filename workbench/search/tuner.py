"""The tuner: KerasTuner workers behind :func:`workbench.search.run_search`.

The HyperModel (:mod:`workbench.search.hypermodel`) declares the space's dimensions and
builds through :func:`workbench.models.build_model`; the Oracle (random, Bayesian, Hyperband or
grid) chooses; one Tuner mixin wraps KerasTuner's own ``run_trial`` with the
measurements and the MLflow record of each trial.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import math
import re
import statistics
import traceback
import warnings
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt

from workbench.errors import WorkbenchError, failure_reason, first_line
from workbench.models import (
    ModelConfig,
    ModelSignature,
    cudnn_eligibility,
    recurrent_macs,
)
from workbench.search import stopping
from workbench.search.backend import cudnn_ran_tag, quiet_retracing, released_graphs
from workbench.search.config import (
    PARAM_NAMES,
    QuietReporter,
    SearchConfig,
    SearchReporter,
    TrialResult,
    batch_size_used,
    best_of,
    trial_seed,
)
from workbench.search.folds import fold_splits
from workbench.search.hypermodel import RecurrentHyperModel, whole_numbers
from workbench.search.inputs import token_ids
from workbench.search.meters import (
    PROBE_KEYS,
    BestEpoch,
    Diverged,
    GradientProbe,
    TestOutputs,
    TrialMeter,
    repeat_measures,
)
from workbench.tasks import TaskData, test_measures
from workbench.tracking import StoreFailed

#: The training samples the gradient probe measures on (the first ones: fixed per task).
PROBE_SAMPLES = 32

_BASES = {
    "random": kt.RandomSearch,
    "bayesian": kt.BayesianOptimization,
    "hyperband": kt.Hyperband,
    "grid": kt.GridSearch,
}


def oracle_seed(seed: int) -> int:
    """The seed KerasTuner's Oracle gets for the workbench's ``--seed``.

    The Oracle reads a seed of 0 as "none" (``seed or random.randint(1, 10000)``), so the
    default ``--seed 0`` would draw other hyperparameters on every run: shift by one.
    """
    return seed + 1


class _Tracked:
    """Mixin placed before a KerasTuner tuner class: seeds, measures and records each trial."""

    _search: Search

    def _build_and_fit_model(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        # Called once per execution (KerasTuner's executions_per_trial), in order: each
        # repeat runs every fold.
        search = self._search
        execution = search.next_repeat
        search.next_repeat += 1
        repeat, fold = divmod(execution, search.config.folds)
        keras.utils.set_random_seed(trial_seed(search.config.seed, trial.trial_id, repeat))
        if search.folds:
            (x, y), validation = search.folds[fold]
            args = (x, y, *args[2:])
            kwargs = {**kwargs, "validation_data": validation}
        # KerasTuner's SaveBestEpoch writes the weights file at every better epoch, inside
        # training; the trial's BestEpoch keeps them in memory by the same rule and the
        # file is written once, when the trial ends (Search._final_measures).
        from keras_tuner.src.engine.tuner_utils import SaveBestEpoch

        callbacks = [c for c in kwargs.get("callbacks", []) if not isinstance(c, SaveBestEpoch)]
        kwargs = {**kwargs, "callbacks": callbacks}
        return super()._build_and_fit_model(trial, *args, **kwargs)  # type: ignore[misc]

    def _build_hypermodel(self, hp: Any) -> Any:
        # Hyperband continues a trial from its kept (best-epoch) weights with a fresh
        # optimizer, whose saved state is the last epoch's: Keras' "Skipping variable
        # loading for optimizer" is that choice, not a fault to show.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
            return super()._build_hypermodel(hp)  # type: ignore[misc]

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        keras_run_trial = super().run_trial  # type: ignore[misc]
        with released_graphs():
            return self._search.run_trial(self, keras_run_trial, trial, *args, **kwargs)

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)  # type: ignore[misc]
        # Hyperband's later rounds start from earlier trials' weights: prune at the end.
        # A worker sees only its own trials: its chief prunes.
        if self._search.config.tuner != "hyperband" and not self._search.worker:
            self._search.prune_checkpoints(self)


class Search:
    """One search: the tuner, the data, the MLflow study and the progress reporter."""

    def __init__(
        self,
        config: SearchConfig,
        data: TaskData,
        study: Any,
        reporter: SearchReporter | None,
        worker: str = "",
    ) -> None:
        if config.folds < 1:  # not decided yet (run_search decides from the data): none
            config = dataclasses.replace(config, folds=1)
        self.config = config
        #: What the trials train on: a text task's texts as token ids (vectorized once).
        self.data = data = token_ids(data)
        #: What every trial's model must fit (input statistics computed once, not per trial).
        self.signature = ModelSignature.from_task(data)
        self.study = study
        self.reporter = reporter or QuietReporter()
        #: This process's worker id in a distributed search ("" otherwise).
        self.worker = worker
        #: Trials whose weights this process has already pruned.
        self._pruned: set[str] = set()
        self.objective, self.direction = data.objective
        self._outcomes: dict[str, TrialResult] = {}
        #: The execution (repeat x fold) the next ``fit`` of the running trial is (reset
        #: per trial).
        self.next_repeat = 0
        #: Per fold: ((x, y) to train on, (x, y) to validate on), from train + validation.
        self.folds = fold_splits(data, config.folds, config.seed) if config.folds > 1 else []

    def make_tuner(self) -> Any:
        base = _BASES[self.config.tuner]
        cls = type(f"Workbench{base.__name__}", (_Tracked, base), {})
        kwargs: dict[str, Any] = {
            "hypermodel": RecurrentHyperModel(
                self.config.space,
                self.signature,
                self.objective,
                self.direction,
                "mixed_float16" if self.config.mixed_precision else "float32",
                self.config.steps_per_execution,
            ),
            "objective": kt.Objective(self.objective, self.direction),
            "seed": oracle_seed(self.config.seed),
            "directory": str(self.config.state_dir),
            "project_name": "tuner",
            "overwrite": False,
            # Each repeat trains afresh; KerasTuner reports their mean to the oracle and
            # keeps one checkpoint: the best epoch over all repeats.
            "executions_per_trial": self.config.repeats * self.config.folds,
            # Divergence is an expected outcome of a trial; the search decides at the end.
            "max_consecutive_failed_trials": self.config.max_trials + 1,
        }
        if self.config.tuner == "hyperband":
            kwargs["max_epochs"] = self.config.space.max_epochs
            kwargs["hyperband_iterations"] = self.config.hyperband_iterations
        else:
            kwargs["max_trials"] = self.config.max_trials
        # KerasTuner prints each failed trial's traceback when its DEBUG flag is on (the
        # default); the traceback goes to the trial run's `failure_detail` tag instead.
        with contextlib.suppress(ImportError, AttributeError):
            from keras_tuner.src import config as kt_config

            kt_config.DEBUG = False
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..."
                tuner = cls(**kwargs)
        except Exception as exc:
            # KerasTuner builds the space's first configuration to learn its dimensions: if
            # that alone runs out of memory, no trial can tell the search anything.
            if not _is_oom(exc):
                raise
            shape = re.search(r"OOM when allocating tensor with shape\[[^\]]*\]", str(exc))
            raise WorkbenchError(
                "The space's first configuration ran out of memory as KerasTuner built it "
                f"({shape.group(0) if shape else first_line(exc)}). Expected a space whose "
                "first values of units and depth fit this machine"
            ) from None
        tuner.oracle.max_trials = self.config.max_trials
        if self.config.tuner == "grid" and not self.worker:
            from workbench.search.oracles import restore_grid_order

            restore_grid_order(tuner.oracle)
        if self.config.cluster is not None and not self.worker:
            from workbench.search.oracles import keep_running_trials

            keep_running_trials(tuner.oracle)
        tuner._search = self
        return tuner

    def run(self) -> list[TrialResult]:
        """Run the search to ``max_trials`` and return every trial's outcome in order.

        With ``config.cluster`` this process is the chief: workers run the trials.
        """
        tuner = self.make_tuner()
        trials = tuner.oracle.trials.items()
        ended = {t for t, trial in trials if trial.status in ("COMPLETED", "FAILED")}
        # With those recorded FINISHED by a process stopped before KerasTuner saved them
        # (a search run created just now has none: one read of the store less).
        recorded = self.study.finished_trial_ids() if self.study.reused else set()
        done = len(ended | recorded)
        self.reporter.search_started(self.config, self.data, done > 0, done)
        if self.config.cluster is not None:
            from workbench.search import chief

            trials = chief.serve(self, tuner)
            self.prune_checkpoints(tuner)
            return trials
        self._search(tuner)
        self.prune_checkpoints(tuner)
        return self.collect(tuner)

    def run_worker(self) -> list[TrialResult]:
        """Run trials the chief hands out until it has none left; this worker's outcomes."""
        tuner = self.make_tuner()
        self.reporter.search_started(self.config, self.data, False, 0)
        self._search(tuner)
        return list(self._outcomes.values())

    def _search(self, tuner: Any) -> None:
        data = self.data
        try:
            tuner.search(
                data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), verbose=0
            )
        except _StoreLost as lost:
            raise StoreFailed(
                f"{str(lost.error).rstrip('.')}. The search stopped; its state is kept: run "
                "the same command again once the store answers, and it resumes."
            ) from None

    def report_ended(self, trial: Any) -> None:
        """Report a trial a worker ended (the chief's console), from its MLflow record."""
        values = self._values(trial.hyperparameters)
        number = int(trial.trial_id) + 1
        recorded = self.study.finished_trial(trial.trial_id)
        worker, failure, detail = self.study.trial_ending(trial.trial_id)
        if trial.status == "COMPLETED" and recorded is not None:
            run_id, metrics = recorded
            result = TrialResult(
                trial.trial_id, number, values, "completed", metrics["score"], metrics, run_id,
                worker=worker,
            )
        else:
            # KerasTuner's wire carries a trial's status, not its message: the worker's
            # reason is in its run.
            kind = failure if failure in ("diverged", "oom", "error") else "failed"
            reason = first_line(trial.message) if trial.message else failure_reason(detail)
            result = TrialResult(
                trial.trial_id, number, values, kind, failure=reason, worker=worker
            )
        # What the closing summary and the pruning read, as for a trial this process ran.
        self._outcomes[trial.trial_id] = result
        self.reporter.trial_ended(result)

    def prune_checkpoints(self, tuner: Any) -> None:
        """Delete the weights of ended trials outside the best ``keep_checkpoints``.

        Each trial keeps only its best epoch's weights (written when it ends); a
        trial outside the best K can no longer become the best model, so its file goes and
        its run is tagged ``checkpoint=deleted``.
        """
        oracle = tuner.oracle
        keep = {t.trial_id for t in oracle.get_best_trials(self.config.keep_checkpoints)}
        for trial_id, trial in list(oracle.trials.items()):
            if trial_id in keep or trial_id in self._pruned:
                continue
            if trial.status not in ("COMPLETED", "FAILED", "INVALID"):
                continue
            self._pruned.add(trial_id)
            path = Path(tuner._get_checkpoint_fname(trial_id))
            path.unlink(missing_ok=True)  # on another host's worker: only the logged copy
            outcome = self._outcomes.get(trial_id)
            if outcome is not None and outcome.status != "completed":
                continue
            recorded = self.study.finished_trial(trial_id) if outcome is None else None
            run_id = outcome.run_id if outcome else (recorded[0] if recorded else None)
            if run_id and self.study.delete_checkpoint(run_id):
                self.study.tag_trial(run_id, {"checkpoint": "deleted"})

    # --- one trial ----------------------------------------------------------------------------

    def run_trial(
        self, tuner: Any, keras_run_trial: Any, trial: Any, *args: Any, **kwargs: Any
    ) -> Any:
        """Run one trial through KerasTuner's own ``run_trial`` and record it in MLflow.

        A failure of the tracking store stops the search (KerasTuner would take any other
        exception for a failed trial and go on to the next): the trial's epoch metrics are
        written in the background, so a store lost mid-trial lets it train to its end, and
        the failure surfaces when the trial is recorded.
        """
        try:
            return self._run_trial(tuner, keras_run_trial, trial, *args, **kwargs)
        except StoreFailed as exc:
            raise _StoreLost(exc) from None

    def _run_trial(
        self, tuner: Any, keras_run_trial: Any, trial: Any, *args: Any, **kwargs: Any
    ) -> Any:
        stopping.check()
        hp = trial.hyperparameters
        values = self._values(hp)
        number = int(trial.trial_id) + 1
        self.reporter.trial_started(number, self.config.max_trials, values)

        earlier = self.study.finished_trial(trial.trial_id)
        if earlier is not None:
            # Recorded FINISHED by a process that stopped before KerasTuner saved the trial.
            run_id, metrics = earlier
            score = metrics["score"]
            result = TrialResult(trial.trial_id, number, values, "completed", score, metrics)
            self._ended(dataclasses.replace(result, run_id=run_id, reused=True))
            return {self.objective: metrics["score"]}

        extra = {k: v for k, v in hp.values.items() if k.startswith("tuner/")}
        run = self.study.start_trial(
            trial.trial_id,
            params={
                **{k: ("none" if v is None else v) for k, v in values.items()},
                "repeats": self.config.repeats,
                "folds": self.config.folds,
                **extra,
            },
            tags={
                "cell": values["cell"],
                "workbench.trial_number": number,
                **({"workbench.worker": self.worker} if self.worker else {}),
            },
            run_name=_run_name(number, values),
        )
        epochs = int(hp.values.get("tuner/epochs", values["epochs"]))
        metric = self.data.metric
        x, y = self.data.x_train[:PROBE_SAMPLES], self.data.y_train[:PROBE_SAMPLES]
        probe = GradientProbe(x, y) if self.config.gradient_probe else None
        probes = [] if probe is None else [probe]
        keys = ("loss", "val_loss", metric, f"val_{metric}", *(PROBE_KEYS if probes else ()))

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            # Repeat 0 (its first fold) keeps the plain names; repeat r logs `<name>_r<r>`,
            # fold f `<name>_f<f>`, both `<name>_r<r>_f<f>` (step = epoch).
            repeat, fold = divmod(meter.repeat, self.config.folds)
            suffix = (f"_r{repeat}" if repeat else "") + (f"_f{fold}" if fold else "")
            run.log_epoch(epoch, {f"{k}{suffix}": v for k, v in metrics.items()})
            self.reporter.epoch_ended(epoch, epochs, metrics)

        meter = TrialMeter(on_epoch, keys, probe)
        best_epoch = BestEpoch(self.objective, self.direction)
        several = self.data.has_test and self.config.repeats * self.config.folds > 1
        tests = TestOutputs(self.objective, self.direction, self.data.x_test) if several else None
        # The probe fills the logs the others read.
        callbacks = [*kwargs.pop("callbacks", []), *probes, meter, best_epoch]
        callbacks += [tests] if tests else []
        self.next_repeat = 0
        try:
            with stopping.deferred():  # Ctrl-C stops at the next batch end, see stopping
                histories = keras_run_trial(trial, *args, callbacks=callbacks, **kwargs)
                folds = self.config.folds
                runs: list[float] = []
                for execution, best in enumerate(
                    meter.repeat_bests(self.objective, self.direction)
                ):
                    if best is None:
                        repeat, fold = divmod(execution, folds)
                        epoch = len(meter.repeats[execution]) - 1
                        raise Diverged(epoch, float("nan"), repeat, fold if folds > 1 else None)
                    runs.append(best)
                # Each repeat's score is the mean over its folds (one fold: itself).
                bests = [statistics.fmean(runs[r : r + folds]) for r in range(0, len(runs), folds)]
                score = statistics.fmean(bests)
                # BestEpoch, shared by the executions, keeps only a strictly better value:
                # the file holds the first execution that reached it.
                checkpoint = runs.index(best_of(runs, self.direction))  # type: ignore[arg-type]
                metrics, tags = self._final_measures(
                    tuner, trial, meter, best_epoch, score, tests, checkpoint
                )
                # The local file is a cache; the logged copy serves any host.
                tags["checkpoint_artifact"] = run.log_checkpoint(tags["checkpoint"])
                metrics.update(repeat_measures(bests, probe))
                if folds > 1:
                    metrics.update(
                        {f"score_f{k}": statistics.fmean(runs[k::folds]) for k in range(folds)}
                    )
                tags["checkpoint_repeat"] = checkpoint // folds
                if folds > 1:
                    tags["checkpoint_fold"] = checkpoint % folds
                # Recorded before a stop asked for meanwhile is raised: a trial that trained
                # to the end is kept (a resume reuses its run instead of training it again).
                late = run.finish(metrics, tags)
                self._ended(
                    TrialResult(
                        trial.trial_id, number, values, "completed", score, metrics, run.run_id,
                        late=bool(late),
                    )
                )  # fmt: skip
            return histories
        except Diverged as exc:
            meter.stop_memory()
            repeat, fold = divmod(meter.repeat, self.config.folds)
            if exc.repeat is not None:
                repeat, fold = exc.repeat, exc.fold
            where = {"diverged_epoch": exc.epoch, "diverged_repeat": repeat}
            run.set_tags(where if self.config.folds == 1 else {**where, "diverged_fold": fold})
            run.fail("diverged", str(exc), metrics=_spent(meter))
            self._ended(
                TrialResult(
                    trial.trial_id, number, values, "diverged", run_id=run.run_id, failure=str(exc)
                )
            )
            raise kt.errors.FailedTrialError(f"diverged: {exc}") from None
        except (KeyboardInterrupt, SystemExit, kt.errors.FatalError, StoreFailed):
            raise
        except Exception as exc:  # one trial's failure, not the search's
            stopping.check()  # an interrupt that surfaced as another error
            meter.stop_memory()
            kind = "oom" if _is_oom(exc) else "error"
            run.fail(kind, traceback.format_exc(), metrics=_spent(meter))
            reason = f"{type(exc).__name__}: {first_line(exc) if str(exc).strip() else ''}"
            self._ended(
                TrialResult(trial.trial_id, number, values, kind, run_id=run.run_id, failure=reason)
            )
            raise kt.errors.FailedTrialError(reason) from None
        finally:
            if not run.ended:  # interrupted: what it cost still counts in the compute
                meter.stop_memory()
            run.close(metrics=_spent(meter))

    def _final_measures(
        self, tuner: Any, trial: Any, meter: TrialMeter, best: BestEpoch, score: float,
        tests: TestOutputs | None, kept_fit: int,
    ) -> tuple[dict[str, float], dict[str, str]]:
        import tensorflow as tf

        # The best epoch's weights, in the model that trained. The caller reached here only
        # when every fit had a finite objective, so BestEpoch holds them.
        model = best.restore()
        if model is None:
            raise RuntimeError("no epoch of this trial had a finite objective to keep")
        checkpoint = tuner._get_checkpoint_fname(trial.trial_id)
        model.save_weights(checkpoint)  # what Hyperband's next rounds and the export load
        eligible, detail = cudnn_eligibility(model)
        # What each fit trained on: the training part, or with --folds each fold's own
        # training rows (train + validation but the fold), as the hypermodel caps the batch.
        sizes = [len(x) for (x, _), _ in self.folds] or [len(self.data.x_train)]
        asked = int(trial.hyperparameters.get("batch_size"))
        batch = batch_size_used(asked, sizes[0])
        steps = sum(
            len(epochs) * math.ceil(size / batch_size_used(asked, size))
            for epochs, size in zip(meter.repeats, itertools.cycle(sizes), strict=False)
        )
        metrics: dict[str, Any] = {
            "score": score,
            "n_params": model.count_params(),
            "recurrent_macs": recurrent_macs(
                ModelConfig.from_values(self._values(trial.hyperparameters)),
                self.signature,
            ),
            "epoch_seconds": meter.mean_epoch_seconds(),
            "fit_seconds": meter.fit_seconds,
            "peak_memory_mb": meter.peak_memory_mb,
            "epochs_run": len(meter.history),
            # The epochs the kept weights trained: what a refit on train + validation runs.
            "best_epoch": (best.epoch or 0) + 1,
            "batch_size_used": batch,
            # Every repeat's (and fold's) epochs: the updates the trial's weights got in all.
            "optimizer_steps": steps,
        }
        if self.data.has_test:
            # One pass over the test part per model (with repeats or folds, TestOutputs
            # made them as each fit ended): Keras' loss and metric, and the per-sample
            # comparison with the baseline, from the same outputs.
            outputs = tests.outputs if tests else []
            if not outputs:
                with quiet_retracing():  # each trial is a new model: one trace each
                    outputs = [model.predict(self.data.x_test, batch_size=256, verbose=0)]
            metrics.update(test_measures(self.data, outputs), test_models=len(outputs))
            if len(outputs) > 1 and self.config.folds == 1:  # the kept weights' own (an
                # export reproduces them; with folds it trains afresh)
                own = test_measures(self.data, outputs[kept_fit : kept_fit + 1])
                metrics.update({f"checkpoint_{k}": v for k, v in own.items() if k[:5] == "test_"})
        tags = {
            "checkpoint": checkpoint,
            "cudnn_eligible": eligible,
            "cudnn_detail": detail,
            "device": "GPU" if tf.config.list_logical_devices("GPU") else "CPU",
            "memory_measure": meter.memory_kind,
            "precision": _precision(model),
            "steps_per_execution": str(self.config.steps_per_execution),
            # What ran, not only what the settings allow (read on a GPU; "n/a" on CPU).
            "cudnn_ran": cudnn_ran_tag(model, self.data.x_train[:2]),
        }
        return metrics, tags

    def _values(self, hp: Any) -> dict[str, Any]:
        values = {name: hp.values.get(name) for name in PARAM_NAMES}
        values = whole_numbers(self.config.space, values)
        values["bidirectional"] = bool(values["bidirectional"])  # KerasTuner stores 0/1
        if values.get("clipping") == "none":
            values["clip_threshold"] = None
        if "tuner/epochs" in hp.values:
            values["epochs"] = hp.values["tuner/epochs"]
        return values

    def _ended(self, result: TrialResult) -> None:
        if self.worker:
            result = dataclasses.replace(result, worker=self.worker)
        self._outcomes[result.trial_id] = result
        self.reporter.trial_ended(result)

    def collect(self, tuner: Any) -> list[TrialResult]:
        """Every trial the oracle started, in order: this process's outcomes, the others'
        from their MLflow records."""
        results = []
        for trial_id in tuner.oracle.start_order:
            if trial_id in self._outcomes:
                results.append(self._outcomes[trial_id])
                continue
            # Ran in an earlier process: its record is in MLflow.
            trial = tuner.oracle.trials[trial_id]
            values = self._values(trial.hyperparameters)
            recorded = self.study.finished_trial(trial_id)
            if trial.status == "COMPLETED" and recorded is not None:
                run_id, metrics = recorded
                results.append(
                    TrialResult(
                        trial_id,
                        int(trial_id) + 1,
                        values,
                        "completed",
                        metrics["score"],
                        metrics,
                        run_id,
                    )
                )
            else:
                results.append(TrialResult(trial_id, int(trial_id) + 1, values, "failed"))
        return results


def _spent(meter: TrialMeter) -> dict[str, float]:
    """What a failed or interrupted trial cost: the report counts it in the compute."""
    return {"fit_seconds": meter.fit_seconds, "epochs_run": len(meter.history)}


class _StoreLost(kt.errors.FatalError):
    """Carries :class:`StoreFailed` through KerasTuner, which re-raises only fatal errors."""

    def __init__(self, error: StoreFailed) -> None:
        super().__init__(str(error))
        self.error = error


def _run_name(number: int, values: dict[str, Any]) -> str:
    bi = "bi-" if values.get("bidirectional") else ""
    return f"trial-{number:03d} {bi}{values['cell']} x{values['depth']} u{values['units']}"


def _precision(model: keras.Model) -> str:
    mixed = any(layer.dtype_policy.name == "mixed_float16" for layer in model.layers)
    return "mixed_float16" if mixed else "float32"


def _is_oom(exc: BaseException) -> bool:
    import tensorflow as tf

    # cuDNN's RNN reports a failed workspace allocation as an internal error.
    text = str(exc).lower()
    return isinstance(exc, (tf.errors.ResourceExhaustedError, MemoryError)) or any(
        sign in text for sign in ("out of memory", "cudnn_status_alloc_failed")
    )
