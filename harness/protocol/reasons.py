"""How a trial ends, as both sides of the protocol name it, and the exit code of each."""

from __future__ import annotations

from typing import Literal, get_args

Failure = Literal["crash", "nan", "oom", "killed", "disk_full"]
"""How a trial that failed says it failed (its `failed` event)."""
Reason = Literal["finished", "crash", "nan", "oom", "killed", "disk_full", "pruned", "timeout"]
"""How a trial process ended: finished, a `Failure` the child reported (or the parent found:
killed by a signal, a full disk), or stopped by the parent (pruned, past its timeout)."""
StopRequest = Literal["pruned", "interrupted"]
"""Why the parent's watcher asks for a running trial to be stopped (interrupted: Ctrl-C or a
stop signal reached the parent)."""

Ending = Literal["finished", "crash", "nan", "oom", "killed", "disk_full"]
"""How a trial process itself ends: finished, or a `Failure`."""

EXIT_CODES: dict[Ending, int] = {"finished": 0, "crash": 10, "nan": 11, "oom": 12,
                                 "killed": 13, "disk_full": 14}
"""The exit code of a trial process, and of `harness train`, for each way it can end (the
README's table)."""


def exit_code(reason: Reason) -> int:
    """The exit code of a trial that ended for ``reason``: a trial its parent stopped (pruned,
    past its timeout) was stopped as SIGTERM stops one, so it ended `killed`."""
    if reason == "pruned" or reason == "timeout":
        return EXIT_CODES["killed"]
    return EXIT_CODES[reason]


FAILURES: tuple[Failure, ...] = get_args(Failure)
