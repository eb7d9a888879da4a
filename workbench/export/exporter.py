"""Exporting the best trial: rebuild it, check its scores, write and register the model."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import shlex
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError, first_line
from workbench.export.card import ScoreCheck, _dtype_name, _hyperparameters, _interface, _model_card
from workbench.export.folder import staged
from workbench.export.layout import CARD_FILE, HYPERPARAMETERS_FILE, MODEL_FILE, SAVED_MODEL_DIR
from workbench.export.predictor import _shape_text
from workbench.folders import unwritable
from workbench.search.inputs import token_ids

#: Relative and absolute tolerance of the score check (float reductions differ by device).
RTOL = 1e-3
ATOL = 1e-5
#: ... for a trial trained under mixed precision: it was scored in float16, the export in
#: float32 (float16 keeps about 3 significant digits).
RTOL_MIXED = 2e-2


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_best` wrote and registered."""

    out_dir: Path
    experiment: str
    trial_number: int
    run_id: str
    parent_run_id: str
    task: str
    retrained: bool
    checks: tuple[ScoreCheck, ...]
    files: tuple[Path, ...]
    input_shape: tuple[int | None, ...]
    input_dtype: str
    registered_name: str
    registered_version: str
    model_uri: str
    #: The earlier export this one replaced in ``out_dir`` ("" if the folder was new or empty).
    replaced: str = ""
    #: The tracking store the registered model is in (what ``mlflow models serve`` reads).
    tracking_uri: str = ""
    #: A forecast: predict reads a series (a CSV, one column per feature).
    forecast: bool = False
    #: A forecast's series columns, by name, as trained (none recorded: one column).
    features: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """What the command line prints: the trial, the score check, the files, the registry."""
        how = "retrained on train + validation" if self.retrained else "best-epoch weights"
        shape = _shape_text(self.input_shape)
        return [
            f"Exported trial {self.trial_number} of {self.experiment!r} ({how}; MLflow run "
            f"{self.run_id}) to {self.out_dir}"
            + (f", replacing {self.replaced}" if self.replaced else ""),
            f"Input {shape} {self.input_dtype}; task {self.task}",
            "Score check (measured vs logged):",
            *(f"  {check.describe()}" for check in self.checks),
            "Wrote " + ", ".join(p.name + ("/" if p.is_dir() else "") for p in self.files),
            f"Registered {self.model_uri} (version {self.registered_version})",
            f"Predict: workbench predict --model {shlex.quote(str(self.out_dir))} --data "
            + (
                "FILE.csv (a 'text' column)"
                if self.input_dtype == "string"
                else f"SERIES.csv (a header naming the columns {', '.join(self.features)})"
                if self.forecast and self.features
                else "SERIES.csv (one column: the series' values)"
                if self.forecast
                else "FILE.npz"
            ),
            # MLflow's own default store is another one (./mlflow.db): name ours.
            f"Serve:   MLFLOW_TRACKING_URI={shlex.quote(self.tracking_uri)} mlflow models serve "
            f"-m {self.model_uri} --env-manager local -h 127.0.0.1 -p 5001",
        ]


# --- export -----------------------------------------------------------------------------------


