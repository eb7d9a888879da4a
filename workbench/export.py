"""Export: the best trial of a search leaves the workbench as a model others can load and serve.

:func:`export_best` picks the best finished trial of an experiment (or the one named),
rebuilds it from its logged hyperparameters with :func:`workbench.models.build_model`,
loads its kept best-epoch weights (or retrains it on train + validation), checks the
scores against the ones MLflow holds, and writes ``model.keras``, a TensorFlow
SavedModel, ``hyperparameters.json`` and ``MODEL_CARD.md``. The model is also logged
as an MLflow Model on the trial's run and registered with the alias ``champion``.

Preprocessing lives inside the exported model: forecasting models take raw series
values and return values in the series' units (``Normalization`` in, ``Rescaling``
out, training statistics); padded variable-length inputs go through the model's
``Masking`` layer (:data:`workbench.datasets.PAD_VALUE`); text models take raw strings
(their ``TextVectorization`` holds the vocabulary fitted on the training texts).

:func:`predict_file` reads new inputs (``.npz`` or ``.csv``), checks them against the
model's input and writes one CSV row of predictions per input.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench import __version__
from workbench.errors import WorkbenchError

#: Relative and absolute tolerance of the score check (float reductions differ by device).
RTOL = 1e-3
ATOL = 1e-5
MODEL_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
HYPERPARAMETERS_FILE = "hyperparameters.json"
CARD_FILE = "MODEL_CARD.md"


@dataclass(frozen=True)
class ScoreCheck:
    """One metric measured on the rebuilt model next to the value MLflow holds."""

    split: str  # "validation" or "test"
    metric: str  # the logged name: "score", "test_loss", "test_mae", ...
    logged: float | None
    measured: float
    #: True/False: within tolerance or not; None when not comparable (retrained model).
    matches: bool | None

    def describe(self) -> str:
        """One line: ``validation score 0.1234 (logged 0.1234, ok)``."""
        logged = "not logged" if self.logged is None else f"logged {self.logged:.6g}"
        verdict = {True: "ok", False: "MISMATCH", None: "retrained, not compared"}[self.matches]
        return f"{self.split} {self.metric} {self.measured:.6g} ({logged}, {verdict})"


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

    def lines(self) -> list[str]:
        """What the command line prints: the trial, the score check, the files, the registry."""
        how = "retrained on train + validation" if self.retrained else "best-epoch weights"
        shape = _shape_text(self.input_shape)
        return [
            f"Exported trial {self.trial_number} of {self.experiment!r} ({how}; MLflow run "
            f"{self.run_id}) to {self.out_dir}",
            f"Input {shape} {self.input_dtype}; task {self.task}",
            "Score check (measured vs logged):",
            *(f"  {check.describe()}" for check in self.checks),
            "Wrote " + ", ".join(p.name + ("/" if p.is_dir() else "") for p in self.files),
            f"Registered {self.model_uri} (version {self.registered_version})",
            f"Predict: workbench predict --model {self.out_dir} --data "
            + ("FILE.csv (a 'text' column)" if self.input_dtype == "string" else "FILE.npz"),
            f"Serve:   mlflow models serve -m {self.model_uri} --env-manager local "
            "-h 127.0.0.1 -p 5001",
        ]


@dataclass(frozen=True)
class PredictResult:
    """What :func:`predict_file` produced: the CSV text, and the file it went to (if any)."""

    rows: int
    columns: tuple[str, ...]
    out: Path | None
    csv_text: str


# --- export -----------------------------------------------------------------------------------


def export_best(
    experiment: str,
    out: str | Path,
    *,
    trial: str | None = None,
    retrain: bool = False,
    register: str | None = None,
    tracking_uri: str | None = None,
) -> ExportResult:
    """Export the best finished trial of ``experiment`` (or ``trial``) to the folder ``out``.

    Args:
        experiment: the MLflow experiment of the search.
        out: the folder to write (created; the files it names are replaced).
        trial: a trial number or run id instead of the best trial.
        retrain: train the trial's configuration afresh on train + validation (same epochs
            and seed) instead of loading its kept best-epoch weights.
        register: the registered model name; default the experiment's name.
        tracking_uri: the MLflow store; default as for ``workbench search``.

    Raises:
        WorkbenchError: unknown experiment, no finished trial, deleted weights (use
            ``retrain``), an unwritable ``out``, or weights that do not reproduce the
            logged scores.
    """
    from workbench import backend, tracking

    out_dir = _writable_dir(Path(out))
    uri = tracking.resolve_tracking_uri(tracking_uri)
    record = tracking.find_trial(uri, experiment, trial)
    checkpoint = record.tags.get("checkpoint", "")
    if not retrain and (checkpoint in ("", "deleted") or not Path(checkpoint).is_file()):
        why = (
            "were deleted" if checkpoint == "deleted" else f"are missing ({checkpoint or 'no tag'})"
        )
        raise WorkbenchError(
            f"The best-epoch weights of trial {record.number} of {experiment!r} {why}; only the "
            "best --keep-checkpoints trials keep theirs. Add --retrain to train its "
            "configuration again on train + validation"
        )
    backend.load_tensorflow()
    with tempfile.TemporaryDirectory(prefix="workbench-export-") as scratch:
        search = tracking.read_search(uri, record.parent_run_id, Path(scratch))
        spec, data = _load_task_data(search)
    model = _rebuild(record, search, data, retrain)
    exported = with_preprocessing(model, data)
    checks = _check_scores(record, data, model, exported, retrain)
    bad = [c for c in checks if c.matches is False]
    if bad:
        raise WorkbenchError(
            f"Trial {record.number}'s weights do not reproduce its logged scores: "
            + "; ".join(c.describe() for c in bad)
            + ". The task's data or the code changed since the search; add --retrain"
        )

    out_dir.mkdir(parents=True, exist_ok=True)
    files = _write_model_files(out_dir, exported)
    example = _raw(data, data.x_test if data.has_test else data.x_val)[:3]
    name = register or experiment
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        # MLflow predicts on the example (Keras draws a progress bar) and prints each step.
        registered = tracking.log_exported_model(
            uri,
            record.run_id,
            exported,
            input_example=example,
            output_example=exported.predict(example, verbose=0),
            name=name,
            pip_requirements=_pip_requirements(),
            tags={"workbench.exported": "retrained" if retrain else "checkpoint"},
        )
    shape = tuple(exported.inputs[0].shape)
    dtype = _dtype_name(exported.inputs[0].dtype)
    interface = _interface(data, shape, dtype)
    hyper = out_dir / HYPERPARAMETERS_FILE
    hyper.write_text(
        json.dumps(
            _hyperparameters(record, search, retrain, interface, registered), indent=2, default=str
        )
        + "\n"
    )
    card = out_dir / CARD_FILE
    card.write_text(
        _model_card(record, search, spec, data, exported, model, checks, retrain, registered)
    )
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
    )


def _writable_dir(out: Path) -> Path:
    """``out`` resolved, after checking it is (or can become) a writable folder; creates nothing."""
    path = out.expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise WorkbenchError(f"Cannot write the export folder {out}: it is a file")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise WorkbenchError(f"Cannot write the export folder {out}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise WorkbenchError(f"Cannot write the export folder {out}: {probe} is not writable")
    return path


def _load_task_data(search: Any) -> tuple[Any, Any]:
    """The search's task with its loader options, from the run alone (not the user's command)."""
    from workbench.datasets import load_task

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
            f"the search used ({search.dataset_digest}); the model cannot be checked against it"
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


def _rebuild(record: Any, search: Any, data: Any, retrain: bool) -> Any:
    """The trial's model: built from its params, then its weights loaded (or retrained)."""
    import warnings

    import keras

    from workbench.models import ModelConfig, ModelSignature, build_model

    params = record.params
    config = ModelConfig.from_values(params)
    signature = ModelSignature.from_task(data)
    if not retrain:
        model = build_model(config, signature)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.load_weights(record.tags["checkpoint"])
        return model
    seed = int(search.params.get("seed", 0)) + int(record.trial_id or 0)
    keras.utils.set_random_seed(seed)
    model = build_model(config, signature)
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    model.fit(x, y, epochs=int(params["epochs"]), batch_size=int(params["batch_size"]), verbose=0)
    return model


