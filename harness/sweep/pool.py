"""The slots of one process, each a thread that runs trial after trial, and the watch kept
while they run: dead workers elsewhere, held MLflow writes, a full disk."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.live import Live

from harness.errors import disk_full, is_disk_full
from harness.study.handles import trial_id
from harness.study.liveness import Heartbeat, heartbeat_seconds
from harness.sweep.context import SweepContext
from harness.sweep.deliveries import Deliveries
from harness.sweep.recovery import recover
from harness.sweep.slots import Slot
from harness.sweep.source import WAIT, TrialSource, Waiting

if TYPE_CHECKING:
    import optuna

ASK_RETRIES = 5
"""How often in a row a slot asks a storage that fails before it gives up."""
RETRY_SECONDS = 10.0
"""How long it waits before it asks again."""


class SlotPool:
    """Runs ``objective`` in every slot until the source has no more trials."""

    def __init__(self, ctx: SweepContext, *, source: TrialSource,
                 objective: Callable[[optuna.Trial, Slot], None], deliveries: Deliveries,
                 retry_seconds: float = RETRY_SECONDS) -> None:
        self.ctx = ctx
        self.source = source
        self.objective = objective
        self.deliveries = deliveries
        self.retry_seconds = retry_seconds
        """The pause before asking a storage that failed again."""

    def run(self, slots: list[Slot]) -> bool:
        """Run the slots to the end; True when Ctrl-C (or SIGTERM) stopped them."""
        # Each slot says when it is done through an Event: a Thread.join() that Ctrl-C
        # interrupts can leave the thread marked dead while it still runs (CPython 3.11).
        done = [threading.Event() for _ in slots]
        threads = [threading.Thread(target=self._slot, args=(slot, end), name=slot.label,
                                    daemon=True) for slot, end in zip(slots, done, strict=True)]
        stop = self.ctx.control.stop
        shown = contextlib.nullcontext() if self.ctx.view.plain else Live(
            self.ctx.view, console=self.ctx.console, refresh_per_second=2, transient=False)
        with shown:
            recover(self.ctx, stopped=True)
            for thread in threads:
                thread.start()
            try:
                self._watch(done)
            except KeyboardInterrupt:
                stop.set()
                wait_through_interrupts(done)
        return stop.is_set()

    def _watch(self, done: list[threading.Event]) -> None:
        """Wait for the slots; meanwhile notice workers that died elsewhere."""
        last = time.monotonic()
        while not all(end.is_set() for end in done):
            time.sleep(0.5)
            full = self.deliveries.disk_full()
            if full is not None:
                self.ctx.control.halt(full)
            if time.monotonic() - last > heartbeat_seconds():
                recover(self.ctx)
                self.deliveries.retry()
                last = time.monotonic()

    def _slot(self, slot: Slot, done: threading.Event) -> None:
        try:
            self._run_slot(slot)
        finally:
            done.set()

    def _run_slot(self, slot: Slot) -> None:
        while not self.ctx.control.stop.is_set():
            trial = self._ask()
            if trial is None:
                return
            if trial is WAIT:
                self.ctx.control.stop.wait(heartbeat_seconds())
                recover(self.ctx)
                continue
            self._run(trial, slot)

    def _ask(self) -> optuna.Trial | Waiting | None:
        """The source's answer, asked again (`retry_seconds` apart) while the storage fails
        for a moment; None when the slot is done, the storage failed too often, or its disk is
        full."""
        ctx = self.ctx
        for failures in range(1, ASK_RETRIES + 2):
            try:
                return self.source.next()
            except Exception as err:
                if is_disk_full(err):
                    ctx.control.halt(disk_full(err, ctx.url))
                    return None
                giving_up = failures > ASK_RETRIES
                again = f"trying again in {self.retry_seconds:g} s"
                ctx.console.print(f"[red]cannot ask the study for a trial[/] ({err}); "
                                  f"{'giving up' if giving_up else again}")
                if giving_up or ctx.control.stop.wait(self.retry_seconds):
                    return None
        return None

    def _run(self, trial: optuna.Trial, slot: Slot) -> None:
        try:
            with Heartbeat(self.ctx.study, trial_id(trial)):
                self.objective(trial, slot)
        except Exception as err:  # e.g. the trial was taken over after a storage outage
            if is_disk_full(err):
                self.ctx.control.halt(disk_full(err, self.ctx.url))
                return
            self.ctx.console.print(f"[red]trial {trial.number}: the worker lost track of it[/] "
                                   f"({type(err).__name__}: {err})")


def wait_through_interrupts(done: list[threading.Event]) -> None:
    """Wait for the slots to stop their trials; further Ctrl-C presses do not cut this short."""
    while not all(end.is_set() for end in done):
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(0.2)
