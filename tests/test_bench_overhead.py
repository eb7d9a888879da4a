"""scripts/bench_overhead.py: the side-by-side comparison issue 16's figure comes from."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_overhead.py"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, timeout=900
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rounds", "0"], "argument --rounds: expected an integer of at least 1, received '0'"),
        (["--epochs", "two"], "argument --epochs: expected an integer of at least 1"),
        (["--two-arms", "--without-probe"], "--two-arms and --without-probe do not go together"),
    ],
)
def test_bad_options_are_refused_before_any_work(
    tmp_path: Path, args: list[str], message: str
) -> None:
    refused = _run(*args, cwd=tmp_path)
    assert refused.returncode == 2
    assert message in refused.stderr
    assert refused.stdout == ""


@pytest.mark.e2e
def test_two_arms_prints_each_round_and_the_ratio_with_its_interval(tmp_path: Path) -> None:
    done = _run(
        "--two-arms", "--rounds", "3", "--n-train", "32", "--epochs", "1", "--length", "5",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    out = done.stdout
    assert "INFO" not in out + done.stderr  # the store is made quietly, as the workbench does
    # A busy machine (the other tests, under xdist) marks the arm "not quiet".
    seconds = (
        r"([\d.]+) s \(CPU ([\d.]+) s(?:, ([\d.]+) s of it in child processes)?, "
        r"steal [\d.]+%, others [\d.]+%(?:, not quiet)?\)"
    )
    rounds = re.findall(rf"^round (\d): hand-written {seconds}, workbench {seconds}", out, re.M)
    assert [r[0] for r in rounds] == ["1", "2", "3"], out
    for _, wall, cpu, hand_children, wb_wall, wb_cpu, wb_children in rounds:
        assert min(float(wall), float(cpu), float(wb_wall), float(wb_cpu)) > 0, out
        # The plain script starts no process; the search writes from its tracking process.
        assert hand_children == "" and 0 < float(wb_children) < float(wb_cpu), out
    ratio = (
        r"workbench / hand-written: ([\d.]+) \(per round: median ([\d.]+), ([\d.]+)\.\.([\d.]+); "
        r"geometric mean ([\d.]+), 95% CI ([\d.]+)\.\.([\d.]+)\)"
    )
    for section in ("wall-clock", "CPU time"):
        found = re.search(rf"^{section}:\n(?:  .*\n)*?  {ratio}$", out, re.M)
        assert found, out
        _, median, low, high, mean, ci_low, ci_high = map(float, found.groups())
        assert low <= median <= high and low <= mean <= high, out
        assert ci_low <= mean <= ci_high, out
    split = re.search(
        r"^CPU time, split by process:\n  workbench: its child processes median ([\d.]+) s .*"
        r"its own process median ([\d.]+) s\n  own processes, workbench / hand-written: ",
        out,
        re.M,
    )
    assert split and float(split[1]) > 0 and float(split[2]) > 0, out
    # Every ratio once more over the quiet rounds (or says there were none).
    quiet = re.findall(r"^  (wall-clock|CPU time), \d of 3 rounds: workbench / hand", out, re.M)
    assert quiet == ["wall-clock", "CPU time"] or "no such round" in out, out