def with_preprocessing(model: Any, data: Any) -> Any:
    """The model to export: raw inputs in, original units out.

    The result is not compiled (no optimizer state to carry). Forecasting tasks train on
    inputs and targets scaled with training statistics; the exported model scales its
    inputs (``Normalization``) and its outputs back (``Rescaling``), so it takes and returns
    series values. Other models keep their layers as they are (padded inputs already go
    through their ``Masking`` layer; text models start from raw strings anyway).
    """
    import keras

    # The same layers without the training set-up (optimizer, loss): an inference model.
    model = keras.Model(model.input, model.output, name=model.name)
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


def _close(measured: float, logged: float | None) -> bool | None:
    if logged is None:
        return None
    return math.isclose(measured, logged, rel_tol=RTOL, abs_tol=ATOL)


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
    from workbench.datasets import forecast_metrics

    logged = record.metrics

    def check(split: str, metric: str, measured: float) -> ScoreCheck:
        value = logged.get(metric)
        matches = None if retrain else _close(measured, value)
        return ScoreCheck(split, metric, value, float(measured), matches)

    objective, _ = data.objective
    val = model.evaluate(data.x_val, data.y_val, batch_size=256, verbose=0, return_dict=True)
    checks = [check("validation", _kept_score_metric(record), val[objective.removeprefix("val_")])]
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
        model.export(str(saved), verbose=False)
    return [keras_file, saved]


