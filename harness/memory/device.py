"""How much memory a trial's device has: a GPU's (as `nvidia-smi` reports it, so that the
parent never initialises CUDA), or this machine's RAM for a trial on the CPU."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from harness.memory.estimate import Device


def gpu_memory_mb(*, free: bool = False) -> dict[str, float]:
    """Each GPU's total (or ``free``) memory in MB, by its index as `CUDA_VISIBLE_DEVICES`
    names it (none without `nvidia-smi`)."""
    if not shutil.which("nvidia-smi"):
        return {}
    what = "memory.free" if free else "memory.total"
    done = subprocess.run(["nvidia-smi", f"--query-gpu=index,{what}",
                           "--format=csv,noheader,nounits"], capture_output=True, text=True,
                          check=False)
    found = {}
    for line in done.stdout.splitlines():
        index, _, total = line.partition(",")
        if index.strip().isdigit() and total.strip().replace(".", "", 1).isdigit():
            found[index.strip()] = float(total)
    return found


def ram_mb() -> float:
    """This machine's memory in MB (`MemTotal` of /proc/meminfo)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024
    raise OSError("/proc/meminfo has no MemTotal")


def device_kind(gpus: dict[str, float] | None = None) -> Device:
    """Where a trial started from here trains: a GPU when this machine has one (``gpus``: what
    `gpu_memory_mb` already read, so that `nvidia-smi` runs once)."""
    return "cuda" if (gpu_memory_mb() if gpus is None else gpus) else "cpu"


def limit_mb(*, limit_gb: float | None, device: Device, gpus: dict[str, float],
             held: list[str] | None = None) -> float:
    """What one process of a trial may use: ``limit_gb`` when set, else the smallest of the
    GPUs it holds (``held``; all of them when it names none), else this machine's RAM."""
    if limit_gb is not None:
        return limit_gb * 1024
    if device == "cuda" and gpus:
        mine = [gpus[g] for g in held or [] if g in gpus]
        return min(mine or gpus.values())
    return ram_mb()
