"""What an exported model says about itself: ``hyperparameters.json`` and ``MODEL_CARD.md``."""

from __future__ import annotations

import io
import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from workbench import __version__


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
        if self.matches is None and self.split == "validation":
            # The refit trained on train + validation: no held-out score.
            verdict = "retrained on it: not a held-out score"
        return f"{self.split} {self.metric} {self.measured:.6g} ({logged}, {verdict})"


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
        # The features per step by name, in the model's order (a forecast over columns).
        "features": list(data.feature_names) or None,
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
    from workbench.search.config import PARAM_NAMES

    config = asdict(ModelConfig.from_values(params))
    values = {name: config.get(name, params.get(name)) for name in PARAM_NAMES}
    for name in ("batch_size", "epochs", "patience"):
        if params.get(name) not in (None, "", "none"):
            values[name] = int(params[name])
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
    against: Mapping[str, float],
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
    else:
        from workbench.models import ModelSignature

        signature = ModelSignature.from_task(data)
        means = [round(v, 6) for v in signature.feature_mean or ()]
        stds = [round(v, 6) for v in signature.feature_std or ()]
        preprocessing = (
            f"Inside the model: each feature is scaled with the training part's mean {means} "
            f"and deviation {stds} (Normalization). Give raw values, as the task's files hold "
            "them."
        )
        if data.masked:
            preprocessing += (
                f" Variable-length series are right-padded with {data.mask_value:g}; the "
                "model's Masking layer (before the scaling) skips padded steps. Pad shorter "
                "series the same way."
            )
    rows = "\n".join(
        f"| {c.split} | {c.metric} | {c.measured:.6g} | "
        f"{'-' if c.logged is None else f'{c.logged:.6g}'} |"
        for c in checks
    )
    baseline = _baseline_comparison(data, search.params.get("direction", "min"), checks, against)
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
        f"Chosen among {_trials_run(search)} of a "
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
        "retrained on train + validation, same seed, for the trial's best epoch count"
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

{units_note}{baseline}

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
    if data.text is not None:
        return "(batch: one raw text per sample)"
    if len(data.feature_names) > 1:
        return (
            f"(batch, steps, features); the features in this order: {', '.join(data.feature_names)}"
        )
    return "(batch, steps, features)"


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


def _weights_seed(record: Any, search: Any, retrain: bool) -> int:
    """The seed the exported weights were trained from (the kept repeat's, with repeats)."""
    from workbench.search.config import trial_seed

    repeat = 0 if retrain else int(record.tags.get("checkpoint_repeat", "0"))
    return trial_seed(int(search.params.get("seed", 0)), record.trial_id or 0, repeat)


def _trials_run(search: Any) -> str:
    """How many trials the search finished, in every session so far (its ``max_trials``
    tag is the last session's --max-trials, lowered on a resume)."""
    done = search.finished_trials
    if done is None:
        return f"{search.tags.get('max_trials', '?')} trials"
    return f"{done} finished trial{'s' if done != 1 else ''}"


def _baseline_comparison(
    data: Any, direction: str, checks: Sequence[ScoreCheck], against: Mapping[str, float]
) -> str:
    """The card's baseline line: the task's trivial predictor, and whether this model beats it
    on the test part (measured on the exported weights): by the 95% interval of their
    difference over the test samples (``against``, from ``against_baseline``), not by two
    figures."""
    from workbench.report.answer import _against, baseline_verdict, test_metric

    if data.baseline is None:
        return "Baseline: none recorded for this task."
    line = f"Baseline: {data.baseline.description}."
    metric = test_metric(direction)
    measured = next(
        (c.measured for c in checks if c.metric.removeprefix("checkpoint_") == metric), None
    )
    if measured is None:
        return line + f" Not compared: no {metric} was measured."
    compared = _against(against, direction)
    if compared is None:  # no per-sample scores for this task's baseline: the two figures
        beats = (
            measured > data.baseline.value if direction == "max" else measured < data.baseline.value
        )
        verdict, why, figures = ("beats" if beats else "**does not beat**"), "", ""
    else:
        figures = f"; {compared[2]}"
        verdict, why = baseline_verdict(against, direction)  # type: ignore[misc]
        verdict = verdict if verdict == "beats" else f"**{verdict}**"
    return (
        line + f" This model {verdict} it on test{why}: {metric} {measured:.4g} against "
        f"{data.baseline.value:.4g}{figures}."
    )
