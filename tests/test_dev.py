"""scripts/dev.py: the README's two commands set up a cached virtual environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "dev.py"


def _setup(venv: Path) -> subprocess.CompletedProcess[str]:
    """``scripts/dev.py setup`` with ``WORKBENCH_VENV`` pointing at ``venv``."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), "setup"],
        env={**os.environ, "WORKBENCH_VENV": str(venv)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_folder_that_is_not_a_venv_is_left_alone(tmp_path: Path) -> None:
    # WORKBENCH_VENV naming a folder of the user's: never emptied to make a venv there.
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    done = _setup(folder)
    assert done.returncode != 0
    assert "exists and is a folder without a working Python and pip" in done.stderr
    assert "it is left as it is" in done.stderr
    assert (folder / "notes.txt").read_text() == "keep me"


def test_another_tools_venv_without_pip_is_left_alone(tmp_path: Path) -> None:
    import venv

    made = tmp_path / "made-elsewhere"
    venv.EnvBuilder(with_pip=False).create(made)  # as uv or `python -m venv --without-pip`
    (made / "mine.txt").write_text("keep me")
    done = _setup(made)
    assert done.returncode != 0
    assert "is a virtual environment without a working Python and pip" in done.stderr
    assert (made / "mine.txt").read_text() == "keep me"
