"""Fault injection for tests and drills: one syntax, read by the sweep and by the trial.

``HARNESS_FAULT=KIND@STEP`` makes a trial fail at optimizer step STEP: ``nan`` (its loss becomes
NaN), ``oom`` (a MemoryError) or ``crash`` (a RuntimeError). In a sweep, ``#N,M`` limits a spec
to trials N and M, and ``|`` joins specs: ``oom@1#3|nan@1#7``; a spec without ``#`` reaches every
trial. Unset, the trial's loop pays one comparison per step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from harness.protocol import FAULT_ENV

Kind = Literal["nan", "oom", "crash"]
KINDS: tuple[Kind, ...] = ("nan", "oom", "crash")


@dataclass(frozen=True)
class Fault:
    """One planned fault of a trial."""

    kind: Kind
    """What goes wrong."""
    step: int
    """At which optimizer step (1-based)."""

    def poisons(self, step: int) -> bool:
        """Whether the loss of the step being computed (``step`` done so far) becomes NaN."""
        return self.kind == "nan" and step + 1 == self.step

    def strike(self, step: int) -> None:
        """Raise the planned error once ``step`` optimizer steps are done."""
        if step != self.step:
            return
        if self.kind == "oom":
            raise MemoryError(f"injected by {FAULT_ENV}")
        if self.kind == "crash":
            raise RuntimeError(f"injected crash ({FAULT_ENV})")


def planned(spec: str | None = None) -> Fault | None:
    """The trial's fault from ``spec`` (default: the environment); None when there is none."""
    kind, _, at = (os.environ.get(FAULT_ENV, "") if spec is None else spec).partition("@")
    known = next((k for k in KINDS if k == kind), None)
    return Fault(known, int(at)) if known is not None and at.isdigit() else None


def for_trial(number: int, spec: str | None = None) -> dict[str, str]:
    """The environment that gives trial ``number`` its part of the sweep's ``spec`` (default:
    the sweep's environment)."""
    for part in (os.environ.get(FAULT_ENV, "") if spec is None else spec).split("|"):
        fault, _, only = part.partition("#")
        if fault and (not only or str(number) in only.split(",")):
            return {FAULT_ENV: fault}
    return {FAULT_ENV: ""}
