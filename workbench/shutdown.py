"""Shutdown: how a workbench command's process ends.

With TensorFlow, Keras, KerasTuner and MLflow imported, a process holds several hundred
thousand objects, and Python's finalization walks them all in its last garbage
collections, after the command's work is done: 1.3-1.7 s at the end of every such
command on 2 CPU cores (a search, a report, an export, a worker).
"""

from __future__ import annotations

import atexit
import gc

_registered = False


def skip_final_collection() -> None:
    """Leave the objects alive at exit out of Python's last garbage collections.

    At exit (after the command, in an exit handler) everything alive is frozen
    (``gc.freeze()``): the exit handlers run as before, MLflow's and the temporary
    folders' included, and reference counting still frees what it frees; only objects
    held in reference cycles are left to the operating system, as at any ``os._exit``.
    Nothing the workbench writes waits for them: its runs, files and checkpoints are
    written and closed explicitly. Calling it again does nothing more.
    """
    global _registered
    if not _registered:
        atexit.register(gc.freeze)
        _registered = True
