"""Where a process's trials run: GPU slots, CPU slots, and `--gpus auto` claiming free GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import sweep
from harness.errors import HarnessError
from harness.sweep import SweepOptions, claim_gpu, make_slots


def test_listed_gpus_get_one_slot_each_with_their_device() -> None:
    slots = make_slots(SweepOptions(gpus=["0", "3"]))
    assert [s.env() for s in slots] == [{"CUDA_VISIBLE_DEVICES": "0"},
                                        {"CUDA_VISIBLE_DEVICES": "3"}]


def test_parallel_cpu_slots_share_the_cores() -> None:
    slots = make_slots(SweepOptions(parallel=2))
    assert len(slots) == 2 and all(s.env() == {} for s in slots)
    assert all(s.cpu_threads and s.cpu_threads >= 1 for s in slots)
    assert make_slots(SweepOptions())[0].cpu_threads is None


def test_auto_claims_a_gpu_no_other_worker_holds(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_GPU_LOCKS", str(tmp_path))
    monkeypatch.setattr(sweep, "gpu_count", lambda: 2)  # this machine has no GPU to count
    monkeypatch.setattr(sweep, "_claimed", [])
    assert [claim_gpu(), claim_gpu()] == ["0", "1"]  # each open file holds its own lock
    with pytest.raises(HarnessError, match="all 2 GPUs"):
        claim_gpu()
    sweep._claimed.pop(0).close()  # the first worker exits
    assert claim_gpu() == "0"


def test_auto_without_gpus_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "gpu_count", lambda: 0)
    with pytest.raises(HarnessError, match="no GPU"):
        claim_gpu()
