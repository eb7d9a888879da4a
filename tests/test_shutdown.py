"""A workbench command's process leaves what is alive at exit out of the last collections."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _freeze_count_at_exit(command: str) -> int:
    # An exit handler registered before the command runs after the command's own.
    script = textwrap.dedent(
        f"""
        import atexit, gc, sys
        atexit.register(lambda: print("frozen", gc.get_freeze_count(), flush=True))
        from click.testing import CliRunner
        from workbench.cli import main
        result = CliRunner().invoke(main, {command!r})
        assert result.exit_code == 0, result.output
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split("frozen")[-1])


def test_a_command_freezes_what_is_alive_at_exit() -> None:
    assert _freeze_count_at_exit("spaces") > 1000


def test_help_alone_registers_nothing() -> None:
    assert _freeze_count_at_exit("--help") == 0
