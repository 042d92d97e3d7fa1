"""A trial's command line and environment, and the config it reads from its directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from harness.config import TrainConfig
from harness.ports import free_port
from harness.procs import start_time
from harness.protocol import EVENTS_ENV, PARENT_ENV, TRIAL_MODULE
from harness.trialdir import TrialDir


def write_trial_config(config: TrainConfig, output_dir: Path) -> None:
    """The config the trial in ``output_dir`` runs, its output_dir set to that directory."""
    config.output_dir = str(output_dir)
    TrialDir(output_dir).write_config(config)


def launch_command(output_dir: Path, *, resume: bool, num_processes: int = 1,
                   threads: int | None = None) -> list[str]:
    """The trial's command line. Several processes run data-parallel under `accelerate launch`
    (torchrun: NCCL on GPUs, gloo on a CPU machine), each trial on a port of its own so that
    trials running side by side on one machine do not meet. One process runs the trial module
    itself: for one process `accelerate launch` only sets the thread count (`trial_env`) and
    starts it, at the cost of a second Python importing torch and accelerate, seconds of every
    trial's start."""
    tail = ["-m", TRIAL_MODULE, str(output_dir), *(["--resume"] if resume else [])]
    if num_processes == 1:
        return [sys.executable, *tail]
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes",
            str(num_processes), "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "--num_cpu_threads_per_process",
            str(threads or cpu_threads(num_processes)), "--multi_gpu", "--main_process_port",
            str(free_port()), *tail]


def trial_env(num_processes: int, threads: int | None) -> dict[str, str]:
    """What the trial's processes find in their environment beyond the parent's: the CPU
    thread count each may use."""
    return {"OMP_NUM_THREADS": str(threads or cpu_threads(num_processes))}


def child_env(extra: dict[str, str], *, events_file: Path, processes: int,
              threads: int | None) -> dict[str, str]:
    """The trial's whole environment: the parent's, ``extra``, its threads, and the
    protocol's: where its events go and which process it answers to."""
    return {**os.environ, **extra, **trial_env(processes, threads),
            EVENTS_ENV: str(events_file), "PYTHONUNBUFFERED": "1",
            PARENT_ENV: parent_identity()}


def cpu_threads(num_processes: int) -> int:
    """OMP_NUM_THREADS when set, else this process's CPUs shared out among the trial's
    processes (`accelerate launch` would otherwise pin each CPU process to one thread)."""
    configured = os.environ.get("OMP_NUM_THREADS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, len(os.sched_getaffinity(0)) // num_processes)


def parent_identity() -> str:
    """This process as `PID:START_TIME` (`PARENT_ENV`)."""
    return f"{os.getpid()}:{start_time(os.getpid()) or ''}"


def processes_of(output_dir: Path) -> int:
    """training.num_processes of the trial config in ``output_dir``."""
    config = TrialDir(output_dir).read_config()
    return int(config.get("training", {}).get("num_processes", 1))
