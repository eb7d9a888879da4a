"""scripts/gpu_check.py on a machine without a GPU: it skips, or runs on CPU when asked."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


@pytest.mark.e2e
def test_gpu_check_prints_its_four_parts_when_run_on_cpu(tmp_path: Path) -> None:
    if shutil.which("nvidia-smi") is None:  # no GPU: the plain command only says so
        skipped = _run(cwd=tmp_path)
        assert skipped.returncode == 0, skipped.stderr[-2000:]
        assert skipped.stdout.strip() == "no GPU: skipped"

    done = _run("--run-on-cpu", "--samples", "64", "--steps", "8", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    # 1. Two trials through the workbench, their tags read back from MLflow: eligible for
    # cuDNN, and on a GPU it ran there (without one nothing could).
    ran = "ran=true device=GPU" if shutil.which("nvidia-smi") else "ran=n/a device=CPU"
    for cell in ("lstm", "gru"):
        assert re.search(rf"^  {cell}\s+eligible=true {ran} epoch \d", out, re.M), out
    # 2. Every cell x precision x kernel, timed.
    variant = r"^  (lstm|gru)\s+(float32|mixed_float16)\s+(cudnn allowed|use_cudnn=False)\s"
    assert len(set(re.findall(variant, out, re.M))) == 8, out
    # 3. Steps per execution 1 and 16 for each cell, with the ratio.
    faster = r"^  (lstm|gru)\s+steps per execution 16\s+[\d.]+ s/epoch\s+[\d.]+x vs 1$"
    assert sorted(re.findall(faster, out, re.M)) == ["gru", "lstm"], out
    # 4. The callbacks' microseconds per batch, against a training step.
    keras_alone = r"^4\. Per batch, callbacks: Keras alone [\d.]+ us, "
    workbench = r"with a workbench trial's [\d.]+ us \([+-][\d.]+ us, -?[\d.]+% of part 3's "
    assert re.search(keras_alone + workbench + r"LSTM step of [\d.]+ ms\)$", out, re.M), out


def test_gpus_tensorflow_cannot_use_fail_the_check(tmp_path: Path) -> None:
    """A host whose NVIDIA GPUs TensorFlow does not see (no CUDA libraries for its build)
    is not a pass: "no GPU: skipped" is only for a host without GPUs."""
    import os

    if shutil.which("nvidia-smi") is not None:
        pytest.skip("this host has GPUs: the check runs on them")
    # A driver's nvidia-smi listing one GPU, on a host where TensorFlow can use none.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 0\n")
    smi.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
            cwd=tmp_path, env=env, timeout=300,
        )  # fmt: skip

    done = check()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no GPU: skipped" not in done.stdout
    assert "GPU(s) 0 (CUDA_VISIBLE_DEVICES, else nvidia-smi) are not visible" in done.stderr
    assert "it was built for CUDA" in done.stderr
    # Without a driver, the same CUDA_VISIBLE_DEVICES (a scheduler's, say) is no GPU.
    env["PATH"] = os.environ["PATH"]
    env["CUDA_VISIBLE_DEVICES"] = "0"
    plain = check()
    assert plain.returncode == 0 and plain.stdout.strip() == "no GPU: skipped", plain.stderr
