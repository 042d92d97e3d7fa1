"""The slots of one process running trials at once, with an objective that stands in for
training, on a real journal study: exactly the study's total run, a trial that loses its worker
does not stop the others, a storage that fails for a moment is asked again, a full disk and
Ctrl-C stop every slot."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import optuna
from helpers import sweep_context

from harness.errors import DiskFullError
from harness.sweep.context import SweepContext
from harness.sweep.deliveries import Deliveries
from harness.sweep.pool import ASK_RETRIES, SlotPool
from harness.sweep.slots import Slot
from harness.sweep.source import TrialSource

State = optuna.trial.TrialState
SLOTS = [Slot("slot 0", cpu_threads=1), Slot("slot 1", cpu_threads=1)]


class Told:
    """An objective that tells each trial a value at once (a trial's work, in no time)."""

    def __init__(self, ctx: SweepContext) -> None:
        self.ctx = ctx
        self.slots: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, trial: optuna.Trial, slot: Slot) -> None:
        with self.lock:
            self.slots.append(slot.label)
        trial.suggest_categorical("lora.r", [2, 4, 8])
        self.ctx.study.tell(trial, 1.0)


def pool(ctx: SweepContext, objective: Any, *, source: Any = None,
         deliveries: Any = None) -> SlotPool:
    return SlotPool(ctx, source=source or TrialSource(ctx), objective=objective,
                    deliveries=deliveries or Deliveries(), retry_seconds=0.0)


def states(ctx: SweepContext) -> list[Any]:
    return [t.state for t in ctx.study.get_trials(deepcopy=False)]


def test_the_slots_run_exactly_the_studys_total(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path, total=5)
    told = Told(ctx)
    assert pool(ctx, told).run(SLOTS) is False
    assert states(ctx) == [State.COMPLETE] * 5
    assert len(told.slots) == 5 and set(told.slots) <= {"slot 0", "slot 1"}


def test_a_trial_whose_objective_breaks_does_not_stop_the_others(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path, total=3)
    told = Told(ctx)

    def objective(trial: optuna.Trial, slot: Slot) -> None:
        if trial.number == 0:
            raise RuntimeError("the storage took the trial over")
        told(trial, slot)

    pool(ctx, objective).run(SLOTS[:1])
    assert states(ctx) == [State.RUNNING, State.COMPLETE, State.COMPLETE]
    shown = ctx.console.file.getvalue()  # type: ignore[attr-defined]
    assert "trial 0: the worker lost track of it (RuntimeError: the storage took" in shown


class Flaky(TrialSource):
    """A source whose storage fails ``failures`` times before it answers."""

    def __init__(self, ctx: SweepContext, failures: int) -> None:
        super().__init__(ctx)
        self.failures = failures

    def next(self) -> Any:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the database is restarting")
        return super().next()


def test_a_storage_that_fails_for_a_moment_is_asked_again(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path, total=2)
    pool(ctx, Told(ctx), source=Flaky(ctx, failures=ASK_RETRIES)).run(SLOTS[:1])
    assert states(ctx) == [State.COMPLETE] * 2


def test_a_storage_that_keeps_failing_is_given_up(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path, total=2)
    source = Flaky(ctx, failures=ASK_RETRIES + 1)
    pool(ctx, Told(ctx), source=source).run(SLOTS[:1])
    assert states(ctx) == [] and source.failures == 0
    assert "giving up" in ctx.console.file.getvalue()  # type: ignore[attr-defined]


def test_a_full_disk_stops_every_slot(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path, total=6)

    def filling(trial: optuna.Trial, slot: Slot) -> None:
        raise OSError(28, "No space left on device")

    assert pool(ctx, filling).run(SLOTS) is True
    assert ctx.control.halted is not None
    assert len(states(ctx)) <= 2  # one trial per slot at most, then nothing more started


class Interrupting(Deliveries):
    """Held MLflow writes whose first look meets Ctrl-C (the sweep's thread gets it)."""

    def __init__(self) -> None:
        super().__init__()
        self.pressed = False

    def disk_full(self) -> DiskFullError | None:
        if not self.pressed:
            self.pressed = True
            raise KeyboardInterrupt
        return None


def test_ctrl_c_stops_the_slots_after_their_trials_end(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path, total=4)

    def training(trial: optuna.Trial, slot: Slot) -> None:
        ctx.control.stop.wait()  # a trial runs until the sweep stops it
        ctx.study.tell(trial, state=State.FAIL)

    assert pool(ctx, training, deliveries=Interrupting()).run(SLOTS) is True
    assert states(ctx) == [State.FAIL, State.FAIL]  # the two that ran; none started after
