"""Parent side of one trial: spawn it under `accelerate launch`, stream its events, stop it when
asked, and classify how it ended.

The child runs in its own session (process group), so stopping or killing it reaches every
process `accelerate launch` started, and nothing is left behind after the trial ends however it
ended.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import DiskFullError, is_disk_full
from harness.events import EventReader, fresh_events_file
from harness.procs import TRIAL_MODULE, start_time
from harness.trialdir import LOG_FILE, TrialDir, record

GRACE_SECONDS = 20.0


@dataclass
class TrialResult:
    reason: str
    """finished, nan, oom, killed, crash, or pruned / timeout when the parent stopped it."""
    exit_code: int | None
    events: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    log_tail: str = ""
    interrupted: bool = False
    """Ctrl-C reached the parent while the trial ran (a sweep stops after it)."""

    @property
    def ok(self) -> bool:
        return self.reason == "finished"

    def last(self, kind: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.events) if e.get("event") == kind), None)


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_threads(num_processes: int) -> int:
    """OMP_NUM_THREADS when set, else this process's CPUs shared out among the trial's
    processes (`accelerate launch` would otherwise pin each CPU process to one thread)."""
    configured = os.environ.get("OMP_NUM_THREADS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, len(os.sched_getaffinity(0)) // num_processes)


def run_trial(
    output_dir: Path,
    *,
    resume: bool = False,
    on_event: Callable[[dict[str, Any]], None] = lambda e: None,
    should_stop: Callable[[], str | None] = lambda: None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    poll_seconds: float = 0.2,
    on_spawn: Callable[[int], None] = lambda pgid: None,
    threads: int | None = None,
) -> TrialResult:
    """Run the trial whose train_config.json is in ``output_dir``; returns how it ended.

    ``should_stop`` returns a reason (e.g. "pruned") to stop the child; so does Ctrl-C
    ("killed") and ``timeout`` ("timeout"); "interrupted" from ``should_stop`` counts as
    Ctrl-C (a sweep's other thread got it). ``on_spawn`` gets the child's process group id;
    ``threads`` is the CPU thread count of each of the trial's processes (default: see
    `cpu_threads`); how many processes, its config's training.num_processes says.
    """
    events_file, trial_dir = fresh_events_file(output_dir), TrialDir(output_dir)
    reader, seen = EventReader(events_file), []
    log = open(trial_dir.log, "ab")  # noqa: SIM115 (closed below)
    record(output_dir, LOG_FILE)
    processes = processes_of(output_dir)
    child_env = {**os.environ, **(env or {}), **trial_env(processes, threads),
                 "HARNESS_EVENTS": str(events_file), "PYTHONUNBUFFERED": "1",
                 PARENT_ENV: parent_identity()}
    command = launch_command(output_dir, resume=resume, threads=threads,
                             num_processes=processes)
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env,
                            start_new_session=True)
    try:
        on_spawn(proc.pid)
        stopped_for, interrupted = _follow(proc, reader, seen, on_event=on_event,
                                           should_stop=should_stop, timeout=timeout,
                                           poll_seconds=poll_seconds)
    except KeyboardInterrupt:
        stopped_for, interrupted = "killed", True
        _stop_through_interrupts(proc)
    finally:
        kill_group(proc)
        log.close()
    _drain(reader, seen, on_event, lambda: None)
    result = _classify(proc.returncode, seen, stopped_for, trial_dir.log)
    result.interrupted = interrupted
    return result


def _follow(proc: subprocess.Popen, reader: EventReader, seen: list[dict[str, Any]], *,
            on_event: Callable[[dict[str, Any]], None], should_stop: Callable[[], str | None],
            timeout: float | None, poll_seconds: float) -> tuple[str | None, bool]:
    """Read the child's events until it exits or must stop (its process group is then
    stopped); (why it was stopped, whether by Ctrl-C)."""
    started, stopped_for, interrupted = time.monotonic(), None, False
    while proc.poll() is None:
        stopped_for = stopped_for or _drain(reader, seen, on_event, should_stop)
        if stopped_for == "interrupted":
            stopped_for, interrupted = "killed", True
        if stopped_for is None and timeout and time.monotonic() - started > timeout:
            stopped_for = "timeout"
        if stopped_for:
            stop_group(proc)
            break
        time.sleep(poll_seconds)
    return stopped_for, interrupted

PARENT_ENV = "HARNESS_PARENT"
"""`PID:START_TIME` of the process that runs the trial: the trial stops when it is gone."""


def parent_identity() -> str:
    return f"{os.getpid()}:{start_time(os.getpid()) or ''}"


def processes_of(output_dir: Path) -> int:
    """training.num_processes of the trial config in ``output_dir``."""
    config = TrialDir(output_dir).read_config()
    return int(config.get("training", {}).get("num_processes", 1))


def _drain(reader: EventReader, seen: list[dict[str, Any]],
           on_event: Callable[[dict[str, Any]], None],
           should_stop: Callable[[], str | None]) -> str | None:
    for event in reader.poll():
        seen.append(event)
        on_event(event)
    return should_stop()


def _stop_through_interrupts(proc: subprocess.Popen) -> None:
    """Stop the trial's group; another Ctrl-C meanwhile does not cut the stop short (the trial
    must end, and be recorded, as stopped)."""
    while True:
        try:
            stop_group(proc)
            return
        except KeyboardInterrupt:
            continue


def stop_group(proc: subprocess.Popen, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM the child's process group (the trial stops cleanly), SIGKILL after ``grace``.

    Waits for the whole group, not just the launcher: the launcher may die of the SIGTERM
    before the trial has written its last event.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()  # reap the launcher so it does not count as alive
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    kill_group(proc)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL whatever is left of the group (a launcher's orphans included) and reap."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _classify(code: int | None, events: list[dict[str, Any]], stopped_for: str | None,
              log_path: Path) -> TrialResult:
    # the first failure is the cause: in a multi-process trial the others fail after it
    failed = next((e for e in events if e.get("event") == "failed"), None)
    finished = any(e.get("event") == "finished" for e in events)
    if stopped_for:
        reason = stopped_for
    elif finished and code == 0:
        reason = "finished"
    elif failed:
        reason = failed.get("reason", "crash")
    elif code is not None and code < 0:
        reason = "killed"  # the launcher died by a signal, e.g. SIGKILL
    elif not has_room(log_path.parent):
        reason = "disk_full"  # the child could not even write why it failed
    else:
        # accelerate's launcher turns any child failure into its own exit 1, so without the
        # child's "failed" event (it was SIGKILLed, say) the exit code tells nothing more.
        reason = "crash"
    message = (failed or {}).get("message", "")
    if not message and reason == "disk_full":
        message = str(DiskFullError(log_path.parent))
    elif not message and reason != "finished":
        message = f"trial process ended with exit code {code}"
    return TrialResult(reason, code, events, message, _tail(log_path))


def has_room(directory: Path, probe_bytes: int = 65536) -> bool:
    """Whether ``probe_bytes`` can still be written in ``directory`` (a full disk says no)."""
    try:
        with tempfile.TemporaryFile(dir=directory, buffering=0) as f:
            if f.write(b"\0" * probe_bytes) != probe_bytes:
                return False  # a short write: the disk filled up under it
            os.fsync(f.fileno())
    except OSError as err:
        return not is_disk_full(err)
    return True


def _tail(path: Path, limit: int = 8000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - limit))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