def _pip_requirements() -> list[str]:
    """Pinned requirements of the logged MLflow Model (skips MLflow's slow inference)."""
    import keras
    import tensorflow as tf

    return [
        f"tensorflow=={tf.__version__}",
        f"keras=={keras.__version__}",
        f"numpy=={np.__version__}",
    ]


def _dtype_name(dtype: Any) -> str:
    return str(getattr(dtype, "name", dtype))


def _interface(data: Any, shape: tuple[int | None, ...], dtype: str) -> dict[str, Any]:
    """What :func:`predict_file` needs to read inputs and label outputs."""
    classes = list(data.class_names) if data.class_names else None
    if data.problem == "classification" and classes is None:
        classes = [str(i) for i in range(data.n_outputs)]
    return {
        "input_shape": list(shape),
        "input_dtype": dtype,
        "problem": data.problem,
        "n_outputs": data.n_outputs,
        "binary": data.problem == "classification" and data.n_outputs == 2,
        "sequence_output": data.sequence_output,
        "class_names": classes,
        "forecast": data.target_scale is not None,
        "masked": data.masked,
        "pad_value": data.mask_value if data.masked else None,
        "text": None
        if data.text is None
        else {
            "vocab_size": data.text.vocab_size,
            "sequence_length": data.text.sequence_length,
            "embedding_dim": data.text.embedding_dim,
        },
    }


def _typed_hyperparameters(params: Mapping[str, str]) -> dict[str, Any]:
    from workbench.models import ModelConfig
    from workbench.tuning import PARAM_NAMES

    config = asdict(ModelConfig.from_values(params))
    values = {name: config.get(name, params.get(name)) for name in PARAM_NAMES}
    values["batch_size"] = int(params["batch_size"])
    values["epochs"] = int(params["epochs"])
    return values


def _hyperparameters(
    record: Any, search: Any, retrain: bool, interface: dict[str, Any], registered: Any
) -> dict[str, Any]:
    return {
        "hyperparameters": _typed_hyperparameters(record.params),
        "trial": {
            "number": record.number,
            "run_id": record.run_id,
            "search_run_id": record.parent_run_id,
            "experiment": record.experiment,
            "seed": _weights_seed(record, search, retrain),
            "weights": "retrained on train + validation" if retrain else "best epoch (checkpoint)",
        },
        "interface": interface,
        "registered_model": {"name": registered.name, "version": registered.version},
    }


