"""Where a process's trials run: slots sharing GPUs by memory (`--per-gpu` trials at most on
each, placed by their estimates: `harness.sweep.placement`), slots of whole GPUs (one trial per
GPU, or per group of GPUs when a trial runs data-parallel), or shares of the CPU cores;
`--gpus auto` claims GPUs no other worker on this machine holds."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.launch.gpus import gpu_count, require_gpus
from harness.sweep.placement import GpuBook


@dataclass
class Slot:
    """Where one trial at a time runs: its GPUs (or none), and the CPU threads per process."""

    label: str
    gpus: list[str] = field(default_factory=list)
    """Its GPUs: fixed, or (with a book) those booked for the trial it runs now."""
    cpu_threads: int | None = None
    book: GpuBook | None = None
    """The memory of the GPUs this slot shares with others (None: its GPUs are its own)."""
    processes: int = 1
    """GPUs a trial of it holds (its training.num_processes)."""

    def env(self) -> dict[str, str]:
        return {"CUDA_VISIBLE_DEVICES": ",".join(self.gpus)} if self.gpus else {}


def make_slots(*, gpus: list[str], parallel: int, per_trial: int = 1, per_gpu: int = 1,
               capacity_mb: dict[str, float] | None = None) -> list[Slot]:
    """One slot per trial run at once: up to ``per_gpu`` per listed GPU, placed by memory
    (``["auto"]``: claim free ones), or ``parallel`` on the CPU or sharing the visible GPUs. A
    trial of ``per_trial`` processes (its training.num_processes) holds that many GPUs, or
    shares the CPU cores among them. ``capacity_mb``: each GPU's free memory (default: as
    `nvidia-smi` reports it)."""
    gpus = claim_gpus(per_trial) if gpus == ["auto"] else gpus
    if gpus and per_gpu > 1:
        return shared_slots(gpus, per_trial=per_trial, per_gpu=per_gpu,
                            capacity_mb=capacity_mb)
    if gpus:
        return gpu_slots(gpus, per_trial)
    require_gpus(per_trial)
    n = max(1, parallel)
    if n == 1:
        return [Slot("")]
    threads = max(1, len(os.sched_getaffinity(0)) // (n * per_trial))
    return [Slot(f"slot {i}", cpu_threads=threads) for i in range(n)]


def gpu_slots(gpus: list[str], per_trial: int) -> list[Slot]:
    if len(gpus) % per_trial:
        raise HarnessError(f"--gpus {','.join(gpus)}: each trial takes {per_trial} GPUs "
                           f"(training.num_processes); list a multiple of {per_trial}")
    groups = [gpus[i:i + per_trial] for i in range(0, len(gpus), per_trial)]
    return [Slot(f"gpu {','.join(g)}", gpus=g) for g in groups]


def shared_slots(gpus: list[str], *, per_trial: int, per_gpu: int,
                 capacity_mb: dict[str, float] | None) -> list[Slot]:
    """Slots that share ``gpus`` by memory, ``per_gpu`` trials on each at most; whole-GPU slots
    when their free memory cannot be read."""
    from harness.memory.device import gpu_memory_mb

    whole = gpu_slots(gpus, per_trial)  # the same check: whole groups of GPUs
    known = gpu_memory_mb(free=True) if capacity_mb is None else capacity_mb
    if any(g not in known for g in gpus):
        return whole  # their memory cannot be read (no nvidia-smi): whole GPUs, as before
    book = GpuBook({g: known[g] for g in gpus}, per_gpu=per_gpu)
    count = len(gpus) // per_trial * per_gpu
    return [Slot(f"slot {i}", book=book, processes=per_trial) for i in range(count)]


_claimed: list[Any] = []


def claim_gpus(count: int = 1) -> list[str]:
    """``count`` GPUs of this machine that no other worker here holds (`--gpus auto`, for
    `docker compose up --scale worker=N`): a lock file per GPU, held while this process lives."""
    import fcntl

    total = gpu_count()
    if not total:
        raise HarnessError("--gpus auto: this machine shows no GPU (nvidia-smi -L lists none)")
    locks = Path(os.environ.get("HARNESS_GPU_LOCKS", "mlruns/gpu-locks"))
    locks.mkdir(parents=True, exist_ok=True)
    held: list[tuple[str, Any]] = []
    for gpu in range(total):
        f = open(locks / f"gpu-{gpu}.lock", "a")  # noqa: SIM115 (held until exit)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        held.append((str(gpu), f))
        if len(held) == count:
            _claimed.extend(f for _, f in held)
            return [g for g, _ in held]
    for _, f in held:
        f.close()
    raise HarnessError(f"--gpus auto: fewer than {count} of the {total} GPUs of this machine "
                       f"are free; the others are held by other workers (locks in {locks})")
