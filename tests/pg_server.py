"""A throw-away PostgreSQL server on loopback, from Debian's ``postgresql`` binaries.

The tests start it (``initdb``, ``pg_ctl``) in a temporary folder and stop it at the end.
Run as root (a CI container), the server runs as the ``postgres`` user, as PostgreSQL
requires. Without the binaries the tests that need it are skipped with the install line,
except under ``.ci/run`` (``WORKBENCH_REQUIRE_SYSTEM_PACKAGES=1``), which installs them.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

INSTALL = "sudo apt-get install -y postgresql"


def server_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl`` (the newest installed major version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _major(path: str) -> int:
    part = Path(path).parents[1].name
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_postgres(database: str = "mlflow") -> Iterator[str]:
    """Start a server, create ``database``, yield its ``postgresql://`` URI, stop it."""
    bin_dir = server_bin()
    if bin_dir is None:
        raise FileNotFoundError(f"no PostgreSQL server binaries: {INSTALL}")
    root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
    data = folder / "data"
    prefix: list[str] = []
    if root:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:  # say why: the folder and its log go in `finally`
            log = folder / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr[-2000:]}{tail}"
            )

    started = False
    try:
        run(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "workbench",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",  # the user's LANG may name a locale this machine has not generated
        )
        options = f"-p {port} -k '{folder}' -c listen_addresses=127.0.0.1 -c fsync=off"
        run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        started = True
        run(
            str(bin_dir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "workbench",
            database,
        )
        yield f"postgresql://workbench@127.0.0.1:{port}/{database}"
    finally:
        if started:
            subprocess.run(
                [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(folder, ignore_errors=True)
