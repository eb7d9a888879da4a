"""Output folders: whether one can be written before any work that would end in it."""

from __future__ import annotations

import tempfile
from pathlib import Path


def unwritable(path: Path) -> str:
    """Why ``path`` cannot become a folder this process writes into, or "" when it can.

    Its nearest existing ancestor must be a folder a file can be created in: tried for
    real with a temporary file, deleted at once (permission bits pass root everywhere,
    ``/proc`` included, and a read-only mount passes them too). Nothing is left behind.
    """
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        return f"{probe} is not writable ({exc.strerror or exc})"
    return ""
