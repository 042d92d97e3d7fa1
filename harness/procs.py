"""Processes as the harness sees them: alive or not, when they started, whose group they lead,
whether a trial runs in them, how a group is stopped, and the signals that stop a command the
way Ctrl-C does.

A pid alone does not identify a process: a restarted container or a busy machine reuses pids,
so a process is known by its pid and its start time (clock ticks since boot, /proc/PID/stat).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.protocol import TRIAL_MODULE

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals that stop a command as Ctrl-C does: `kill`, `timeout`, `docker stop`, batch
schedulers (SIGTERM) and a closed terminal (SIGHUP)."""


def stat_field(proc: Path, index: int) -> int | None:
    """A numeric field of /proc/PID/stat, counted after the command name (state is 0)."""
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[index])
    except (OSError, ValueError, IndexError):
        return None


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None when it is gone."""
    return stat_field(Path(f"/proc/{pid}"), 19)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def same_process(pid: int, since: int | None) -> bool:
    """Whether ``pid`` still runs the process that started at ``since`` (None: any)."""
    if not alive(pid):
        return False
    now = start_time(pid)
    return since is None or now is None or now == since


def group_runs_trial(pgid: int) -> bool:
    """Whether a live process of group ``pgid`` is a harness trial (the id was not reused)."""
    marker = TRIAL_MODULE.encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or stat_field(proc, 2) != pgid:
            continue
        with contextlib.suppress(OSError):
            if marker in (proc / "cmdline").read_bytes():
                return True
    return False


@contextlib.contextmanager
def stop_signals_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread, so that a
    command stops its trials and records them as it does for Ctrl-C. Once: a second signal
    while the trials are being stopped and recorded is ignored, so the record is made. A
    signal the command was started to ignore (`nohup` ignores SIGHUP) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def interrupt(signum: int, frame: Any) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in STOP_SIGNALS
                if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def stop_signals_as_request() -> Iterator[threading.Event]:
    """While inside, SIGTERM and SIGHUP set the event yielded rather than raising: the command
    checks it between its own steps, so a signal never lands inside a write (an MLflow
    store's connection pool or lock left half-taken would hang the command as it records the
    run). A signal the command was started to ignore (`nohup` ignores SIGHUP) stays ignored."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: requested.set())
                for sig in STOP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield requested
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP are ignored while inside: the short step that records how a
    trial ended (the command is stopping already) must not itself be cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = (signal.SIGINT, *STOP_SIGNALS)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def watch_parent(pid: int, *, since: int | None, on_gone: Callable[[], None]) -> None:
    """Call ``on_gone`` from a daemon thread as soon as process ``pid`` (started at ``since``)
    has exited: a trial whose sweep was SIGKILLed must not train on, unrecorded."""

    def wait() -> None:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            fd = None
        except OSError:  # no pidfd (an old kernel): look once a second
            while same_process(pid, since):
                threading.Event().wait(1.0)
            on_gone()
            return
        # checked once the pid is held, so a reused pid is not taken for the parent
        if fd is not None and same_process(pid, since):
            select.select([fd], [], [])
        if fd is not None:
            os.close(fd)
        on_gone()

    threading.Thread(target=wait, daemon=True, name="parent-watch").start()


GRACE_SECONDS = 20.0
"""How long a stopped trial's processes have to end cleanly before they are killed."""


def stop_group(proc: subprocess.Popen[bytes], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM the process group ``proc`` leads (a trial stops cleanly), SIGKILL after
    ``grace`` seconds.

    Waits for the whole group, not just its leader: a launcher may die of the SIGTERM before
    the trial has written its last event.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader so it does not count as alive
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    kill_group(proc)


def stop_through_interrupts(proc: subprocess.Popen[bytes],
                            grace: float = GRACE_SECONDS) -> None:
    """`stop_group`, which another Ctrl-C meanwhile does not cut short (the trial must end, and
    be recorded, as stopped)."""
    while True:
        try:
            stop_group(proc, grace)
            return
        except KeyboardInterrupt:
            continue


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of the group ``proc`` leads (a launcher's orphans included),
    and reap ``proc``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
