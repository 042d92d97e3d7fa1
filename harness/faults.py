"""Fault injection for tests and drills: one syntax, read by the sweep and by the trial.

``HARNESS_FAULT=KIND@STEP`` makes a trial fail at optimizer step STEP: ``nan`` (its loss becomes
NaN), ``oom`` (a MemoryError) or ``crash`` (a RuntimeError). ``oom@STEP>N`` strikes only while a
forward pass holds more than N sequences, as a real shortage of memory would: a trial retried
with smaller forward passes then gets past it. In a sweep, ``#N,M`` limits a spec
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
    above: int = 0
    """Strike only while a forward pass holds more than this many sequences (0: always)."""

    def poisons(self, step: int) -> bool:
        """Whether the loss of the step being computed (``step`` done so far) becomes NaN."""
        return self.kind == "nan" and step + 1 == self.step

    def strike(self, step: int, *, forward_batch: int = 1) -> None:
        """Raise the planned error once ``step`` optimizer steps are done (of forward passes of
        ``forward_batch`` sequences)."""
        if step != self.step or forward_batch <= self.above:
            return
        if self.kind == "oom":
            raise MemoryError(f"injected by {FAULT_ENV}")
        if self.kind == "crash":
            raise RuntimeError(f"injected crash ({FAULT_ENV})")


def planned(spec: str | None = None) -> Fault | None:
    """The trial's fault from ``spec`` (default: the environment); None when there is none."""
    kind, _, at = (os.environ.get(FAULT_ENV, "") if spec is None else spec).partition("@")
    at, _, above = at.partition(">")
    known = next((k for k in KINDS if k == kind), None)
    if known is None or not at.isdigit() or not (above.isdigit() or not above):
        return None
    return Fault(known, int(at), int(above or 0))


def for_trial(number: int, spec: str | None = None) -> dict[str, str]:
    """The environment that gives trial ``number`` its part of the sweep's ``spec`` (default:
    the sweep's environment)."""
    for part in (os.environ.get(FAULT_ENV, "") if spec is None else spec).split("|"):
        fault, _, only = part.partition("#")
        if fault and (not only or str(number) in only.split(",")):
            return {FAULT_ENV: fault}
    return {FAULT_ENV: ""}


GPU_MEMORY_ENV = "HARNESS_GPU_MEMORY_GB"
"""A drill for the out-of-memory retry on a real GPU: the trial may use at most this many GB of
its GPU, so a configuration that fits the card runs out of memory as on a smaller one."""


def cap_gpu_memory() -> None:
    """Hold this process to `GPU_MEMORY_ENV` GB of its GPU, when set and a GPU is there."""
    cap = os.environ.get(GPU_MEMORY_ENV)
    if not cap:
        return
    import torch

    if torch.cuda.is_available():
        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, float(cap) * 2**30 / total))
