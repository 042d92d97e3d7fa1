"""bench/gpu.sh, the one call that does every CUDA check, runs its CPU dry run here, so the
script cannot rot between the rare sessions that have a GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_gpu_script_dry_runs_on_the_cpu(tmp_path: Path, harness_home: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), "--dry-run"], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = (tmp_path / "out" / "throughput-llama.md").read_text()
    for side in ("harness-padded", "harness-grouped", "harness-packed"):
        assert f"| {side} |" in table, table
    assert "skipped" in (tmp_path / "out" / "cuda-tests.md").read_text()
    assert "1 configs on cpu" in (tmp_path / "out" / "memory-estimate.md").read_text()
    assert "no GPU here" in (tmp_path / "out" / "trials-per-gpu.md").read_text()
    retry = (tmp_path / "out" / "oom-retry.md").read_text()
    assert "retried from the start" in retry and "agree: True; sweep exit 0" in retry, retry
