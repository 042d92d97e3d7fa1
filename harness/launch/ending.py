"""How a trial ended, from what its parent saw: its exit code, its events, and whether the
parent stopped it. Pure but for two looks at the trial's directory (the end of its log, and
whether its disk has room)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.errors import DiskFullError, is_disk_full
from harness.protocol import Event, Failed, Finished, Reason, TrialResult


def classify(code: int | None, events: list[Event], stopped_for: Reason | None,
             log_path: Path) -> TrialResult:
    """The result of a trial that exited with ``code`` after writing ``events`` (the parent
    stopped it for ``stopped_for``, if it did); ``log_path`` is its `trial.log`."""
    # the first failure is the cause: in a multi-process trial the others fail after it
    failed = next((e for e in events if isinstance(e, Failed)), None)
    finished = any(isinstance(e, Finished) for e in events)
    reason: Reason
    if stopped_for:
        reason = stopped_for
    elif finished and code == 0:
        reason = "finished"
    elif failed:
        reason = failed.reason
    elif code is not None and code < 0:
        reason = "killed"  # the launcher died by a signal, e.g. SIGKILL
    elif not has_room(log_path.parent):
        reason = "disk_full"  # the child could not even write why it failed
    else:
        # accelerate's launcher turns any child failure into its own exit 1, so without the
        # child's "failed" event (it was SIGKILLed, say) the exit code tells nothing more.
        reason = "crash"
    return TrialResult(reason, code, events, _message(failed, reason, code, log_path),
                       log_tail(log_path))


def _message(failed: Failed | None, reason: Reason, code: int | None, log_path: Path) -> str:
    if failed is not None and failed.message:
        return failed.message
    if reason == "disk_full":
        return str(DiskFullError(log_path.parent))
    return "" if reason == "finished" else f"trial process ended with exit code {code}"


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


def log_tail(path: Path, limit: int = 8000) -> str:
    """The last ``limit`` bytes of a trial's log, as text."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - limit))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
