#!/usr/bin/env python3
"""Set up the cached virtual environment, then run the demo or the tests.

    python3 scripts/dev.py demo     # SimpleRNN vs LSTM vs GRU on the adding problem, and its report
    python3 scripts/dev.py test     # ruff, then the quick suite (extra args go to pytest)
    python3 scripts/dev.py test --all   # ... and the long end-to-end tests (what .ci/run runs)

The environment lives in $WORKBENCH_VENV (default ~/.cache/workbench/venv) and is
installed only when pyproject.toml changed or the checkout moved: TensorFlow takes
minutes to install, so it is never installed twice.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("WORKBENCH_VENV", Path.home() / ".cache" / "workbench" / "venv"))
EXTRAS = "dev,data,text,postgres"


def _python() -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / "python"


def _stamp() -> str:
    # The venv's own Python never changes: a new one means a new venv, without this stamp.
    key = (ROOT / "pyproject.toml").read_bytes() + str(ROOT).encode() + EXTRAS.encode()
    return hashlib.sha256(key).hexdigest()


def _has_pip(python: Path) -> bool:
    """The venv's Python starts and has pip (its base Python may have been upgraded or
    removed since, or another tool made it without pip)."""
    return subprocess.run([python, "-c", "import pip"], capture_output=True).returncode == 0


def _create() -> None:
    try:
        import ensurepip  # noqa: F401 - Debian and Ubuntu ship it apart from Python
    except ImportError:
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        sys.exit(
            f"This Python ({sys.executable}) cannot create a virtual environment with pip: "
            f"install its venv support (Debian/Ubuntu: sudo apt install python{version}-venv), "
            "then run the same command again."
        )
    print(f"Creating the virtual environment {VENV} ...", flush=True)
    venv.EnvBuilder(clear=True, symlinks=os.name != "nt").create(VENV)
    creating = VENV / ".workbench-creating"  # until pip is in: a later run starts over
    creating.write_text(sys.version.split()[0])
    python = _python()
    subprocess.run(
        [python, "-m", "ensurepip", "--upgrade", "--default-pip"],
        check=True,
        stdout=subprocess.DEVNULL,  # its list of what it installed; errors still show
    )
    subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    creating.unlink()


def ensure_environment() -> Path:
    """Create the venv if needed and install the project when its stamp is stale."""
    if sys.version_info < (3, 10):  # noqa: UP036 - this script runs on any python3
        sys.exit(f"workbench needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    python = _python()
    if python.exists() and _has_pip(python):
        pass  # a working venv, whoever made it: used as it is
    elif (
        not VENV.exists() or not any(VENV.iterdir()) or (VENV / ".workbench-creating").exists()
    ):
        _create()  # none yet, or one this script began and did not finish
    else:
        what = "a virtual environment" if (VENV / "pyvenv.cfg").is_file() else "a folder"
        sys.exit(
            f"{VENV} exists and is {what} without a working Python and pip (another "
            "tool's, or its base Python was removed); it is left as it is. Remove it, or "
            "point WORKBENCH_VENV at an empty folder, a working venv, or none."
        )
    stamp_file = VENV / ".workbench-stamp"
    if not stamp_file.exists() or stamp_file.read_text() != _stamp():
        if stamp_file.exists():  # pip installs only what is missing or changed
            why = "pyproject.toml changed or the checkout moved"
            print(f"Updating workbench[{EXTRAS}] in {VENV} ({why}) ...", flush=True)
        else:
            print(
                f"Installing workbench[{EXTRAS}] into {VENV} (first time: a few minutes) ...",
                flush=True,
            )
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "-e", f"{ROOT}[{EXTRAS}]"], check=True
        )
        stamp_file.write_text(_stamp())
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "setup"):
        print(__doc__)
        return 2
    python = ensure_environment()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    bin_dir = str(python.parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    command, rest = argv[0], argv[1:]
    if command == "setup":
        print(f"Ready. Activate with: source {VENV}/bin/activate")
        return 0
    if command == "demo":
        if rest:
            return subprocess.run(
                [python, "-m", "workbench.cli", "search", *rest], cwd=ROOT, env=env
            ).returncode
        # SimpleRNN, LSTM and GRU on matched settings, on a task they can learn in two
        # minutes: the adding problem at T=100 with 5,000 training sequences.
        search = [
            *("--task", "adding", "--space", "demo", "--tuner", "grid", "--max-trials", "9"),
            *("--task-option", "length=100", "--task-option", "n_train=5000"),
        ]
        done = subprocess.run([python, "-m", "workbench.cli", "search", *search], cwd=ROOT, env=env)
        if done.returncode != 0:
            return done.returncode
        report = ["--experiment", "adding-demo", "--out", "reports/adding-demo"]
        return subprocess.run(
            [python, "-m", "workbench.cli", "report", *report], cwd=ROOT, env=env
        ).returncode
    lint = subprocess.run(
        [python, "-m", "ruff", "check", "workbench", "tests", "scripts"], cwd=ROOT, env=env
    )
    if lint.returncode != 0:
        return lint.returncode
    if "--all" in rest:
        rest = [arg for arg in rest if arg != "--all"]
    elif not any(arg == "-m" or arg.startswith("-m") for arg in rest):
        # The long end-to-end tests (marked e2e) are for CI and for --all.
        rest = ["-m", "not e2e", *rest]
    if not any(arg == "-n" or arg.startswith(("-n", "--numprocesses")) for arg in rest):
        # Tests sharing an expensive module fixture carry @pytest.mark.xdist_group.
        rest = ["-n", "2", "--dist", "loadgroup", *rest]
    return subprocess.run([python, "-m", "pytest", *rest], cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
