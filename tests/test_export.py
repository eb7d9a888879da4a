"""Export and predict: one tiny search shared by the module, exported once, then used."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.export import ExportResult, export_best, predict_file
from workbench.search import make_search_config, run_search
from workbench.spaces import load_space
from workbench.tasks import load_task

EXPERIMENT = "tiny-export"

# One worker runs the whole module, so the shared study is made once.
pytestmark = pytest.mark.xdist_group("export")


@dataclass(frozen=True)
class Exported:
    """The shared study: its store, the search, the export and a scoring server starting."""

    root: Path
    store: str
    result: ExportResult
    x_test: np.ndarray
    x_train: np.ndarray
    server: subprocess.Popen
    port: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _search(
    root: Path,
    store: str,
    task: Path,
    experiment: str,
    trials: int,
    folds: int = 1,
    mixed_precision: bool = False,
) -> None:
    space = root / "space.yaml"
    space.write_text(
        textwrap.dedent(
            """\
            name: tiny
            dimensions:
              cell: [simple_rnn, gru]
              units: 4
              learning_rate: 1e-2
              batch_size: 16
              epochs: 1
            """
        )
    )
    config = make_search_config(
        task=load_task(task),
        space=load_space(space),
        max_trials=trials,
        seed=1,
        folds=folds,
        mixed_precision=mixed_precision,
        experiment=experiment,
        tracking_uri=store,
        state_root=root / ".workbench",
    )
    run_search(config)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    """A 2-trial, 1-epoch search on a tiny adding task, exported; the scoring server starts."""
    root = tmp_path_factory.mktemp("export")
    store = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    task = root / "tiny_adding.yaml"
    task.write_text(
        "name: tiny_adding\ndescription: The adding problem, tiny.\nloader: adding\n"
        "options: {length: 10, n_train: 48, n_val: 16, n_test: 16, seed: 3}\n"
    )
    _search(root, store, task, EXPERIMENT, trials=2)
    data = load_task(task).load()
    x_test = data.x_test
    task.unlink()  # the export must rebuild the task from the run alone
    result = export_best(EXPERIMENT, root / "models" / "adding", tracking_uri=store)
    # Start the scoring server now; it loads TensorFlow while the other tests run.
    port = _free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m"]
    command += [f"models:/{EXPERIMENT}@champion", "--env-manager", "local"]
    command += ["-h", "127.0.0.1", "-p", str(port)]
    log = (root / "serve.log").open("w")
    server = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield Exported(root, store, result, x_test, data.x_train, server, port)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def _trial_runs(store: str, experiment: str = EXPERIMENT) -> list:
    client = MlflowClient(store)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], "tags.`workbench.role` = 'trial'")
    return sorted(runs, key=lambda r: int(r.data.tags["workbench.trial_number"]))


def _trial_model(run, x_train: np.ndarray) -> object:
    """The trial's own model, rebuilt independently of the export: params + checkpoint,
    inputs scaled with the training part's per-feature mean and deviation."""
    from workbench.models import ModelConfig, ModelSignature, build_model

    steps = x_train.reshape(-1, x_train.shape[-1]).astype("float64")
    signature = ModelSignature(
        timesteps=10,
        features=2,
        problem="regression",
        n_outputs=1,
        feature_mean=tuple(steps.mean(axis=0)),
        feature_std=tuple(steps.std(axis=0)),
    )
    model = build_model(ModelConfig.from_values(run.data.params), signature)
    with warnings.catch_warnings():  # the checkpoint's optimizer state is not needed
        warnings.simplefilter("ignore")
        model.load_weights(run.data.tags["checkpoint"])
    return model


def test_export_writes_the_files_and_reproduces_the_logged_scores(exported: Exported) -> None:
    result = exported.result
    runs = _trial_runs(exported.store)
    best = min(runs, key=lambda r: r.data.metrics["score"])
    assert result.run_id == best.info.run_id
    assert result.trial_number == int(best.data.tags["workbench.trial_number"])
    names = sorted(p.name for p in result.out_dir.iterdir())
    assert names == ["MODEL_CARD.md", "hyperparameters.json", "model.keras", "saved_model"]
    assert (result.out_dir / "saved_model" / "saved_model.pb").is_file()
    checks = {c.metric: c for c in result.checks}
    assert set(checks) == {"score", "test_loss", "test_mse"}
    for check in result.checks:
        assert check.matches is True, check.describe()
        assert check.measured == pytest.approx(check.logged, rel=1e-3)
    assert checks["score"].logged == best.data.metrics["score"]
    hyper = json.loads((result.out_dir / "hyperparameters.json").read_text())
    assert hyper["hyperparameters"]["cell"] == best.data.params["cell"]
    assert hyper["hyperparameters"]["units"] == 4 and hyper["hyperparameters"]["epochs"] == 1
    assert hyper["interface"]["input_shape"] == [None, 10, 2]
    card = (result.out_dir / "MODEL_CARD.md").read_text()
    for piece in (
        "tiny_adding",
        "(None, 10, 2)",
        "float32",
        best.info.run_id,
        # The scaling inside the model is said (the card said "Preprocessing: None").
        "Inside the model: each feature is scaled with the training part's mean",
        "always predict 1",  # the task's baseline, and this model against it on test
        " it on test",
        f": test_loss {checks['test_loss'].measured:.4g} against",
        # ... by the interval of their difference over the test samples, as the search's
        # answer reads it, not by two figures.
        f"difference {best.data.metrics['baseline_diff']:+.4g}, 95% CI [",
        "tensorflow ",
        "## Limits",
        # The trials the search finished (its last --max-trials, lowered on a resume, said
        # "Chosen among 1 trials" of a study of 3).
        "Chosen among 2 finished trials of a random search",
        f"models:/{EXPERIMENT}@champion",
    ):
        assert piece in card, piece
    assert MlflowClient(exported.store).get_run(best.info.run_id).info.status == "FINISHED"


