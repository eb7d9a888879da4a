"""The command line: help with examples, listings, and one-line errors with exit code 2."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.tasks import list_tasks

COMMANDS = sorted(main.commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and f"workbench {command}" in result.output


def test_top_level_help_imports_nothing_heavy() -> None:
    """What keeps ``workbench --help`` instant (its time is measured in docs/performance.md,
    not asserted here): the CLI imports no TensorFlow, Keras, KerasTuner or MLflow."""
    code = (
        "import sys; from workbench.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy=[m for m in ('tensorflow','keras','keras_tuner','mlflow') if m in sys.modules]\n"
        "print('heavy:', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("Usage:") and out.stdout.splitlines()[-1] == "heavy: []"


def test_tasks_and_spaces_list_one_line_each() -> None:
    runner = CliRunner()
    tasks = runner.invoke(main, ["tasks"])
    assert tasks.exit_code == 0 and tasks.output.startswith("adding")
    spaces = runner.invoke(main, ["spaces"])
    assert spaces.exit_code == 0
    lines = spaces.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["default", "demo", "gru_vs_lstm", "small"]


@pytest.mark.parametrize("task", [task.name for task in list_tasks()])
def test_one_trial_search_runs_offline_on_every_builtin_task(
    store: str,
    tiny_space: Path,
    builtin_tiny_options: dict,
    task: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    real, reached = socket.socket.connect, []

    def loopback_only(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else ""
        if self.family in (socket.AF_INET, socket.AF_INET6) and not (
            host.startswith("127.") or host in ("::1", "localhost")
        ):
            reached.append(address)
            raise OSError(f"this test is offline: no connection to {address}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    options = [f"--task-option={key}={value}" for key, value in builtin_tiny_options[task].items()]
    args = ["search", "--task", task, "--space", str(tiny_space), "--max-trials", "1"]
    args += ["--epochs", "1", "--folds", "1", "--tracking-uri", store, *options]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "1 of 1 trials completed" in result.output
    assert "baseline" in result.output
    assert reached == []  # the data came from the packages, nothing from the network


def test_search_on_the_users_csv_writes_a_reusable_task_file(
    workdir: Path, store: str, tiny_space: Path
) -> None:
    rows = "".join(f"2001-{m:02d}-01,{10 + m % 4 + m / 10:.2f}\n" for m in range(1, 13))
    rows += "".join(f"2002-{m:02d}-01,{11 + m % 4 + m / 10:.2f}\n" for m in range(1, 13))
    (workdir / "sales.csv").write_text("day,sales\n" + rows)
    common = ["--space", str(tiny_space), "--max-trials", "1", "--epochs", "1", "--folds", "1"]
    common += ["--tracking-uri", store, "--task-option", "n_val=4", "--task-option", "n_test=4"]
    first = CliRunner().invoke(
        main,
        ["search", "--data", "sales.csv", "--time-column", "day", "--target", "sales"]
        + ["--window", "4", "--horizon", "2", *common],
    )
    assert first.exit_code == 0, first.output
    assert "Task file sales.task.yaml (reuse it: workbench search --task sales.task.yaml)" in (
        first.output
    )
    assert "1 of 1 trials completed" in first.output and "seasonal" not in first.output
    assert "naive (last value): MAE" in first.output
    from mlflow import MlflowClient

    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("sales-tiny")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.task = 'sales'")
    assert [f.path for f in client.list_artifacts(parent.info.run_id, "task")] == [
        "task/sales.task.yaml"
    ]
    assert parent.inputs.dataset_inputs[0].dataset.source.endswith(
        "sales.csv (24 rows; target sales)"
    )
    # the written file is the same task: the same study resumes with nothing left to run
    again = CliRunner().invoke(main, ["search", "--task", "sales.task.yaml", *common])
    assert again.exit_code == 0, again.output
    assert "Study sales-tiny" in again.output and "1 trial(s) already done" in again.output


# --- bad input: one line, exit code 2, nothing recorded ------------------------------------

_BAD_FILES = {
    "broken.yaml": "name: [unclosed\n",
    "empty.yaml": "",
    "not_a_mapping.yaml": "- just\n- a list\n",
    "unknown_loader.yaml": "name: t\nloader: nope\n",
    "task_unknown_key.yaml": "name: t\nloader: adding\nsizes: 3\n",
    "space_unknown_key.yaml": "dimensions: {cells: [lstm]}\n",
    "readout_max.yaml": "dimensions: {readout: [last, max], epochs: 1}\n",
    "readout_bad.yaml": "dimensions: {readout: [first]}\n",
    "space_bad_type.yaml": "dimensions: {units: [a, b]}\n",
    "space_empty_choice.yaml": "dimensions: {cell: []}\n",
    "space_bad_range.yaml": "dimensions: {learning_rate: {min: 1e-2, max: 1e-4}}\n",
    "space_unknown_cell.yaml": "dimensions: {cell: [transformer]}\n",
    "space_yaml_bool.yaml": "dimensions: {clipping: no}\n",
    "space_negative_dropout.yaml": "dimensions: {dropout: -0.5}\n",
    "a_file": "not a folder\n",
    "text_empty.csv": "review,stars\ngood coffee,5\n  ,1\n",
    "text_no_label.csv": "review,stars\ngood coffee,5\nbad coffee,\n",
    "text_one_class.csv": "review,stars\ngood coffee,5\nfine coffee,5\n",
    **{
        f"text_{bad}.yaml": "loader: csv_text\noptions: {path: "
        f"text_{bad}.csv, text_column: review, label_column: stars}}\n"
        for bad in ("empty", "no_label", "one_class")
    },
    "text_no_column.yaml": "loader: csv_text\noptions: {path: text_empty.csv}\n",
    # the user's own data (search --data)
    "empty.csv": "",
    "header_only.csv": "t,v\n",
    "short.csv": "t,v\n1,1\n2,2\n3,3\n4,4\n5,5\n",
    "text_cell.csv": "t,v\n1,1\n2,abc\n3,3\n",
    "nan_cell.csv": "t,v\n1,1\n2,\n3,3\n",
    "unsorted.csv": "t,v\n1,1\n3,2\n2,3\n",
    "bad_time.csv": "t,v\n2001-01,1\nsoon,2\n",
    "one_class.csv": "id,label,a\ns1,x,1\ns1,x,2\ns2,x,3\ns3,x,4\n",
    "lone_class.csv": "id,label,a\ns1,x,1\ns2,x,2\ns3,x,3\ns4,y,4\n",
    "two_labels.csv": "id,label,a\ns1,x,1\ns1,y,2\ns2,y,3\n",
    "step_twice.csv": "id,t,label,a\ns1,1,x,1\ns1,2,x,2\ns2,1,y,3\ns2,1,y,4\n",
    "notes.txt": "t,v\n1,1\n",
}

#: NumPy archives for the npz loader's bad cases, written with np.savez.
_BAD_ARRAYS = {
    "no_y.npz": lambda np: {"x_train": np.zeros((4, 3))},
    "ragged.npz": lambda np: {
        "x_train": np.array([np.zeros(3), np.zeros(5)], dtype=object),
        "y_train": np.array([0, 1]),
    },
    "nan.npz": lambda np: {"x_train": np.array([[0.0, 1.0], [np.nan, 2.0]]), "y_train": [0, 1]},
    "mismatch.npz": lambda np: {"x_train": np.zeros((10, 3)), "y_train": np.zeros(9)},
    "typo.npz": lambda np: {"x_train": np.zeros((4, 3)), "y_train": [0, 1, 0, 1], "y_tset": [0]},
}

# (arguments after `workbench search`, a piece of the expected one-line message)
_BAD_INPUT = [
    (["--task", "nope"], "Unknown task 'nope'"),
    (["--task", "adding", "--space", "nope"], "Unknown search space 'nope'"),
    (["--task", "missing.yaml"], "task file not found: missing.yaml"),
    (["--task", "broken.yaml"], "broken.yaml: malformed YAML (line 2"),
    (["--task", "empty.yaml"], "empty.yaml: expected a mapping of keys"),
    (["--task", "not_a_mapping.yaml"], "Received: list"),
    (["--task", "unknown_loader.yaml"], "loader: expected one of adding"),
    (["--task", "task_unknown_key.yaml"], "unknown key 'sizes'"),
    (["--task", "adding", "--task-option", "lenght=3"], "unknown option for loader"),
    (["--task", "adding", "--task-option", "length=abc"], "expected an integer"),
    (["--task", "adding", "--task-option", "n_train=0"], "expected a positive integer"),
    (["--task", "adding", "--task-option", "oops"], "Expected --task-option KEY=VALUE"),
    (
        ["--task", "adding", "--tracking-uri", "postgresql://nobody@127.0.0.1:9/mlflow"],
        "Cannot reach the MLflow tracking store at postgresql://nobody@127.0.0.1:9/mlflow",
    ),
    (
        ["--task", "adding", "--seed", "-1"],
        "Expected --seed between 0 and 2147483647. Received: -1",
    ),
    (
        ["--task", "adding", "--seed", "4294967296"],
        "Expected --seed between 0 and 2147483647. Received: 4294967296",
    ),
    (["--task", "adding", "--space", "broken.yaml"], "broken.yaml: malformed YAML"),
    (["--task", "adding", "--space", "empty.yaml"], "empty.yaml: expected a mapping"),
    (
        ["--task", "japanese_vowels", "--task-option", "limit=36", "--space", "readout_max.yaml"],
        "dimensions.readout: max cannot leave out the padded steps",
    ),
    (["--task", "adding", "--space", "readout_bad.yaml"], "expected one of last, mean, max"),
    (
        ["--task", "adding", "--space", "space_unknown_key.yaml"],
        "dimensions.cells: unknown dimension",
    ),
    (
        ["--task", "adding", "--space", "space_bad_type.yaml"],
        "dimensions.units: expected a positive integer",
    ),
    (
        ["--task", "adding", "--space", "space_empty_choice.yaml"],
        "dimensions.cell: expected at least one value",
    ),
    (["--task", "adding", "--space", "space_bad_range.yaml"], "min 0.01 is above max 0.0001"),
    (["--task", "adding", "--space", "space_unknown_cell.yaml"], "Received: 'transformer'"),
    (["--task", "adding", "--space", "space_yaml_bool.yaml"], "YAML 1.1 reads unquoted"),
    (["--task", "adding", "--space", "space_negative_dropout.yaml"], "expected 0 <= dropout < 1"),
    (["--task", "adding", "--tuner", "grid"], "--tuner grid needs every range to have a step"),
    (["--task", "adding", "--tuner", "annealing"], "Invalid value for '--tuner'"),
    (
        ["--task", "adding", "--tuner", "hyperband", "--folds", "3"],
        "Expected --folds 1 (or none) with --tuner hyperband",
    ),
    (["--task", "adding", "--nope"], "No such option '--nope'."),
    (["--task", "adding", "--task-option", "seed=-1"], "options.seed: expected 0 to 4294967295"),
    (  # it ran on every sample, as limit=0 does
        ["--task", "sequential_digits", "--task-option", "limit=-3"],
        "options.limit: expected 0 (every sample) or a positive number of samples. Received: -3",
    ),
    (
        ["--task", "shampoo_sales", "--task-option", "season=30"],
        "options.season: expected at most 24",
    ),
    (
        ["--task", "shampoo_sales", "--folds", "10"],
        "Expected --folds at most 9 for shampoo_sales: its 18 training and validation",
    ),
    (
        ["--task", "adding", "--max-trials", "0"],
        "Invalid value for '--max-trials': 0 is not in the range x>=1",
    ),
    (
        ["--task", "adding", "--epochs", "0"],
        "Invalid value for '--epochs': 0 is not in the range x>=1",
    ),
    (
        ["--task", "adding", "--keep-checkpoints", "0"],
        "Invalid value for '--keep-checkpoints': 0 is not in the range x>=1",
    ),
    (["--task", "adding", "--tracking-uri", "mlruns"], "Expected a tracking URI"),
    (
        ["--task", "adding", "--tracking-uri", "http://127.0.0.1:9"],
        "Cannot reach the MLflow tracking store at http://127.0.0.1:9",
    ),
    (
        ["--task", "adding", "--tracking-uri", "sqlite:///a_file/mlflow.db"],
        "Cannot create the tracking store folder",
    ),
    (["--task", "adding", "--state-dir", "a_file/state"], "Cannot write the search state folder"),
    (["--task", "text_empty.yaml"], "text_empty.csv: column 'review', row 2: empty text"),
    (["--task", "text_no_label.yaml"], "text_no_label.csv: column 'stars', row 2: missing label"),
    (
        ["--task", "text_one_class.yaml"],
        "column 'stars': expected at least 2 classes. Received: a single class 5",
    ),
    (["--task", "text_no_column.yaml"], "text_empty.csv: no column 'text'"),
    (
        ["--data", "text_no_label.csv", "--text-column", "review", "--label-column", "stars"],
        "text_no_label.csv: column 'stars', row 2: missing label",
    ),
    # the user's own data: --data FILE and its flags
    ([], "Expected --task NAME|FILE.yaml or --data FILE (one of them). Received: neither"),
    (["--task", "adding", "--data", "short.csv"], "Received: both"),
    (["--task", "adding", "--window", "3"], "--window goes with --data FILE"),
    (["--data", "missing.csv", "--target", "v"], "--data: no such file: missing.csv"),
    (["--data", "notes.txt"], "expected a .csv, .parquet or .npz file. Received: .txt suffix"),
    (["--data", "short.csv"], "say what to learn. Expected --target-column COL"),
    (["--data", "short.csv", "--id-column", "t"], "Expected --label-column COL"),
    (
        ["--data", "short.csv", "--target", "v", "--id-column", "t", "--label-column", "v"],
        "--target-column does not apply to short.csv (loader csv_sequences)",
    ),
    (["--data", "no_y.npz", "--window", "3"], "--window does not apply to no_y.npz (loader npz)"),
    (["--data", "empty.csv", "--target", "v"], "empty.csv: the file is empty"),
    (["--data", "header_only.csv", "--target", "v"], "has a header but no rows"),
    (["--data", "short.csv", "--target", "sales"], "short.csv: no column 'sales'"),
    (
        ["--data", "text_cell.csv", "--target", "v"],
        "text_cell.csv: column 'v', line 3: expected a number. Received: 'abc'",
    ),
    (
        ["--data", "nan_cell.csv", "--target", "v"],
        "column 'v', line 3: missing or infinite value (nan). Expected a value, or set "
        "options.drop_missing: true",
    ),
    (
        ["--data", "unsorted.csv", "--target", "v", "--time-column", "t"],
        "column 't', line 4: 2 does not come after 3. Expected the rows sorted by time",
    ),
    (
        ["--data", "bad_time.csv", "--target", "v", "--time-column", "t"],
        "column 't', line 3: the time column is not sortable. Expected a number or a date. "
        "Received: 'soon'",
    ),
    (
        ["--data", "short.csv", "--target", "v", "--window", "3", "--horizon", "2"],
        # The data file, not the task file it was not written to (short.task.yaml).
        "Error: short.csv: the series has 5 steps; window 3 + horizon 2 + 12 validation",
    ),
    (
        ["--data", "one_class.csv", "--id-column", "id", "--label-column", "label"],
        "expected at least 2 classes in the training labels. Received: a single class 'x'",
    ),
    (
        ["--data", "lone_class.csv", "--id-column", "id", "--label-column", "label"],
        "class 'y' has 1 sample; a stratified split into train, validation and test needs at "
        "least 3 per class",
    ),
    (
        ["--data", "two_labels.csv", "--id-column", "id", "--label-column", "label"],
        "series 's1' has 2 different values in column 'label'. Expected one per series",
    ),
    (
        ["--data", "step_twice.csv", "--id-column", "id", "--label-column", "label"]
        + ["--time-column", "t"],
        "series 's2' has t 1 twice (line 5). Expected each step once per series",
    ),
    (["--data", "no_y.npz"], "no_y.npz: no array 'y_train'"),
    (["--data", "ragged.npz"], "x_train is an object array (ragged sequences?)"),
    (["--data", "nan.npz"], "sample 1 of x_train/y_train (0-based) has a NaN or infinite value"),
    (["--data", "mismatch.npz"], "x_train has 10 samples and y_train 9"),
    (["--data", "typo.npz"], "unknown array 'y_tset'. Expected: x_train, y_train"),
]


# Other commands' bad input (full arguments), same rules.
_BAD_OTHER_INPUT = [
    (["nope"], "Error: No such command 'nope'. See 'workbench --help'."),
    # Given empty: --out "" wrote into the current folder, the others fell back to defaults.
    (["report", "--experiment", "x", "--out", ""], "Expected a value for --out. Received: an "),
    (["export", "--experiment", "x", "--out", "m", "--register", ""], "a value for --register."),
    (["search", "--task", "adding", "--state-dir", ""], "Expected a value for --state-dir."),
    (["ui", "--tracking-uri", ""], "Expected a value for --tracking-uri. Received: an empty"),
    (["benchmark", "--tasks", "adding", "--out", "b", "--name", ""], "a value for --name."),
    (["ui", "--experiment", "nope"], "Unknown experiment 'nope'"),
    (
        ["export", "--experiment", "adding-small", "--out", "a_file/model"],
        "Cannot write the export folder a_file/model",
    ),
    (["export", "--experiment", "nope", "--out", "model"], "Unknown experiment 'nope'"),
    # Root passes permission bits anywhere: a benchmark found out after training it all.
    (
        ["benchmark", "--tasks", "adding", "--out", "/proc/workbench-out"],
        "Cannot write the report folder /proc/workbench-out: /proc is not writable (",
    ),
    (
        ["export", "--experiment", "nope", "--out", "/proc/workbench-out"],
        "Cannot write the export folder /proc/workbench-out: /proc is not writable (",
    ),
    (
        ["export", "--experiment", "nope", "--out", "model", "--tracking-uri", "http://127.0.0.1:9"],
        # The cause, not 200 characters of request details cut before it.
        "Cannot reach the MLflow tracking store at http://127.0.0.1:9: Connection refused",
    ),
    (
        ["export", "--experiment", "nope", "--out", "model", "--tracking-uri", "mlruns"],
        "Expected a tracking URI",
    ),
    (  # a database in memory: a traceback, exit 0, every result lost
        ["search", "--task", "adding", "--tracking-uri", "sqlite://"],
        "Expected a SQLite database file such as sqlite:///mlruns/mlflow.db (three slashes, "
        "then its path). Received: 'sqlite://', a database in memory",
    ),
    (  # "Cannot reach ...: Model registry functionality is unavailable; got unsupported URI"
        ["report", "--experiment", "x", "--out", "r", "--tracking-uri", "foo://bar"],
        "Received: 'foo://bar' (MLflow has no foo:// store)",
    ),
    (  # "Cannot create the tracking store folder .../notes.txt: File exists"
        ["search", "--task", "adding", "--tracking-uri", "sqlite:///notes.txt/m.db"],
        "notes.txt is a file",
    ),
    (  # report let MLflow's refusal of a file store through as a traceback
        ["report", "--experiment", "x", "--out", "r", "--tracking-uri", "file:///tmp/runs"],
        "Received: 'file:///tmp/runs' (plain folder stores are no longer supported by MLflow",
    ),
    (["export", "--out", "model"], "Missing option '--experiment'. See 'workbench export --help'."),
    (
        ["predict", "--model", "missing", "--data", "x.npz"],
        "Expected an exported model folder with model.keras and hyperparameters.json",
    ),
    (["predict", "--model", "missing"], "Missing option '--data'"),
    (["search", "--task", "adding", "--space", "./"], "space file ./ is a folder. Expected a"),
    (
        ["report", "--experiment", "adding-small", "--out", "a_file/report"],
        "Cannot write the report folder a_file/report: a_file is not a folder",
    ),
    (["report", "--experiment", "nope", "--out", "report"], "Unknown experiment 'nope'"),
    (
        ["report", "--experiment", "nope", "--out", "report", "--tracking-uri", "mlruns"],
        "Expected a tracking URI",
    ),
    (
        [
            "report",
            "--experiment",
            "nope",
            "--out",
            "report",
            "--tracking-uri",
            "http://127.0.0.1:9",
        ],
        "Cannot reach the MLflow tracking store at http://127.0.0.1:9",
    ),
    (["report", "--out", "report"], "Expected --experiment NAME or --benchmark NAME"),
    # The group's own options: click printed its usage block before the error.
    (["--bogus"], "No such option '--bogus'"),
]
_ALL_BAD_INPUT = [(["search", *args], message) for args, message in _BAD_INPUT] + _BAD_OTHER_INPUT


def _experiments(workdir: Path) -> list[str]:
    db = workdir / "mlruns" / "mlflow.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as connection:
        names = [row[0] for row in connection.execute("select name from experiments")]
    return [name for name in names if name != "Default"]


@pytest.mark.parametrize(
    ("args", "message"), _ALL_BAD_INPUT, ids=[" ".join(a) for a, _ in _ALL_BAD_INPUT]
)
def test_bad_input_is_one_line_exit_2_and_records_nothing(
    workdir: Path, args: list[str], message: str
) -> None:
    import numpy as np

    for name, text in _BAD_FILES.items():
        (workdir / name).write_text(text)
    for name, arrays in _BAD_ARRAYS.items():
        np.savez(workdir / name, **arrays(np))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert message in lines[-1], result.output
    assert lines[-1].startswith("Error: "), result.output
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    assert _experiments(workdir) == []
    assert not list(workdir.rglob("study.json"))  # no search state either
    assert not (workdir / "model").exists()  # no export folder either
    assert not (workdir / "report").exists()  # no report folder either
    assert not list(workdir.glob("*.task.yaml"))  # no task file from --data either


def test_an_interrupt_promises_a_resume_only_where_there_is_one(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workbench.report

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(workbench.report, "make_report", interrupted)
    result = CliRunner().invoke(main, ["report", "--experiment", "x", "--out", "r"])
    assert result.exit_code == 130
    # "Finished trials are kept; run the same command again to resume." after a report.
    assert result.output.strip() == "Interrupted."


def test_sigterm_and_sighup_stop_any_command_as_ctrl_c_does(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal
    import time

    import workbench.report

    # SIGHUP where it is not ignored (under nohup it stays ignored, and the command goes on).
    hangup = [signal.SIGHUP] if signal.getsignal(signal.SIGHUP) == signal.SIG_DFL else []
    for sig in (signal.SIGTERM, *hangup):
        before = signal.getsignal(sig)

        def signalled(*args: object, sig: int = sig, **kwargs: object) -> None:
            os.kill(os.getpid(), sig)
            time.sleep(5)  # the signal arrives first

        monkeypatch.setattr(workbench.report, "make_report", signalled)
        # Outside a search they killed the process, its cleanup (an MLflow run's end) skipped.
        result = CliRunner().invoke(main, ["report", "--experiment", "x", "--out", "r"])
        assert result.exit_code == 130 and result.output.strip() == "Interrupted.", sig
        assert signal.getsignal(sig) == before  # the handlers are put back

    # A Ctrl-C a command started without (a background job of a script) stays ignored.
    def ignored(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        raise WorkbenchError("went on")

    monkeypatch.setattr(workbench.report, "make_report", ignored)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        result = CliRunner().invoke(main, ["report", "--experiment", "x", "--out", "r"])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert result.exit_code == 2 and "Error: went on" in result.output, result.output


def test_report_on_an_experiment_without_trials_is_one_line_exit_2(workdir: Path) -> None:
    from mlflow import MlflowClient

    (workdir / "mlruns").mkdir()
    MlflowClient(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}").create_experiment("empty")
    result = CliRunner().invoke(main, ["report", "--experiment", "empty", "--out", "report"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error: Experiment 'empty' has no trial runs to report on")
    assert "Traceback" not in result.output and not (workdir / "report").exists()
