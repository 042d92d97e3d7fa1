"""How a running trial learns it must stop: SIGTERM (the runner stopping its process group for
a prune, a timeout or Ctrl-C) or its parent process ending. The loop checks between optimizer
steps and ends with reason `killed` after the step it is in."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from harness.protocol import EXIT_CODES, Failure

ORPHAN_GRACE_SECONDS = 20.0
"""How long a trial whose parent died may take to stop after its current step (as long as the
runner gives a trial it stops) before it exits wherever it is."""


class Stop(Exception):
    """Ends the trial with a reason (nan, oom, killed) and a message."""

    def __init__(self, reason: Failure, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class StopRequest:
    """Set by SIGTERM or by the parent's end; read by the loop once per step."""

    def __init__(self) -> None:
        self.requested = False
        self.cause = "SIGTERM"
        """What asked, for the trial's last message."""

    def on_signal(self, signum: int, frame: Any) -> None:
        self.requested = True

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.on_signal)

    def watch_parent(self, parent: str) -> None:
        """A trial whose sweep or `harness train` died (SIGKILL, a crash) stops as if
        SIGTERMed: no one would record what it trains, and the resumed sweep runs it again.
        ``parent`` is `PID:START_TIME` (HARNESS_PARENT); nothing is watched without it."""
        from harness.procs import watch_parent

        pid, _, since = parent.partition(":")
        if not pid.isdigit():
            return

        def on_gone() -> None:
            self.cause = f"its parent process {pid} ending"
            self.requested = True
            timer = threading.Timer(ORPHAN_GRACE_SECONDS, os._exit,
                                    args=(EXIT_CODES["killed"],))
            timer.daemon = True
            timer.start()

        watch_parent(int(pid), since=int(since) if since.isdigit() else None, on_gone=on_gone)
