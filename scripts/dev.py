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


def _usable(python: Path) -> bool:
    """The venv finished creating (pip upgraded) and its Python still starts (its base
    Python may have been upgraded or removed since)."""
    # The stamp: an install finished there (venvs made before the marker have only that).
    if not any((VENV / name).is_file() for name in (".workbench-created", ".workbench-stamp")):
        return False
    return subprocess.run([python, "-c", "import pip"], capture_output=True).returncode == 0


def _create() -> None:
    if VENV.exists() and any(VENV.iterdir()) and not (VENV / "pyvenv.cfg").is_file():
        sys.exit(
            f"{VENV} exists and is not a virtual environment; it is left as it is. "
            "Expected WORKBENCH_VENV to name an empty folder, a venv, or none."
        )
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
    venv.EnvBuilder(with_pip=True, clear=True, symlinks=os.name != "nt").create(VENV)
    python = _python()
    subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    (VENV / ".workbench-created").write_text(sys.version.split()[0])


def ensure_environment() -> Path:
    """Create the venv if needed and install the project when its stamp is stale."""
    if sys.version_info < (3, 10):  # noqa: UP036 - this script runs on any python3
        sys.exit(f"workbench needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    python = _python()
    if not python.exists() or not _usable(python):
        _create()  # a half-created or broken venv is made again, not used
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