def export_best(
    experiment: str,
    out: str | Path,
    *,
    trial: str | None = None,
    retrain: bool = False,
    register: str | None = None,
    tracking_uri: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export the best finished trial of ``experiment`` (or ``trial``) to the folder ``out``.

    Args:
        experiment: the MLflow experiment of the search.
        out: the folder to write (created; the files it names are replaced).
        trial: a trial number or run id instead of the best trial.
        retrain: train the trial's configuration afresh on train + validation (same seed,
            for the trial's best epoch count) instead of loading its kept best-epoch weights.
        register: the registered model name; default the experiment's name.
        tracking_uri: the MLflow store; default as for ``workbench search``.
        progress: called with a line at each epoch of a retrain (it may take long).

    Raises:
        WorkbenchError: unknown experiment, no finished trial, deleted weights (use
            ``retrain``), an unwritable ``out``, or weights that do not reproduce the
            logged scores.
    """
    from workbench import tracking
    from workbench.search import backend

    out_dir = _writable_dir(Path(out))
    replaced = _earlier_export(out_dir, out)
    uri = tracking.resolve_tracking_uri(tracking_uri)
    record = tracking.find_trial(uri, experiment, trial)
    checkpoint = record.tags.get("checkpoint", "")
    # A cross-validated trial's checkpoint was trained on one fold: refit on train +
    # validation, as --retrain does.
    retrain = retrain or int(record.params.get("folds", "1") or 1) > 1
    with tempfile.TemporaryDirectory(prefix="workbench-export-") as scratch:
        weights = None
        if not retrain:
            weights = tracking.fetch_checkpoint(uri, record, Path(scratch) / "weights")
            if weights is None:
                why = (
                    "were deleted"
                    if checkpoint == "deleted"
                    else f"are missing ({checkpoint or 'no tag'}, and not among its artifacts)"
                )
                raise WorkbenchError(
                    f"The best-epoch weights of trial {record.number} of {experiment!r} {why}; "
                    "only the best --keep-checkpoints trials keep theirs. Add --retrain to "
                    "train its configuration again on train + validation"
                )
        backend.load_tensorflow()
        import keras

        # Served in float32, whatever precision the trial trained in.
        keras.mixed_precision.set_global_policy("float32")
        search = tracking.read_search(uri, record.parent_run_id, Path(scratch))
        spec, data = _load_task_data(search)
        trained_on = token_ids(data)  # what the search trained on (text: token ids)
        model = _rebuild(record, search, trained_on, weights, progress)
    exported = with_preprocessing(model, data)
    checks = _check_scores(record, trained_on, model, exported, retrain)
    against = {}  # the exported weights against the baseline, sample by sample on test
    if data.has_test:
        from workbench.tasks import against_baseline

        outputs = model.predict(trained_on.x_test, batch_size=256, verbose=0)
        against = against_baseline(trained_on, [outputs])
    bad = [c for c in checks if c.matches is False]
    if bad:
        raise WorkbenchError(
            f"Trial {record.number}'s weights do not reproduce its logged scores: "
            + "; ".join(c.describe() for c in bad)
            + ". The task's data or the code changed since the search; add --retrain"
        )

    example = _raw(data, data.x_test if data.has_test else data.x_val)[:3]
    name = register or experiment
    # The serving alias is the best trial's; a trial chosen by hand gets its own.
    alias = "champion" if trial is None else f"trial-{record.number}"
    shape = tuple(exported.inputs[0].shape)
    dtype = _dtype_name(exported.inputs[0].dtype)
    interface = _interface(data, shape, dtype)
    import tensorflow as tf

    registered = None
    own = (MODEL_FILE, SAVED_MODEL_DIR, HYPERPARAMETERS_FILE, CARD_FILE)
    try:  # permissions checked above; a full disk, or a folder only root was let through
        with staged(out_dir, own) as staging:
            written = _write_model_files(staging, exported)
            # Registered once the model files are written (the slow part), before the
            # files that name its version: a name the registry refuses leaves nothing.
            try:
                # MLflow predicts on the example (Keras draws a progress bar), prints steps.
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(
                    io.StringIO()
                ):
                    registered = tracking.log_exported_model(
                        uri,
                        record.run_id,
                        exported,
                        input_example=example,
                        output_example=exported.predict(example, verbose=0),
                        name=name,
                        alias=alias,
                        pip_requirements=_pip_requirements(),
                        variable_length=bool(data.masked),
                        tags={"workbench.exported": "retrained" if retrain else "checkpoint"},
                    )
            except OSError as exc:  # the store's artifacts, not the export folder
                raise WorkbenchError(
                    f"Cannot log the model in MLflow ({uri}): {first_line(exc)}"
                ) from None
            (staging / HYPERPARAMETERS_FILE).write_text(
                json.dumps(
                    _hyperparameters(record, search, retrain, interface, registered),
                    indent=2,
                    default=str,
                )
                + "\n"
            )
            (staging / CARD_FILE).write_text(
                _model_card(
                    record, search, spec, data, exported, model, checks, retrain, registered,
                    against,
                )  # fmt: skip
            )
    except (OSError, tf.errors.OpError) as exc:  # TensorFlow's SavedModel writer: OpError
        why = getattr(exc, "strerror", None) or first_line(getattr(exc, "message", None) or exc)
        kept = f" ({replaced} is kept)" if replaced else ""
        where = (
            f" The model is registered as {registered.model_uri} (version "
            f"{registered.version}); export again into another --out"
            if registered
            else " Export again into another --out"
        )
        raise WorkbenchError(
            f"Cannot write the export folder {out}: {why}. Nothing of this export is left in "
            f"it{kept}.{where}"
        ) from None
    files = [out_dir / path.name for path in written]
    hyper, card = out_dir / HYPERPARAMETERS_FILE, out_dir / CARD_FILE
    return ExportResult(
        out_dir=out_dir,
        experiment=experiment,
        trial_number=record.number,
        run_id=record.run_id,
        parent_run_id=record.parent_run_id,
        task=data.name,
        retrained=retrain,
        checks=tuple(checks),
        files=(*files, hyper, card),
        input_shape=shape,
        input_dtype=dtype,
        registered_name=registered.name,
        registered_version=registered.version,
        model_uri=registered.model_uri,
        replaced=replaced,
        tracking_uri=uri,
        forecast=data.target_scale is not None,
        features=tuple(data.feature_names) if data.target_scale is not None else (),
    )


def _writable_dir(out: Path) -> Path:
    """``out`` resolved, after checking it is (or can become) a writable folder; creates nothing."""
    path = out.expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise WorkbenchError(f"Cannot write the export folder {out}: it is a file")
    why = unwritable(path)
    if why:
        raise WorkbenchError(f"Cannot write the export folder {out}: {why}")
    return path


def _earlier_export(path: Path, out: Path) -> str:
    """What an export into ``path`` replaces: "" for a new or empty folder, else the earlier
    export it holds, named. Anything else is refused: an export replaces an export's files
    only (one whose hyperparameters.json names its trial), and never deletes a folder it did
    not write. Hidden files (.DS_Store, .gitkeep) stay and do not count."""
    if not path.is_dir():
        return ""
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    if not entries:
        return ""
    own = {MODEL_FILE, SAVED_MODEL_DIR, HYPERPARAMETERS_FILE, CARD_FILE}
    trial = None
    try:
        described = json.loads((path / HYPERPARAMETERS_FILE).read_text())
        trial = described["trial"] if "interface" in described else None
        trial = f"the export of trial {trial['number']} of {trial['experiment']!r}"
    except (OSError, ValueError, KeyError, TypeError):
        trial = None
    # Without a description naming its trial the folder is no earlier export: the files
    # named as an export's are someone else's too. A saved_model/ that is no SavedModel
    # is never the workbench's (it would be deleted whole).
    saved = (path / SAVED_MODEL_DIR / "saved_model.pb").is_file()
    names = {p.name for p in entries if trial is None or p.name not in own}
    if (path / SAVED_MODEL_DIR).exists() and not saved:
        names.add(SAVED_MODEL_DIR)
    labels = {
        HYPERPARAMETERS_FILE: f"{HYPERPARAMETERS_FILE} (naming no exported trial)",
        SAVED_MODEL_DIR: f"{SAVED_MODEL_DIR}/" + ("" if saved else " (not a SavedModel)"),
    }
    others = [labels.get(name, name) for name in sorted(names)]
    if others:
        listed = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        if trial is None and names & own and HYPERPARAMETERS_FILE not in names:
            listed += f", and no {HYPERPARAMETERS_FILE} naming an exported trial"
        raise WorkbenchError(
            f"Cannot write the export folder {out}: expected an empty folder or an earlier "
            f"export. Received a folder holding {listed}; choose another --out"
        )
    return trial


def _load_task_data(search: Any) -> tuple[Any, Any]:
    """The search's task with its loader options, from the run alone (not the user's command)."""
    from workbench.tasks import load_task

    source = search.task_file if search.task_file is not None else search.tags.get("task", "")
    if not source:
        raise WorkbenchError(f"Search run {search.run_id} records no task; cannot rebuild it")
    spec = load_task(source)
    original = search.tags.get("workbench.task_source", "")
    if search.task_file is not None and original:
        # The artifact is a copy in a scratch folder; a data file named relative to the
        # task file is found from the original task file's folder.
        spec = dataclasses.replace(spec, source=original)
    options = _logged_task_options(search)
    if options:
        spec = spec.with_options(**options)
    data = spec.load()
    if search.dataset_digest and data.digest() != search.dataset_digest:
        raise WorkbenchError(
            f"The task {spec.name!r} now loads different data (digest {data.digest()}) than "
            f"the search used ({search.dataset_digest}); the model cannot be checked against it "
            "(the data file changed, or its loader did: adding and copy_memory draw new "
            "validation and test parts since 2026-12-07). Search again to export from it"
        )
    return spec, data


def _logged_task_options(search: Any) -> dict[str, Any]:
    if "task_options" in search.tags:
        return dict(json.loads(search.tags["task_options"]))
    state = search.tags.get("workbench.state_dir")  # searches recorded before the tag existed
    marker = Path(state) / "study.json" if state else None
    if marker is not None and marker.is_file():
        return dict(json.loads(marker.read_text()).get("task_options") or {})
    return {}


def _rebuild(
    record: Any,
    search: Any,
    data: Any,
    weights: Path | None,
    progress: Callable[[str], None] | None = None,
) -> Any:
    """The trial's model: built from its params, then ``weights`` loaded (None: retrained,
    each epoch said to ``progress``)."""
    import warnings

    import keras

    from workbench.models import ModelConfig, ModelSignature, build_model

    params = record.params
    config = ModelConfig.from_values(params)
    signature = ModelSignature.from_task(data)
    if weights is not None:
        model = build_model(config, signature)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.load_weights(str(weights))
        return model
    seed = int(search.params.get("seed", 0)) + int(record.trial_id or 0)
    keras.utils.set_random_seed(seed)
    model = build_model(config, signature)
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    from workbench.search.config import batch_size_used

    # The epochs that gave the trial's kept weights (its best epoch), not the ones early
    # stopping's patience ran past it; trials logged before best_epoch: all it trained.
    runs = max(1, int(search.params.get("repeats", 1) or 1)) * max(
        1, int(search.params.get("folds", 1) or 1)
    )
    epochs = int(record.metrics.get("best_epoch", 0)) or (
        int(record.metrics.get("epochs_run", 0)) // runs or int(params["epochs"])
    )
    batch = batch_size_used(int(params["batch_size"]), len(x))
    said = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: progress(
            f"Retraining trial {record.number} on train + validation ({len(x)} samples): "
            f"epoch {epoch + 1}/{epochs}, loss {float((logs or {}).get('loss', 'nan')):.4g}"
        )
    )
    callbacks = [said] if progress else []
    model.fit(x, y, epochs=epochs, batch_size=batch, verbose=0, callbacks=callbacks)
    return model


def with_preprocessing(model: Any, data: Any) -> Any:
    """The model to export: raw inputs in, original units out.

    The result is not compiled (no optimizer state to carry). Forecasting tasks train on
    inputs and targets scaled with training statistics; the exported model scales its
    inputs (``Normalization``) and its outputs back (``Rescaling``), so it takes and returns
    series values. Text models, trained on token ids, get the task's ``TextVectorization``
    in front: they take one raw string per sample. Other models keep their layers as they
    are (padded inputs already go through their ``Masking`` layer).
    """
    import keras

    # The same layers without the training set-up (optimizer, loss): an inference model.
    model = keras.Model(model.input, model.output, name=model.name)
    if data.text is not None:
        from workbench.models import with_text_input

        return with_text_input(model, data.text)
    if data.input_scale is None and data.target_scale is None:
        return model
    inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="series")
    x = inputs
    if data.input_scale is not None:
        means, stds = data.input_scale
        x = keras.layers.Normalization(
            mean=list(means), variance=[s * s for s in stds], name="scale_inputs"
        )(x)
    y = model(x)
    if data.target_scale is not None:
        mean, std = data.target_scale
        y = keras.layers.Rescaling(scale=std, offset=mean, name="to_units")(y)
    return keras.Model(inputs, y, name=f"{model.name}_in_units")


def _raw(data: Any, x: np.ndarray) -> np.ndarray:
    """Inputs as the task's files hold them (scaled task inputs turned back into units)."""
    if data.input_scale is None:
        return x
    means, stds = data.input_scale
    return (x * np.asarray(stds, "float32") + np.asarray(means, "float32")).astype("float32")


