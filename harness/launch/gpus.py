"""The GPUs a trial started from this process may use, and whether a data-parallel trial has
one per process."""

from __future__ import annotations

import os

from harness.errors import HarnessError
from harness.memory.device import gpu_memory_mb


def gpu_count() -> int:
    """The GPUs of this machine (those `nvidia-smi` reports; 0 without it)."""
    return len(gpu_memory_mb())


def visible_gpus() -> int:
    """GPUs a trial started from here may use: CUDA_VISIBLE_DEVICES when set, else all."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return len([g for g in listed.split(",") if g.strip() and g.strip() != "-1"])
    return gpu_count()


def require_gpus(per_trial: int) -> None:
    """A data-parallel trial on a GPU machine needs a GPU per process (a CPU machine runs its
    processes on the cores)."""
    have = visible_gpus() if per_trial > 1 else 0
    if 0 < have < per_trial:
        raise HarnessError(f"training.num_processes is {per_trial}, but only {have} GPU(s) are "
                           "visible here: lower it, or run where there are enough GPUs")
