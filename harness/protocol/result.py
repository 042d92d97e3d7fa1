"""What the parent makes of one run of a trial."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from harness.protocol.events import Event
from harness.protocol.reasons import Reason

E = TypeVar("E", bound=Event)


@dataclass
class TrialResult:
    """How a trial process ended, as its parent saw it."""

    reason: Reason
    exit_code: int | None
    """The launched process's exit code (negative: the signal that killed it)."""
    events: list[Event] = field(default_factory=list)
    """Every event it wrote, in order."""
    message: str = ""
    """Its own words on how it ended (or the parent's, for a trial it stopped)."""
    log_tail: str = ""
    """The end of its `trial.log`."""
    interrupted: bool = False
    """Ctrl-C reached the parent while the trial ran (a sweep stops after it)."""

    @property
    def ok(self) -> bool:
        return self.reason == "finished"

    def last(self, kind: type[E]) -> E | None:
        """The last event of ``kind``, if any."""
        return next((e for e in reversed(self.events) if isinstance(e, kind)), None)

    def first(self, kind: type[E]) -> E | None:
        """The first event of ``kind``, if any."""
        return next((e for e in self.events if isinstance(e, kind)), None)
