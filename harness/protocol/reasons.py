"""How a trial ends, as both sides of the protocol name it, and the exit code of each."""

from __future__ import annotations

from typing import Literal

Failure = Literal["crash", "nan", "oom", "killed", "disk_full"]
"""How a trial that failed says it failed (its `failed` event)."""
Reason = Literal["finished", "crash", "nan", "oom", "killed", "disk_full", "pruned", "timeout"]
"""How a trial process ended: finished, a `Failure` the child reported (or the parent found:
killed by a signal, a full disk), or stopped by the parent (pruned, past its timeout)."""
StopRequest = Literal["pruned", "interrupted"]
"""Why the parent's watcher asks for a running trial to be stopped (interrupted: Ctrl-C or a
stop signal reached the parent)."""

EXIT_CODES: dict[Reason, int] = {"finished": 0, "crash": 10, "nan": 11, "oom": 12,
                                 "killed": 13, "disk_full": 14, "pruned": 15, "timeout": 16}
"""The exit code of a trial, and of `harness train`, for each way it can end (the README's
table)."""
