"""The export folder, written all at once: an export's files are made in a hidden folder
inside it and moved into place when every one of them is written, so an export that fails
or is interrupted (Ctrl-C, SIGTERM) leaves the folder as it was, an earlier export's files
included."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


@contextlib.contextmanager
def staged(out_dir: Path, replaced: Iterable[str]) -> Iterator[Path]:
    """Yield a hidden folder inside ``out_dir`` (created with its parents) to write the
    export's files into. When the block ends normally its files take the place of the
    ``replaced`` names of ``out_dir``; on any exception they are deleted, ``out_dir`` keeps
    what it held (a folder the block created is removed), and the exception goes on.

    A process killed outright (``kill -9``) leaves the hidden folder behind; hidden entries
    do not count as a folder's content for the next export.
    """
    created = out_dir  # the outermost folder made here
    while not created.parent.exists():
        created = created.parent
    existed = out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        yield staging
        _move_in(staging, out_dir, list(replaced))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if not existed:
            shutil.rmtree(created, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _move_in(staging: Path, out_dir: Path, replaced: list[str]) -> None:
    """Move ``out_dir``'s ``replaced`` entries aside, ``staging``'s entries in, then delete
    the old ones; undone (the old ones back) if any step fails or is interrupted."""
    old = Path(tempfile.mkdtemp(prefix=".replaced-", dir=out_dir))
    moved_out: list[str] = []
    moved_in: list[str] = []
    try:
        for name in replaced:
            path = out_dir / name
            if path.exists() or path.is_symlink():
                path.rename(old / name)
                moved_out.append(name)
        for entry in sorted(staging.iterdir()):
            entry.rename(out_dir / entry.name)
            moved_in.append(entry.name)
    except BaseException:
        for name in moved_in:
            (out_dir / name).rename(staging / name)
        for name in moved_out:
            (old / name).rename(out_dir / name)
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
