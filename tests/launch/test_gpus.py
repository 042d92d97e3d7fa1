"""A data-parallel trial needs a GPU per process where there are GPUs; a CPU machine runs its
processes on the cores."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.launch import gpus
from harness.launch.gpus import require_gpus, visible_gpus
from harness.sweep.slots import make_slots


def test_a_data_parallel_trial_needs_a_gpu_per_process_where_there_are_gpus(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with pytest.raises(HarnessError, match="num_processes is 2, but only 1 GPU"):
        make_slots(gpus=[], parallel=1, per_trial=2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    require_gpus(2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(gpus, "gpu_count", lambda: 2)
    with pytest.raises(HarnessError, match="only 2 GPU"):
        require_gpus(4)
    monkeypatch.setattr(gpus, "gpu_count", lambda: 0)
    require_gpus(4)  # a CPU machine runs the processes on its cores


def test_the_visible_gpus_are_those_cuda_visible_devices_lists(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpus, "gpu_count", lambda: 8)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0, 2,")
    assert visible_gpus() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # CUDA's way of saying none
    assert visible_gpus() == 0
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpus() == 8
