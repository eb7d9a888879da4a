"""The command line: help with examples, listings, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.datasets import list_tasks

COMMANDS = ["tasks", "spaces", "search", "ui"]


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "nope"], "Unknown task 'nope'"),
        (["--task", "adding", "--space", "nope"], "Unknown search space 'nope'"),
        (["--task", "missing.yaml"], "task file not found: missing.yaml"),
        (["--task", "adding", "--task-option", "lenght=3"], "unknown option for loader"),
        (["--task", "adding", "--task-option", "oops"], "Expected --task-option KEY=VALUE"),
        (["--task", "adding", "--tuner", "grid"], "--tuner grid needs every range to have a step"),
        (["--task", "adding", "--tracking-uri", "mlruns"], "Expected a tracking URI"),
    ],
)
def test_bad_search_input_is_one_line_and_exit_2(
    workdir: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, ["search", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (workdir / "mlruns").exists()


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