def test_model_keras_and_saved_model_predict_like_the_trial_model(exported: Exported) -> None:
    import keras
    import tensorflow as tf

    out = exported.result.out_dir
    best = next(r for r in _trial_runs(exported.store) if r.info.run_id == exported.result.run_id)
    expected = _trial_model(best, exported.x_train).predict(exported.x_test, verbose=0)
    reloaded = keras.saving.load_model(out / "model.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(exported.x_test, verbose=0), expected, atol=1e-5)
    saved = tf.saved_model.load(str(out / "saved_model"))
    np.testing.assert_allclose(saved.serve(exported.x_test).numpy(), expected, atol=1e-5)


def test_registered_champion_loads_through_pyfunc_and_predicts(exported: Exported) -> None:
    import keras
    import mlflow

    client = MlflowClient(exported.store)
    version = client.get_model_version_by_alias(EXPERIMENT, "champion")
    assert str(version.version) == exported.result.registered_version
    assert version.run_id == exported.result.run_id
    # The model's files live with the trial's experiment in the store, not in ./mlruns.
    experiment_id = client.get_run(version.run_id).info.experiment_id
    logged = client.search_logged_models(experiment_ids=[experiment_id])
    assert [m.source_run_id for m in logged] == [version.run_id]
    assert logged[0].artifact_location.startswith((exported.root / "store").as_uri())
    mlflow.set_tracking_uri(exported.store)
    model = mlflow.pyfunc.load_model(f"models:/{EXPERIMENT}@champion")
    inputs = model.metadata.get_input_schema().inputs[0]
    assert tuple(inputs.shape) == (-1, 10, 2)
    assert model.metadata.saved_input_example_info is not None
    predicted = np.asarray(model.predict(exported.x_test))
    local = keras.saving.load_model(exported.result.out_dir / "model.keras", safe_mode=True)
    np.testing.assert_allclose(predicted, local.predict(exported.x_test, verbose=0), atol=1e-5)


def test_predict_writes_one_row_per_input(exported: Exported) -> None:
    import keras

    rng = np.random.default_rng(7)
    x = np.stack([rng.uniform(size=(5, 10)), np.zeros((5, 10))], axis=-1).astype("float32")
    x[:, [1, 7], 1] = 1.0
    data = exported.root / "new_inputs.npz"
    np.savez(data, x=x)
    out = exported.root / "predictions.csv"
    model_dir = str(exported.result.out_dir)
    args = ["predict", "--model", model_dir, "--data", str(data), "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = out.read_text().strip().splitlines()
    assert lines[0] == "y" and len(lines) == 1 + len(x)
    local = keras.saving.load_model(exported.result.out_dir / "model.keras", safe_mode=True)
    expected = local.predict(x, verbose=0)[:, 0]
    np.testing.assert_allclose([float(v) for v in lines[1:]], expected, rtol=1e-5)
    # Windows as CSV rows (steps x features side by side) give the same predictions.
    table = exported.root / "new_inputs.csv"
    header = ",".join(f"t{t}_f{f}" for t in range(10) for f in range(2))
    rows = "\n".join(",".join(f"{v:.9g}" for v in row) for row in x.reshape(5, -1))
    table.write_text(header + "\n" + rows + "\n")
    from_csv = predict_file(model_dir, table)
    assert from_csv.rows == 5 and from_csv.out is None
    values = [float(v) for v in from_csv.csv_text.strip().splitlines()[1:]]
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    assert from_csv.notes == ()
    # Every digit float32 holds (and two more): nothing rounded away in the CSV.
    assert all(len(v.replace(".", "").lstrip("-0")) >= 8 for v in from_csv.csv_text.split()[1:])
    # The (samples, steps) arrays a one-feature search takes are not for a two-feature model.
    np.savez(data, x=x[..., 0])
    with pytest.raises(WorkbenchError, match=r"Received: x.shape=\(5, 10\)"):
        predict_file(model_dir, data)
    with pytest.raises(WorkbenchError, match=r"Cannot read --data .*: a folder, not a file$"):
        predict_file(model_dir, data.parent)
    np.savez(data, x=x[:0])  # it said "Expected input of shape (None, 10, 1)"
    with pytest.raises(WorkbenchError, match=r"at least one sample to predict\. Received: x"):
        predict_file(model_dir, data)
    # Without a header row the first row is an input too, not lost as column names ...
    table.write_text(rows + "\n")
    headless = predict_file(model_dir, table)
    assert headless.rows == 5 and headless.csv_text == from_csv.csv_text
    assert headless.notes and "its first row is all numbers, read as the first input" in (
        headless.notes[0]
    )
    # ... and pandas' default column names (0, 1, ...) are a header when told so.
    table.write_text(",".join(str(k) for k in range(20)) + "\n" + rows + "\n")
    assert predict_file(model_dir, table).rows == 6  # read as data, and said
    named = predict_file(model_dir, table, header=True)
    assert named.rows == 5 and named.csv_text == from_csv.csv_text and named.notes == ()
    table.write_text(rows + "\n")
    told = CliRunner().invoke(main, ["predict", "--model", str(model_dir), "--data", str(table)])
    assert told.exit_code == 0 and "Note: " in told.output  # on stderr, beside the CSV
    plain = ["predict", "--model", str(model_dir), "--data", str(table), "--no-header"]
    assert "Note: " not in CliRunner().invoke(main, plain).output


def test_bad_inputs_give_one_clear_line(exported: Exported) -> None:
    store, out = exported.store, exported.root / "elsewhere"
    with pytest.raises(WorkbenchError, match="Unknown experiment 'nope'.*Expected one of: "):
        export_best("nope", out, tracking_uri=store)
    with pytest.raises(WorkbenchError, match=r"\(trials: 1, 2\)\. Received: --trial 99$"):
        export_best(EXPERIMENT, out, trial="99", tracking_uri=store)
    # An experiment whose only trial failed.
    client = MlflowClient(store)
    experiment_id = client.create_experiment("all-failed")
    parent = client.create_run(experiment_id, tags={"workbench.role": "search"})
    failed = client.create_run(
        experiment_id,
        tags={
            "workbench.role": "trial",
            "workbench.trial_id": "0",
            "mlflow.parentRunId": parent.info.run_id,
            "failure": "diverged",
        },
    )
    client.set_terminated(failed.info.run_id, "FAILED")
    with pytest.raises(WorkbenchError, match="'all-failed' has no finished trial.*1 FAILED"):
        export_best("all-failed", out, tracking_uri=store)
    with pytest.raises(WorkbenchError, match="Trial 1 of experiment 'all-failed' did not finish"):
        export_best("all-failed", out, trial="1", tracking_uri=store)
    args = ["export", "--experiment", "all-failed", "--out", str(out), "--tracking-uri", store]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.startswith("Error: Experiment 'all-failed' has no finished trial")
    # A trial whose best-epoch weights were pruned: say so and point at --retrain.
    other = next(r for r in _trial_runs(store) if r.info.run_id != exported.result.run_id)
    number = other.data.tags["workbench.trial_number"]
    client.set_tag(other.info.run_id, "checkpoint", "deleted")
    try:
        with pytest.raises(WorkbenchError, match="were deleted.*--retrain"):
            export_best(EXPERIMENT, out, trial=number, tracking_uri=store)
    finally:
        client.set_tag(other.info.run_id, "checkpoint", other.data.tags["checkpoint"])
    # Weights that do not reproduce the logged score (here: a tampered record) stop the export.
    logged = other.data.metrics["score"]
    client.log_metric(other.info.run_id, "score", logged * 2 + 1, step=0)
    try:
        with pytest.raises(WorkbenchError, match=r"do not reproduce.*validation score.*MISMATCH"):
            export_best(EXPERIMENT, out, trial=number, tracking_uri=store)
    finally:
        time.sleep(0.01)  # the latest value wins: restore with a later timestamp
        client.log_metric(other.info.run_id, "score", logged, step=0)
    assert client.get_run(other.info.run_id).data.metrics["score"] == logged
    assert not out.exists()  # nothing written for a refused export
    # A folder holding anything but an earlier export is refused, and nothing deleted (a
    # saved_model/ folder that is no SavedModel was deleted whole).
    busy = exported.root / "busy"
    (busy / "saved_model").mkdir(parents=True)
    (busy / "saved_model" / "notes.txt").write_text("mine")
    (busy / "other.txt").write_text("mine")
    with pytest.raises(WorkbenchError, match=r"expected an empty folder or an earlier export\. "
                       r"Received a folder holding other\.txt, saved_model/ \(not a "
                       r"SavedModel\), and no hyperparameters\.json naming an exported trial; "):
        export_best(EXPERIMENT, busy, tracking_uri=store)  # fmt: skip
    assert (busy / "saved_model" / "notes.txt").read_text() == "mine"
    # A SavedModel someone else wrote is no earlier export either: kept, not replaced.
    theirs = exported.root / "theirs"
    (theirs / "saved_model" / "variables").mkdir(parents=True)
    (theirs / "saved_model" / "saved_model.pb").write_bytes(b"theirs")
    with pytest.raises(WorkbenchError, match=r"holding saved_model/, and no hyperparameters\.json"):
        export_best(EXPERIMENT, theirs, tracking_uri=store)
    assert (theirs / "saved_model" / "saved_model.pb").read_bytes() == b"theirs"
    (theirs / "hyperparameters.json").write_text("{}")
    with pytest.raises(WorkbenchError, match=r"hyperparameters\.json \(naming no exported trial\)"):
        export_best(EXPERIMENT, theirs, tracking_uri=store)
    # A folder of the user's own files is refused with those files named, nothing else.
    data = exported.root / "data"
    data.mkdir()
    (data / "sales.csv").write_text("1,2\n")
    with pytest.raises(WorkbenchError, match=r"holding sales\.csv; choose another --out$"):
        export_best(EXPERIMENT, data, tracking_uri=store)
    # A cut-short model file and an unreadable description: one line, not a traceback.
    broken = exported.root / "broken"
    shutil.copytree(exported.result.out_dir, broken)
    (broken / "model.keras").write_bytes((broken / "model.keras").read_bytes()[:100])
    sample = exported.root / "sample.npz"
    np.savez(sample, x=np.zeros((2, 10, 2), "float32"))
    with pytest.raises(WorkbenchError, match="model.keras: not a readable Keras model"):
        predict_file(broken, sample)
    (broken / "hyperparameters.json").write_text("{")
    with pytest.raises(WorkbenchError, match="hyperparameters.json: not a readable export"):
        predict_file(broken, sample)
    # Predict: wrong shape, wrong dtype, missing key, through the command line.
    model_dir = str(exported.result.out_dir)
    cases = {
        "short.npz": (
            {"x": np.zeros((5, 9, 2), "float32")},
            "Expected input of shape (None, 10, 2). Received: x.shape=(5, 9, 2)",
        ),
        "text.npz": (
            {"x": np.full((5, 10, 2), "a")},
            "Expected input of dtype float32. Received: x.dtype=<U1",
        ),
        "other_key.npz": (
            {"inputs": np.zeros((5, 10, 2), "float32")},
            "expected an array named 'x' or 'x_test'. Received keys: inputs",
        ),
        "ragged.npz": (  # an archive holding Python objects: not "not a NumPy archive"
            {"x": np.array([np.zeros((10, 2)), np.zeros((7, 2))], dtype=object)},
            "ragged.npz: x is an object array (ragged sequences?). Expected an equal-length "
            "numeric array, padded as the model was trained",
        ),
    }
    for name, (arrays, message) in cases.items():
        path = exported.root / name
        np.savez(path, **arrays)
        result = CliRunner().invoke(main, ["predict", "--model", model_dir, "--data", str(path)])
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines()[-1].endswith(message), result.output
        assert "Traceback" not in result.output
    # A file that is no .npz (empty, cut short), and a data row with a missing value where
    # a header would be: one line each, nothing predicted.
    empty, cut = exported.root / "empty.npz", exported.root / "cut.npz"
    empty.write_bytes(b"")
    np.savez(cut, x=np.zeros((5, 10, 2), "float32"))
    cut.write_bytes(cut.read_bytes()[:40])
    row = ",".join(["0.5"] * 19)
    missing = exported.root / "missing.csv"
    missing.write_text(row + ",\n" + row + ",0.5\n")
    text_npz, long_format = exported.root / "text.npz", exported.root / "long.csv"
    text_npz.write_text("x\n1\n")  # NumPy took it for a pickle and offered to load it
    short_array = exported.root / "short_array.npz"  # an archive whose array is cut short
    with zipfile.ZipFile(short_array, "w") as archive:
        buffer = io.BytesIO()
        np.save(buffer, np.zeros((5, 10, 2), "float32"))
        archive.writestr("x.npy", buffer.getvalue()[:200])
    long_format.write_text("id,t,a,b\nr0,0,0.1,0.2\nr0,1,0.3,0.4\n")  # a row per step
    ragged = exported.root / "ragged.csv"  # no header: NumPy's "inhomogeneous shape" message
    ragged.write_text(",".join(["0.5"] * 20) + "\n" + ",".join(["0.5"] * 19) + "\n")
    for path, message in (
        (empty, "not a readable .npz file"),
        (cut, "not a readable .npz file"),
        (text_npz, "text.npz: not a readable .npz file (not a NumPy archive)"),
        (short_array, "short_array.npz: not a readable .npz file (EOF: reading array data"),
        (long_format, "predict reads one sample per row, its 10 steps x 2 features side by side"),
        (missing, "line 1 is neither a header (names only) nor a row of numbers"),
        (ragged, "expected the same number of columns in every row. Received: 20 on line 1, "
                 "19 on line 2"),
    ):
        result = CliRunner().invoke(main, ["predict", "--model", model_dir, "--data", str(path)])
        assert result.exit_code == 2, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1


def _all_layers(model: Any) -> list[Any]:
    """Every layer, those of nested models and wrappers included."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if hasattr(layer, "layers"):
            found += _all_layers(layer)
        wrapped = ("forward_layer", "backward_layer")
        found += [getattr(layer, a) for a in wrapped if hasattr(layer, a)]
    return found


def test_an_export_the_disk_cannot_hold_is_one_line_and_leaves_no_half_export(
    exported: Exported, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras
    import tensorflow as tf

    def full(*args: Any, **kwargs: Any) -> None:  # as TensorFlow's SavedModel writer says it
        raise tf.errors.ResourceExhaustedError(None, None, "saved_model.pb; No space left")

    monkeypatch.setattr(keras.Model, "export", full)
    out = exported.root / "full" / "model"
    args = ["export", "--experiment", EXPERIMENT, "--out", str(out), "--register", "full"]
    result = CliRunner().invoke(main, [*args, "--tracking-uri", exported.store])
    # A traceback (exit 1), and model.keras with half a saved_model/ left behind.
    assert result.exit_code == 2, result.output
    # The model files are written before the model is registered: nothing registered.
    assert f"Error: Cannot write the export folder {out}: saved_model.pb; No space left. " \
        "Nothing of this export is left in it. Export again into another --out" in result.output
    assert not MlflowClient(exported.store).search_model_versions("name = 'full'")
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists() and not out.parent.exists()  # "full/" stayed, empty


def test_an_interrupted_export_leaves_the_earlier_export_whole(
    exported: Exported, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import keras

    def interrupted(*args: Any, **kwargs: Any) -> None:  # Ctrl-C in the SavedModel writer
        raise KeyboardInterrupt

    earlier = exported.root / "interrupted" / "adding"
    shutil.copytree(exported.result.out_dir, earlier)
    before = {p.relative_to(earlier): p.read_bytes() for p in earlier.rglob("*") if p.is_file()}
    other = 3 - exported.result.trial_number  # the search's other trial
    monkeypatch.setattr(keras.Model, "export", interrupted)
    args = ["export", "--experiment", EXPERIMENT, "--register", "interrupted"]
    args += ["--tracking-uri", exported.store, "--trial", str(other)]
    result = CliRunner().invoke(main, [*args, "--out", str(earlier)])
    assert result.exit_code == 130 and "Interrupted." in result.output, result.output
    # It left trial 2's model.keras under trial 1's hyperparameters.json and model card
    # (predict used it without a word), and the next export was refused.
    after = {p.relative_to(earlier): p.read_bytes() for p in earlier.rglob("*") if p.is_file()}
    assert after == before
    assert not MlflowClient(exported.store).search_model_versions("name = 'interrupted'")
    new = exported.root / "interrupted" / "new"
    result = CliRunner().invoke(main, [*args, "--out", str(new)])
    assert result.exit_code == 130 and not new.exists(), result.output


def test_the_saved_model_made_on_a_gpu_does_not_call_cudnn(tmp_path: Path) -> None:
    """Traced on a GPU, Keras' LSTM/GRU call CudnnRNNV3 (no CPU kernel): the SavedModel is
    written from a copy without cuDNN, which computes the same outputs."""
    import keras

    from workbench.export.exporter import portable

    keras.utils.set_random_seed(4)
    inputs = keras.Input((7, 3))
    x = keras.layers.Masking(mask_value=-1000.0)(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))(x)
    x = keras.layers.Bidirectional(keras.layers.SimpleRNN(3, return_sequences=True))(x)
    x = keras.layers.GRU(5)(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    copy = portable(model, gpu=True)
    gated = [
        getattr(layer, attr)
        for layer in copy.layers
        for attr in ("forward_layer", "backward_layer")
        if isinstance(getattr(layer, attr, None), keras.layers.LSTM)
    ] + [layer for layer in copy.layers if isinstance(layer, keras.layers.GRU)]
    assert len(gated) == 3 and all(layer.use_cudnn is False for layer in gated)
    x = np.random.default_rng(0).normal(size=(4, 7, 3)).astype("float32")
    x[1, 5:] = -1000.0  # padded
    np.testing.assert_allclose(copy.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)
    assert portable(model, gpu=False) is model


@pytest.mark.parametrize(
    "task_text",
    [
        "loader: adding\noptions: {length: 8, n_train: 40, n_val: 16, n_test: 16, seed: 3}",
        "loader: sequential_digits\noptions: {limit: 120}",  # accuracy: a sample's worth
    ],
)
def test_a_mixed_precision_trial_exports_in_float32(tmp_path: Path, task_text: str) -> None:
    """Scored in float16 while it trained, checked in float32: within float16's digits."""
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    task = tmp_path / "tiny.yaml"
    task.write_text(f"name: tiny\ndescription: d\n{task_text}\n")
    _search(tmp_path, store, task, "mixed", trials=1, mixed_precision=True)
    (run,) = _trial_runs(store, "mixed")
    assert run.data.tags["precision"] == "mixed_float16"
    result = export_best("mixed", tmp_path / "model", tracking_uri=store)
    assert not result.retrained
    assert result.checks and all(check.matches is True for check in result.checks)
    hyper = json.loads((result.out_dir / "hyperparameters.json").read_text())
    assert hyper["trial"]["run_id"] == run.info.run_id


def test_a_cross_validated_trial_is_refit_on_train_and_validation(tmp_path: Path) -> None:
    """Its weights are one fold's, trained on part of the data: the export trains again."""
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    task = tmp_path / "tiny_adding.yaml"
    task.write_text(
        "name: tiny_adding\ndescription: d\nloader: adding\n"
        "options: {length: 6, n_train: 30, n_val: 12, n_test: 10, seed: 3}\n"
    )
    _search(tmp_path, store, task, "cv", trials=1, folds=3)
    (run,) = _trial_runs(store, "cv")
    assert run.data.params["folds"] == "3"
    result = export_best("cv", tmp_path / "model", tracking_uri=store)
    assert result.retrained
    hyper = json.loads((result.out_dir / "hyperparameters.json").read_text())
    assert hyper["trial"]["weights"] == "retrained on train + validation"
    assert "plus the validation part" in (result.out_dir / "MODEL_CARD.md").read_text()
    data = load_task(task).load()
    np.savez(tmp_path / "x.npz", x=data.x_test)
    predicted = predict_file(result.out_dir, tmp_path / "x.npz")
    assert predicted.rows == 10
    assert all(np.isfinite(float(v)) for v in predicted.csv_text.splitlines()[1:])


def test_export_command_retrains_a_trial_under_another_name(exported: Exported) -> None:
    other = next(r for r in _trial_runs(exported.store) if r.info.run_id != exported.result.run_id)
    number = other.data.tags["workbench.trial_number"]
    out = exported.root / "retrained"
    args = ["export", "--experiment", EXPERIMENT, "--out", str(out), "--trial", number]
    args += ["--retrain", "--register", "tiny-retrained", "--tracking-uri", exported.store]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"Exported trial {number} of '{EXPERIMENT}' (retrained on train + validation" in (
        result.output
    )
    assert result.output.count("retrained, not compared") == 2  # test loss and mse
    # Progress while it trains (it may take long): an epoch a line, on stderr.
    assert re.search(rf"Retraining trial {number} on train \+ validation \(\d+ samples\): "
                     r"epoch 1/1, loss \d", result.stderr), result.stderr  # fmt: skip
    # The refit trained on the validation part: its score there is said not to be held out.
    assert "retrained on it: not a held-out score" in result.output
    assert f"Registered models:/tiny-retrained@trial-{number} (version 1)" in result.output
    hyper = json.loads((out / "hyperparameters.json").read_text())
    assert hyper["trial"]["run_id"] == other.info.run_id
    assert hyper["trial"]["weights"] == "retrained on train + validation"
    assert hyper["hyperparameters"]["cell"] == other.data.params["cell"]
    assert "plus the validation part" in (out / "MODEL_CARD.md").read_text()
    client = MlflowClient(exported.store)
    assert client.get_model_version_by_alias("tiny-retrained", f"trial-{number}").run_id == (
        other.info.run_id
    )
    # A trial chosen by hand is not the champion, even under the experiment's own name.
    (out / ".DS_Store").write_bytes(b"finder")  # hidden files neither count nor go
    again = CliRunner().invoke(main, [*args[:-4], "--tracking-uri", exported.store])
    assert again.exit_code == 0, again.output
    assert f"@trial-{number} (version" in again.output
    # Into the same folder: said to replace the earlier export, which it names.
    assert f", replacing the export of trial {number} of '{EXPERIMENT}'" in again.output
    # The serving command names this store (MLflow's own default is ./mlflow.db).
    assert f"Serve:   MLFLOW_TRACKING_URI={exported.store} mlflow models serve" in again.output
    assert isinstance(json.loads((out / "hyperparameters.json").read_text())[
        "hyperparameters"]["patience"], int)  # fmt: skip
    # The experiment's own champion did not move.
    champion = client.get_model_version_by_alias(EXPERIMENT, "champion")
    assert champion.run_id == exported.result.run_id


def test_forecast_export_takes_and_returns_original_units(tmp_path: Path) -> None:
    import keras

    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    _search(tmp_path, store, Path(load_task("shampoo_sales").source), "shampoo", trials=1)
    result = export_best("shampoo", tmp_path / "model", tracking_uri=store)
    checks = {c.metric: c for c in result.checks}
    # The exported model on raw monthly sales reproduces the logged test MAE in units.
    assert {"test_mae", "test_rmse", "test_mape"} <= set(checks)
    for check in result.checks:
        assert check.matches is True, check.describe()
    data = load_task("shampoo_sales").load()
    mean, std = data.target_scale
    raw = data.x_test * std + mean  # univariate: input and target scales are the same
    model = keras.saving.load_model(tmp_path / "model" / "model.keras", safe_mode=True)
    assert {type(layer).__name__ for layer in model.layers} >= {"Normalization", "Rescaling"}
    predicted = model.predict(raw, verbose=0)
    truth = data.y_test * std + mean
    mae = float(np.mean(np.abs(predicted - truth)))
    assert mae == pytest.approx(checks["test_mae"].logged, rel=1e-3)
    assert 50 < float(np.mean(predicted)) < 1000  # sales, not standard scores
    # A series CSV: every 6-month window predicts the next month; the last is past the end.
    series = np.concatenate([raw[0, :, 0], raw[1:, -1, 0]])
    table = tmp_path / "sales.csv"
    table.write_text("sales\n" + "\n".join(f"{v:.9g}" for v in series) + "\n")
    output = predict_file(tmp_path / "model", table)
    lines = output.csv_text.strip().splitlines()
    assert lines[0] == "end_row,y" and len(lines) - 1 == len(series) - 6 + 1
    first = [float(v) for v in lines[1].split(",")]
    assert first == [6, pytest.approx(float(predicted[0, 0]), rel=1e-4)]
    table.write_text("\n".join(f"{v:.9g}" for v in series) + "\n")  # no header: the same
    assert predict_file(tmp_path / "model", table).csv_text == output.csv_text
    # The export's hint said "a column per feature, named as in training": none is recorded.
    assert "--data SERIES.csv (one column: the series' values)" in " ".join(result.lines())
    dated = tmp_path / "dated.csv"
    dated.write_text("month,sales\n" + "".join(f"2020-{k:02d},{v:.9g}\n" for k, v in
                                               enumerate(series)))  # fmt: skip
    with pytest.raises(WorkbenchError, match="this model's series is one column of values"):
        predict_file(tmp_path / "model", dated)
    # ... and not for a bad value in the one column it is.
    bad = tmp_path / "bad.csv"
    bad.write_text("sales\n" + "".join(f"{v:.9g}\n" for v in series[:9]) + "abc\n")
    with pytest.raises(WorkbenchError, match="could not convert string to float") as refused:
        predict_file(tmp_path / "model", bad)
    assert "one column of values" not in str(refused.value)
    assert "line 11, column 'sales': 'abc'" in str(refused.value)  # where it is
    # A NaN in the series: named by its line, not by the first window holding it ("x[3]").
    bad.write_text("sales\n" + "".join(f"{v:.9g}\n" for v in series[:9]) + "nan\n1\n")
    with pytest.raises(WorkbenchError, match=r"bad.csv: expected finite numbers in the series\. "
                       r"Received: NaN or infinite value at line 11, column 'sales': 'nan'$"):
        predict_file(tmp_path / "model", bad)
    # The (samples, steps) arrays a search takes for one feature: the same predictions.
    arrays = tmp_path / "windows.npz"
    np.savez(arrays, x=raw[..., 0])
    flat = predict_file(tmp_path / "model", arrays).csv_text.strip().splitlines()
    assert float(flat[1]) == pytest.approx(float(predicted[0, 0]), rel=1e-4)


def test_predict_refuses_a_sample_that_is_all_padding() -> None:
    from workbench.export.predictor import _check_inputs

    interface = {"input_shape": [None, 5, 2], "input_dtype": "float32", "masked": True,
                 "pad_value": -1000.0}  # fmt: skip
    x = np.full((3, 5, 2), -1000.0, "float32")
    x[0, :2], x[2, :4] = 1.0, 2.0
    with pytest.raises(WorkbenchError, match=r"Received: x\[1\] is all padding \(-1000\)"):
        _check_inputs(x, interface)
    x[1, 0] = 0.5
    _check_inputs(x, interface)  # a real step each: fine


@pytest.mark.e2e
def test_scoring_server_answers_over_http(exported: Exported) -> None:
    base = f"http://127.0.0.1:{exported.port}"
    deadline = time.monotonic() + 120
    while True:
        assert exported.server.poll() is None, (exported.root / "serve.log").read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"{base}/ping", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the scoring server did not start in 120 s"
        time.sleep(0.5)
    body = json.dumps({"inputs": exported.x_test[:4].tolist()}).encode()
    request = urllib.request.Request(
        f"{base}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        predictions = np.asarray(json.loads(response.read())["predictions"])
    import keras

    local = keras.saving.load_model(exported.result.out_dir / "model.keras", safe_mode=True)
    np.testing.assert_allclose(
        predictions, local.predict(exported.x_test[:4], verbose=0), atol=1e-5
    )


def test_text_model_exports_and_predicts_on_raw_strings(tmp_path: Path, reviews_csv: Path) -> None:
    """A 1-trial search on a tiny csv_text file; its model takes raw strings everywhere."""
    import keras
    import mlflow

    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    task = tmp_path / "reviews.yaml"
    task.write_text(
        "name: reviews\nloader: csv_text\noptions: {path: reviews.csv, text_column: review, "
        "label_column: stars, vocab_size: 40, sequence_length: 8, embedding_dim: 4}\n"
    )
    space = tmp_path / "space.yaml"
    space.write_text("name: one\ndimensions: {cell: gru, units: 4, learning_rate: 1e-2}\n")
    args = ["search", "--task", str(task), "--space", str(space), "--max-trials", "1"]
    args += ["--epochs", "1", "--folds", "1", "--experiment", "reviews-export"]
    args += ["--tracking-uri", store]
    args += ["--state-dir", str(tmp_path / ".workbench")]
    searched = CliRunner().invoke(main, args)
    assert searched.exit_code == 0, searched.output
    assert "1 of 1 trials completed" in searched.output and "28/6/6" in searched.output
    client = MlflowClient(store)
    (search,) = client.search_runs(
        [client.get_experiment_by_name("reviews-export").experiment_id],
        "tags.`workbench.role` = 'search'",
    )
    schema = json.loads(search.inputs.dataset_inputs[0].dataset.schema)
    assert schema["x_dtype"] == "string" and schema["text"]["sequence_length"] == 8
    result = export_best("reviews-export", tmp_path / "model", tracking_uri=store)
    assert result.input_shape == (None,) and result.input_dtype == "string"
    assert result.checks and all(check.matches is True for check in result.checks)
    card = (result.out_dir / "MODEL_CARD.md").read_text()
    assert "one raw text per sample" in card and "TextVectorization" in card
    texts = ["Superb, great coffee!", "awful and soggy", "", "multi\nline, bland"]
    new = tmp_path / "new.csv"
    with new.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerows([["id", "text"], *[[i, t] for i, t in enumerate(texts)]])
    out = tmp_path / "predictions.csv"
    args = ["predict", "--model", str(result.out_dir), "--data", str(new), "--out", str(out)]
    predicted = CliRunner().invoke(main, args)
    assert predicted.exit_code == 0, predicted.output
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["class", "p_1", "p_5"] and len(rows) == 1 + len(texts)
    assert [row[0] for row in rows[1:]] == [
        "5" if float(row[2]) > float(row[1]) else "1" for row in rows[1:]
    ]  # the likelier class
    # A spreadsheet's UTF-8 with a byte-order mark, and texts as bytes, read the same.
    new.write_text(new.read_text(), encoding="utf-8-sig")
    assert predict_file(result.out_dir, new).csv_text == out.read_text()
    np.savez(tmp_path / "bytes.npz", x=np.array([t.encode() for t in texts[:2]]))
    as_bytes = predict_file(result.out_dir, tmp_path / "bytes.npz").csv_text.splitlines()
    assert as_bytes == out.read_text().splitlines()[:3]
    # Texts as an object array: loading one runs pickle, refused with the way that works.
    np.savez(tmp_path / "objects.npz", x=np.array(texts[:2], dtype=object))
    with pytest.raises(WorkbenchError, match=r"objects.npz: x is an object array. Expected a "
                       r"NumPy string array, e.g. np.array\(texts, dtype=str\)"):  # fmt: skip
        predict_file(result.out_dir, tmp_path / "objects.npz")
    np.savez(tmp_path / "strings.npz", x=np.array(texts[:2], dtype=str))
    as_str = predict_file(result.out_dir, tmp_path / "strings.npz").csv_text.splitlines()
    assert as_str == out.read_text().splitlines()[:3]
    short = tmp_path / "short.csv"
    short.write_text("id,text\n7\n")
    with pytest.raises(WorkbenchError, match="short.csv: line 2 has no value in the column 'text'"):
        predict_file(result.out_dir, short)
    # A long document (past the csv module's 131,072-character field limit) is one text.
    long = tmp_path / "long.csv"
    long.write_text("text\n" + "great coffee " * 20000 + "\nbland\n")
    assert len(predict_file(result.out_dir, long).csv_text.splitlines()) == 3
    # A one-column file without a header: its first text was taken for the column's name.
    bare = tmp_path / "bare.csv"
    bare.write_text("great coffee\nbland\nsoggy\n")
    read = predict_file(result.out_dir, bare)
    assert len(read.csv_text.splitlines()) == 3  # a header and two texts
    assert "its first row, 'great coffee', was read as the column's name" in " ".join(read.notes)
    assert len(predict_file(result.out_dir, bare, header=False).csv_text.splitlines()) == 4
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text\ncaf\xe9 cr\xe8me\n".encode("latin-1"))
    with pytest.raises(WorkbenchError, match="latin.csv: expected UTF-8 text"):
        predict_file(result.out_dir, latin)
    # The registered MLflow Model takes the same raw strings (its example is strings).
    mlflow.set_tracking_uri(store)
    pyfunc = mlflow.pyfunc.load_model("models:/reviews-export@champion")
    assert pyfunc.metadata.get_input_schema().inputs[0].shape == (-1,)
    local = mlflow.artifacts.download_artifacts(
        "models:/reviews-export@champion", dst_path=str(tmp_path / "mlmodel")
    )
    example = mlflow.models.Model.load(local).load_input_example(local)
    assert len(example) == 3 and all(isinstance(text, str) for text in example)
    # The empty text reads as one [UNK] token (an all-padding sequence fails cuDNN's mask
    # check on a GPU) in the model itself: the MLflow Model gives what predict gives.
    p5 = np.asarray(pyfunc.predict(np.array(texts, dtype=object)))[:, 0]
    np.testing.assert_allclose(p5, [float(row[2]) for row in rows[1:]], atol=1e-5)
    # The SavedModel's copy without cuDNN (written so on a GPU) keeps the vectorizer inside.
    from workbench.export.exporter import portable

    raw = keras.saving.load_model(result.out_dir / "model.keras", safe_mode=True)
    copy = portable(raw, gpu=True)
    gated = [layer for layer in _all_layers(copy) if isinstance(layer, keras.layers.GRU)]
    assert gated and all(layer.use_cudnn is False for layer in gated)  # inside the wrapper
    strings = np.array(texts, dtype=object)
    np.testing.assert_allclose(copy.predict(strings, verbose=0), raw.predict(strings, verbose=0))


def test_export_on_another_host_loads_the_weights_logged_in_mlflow(
    exported: Exported, tmp_path: Path
) -> None:
    """A trial trained on another host (or its state folder gone): the local checkpoint is
    missing, and the copy logged among the run's artifacts serves."""
    run = MlflowClient(exported.store).get_run(exported.result.run_id)
    local = Path(run.data.tags["checkpoint"])
    assert run.data.tags["checkpoint_artifact"] == f"checkpoint/{local.name}"
    away = local.with_name("elsewhere.h5")
    local.rename(away)
    try:
        result = export_best(EXPERIMENT, tmp_path / "model", tracking_uri=exported.store)
    finally:
        away.rename(local)
    assert not result.retrained and result.run_id == exported.result.run_id
    assert result.checks and all(c.matches is True for c in result.checks), result.lines()


def test_a_forecast_over_several_columns_reads_its_series_by_name(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    steps = np.arange(80)
    price = 10 + rng.normal(size=80).cumsum()
    sales = 100 + 5 * np.sin(steps / 4) - 2 * price + rng.normal(size=80)
    lines = [f"{p:.6f},{s:.6f}" for p, s in zip(price, sales, strict=True)]
    table = tmp_path / "sales.csv"
    table.write_text("price,sales\n" + "\n".join(lines) + "\n")
    task = tmp_path / "sales.yaml"
    task.write_text(
        "name: sales\nloader: csv_forecast\noptions: {path: sales.csv, target_column: sales, "
        "value_columns: [price], window: 6, horizon: 1, n_val: 12, n_test: 12}\n"
    )
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    _search(tmp_path, store, task, "sales", trials=1)
    result = export_best("sales", tmp_path / "model", tracking_uri=store)
    assert "--data SERIES.csv (a header naming the columns sales, price)" in " ".join(
        result.lines()
    )
    card = (tmp_path / "model" / "MODEL_CARD.md").read_text()
    assert "the features in this order: sales, price" in card
    by_name = predict_file(tmp_path / "model", table)  # the file's order: price, sales
    swapped = tmp_path / "swapped.csv"
    swapped.write_text(
        "sales,price\n" + "\n".join(",".join(line.split(",")[::-1]) for line in lines) + "\n"
    )
    assert predict_file(tmp_path / "model", swapped).csv_text == by_name.csv_text
    # Named columns are read whatever else the file holds: a date column, or as many
    # columns as a window's values (6 steps x 2 features: read as windows before, wrongly).
    dated = tmp_path / "dated.csv"
    dated.write_text(
        "month,price,sales\n" + "\n".join(f"2020-{k:03d},{line}" for k, line in
                                            enumerate(lines)) + "\n"
    )  # fmt: skip
    assert predict_file(tmp_path / "model", dated).csv_text == by_name.csv_text
    wide = tmp_path / "wide.csv"
    extra = [f"c{k}" for k in range(10)]
    wide.write_text(
        ",".join(["price", "sales", *extra]) + "\n"
        + "\n".join(line + ",0" * 10 for line in lines) + "\n"
    )
    assert predict_file(tmp_path / "model", wide).csv_text == by_name.csv_text
    # Windows side by side whose header repeats the features' names: windows, as before.
    windows = tmp_path / "windows.csv"
    rows = [",".join(f"{s:.6f},{p:.6f}" for s, p in zip(sales[k : k + 6], price[k : k + 6],
                                                        strict=True)) for k in range(4)]
    windows.write_text(",".join(["sales", "price"] * 6) + "\n" + "\n".join(rows) + "\n")
    assert predict_file(tmp_path / "model", windows).rows == 4  # fmt: skip
    # ... and whose header pandas wrote (sales, price, sales.1, ...): read as a series of
    # its first two columns, silently (4 rows of windows gave 3 windows of other values).
    renamed = ["sales", "price"] + [f"{n}.{k}" for k in range(1, 6) for n in ("sales", "price")]
    windows.write_text(",".join(renamed) + "\n" + "\n".join(rows) + "\n")
    plain = ",".join(["sales", "price"] * 6) + "\n" + "\n".join(rows) + "\n"
    (tmp_path / "plain.csv").write_text(plain)
    assert predict_file(tmp_path / "model", windows).csv_text == predict_file(
        tmp_path / "model", tmp_path / "plain.csv"
    ).csv_text
    uneven = tmp_path / "uneven.csv"
    uneven.write_text("promo,sales,price\n1,2\n")
    with pytest.raises(WorkbenchError, match="uneven.csv: line 2 has 2 values under a header of 3"):
        predict_file(tmp_path / "model", uneven)
    # A series without one of its columns: it blamed the date column's text.
    missing = tmp_path / "missing.csv"
    missing.write_text("month,sales\n" + "\n".join(f"2020-{k:03d},{s:.6f}" for k, s in
                                                   enumerate(sales)) + "\n")  # fmt: skip
    with pytest.raises(WorkbenchError, match="missing.csv: expected a header naming the series' "
                       "columns sales, price; missing: price. Received columns: month, sales"):
        predict_file(tmp_path / "model", missing)  # fmt: skip
    cased = tmp_path / "cased.csv"  # none of its names: it blamed the date column too
    cased.write_text("month,Sales,Price\n" + "\n".join(f"2020-{k:03d},{line}" for k, line in
                                                       enumerate(lines)) + "\n")  # fmt: skip
    with pytest.raises(WorkbenchError, match="missing: sales, price. Received columns: month, "
                       "Sales, Price"):
        predict_file(tmp_path / "model", cased)  # fmt: skip
    import keras

    model = keras.saving.load_model(result.out_dir / "model.keras", safe_mode=True)
    window = np.stack([sales[:6], price[:6]], axis=-1)[None].astype("float32")
    first = by_name.csv_text.strip().splitlines()[1].split(",")
    expected = float(model.predict(window, verbose=0)[0, 0])
    assert float(first[1]) == pytest.approx(expected, rel=1e-4)
    headless = tmp_path / "headless.csv"
    headless.write_text("\n".join(lines) + "\n")
    with pytest.raises(WorkbenchError, match="expected a header naming the series' columns "
                       "sales, price"):  # fmt: skip
        predict_file(tmp_path / "model", headless)