def _close(measured: float, logged: float | None, rtol: float = RTOL) -> bool | None:
    if logged is None:
        return None
    return math.isclose(measured, logged, rel_tol=rtol, abs_tol=ATOL)


def _kept_score_metric(record: Any) -> str:
    """The logged metric the kept weights must reproduce.

    With one training per trial that is ``score``; with repeats ``score`` is their mean,
    and the checkpoint holds the best epoch of one repeat (tag ``checkpoint_repeat``),
    whose own score is ``score_r<k>``.
    """
    repeat = record.tags.get("checkpoint_repeat")
    if int(record.params.get("repeats", "1")) > 1 and repeat is not None:
        return f"score_r{repeat}"
    return "score"


def _check_scores(
    record: Any, data: Any, model: Any, exported: Any, retrain: bool
) -> list[ScoreCheck]:
    """Validation objective and test metrics of the rebuilt model next to the logged ones."""
    from workbench.tasks import forecast_metrics

    logged = record.metrics
    mixed = record.tags.get("precision") == "mixed_float16"
    rtol = RTOL_MIXED if mixed else RTOL
    sizes = {"validation": len(data.y_val), "test": len(data.y_test) if data.has_test else 1}

    def check(split: str, metric: str, measured: float, measure: str = "") -> ScoreCheck:
        if split == "test" and not retrain and f"checkpoint_{metric}" in logged:
            # With repeats test_* is the mean of the repeats' models; the kept weights' own:
            metric = f"checkpoint_{metric}"
        value = logged.get(metric)
        matches = None
        if not retrain:
            matches = _close(measured, value, rtol)
            if mixed and value is not None and "accuracy" in (measure or metric):
                # float16 against float32 may flip a borderline sample: one sample's worth.
                matches = abs(measured - value) <= 1 / sizes[split] + ATOL
        return ScoreCheck(split, metric, value, float(measured), matches)

    objective, _ = data.objective
    val = model.evaluate(data.x_val, data.y_val, batch_size=256, verbose=0, return_dict=True)
    score = val[objective.removeprefix("val_")]
    checks = [check("validation", _kept_score_metric(record), score, objective)]
    if data.has_test:
        test = model.evaluate(data.x_test, data.y_test, batch_size=256, verbose=0, return_dict=True)
        checks += [check("test", f"test_{k}", v) for k, v in sorted(test.items())]
        if data.target_scale is not None:
            # The exported model on raw inputs, in units: what a user of the file will see.
            mean, std = data.target_scale
            in_units = exported.predict(_raw(data, data.x_test), batch_size=256, verbose=0)
            errors = forecast_metrics(data, data.y_test, (in_units - mean) / std)
            checks += [check("test", f"test_{k}", v) for k, v in errors.items()]
    return checks


