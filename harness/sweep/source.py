"""Where a slot gets its next trial: asked of Optuna under the study's budget lock, so that all
workers together start exactly the study's total."""

from __future__ import annotations

import enum
import math
import threading
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from harness.study.budget import budget_lock, remaining
from harness.study.handles import storage_of, trial_id
from harness.study.liveness import beat, worker_id
from harness.study.record import WORKER, StudyRecord
from harness.sweep.context import SweepContext

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial


class Waiting(enum.Enum):
    """`TrialSource.next`'s answer while the budget is spent but trials of other workers still
    run (one of them may die and be retried)."""

    WAIT = "wait"


WAIT = Waiting.WAIT


class TrialSource:
    """Hands out this process's trials until the budget, its own limit or the time is used."""

    def __init__(self, ctx: SweepContext, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.clock = clock
        limit = ctx.options.timeout or ctx.space.study.timeout
        self.deadline = clock() + limit if limit else math.inf
        self.started = 0
        self._lock = threading.Lock()

    def next(self) -> optuna.Trial | Waiting | None:
        """A trial while the budget allows; WAIT while it is spent but other workers' trials
        still run; None when this slot is done."""
        ctx = self.ctx
        with self._lock, budget_lock(ctx.url, ctx.name):
            if ctx.control.stop.is_set() or self.clock() >= self.deadline:
                return None
            if ctx.own_limit is not None and self.started >= ctx.own_limit:
                return None
            if ctx.joining:  # a sweep may have changed the total since
                ctx.total = StudyRecord.load(ctx.study).trials or ctx.total
            if not remaining(ctx.study, ctx.total):
                return WAIT if running_elsewhere(ctx.study) else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "heartbeat ... with optimize"
                trial = ctx.study.ask()
            storage_of(ctx.study).set_trial_system_attr(trial_id(trial), WORKER, worker_id())
            beat(ctx.study, trial_id(trial))  # a trial without a heartbeat is never judged
            self.started += 1
            return trial


def running_elsewhere(study: optuna.Study) -> list[FrozenTrial]:
    """RUNNING trials of other workers (not those this process runs or lost track of)."""
    import optuna

    me = worker_id()
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return [t for t in running
            if {k: (t.system_attrs.get(WORKER) or {}).get(k) for k in ("host", "pid")}
            != {"host": me["host"], "pid": me["pid"]}]