def _weights_seed(record: Any, search: Any, retrain: bool) -> int:
    """The seed the exported weights were trained from (the kept repeat's, with repeats)."""
    from workbench.tuning import trial_seed

    repeat = 0 if retrain else int(record.tags.get("checkpoint_repeat", "0"))
    return trial_seed(int(search.params.get("seed", 0)), record.trial_id or 0, repeat)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"workbench": __version__, "python": platform.python_version()}
    for package in ("tensorflow", "keras", "keras-tuner", "mlflow", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def _model_card(
    record: Any,
    search: Any,
    spec: Any,
    data: Any,
    exported: Any,
    model: Any,
    checks: Sequence[ScoreCheck],
    retrain: bool,
    registered: Any,
) -> str:
    shape = tuple(exported.inputs[0].shape)
    dtype = _dtype_name(exported.inputs[0].dtype)
    hyper = _typed_hyperparameters(record.params)
    summary = io.StringIO()
    exported.summary(print_fn=lambda line, *a, **k: summary.write(line + "\n"))
    if data.text is not None:
        text = data.text
        preprocessing = (
            "Inside the model: TextVectorization lowercases (ASCII), strips punctuation, "
            f"splits on whitespace and maps tokens to a vocabulary of {text.vocab_size} "
            "(padding, [UNK] and the most frequent words of the training texts only), cut "
            f"or right-padded to {text.sequence_length} tokens; Embedding({text.embedding_dim}, "
            "mask_zero=True) masks the padding. Give raw strings."
        )
    elif data.input_scale is not None:
        means, stds = data.input_scale
        preprocessing = (
            f"Inside the model: inputs are scaled with the training part's mean {list(means)} "
            f"and deviation {list(stds)} (Normalization); outputs are scaled back to the "
            f"series' units (Rescaling, mean {data.target_scale[0]:.6g}, deviation "
            f"{data.target_scale[1]:.6g}). Give raw series values; get values in units."
        )
    elif data.masked:
        preprocessing = (
            f"Variable-length series are right-padded with {data.mask_value:g}; the model's "
            "Masking layer skips padded steps. Pad shorter series the same way."
        )
    else:
        preprocessing = "None: the model takes the task's inputs as its files hold them."
    rows = "\n".join(
        f"| {c.split} | {c.metric} | {c.measured:.6g} | "
        f"{'-' if c.logged is None else f'{c.logged:.6g}'} |"
        for c in checks
    )
    baseline = data.baseline.description if data.baseline else "none recorded"
    versions = "\n".join(f"- {k} {v}" for k, v in _versions().items())
    classes = ", ".join(data.class_names) if data.class_names else "-"
    limits = [
        f"Trained on {len(data.x_train)} samples"
        + (" plus the validation part" if retrain else "")
        + f"; validated on {len(data.x_val)}"
        + (f", tested on {len(data.x_test)}" if data.has_test else "")
        + ". Scores on other data may differ.",
        "Inputs must have the shape and meaning described above; there is no check of "
        "the input distribution (out-of-range values give unreliable predictions).",
        f"Chosen among {search.tags.get('max_trials', '?')} trials of a "
        f"{search.params.get('tuner', '?')} search on the validation objective, so the "
        "validation score is optimistic; the test score is the fairer figure.",
    ]
    if retrain:
        limits.append(
            "Retrained on train + validation: its validation figures are in-sample and "
            "the logged ones belong to the original trial's weights."
        )
    if data.target_scale is not None:
        limits.append(
            f"Forecasts {data.n_outputs} step(s) ahead from the last {shape[1]} values; "
            "a series that changes level or season beyond the training range is extrapolation."
        )
    limit_lines = "\n".join(f"- {line}" for line in limits)
    if search.task_file is not None:
        task_file = f"`task/{search.task_file.name}` artifact of the search run"
    else:
        task_file = f"built-in task `{search.tags.get('task', data.name)}`"
    source = data.source if data.source and data.source != spec.source else task_file
    units_note = ""
    if data.target_scale is not None:
        units_note = (
            "Loss and MSE are in scaled units (standard scores of the training part); MAE, "
            "RMSE and MAPE (%) are in the series' units, from the exported model.\n\n"
        )
    p = search.params
    origin = (
        f"tuner {p.get('tuner', '?')}, space {search.tags.get('space', '?')}, seed "
        f"{p.get('seed', '?')}, objective {p.get('objective', '?')} {p.get('direction', '')}"
    )
    return f"""# Model card: {registered.name} (version {registered.version})

## Task
- Task: `{data.name}` ({data.problem}, {data.n_outputs} output(s); classes: {classes})
- Description: {spec.description}
- Data: {source}; train/val/test {data.sizes()}; digest `{data.digest()}`
- Task file: {task_file}; loader options {json.dumps(dict(spec.options), default=str)}

## Input and output
- Input: shape `{shape}` {_input_layout(data)}, dtype `{dtype}`
- Output: {_output_text(data)}
- Preprocessing: {preprocessing}

## Architecture
- Hyperparameters: `{json.dumps(hyper, default=str)}`
- Parameters: {model.count_params()} (the trained network; scaling layers add none trainable)
- Weights: {
        "retrained on train + validation, same epochs and seed"
        if retrain
        else "the trial's best epoch (its checkpoint)"
    }

```
{summary.getvalue().rstrip()}
```

## Metrics
Measured on the exported weights; "logged" is what the search recorded in MLflow.

| split | metric | measured | logged |
|---|---|---|---|
{rows}

{units_note}Baseline: {baseline}

## Provenance
- Search: experiment `{record.experiment}`, search run `{record.parent_run_id}` ({origin})
- Trial {record.number}: MLflow run id `{record.run_id}`
- Registered model: `models:/{registered.name}@{registered.alias}` (version {registered.version})

## Library versions
{versions}

## Limits
{limit_lines}
"""


def _input_layout(data: Any) -> str:
    return (
        "(batch: one raw text per sample)" if data.text is not None else "(batch, steps, features)"
    )


def _output_text(data: Any) -> str:
    if data.problem == "classification":
        step = " at every step" if data.sequence_output else ""
        if data.n_outputs == 2:
            named = f" ({data.class_names[1]!r})" if data.class_names else ""
            return f"probability of class 1{named} (sigmoid){step}"
        return f"probabilities over {data.n_outputs} classes (softmax){step}"
    if data.target_scale is not None:
        return f"the next {data.n_outputs} value(s) of the series, in its units"
    return f"{data.n_outputs} regression value(s)"


# --- predict ----------------------------------------------------------------------------------


def predict_file(
    model_dir: str | Path, data_file: str | Path, out: str | Path | None = None
) -> PredictResult:
    """Predict with an exported model on the inputs in ``data_file``; write CSV to ``out``.

    Inputs:
        ``.npz``: an array named ``x`` (or ``x_test``) of shape ``(samples, steps, features)``
        (``(samples,)`` strings for a text model).
        ``.csv``: one input per row, ``steps * features`` numeric columns in time order
        (features of one step side by side); for a text model the column ``text`` (or the
        only column) holds one raw text per row. For a forecasting model (one feature) a CSV
        with a single column is read as one series: every window of ``steps`` consecutive
        values is one input, the last one forecasts past the end of the series.

    Output: one CSV row per input; classification: ``class`` and ``p_<class>`` per class;
    regression: ``y`` (or ``y_1..y_k``); forecasting series CSVs also get ``end_row``.

    Raises:
        WorkbenchError: missing model or file, missing key or column, wrong shape or dtype.
    """
    model_path = Path(model_dir)
    meta_path = model_path / HYPERPARAMETERS_FILE
    if not (model_path / MODEL_FILE).is_file() or not meta_path.is_file():
        raise WorkbenchError(
            f"Expected an exported model folder with {MODEL_FILE} and {HYPERPARAMETERS_FILE}. "
            f"Received: --model {model_dir} (run workbench export first)"
        )
    interface = json.loads(meta_path.read_text())["interface"]
    x, ends = _read_inputs(Path(data_file), interface)
    _check_inputs(x, interface)
    if interface["input_dtype"] == "string":
        # Keras takes strings as a 1-D object array (not numpy's fixed-width str dtype).
        x = np.array([str(v) for v in x], dtype=object)
    from workbench import backend

    backend.load_tensorflow()
    import keras

    model = keras.saving.load_model(model_path / MODEL_FILE, safe_mode=True, compile=False)
    predictions = np.asarray(model.predict(x, batch_size=256, verbose=0))
    columns, rows = _prediction_rows(predictions, interface)
    if ends is not None:
        columns = ("end_row", *columns)
        rows = [[end, *row] for end, row in zip(ends, rows, strict=True)]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    target = None
    if out is not None:
        target = Path(out)
        try:
            target.write_text(text.getvalue())
        except OSError as exc:
            raise WorkbenchError(f"Cannot write {out}: {exc.strerror or exc}") from None
    return PredictResult(len(rows), tuple(columns), target, text.getvalue())


def _read_inputs(path: Path, interface: Mapping[str, Any]) -> tuple[np.ndarray, list[int] | None]:
    if not path.is_file():
        raise WorkbenchError(f"Cannot read --data {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                keys = list(archive.keys())
                key = next((k for k in ("x", "x_test") if k in keys), None)
                if key is None:
                    raise WorkbenchError(
                        f"{path}: expected an array named 'x' or 'x_test'. "
                        f"Received keys: {', '.join(keys) or 'none'}"
                    )
                return np.asarray(archive[key]), None
        except (OSError, ValueError) as exc:
            raise WorkbenchError(f"{path}: not a readable .npz file ({exc})") from None
    if suffix == ".csv":
        return _read_csv(path, interface)
    raise WorkbenchError(f"Expected --data to be a .npz or .csv file. Received: {path}")


def _read_csv(path: Path, interface: Mapping[str, Any]) -> tuple[np.ndarray, list[int] | None]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if len(rows) < 2:
        raise WorkbenchError(f"{path}: expected a header row and at least one data row")
    header, body = rows[0], rows[1:]
    shape = interface["input_shape"]
    if interface["input_dtype"] == "string":
        column = "text" if "text" in header else (header[0] if len(header) == 1 else None)
        if column is None:
            raise WorkbenchError(
                f"{path}: expected a column named 'text'. Received columns: {', '.join(header)}"
            )
        index = header.index(column)
        return np.array([row[index] for row in body], dtype=object), None
    try:
        values = np.array([[float(v) for v in row] for row in body], dtype="float64")
    except ValueError as exc:
        raise WorkbenchError(f"{path}: expected numbers in every column ({exc})") from None
    if values.ndim != 2:
        raise WorkbenchError(f"{path}: expected the same number of columns in every row")
    steps, features = shape[1], shape[2]
    if interface.get("forecast") and features == 1 and values.shape[1] == 1 and steps:
        series = values[:, 0]
        if len(series) < steps:
            raise WorkbenchError(
                f"{path}: expected a series of at least {steps} values (the model's window). "
                f"Received: {len(series)} values"
            )
        windows = np.stack([series[i - steps : i] for i in range(steps, len(series) + 1)])
        return windows[..., None], list(range(steps, len(series) + 1))
    if steps is None:
        raise WorkbenchError(
            f"{path}: this model takes variable-length series; give them as an .npz array "
            "padded with the model's pad value"
        )
    if values.shape[1] != steps * features:
        raise WorkbenchError(
            f"{path}: expected {steps * features} value columns per row ({steps} steps x "
            f"{features} features). Received: {values.shape[1]} columns "
            f"({', '.join(header[:5])}{', ...' if len(header) > 5 else ''})"
        )
    return values.reshape(len(values), steps, features), None


def _shape_text(shape: Sequence[int | None]) -> str:
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + (",)" if len(shape) == 1 else ")")
    )


def _check_inputs(x: np.ndarray, interface: Mapping[str, Any]) -> None:
    shape = interface["input_shape"]
    expected = _shape_text(shape)
    if interface["input_dtype"] == "string":
        if x.dtype.kind not in "OUS":
            raise WorkbenchError(f"Expected input of dtype string. Received: x.dtype={x.dtype}")
    elif x.dtype.kind not in "fiub":
        raise WorkbenchError(
            f"Expected input of dtype {interface['input_dtype']}. Received: x.dtype={x.dtype}"
        )
    wrong_rank = x.ndim != len(shape)
    wrong_size = any(d is not None and d != n for d, n in zip(shape[1:], x.shape[1:], strict=False))
    if wrong_rank or wrong_size or len(x) == 0:
        raise WorkbenchError(
            f"Expected input of shape {expected}. Received: x.shape={_shape_text(x.shape)}"
        )
    if x.dtype.kind in "fiub":
        bad = ~np.isfinite(x.astype("float64"))
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise WorkbenchError(
                f"Expected finite numbers. Received: NaN or infinite value in x[{row}]"
            )


def _prediction_rows(
    predictions: np.ndarray, interface: Mapping[str, Any]
) -> tuple[tuple[str, ...], list[list[Any]]]:
    n = len(predictions)
    if interface["problem"] == "classification":
        names = list(interface["class_names"])
        if interface["binary"]:
            p1 = predictions.reshape(predictions.shape[:-1])
            probs = np.stack([1.0 - p1, p1], axis=-1)
        else:
            probs = predictions
        classes = np.asarray(names, dtype=object)[np.argmax(probs, axis=-1)]
        if interface["sequence_output"]:
            steps = probs.shape[1]
            columns = tuple(f"class_t{t}" for t in range(steps))
            return columns, [list(classes[i]) for i in range(n)]
        columns = ("class", *(f"p_{name}" for name in names))
        return columns, [[classes[i], *(f"{p:.6g}" for p in probs[i])] for i in range(n)]
    flat = predictions.reshape(n, -1)
    if flat.shape[1] == 1:
        columns: tuple[str, ...] = ("y",)
    else:
        columns = tuple(f"y_{k + 1}" for k in range(flat.shape[1]))
    return columns, [[f"{v:.6g}" for v in flat[i]] for i in range(n)]