def _write_model_files(out_dir: Path, model: Any) -> list[Path]:
    keras_file = out_dir / MODEL_FILE
    model.save(keras_file)
    saved = out_dir / SAVED_MODEL_DIR
    if saved.exists():
        shutil.rmtree(saved)
    with contextlib.redirect_stdout(io.StringIO()):  # the SavedModel writer's chatter
        portable(model).export(str(saved), verbose=False)
    return [keras_file, saved]


def portable(model: Any, gpu: bool | None = None) -> Any:
    """``model``, or on a GPU a copy whose LSTM/GRU layers do not call cuDNN: traced on a
    GPU, they call ``CudnnRNNV3``, which has no CPU kernel, and the SavedModel would run
    on GPUs only (keras-team/keras#18504). The same weights, the same outputs."""
    import keras
    import tensorflow as tf

    if not (tf.config.list_logical_devices("GPU") if gpu is None else gpu):
        return model
    gated = (keras.layers.LSTM, keras.layers.GRU)

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if isinstance(layer, gated):
            config["use_cudnn"] = False
        elif isinstance(layer, keras.layers.Bidirectional):
            for key in ("layer", "backward_layer"):
                inner = config.get(key)
                if isinstance(inner, dict) and inner.get("class_name") in ("LSTM", "GRU"):
                    inner["config"]["use_cudnn"] = False
        return layer.__class__.from_config(config)

    # Recursive: the exported model wraps the trained one (scaling, text vectorizer).
    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


def _pip_requirements() -> list[str]:
    """Pinned requirements of the logged MLflow Model (skips MLflow's slow inference)."""
    import keras
    import tensorflow as tf

    return [
        f"tensorflow=={tf.__version__}",
        f"keras=={keras.__version__}",
        f"numpy=={np.__version__}",
    ]
