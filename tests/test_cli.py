"""The command line: help with examples, listings, and one-line errors with exit code 2."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.datasets import list_tasks

COMMANDS = ["tasks", "spaces", "search", "ui", "export", "predict", "report"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and f"workbench {command}" in result.output


def test_top_level_help_is_fast_and_imports_nothing_heavy() -> None:
    code = (
        "import sys, time; t=time.perf_counter(); from workbench.cli import main\n"
        "heavy=[m for m in ('tensorflow','keras','keras_tuner','mlflow') if m in sys.modules]\n"
        "print(heavy, time.perf_counter()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, seconds = out.stdout.rsplit(" ", 1)
    assert heavy == "[]"
    assert float(seconds) < 1.0
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "workbench.cli", "--help"], check=True, capture_output=True
    )
    assert time.perf_counter() - start < 5  # interpreter start included; normally ~0.1 s


def test_tasks_and_spaces_list_one_line_each() -> None:
    runner = CliRunner()
    tasks = runner.invoke(main, ["tasks"])
    assert tasks.exit_code == 0 and tasks.output.startswith("adding")
    spaces = runner.invoke(main, ["spaces"])
    assert spaces.exit_code == 0
    lines = spaces.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["default", "gru_vs_lstm", "small"]


@pytest.mark.parametrize("task", [task.name for task in list_tasks()])
def test_one_trial_search_runs_offline_on_every_builtin_task(
    store: str, tiny_space: Path, builtin_tiny_options: dict, task: str
) -> None:
    options = [f"--task-option={key}={value}" for key, value in builtin_tiny_options[task].items()]
    args = ["search", "--task", task, "--space", str(tiny_space), "--max-trials", "1"]
    args += ["--epochs", "1", "--tracking-uri", store, *options]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "1 of 1 trials completed" in result.output
    assert "baseline" in result.output


# --- bad input: one line, exit code 2, nothing recorded ------------------------------------

_BAD_FILES = {
    "broken.yaml": "name: [unclosed\n",
    "empty.yaml": "",
    "not_a_mapping.yaml": "- just\n- a list\n",
    "unknown_loader.yaml": "name: t\nloader: nope\n",
    "task_unknown_key.yaml": "name: t\nloader: adding\nsizes: 3\n",
    "space_unknown_key.yaml": "dimensions: {cells: [lstm]}\n",
    "space_bad_type.yaml": "dimensions: {units: [a, b]}\n",
    "space_empty_choice.yaml": "dimensions: {cell: []}\n",
    "space_bad_range.yaml": "dimensions: {learning_rate: {min: 1e-2, max: 1e-4}}\n",
    "space_unknown_cell.yaml": "dimensions: {cell: [transformer]}\n",
    "space_yaml_bool.yaml": "dimensions: {clipping: no}\n",
    "space_negative_dropout.yaml": "dimensions: {dropout: -0.5}\n",
    "a_file": "not a folder\n",
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
    (["--task", "adding", "--space", "broken.yaml"], "broken.yaml: malformed YAML"),
    (["--task", "adding", "--space", "empty.yaml"], "empty.yaml: expected a mapping"),
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
]


# Other commands' bad input (full arguments), same rules.
_BAD_OTHER_INPUT = [
    (
        ["export", "--experiment", "adding-small", "--out", "a_file/model"],
        "Cannot write the export folder a_file/model",
    ),
    (["export", "--experiment", "nope", "--out", "model"], "Unknown experiment 'nope'"),
    (
        ["export", "--experiment", "nope", "--out", "model", "--tracking-uri", "mlruns"],
        "Expected a tracking URI",
    ),
    (["export", "--out", "model"], "Missing option '--experiment'"),
    (
        ["predict", "--model", "missing", "--data", "x.npz"],
        "Expected an exported model folder with model.keras and hyperparameters.json",
    ),
    (["predict", "--model", "missing"], "Missing option '--data'"),
    (
        ["report", "--experiment", "adding-small", "--out", "a_file/report"],
        "Cannot write the report folder a_file/report: a_file is not a folder",
    ),
    (["report", "--experiment", "nope", "--out", "report"], "Unknown experiment 'nope'"),
    (
        ["report", "--experiment", "nope", "--out", "report", "--tracking-uri", "mlruns"],
        "Expected a tracking URI",
    ),
    (["report", "--out", "report"], "Missing option '--experiment'"),
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
    for name, text in _BAD_FILES.items():
        (workdir / name).write_text(text)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert message in lines[-1], result.output
    assert lines[-1].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    assert _experiments(workdir) == []
    assert not list(workdir.rglob("study.json"))  # no search state either
    assert not (workdir / "model").exists()  # no export folder either
    assert not (workdir / "report").exists()  # no report folder either
