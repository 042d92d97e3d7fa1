"""Where a process's trials run: GPU slots, CPU slots, and `--gpus auto` claiming free GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.sweep import slots as slots_module
from harness.sweep.slots import claim_gpus, make_slots


def test_listed_gpus_get_one_slot_each_with_their_device() -> None:
    slots = make_slots(gpus=["0", "3"], parallel=1)
    assert [s.env() for s in slots] == [{"CUDA_VISIBLE_DEVICES": "0"},
                                        {"CUDA_VISIBLE_DEVICES": "3"}]


def test_a_trial_of_several_processes_holds_that_many_gpus() -> None:
    slots = make_slots(gpus=["0", "1", "2", "3"], parallel=1, per_trial=2)
    assert [s.env() for s in slots] == [{"CUDA_VISIBLE_DEVICES": "0,1"},
                                        {"CUDA_VISIBLE_DEVICES": "2,3"}]
    with pytest.raises(HarnessError, match="list a multiple of 2"):
        make_slots(gpus=["0", "1", "2"], parallel=1, per_trial=2)


def test_parallel_cpu_slots_share_the_cores() -> None:
    slots = make_slots(gpus=[], parallel=2)
    assert len(slots) == 2 and all(s.env() == {} for s in slots)
    assert all(s.cpu_threads and s.cpu_threads >= 1 for s in slots)
    assert make_slots(gpus=[], parallel=1)[0].cpu_threads is None


def test_auto_claims_a_gpu_no_other_worker_holds(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_GPU_LOCKS", str(tmp_path))
    monkeypatch.setattr(slots_module, "gpu_count", lambda: 2)  # this machine has no GPU to count
    monkeypatch.setattr(slots_module, "_claimed", [])
    assert [claim_gpus(), claim_gpus()] == [["0"], ["1"]]  # each open file holds its own lock
    with pytest.raises(HarnessError, match="fewer than 1 of the 2 GPUs"):
        claim_gpus()
    slots_module._claimed.pop(0).close()  # the first worker exits
    assert claim_gpus() == ["0"]


def test_auto_claims_all_the_gpus_a_trial_needs_or_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_GPU_LOCKS", str(tmp_path))
    monkeypatch.setattr(slots_module, "gpu_count", lambda: 3)
    monkeypatch.setattr(slots_module, "_claimed", [])
    slots = make_slots(gpus=["auto"], parallel=1, per_trial=2)
    assert [s.env() for s in slots] == [{"CUDA_VISIBLE_DEVICES": "0,1"}]
    with pytest.raises(HarnessError, match="fewer than 2 of the 3 GPUs"):
        claim_gpus(2)
    assert claim_gpus(1) == ["2"]  # the failed claim let go of GPU 2


def test_auto_without_gpus_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slots_module, "gpu_count", lambda: 0)
    with pytest.raises(HarnessError, match="no GPU"):
        claim_gpus()
