"""Parent side of one trial: spawn it, stream its events to a watcher, stop it when the watcher,
Ctrl-C or its timeout says so, and classify how it ended.

The child runs in its own session (process group), so stopping or killing it reaches every
process `accelerate launch` started, and nothing is left behind after the trial ends however it
ended.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from harness.launch.command import child_env, launch_command, processes_of
from harness.launch.ending import classify
from harness.procs import GRACE_SECONDS, kill_group, stop_group, stop_through_interrupts
from harness.protocol import Event, EventReader, Reason, StopRequest, TrialResult
from harness.trialdir import LOG_FILE, TrialDir, record


@dataclass
class Launch:
    """One run of the trial whose train_config.json is in ``output_dir``."""

    output_dir: Path
    """The trial's directory."""
    resume: bool = False
    """Go on from its newest intact checkpoint."""
    timeout: float | None = None
    """Seconds after which the trial is stopped (reason `timeout`)."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment beyond the parent's (its GPUs, an injected fault)."""
    threads: int | None = None
    """CPU threads of each of its processes (default: see `cpu_threads`)."""
    poll_seconds: float = 0.2
    """How often its events file is read."""
    grace: float = GRACE_SECONDS
    """Seconds a stopped trial has to end cleanly (its last event written) before it is
    killed."""
    command: list[str] | None = None
    """The command line, when it is not the harness's own trial (`launch_command`); a
    stand-in must speak the protocol all the same."""


class Watcher:
    """What the parent does while a trial runs: this one only watches; subclasses record the
    events and decide when to stop."""

    def spawned(self, pgid: int) -> None:
        """The trial's process group is ``pgid``."""

    def seen(self, event: Event) -> None:
        """The trial wrote ``event``."""

    def stop_for(self) -> StopRequest | None:
        """Why the trial must stop now, if it must (asked between polls)."""
        return None


def run_trial(launch: Launch, watcher: Watcher | None = None) -> TrialResult:
    """Run the trial to its end; how it ended. Ctrl-C stops it (`killed`, interrupted)."""
    out = launch.output_dir
    follow = Follow(EventReader(fresh_events_file(out)), watcher or Watcher())
    log_path = TrialDir(out).log
    with open(log_path, "ab") as log:
        record(out, LOG_FILE)
        proc = spawn(launch, log=log, events_file=follow.reader.path)
        try:
            follow.watcher.spawned(proc.pid)
            stopped_for = follow.until_exit(proc, launch)
        except KeyboardInterrupt:
            stopped_for, follow.interrupted = "killed", True
            stop_through_interrupts(proc, launch.grace)
        finally:
            kill_group(proc)
    follow.read()
    result = classify(proc.returncode, follow.seen, stopped_for, log_path)
    result.interrupted = follow.interrupted
    return result


def spawn(launch: Launch, *, log: IO[bytes], events_file: Path) -> subprocess.Popen[bytes]:
    """The trial's processes, started in a session of their own, their output to ``log``."""
    processes = processes_of(launch.output_dir)
    command = launch.command or launch_command(launch.output_dir, resume=launch.resume,
                                               threads=launch.threads,
                                               num_processes=processes)
    env = child_env(launch.env, events_file=events_file, processes=processes,
                    threads=launch.threads)
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


class Follow:
    """The events of one run, handed to its watcher as they come."""

    def __init__(self, reader: EventReader, watcher: Watcher) -> None:
        self.reader = reader
        self.watcher = watcher
        self.seen: list[Event] = []
        self.interrupted = False
        """Ctrl-C (or the watcher's `interrupted`) stopped the trial."""

    def read(self) -> None:
        for event in self.reader.poll():
            self.seen.append(event)
            self.watcher.seen(event)

    def until_exit(self, proc: subprocess.Popen[bytes], launch: Launch) -> Reason | None:
        """Read the events until the trial exits or must stop (its process group is then
        stopped); why it was stopped."""
        started = time.monotonic()
        while proc.poll() is None:
            self.read()
            stopped_for = self._stop_for(started, launch.timeout)
            if stopped_for:
                stop_group(proc, launch.grace)
                return stopped_for
            time.sleep(launch.poll_seconds)
        return None

    def _stop_for(self, started: float, timeout: float | None) -> Reason | None:
        asked = self.watcher.stop_for()
        if asked == "interrupted":  # Ctrl-C reached another thread of the parent
            self.interrupted = True
            return "killed"
        if asked is not None:
            return asked
        if timeout and time.monotonic() - started > timeout:
            return "timeout"
        return None


def fresh_events_file(output_dir: Path) -> Path:
    """Start an empty events file (a resumed run keeps the old one under a numbered name)."""
    path = TrialDir(output_dir).events
    if path.exists():
        n = 1
        while path.with_suffix(f".{n}.jsonl").exists():
            n += 1
        os.replace(path, path.with_suffix(f".{n}.jsonl"))
        record(path.parent, path.with_suffix(f".{n}.jsonl").name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    record(path.parent, path.name)
    return path
