"""Publishing an exported model: an MLflow Model on the trial run, registered with an alias."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError, first_line
from workbench.tracking.store import _quiet_mlflow, client


@dataclass(frozen=True)
class RegisteredModel:
    """Where an exported model landed in MLflow."""

    name: str
    version: str
    alias: str
    model_uri: str  # models:/NAME@ALIAS
    logged_uri: str  # the MLflow Model logged on the trial run


def log_exported_model(
    tracking_uri: str,
    run_id: str,
    model: Any,
    *,
    input_example: Any,
    output_example: Any,
    name: str,
    alias: str = "champion",
    pip_requirements: list[str] | None = None,
    tags: Mapping[str, Any] | None = None,
    variable_length: bool = False,
) -> RegisteredModel:
    """Log ``model`` as an MLflow Model (keras flavor) on ``run_id``, register it, set ``alias``.

    ``variable_length``: the model takes series of any length (padded, masked), so the
    signature leaves the time steps open instead of fixing the example's.

    The trial run has ended; the model is attached to it without reopening it.
    """
    import types

    client(tracking_uri)  # the store's folder, schema and lock settings
    import mlflow
    import mlflow.keras
    from mlflow.models import Model, infer_signature

    _quiet_mlflow()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow_client = client(tracking_uri)

    def save_model(path: str, **kwargs: Any) -> Any:
        # mlflow.keras.save_model writes the input example before it creates the model
        # folder (mlflow/mlflow#16183, open): create it first.
        os.makedirs(path, exist_ok=True)
        return mlflow.keras.save_model(path=path, **kwargs)

    flavor = types.SimpleNamespace(__name__="mlflow.keras", save_model=save_model)
    # MLflow 3 files the LoggedModel under the *active* experiment; left unset that is the
    # store's Default experiment, whose artifacts go to ./mlruns of the current folder.
    mlflow.set_experiment(experiment_id=mlflow_client.get_run(run_id).info.experiment_id)
    info = Model.log(
        artifact_path=None,
        name="model",
        flavor=flavor,
        model=model,
        run_id=run_id,
        signature=_signature(infer_signature(input_example, output_example), variable_length),
        input_example=input_example,
        pip_requirements=pip_requirements,
        tags={k: str(v) for k, v in (tags or {}).items()},
    )
    try:
        version = mlflow.register_model(info.model_uri, name)
    except Exception as exc:  # noqa: BLE001 - e.g. a name the registry refuses
        raise WorkbenchError(f"Cannot register the model as {name!r}: {first_line(exc)}") from None
    mlflow_client.set_registered_model_alias(name, alias, version.version)
    mlflow_client.set_tag(run_id, "workbench.registered_model", f"{name}/{version.version}")
    return RegisteredModel(
        name, str(version.version), alias, f"models:/{name}@{alias}", info.model_uri
    )


def _signature(signature: Any, variable_length: bool) -> Any:
    """The inferred signature, its input's time steps (axis 1) left open (-1) if asked."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    if not variable_length:
        return signature
    (spec,) = signature.inputs.inputs
    shape = (*spec.shape[:1], -1, *spec.shape[2:])
    return ModelSignature(Schema([TensorSpec(spec.type, shape, spec.name)]), signature.outputs)
