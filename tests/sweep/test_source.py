"""Where a slot gets its next trial: the study's budget, other workers' running trials, this
process's own limit and deadline, on a real journal storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from helpers import sweep_context

from harness.study.handles import storage_of, trial_id
from harness.study.liveness import worker_id
from harness.study.record import REASON, WORKER, StudyRecord
from harness.sweep.context import SweepContext, SweepOptions
from harness.sweep.source import WAIT, TrialSource


def complete(ctx: SweepContext, trial: Any) -> None:
    trial.suggest_categorical("lora.r", [2, 4, 8])
    ctx.study.tell(trial, 1.0)


def test_exactly_the_total_is_handed_out(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path)
    source = TrialSource(ctx)
    for _ in range(3):
        complete(ctx, source.next())
    assert source.next() is None
    assert source.started == 3


def test_a_spent_budget_waits_while_another_worker_still_runs_a_trial(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path, total=1)
    other = ctx.study.ask()  # another worker's trial: its worker is not this process
    storage_of(ctx.study).set_trial_system_attr(trial_id(other), WORKER,
                                                {**worker_id(), "pid": 1, "since": 0})
    source = TrialSource(ctx)
    assert source.next() is WAIT
    complete(ctx, other)
    assert source.next() is None


def test_this_process_s_own_running_trial_is_no_reason_to_wait(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path, total=1)
    source = TrialSource(ctx)
    assert source.next() not in (None, WAIT)
    assert source.next() is None


def test_a_trial_the_sweep_stopped_does_not_use_the_budget(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path, total=1)
    source = TrialSource(ctx)
    stopped = source.next()
    stopped.set_user_attr(REASON, "interrupted")
    ctx.study.tell(stopped, state=optuna.trial.TrialState.FAIL)
    assert source.next() not in (None, WAIT)


def test_a_worker_stops_at_its_own_limit(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path, total=5, joining=True, options=SweepOptions(trials=2))
    source = TrialSource(ctx)
    complete(ctx, source.next())
    complete(ctx, source.next())
    assert source.next() is None


def test_a_worker_follows_a_total_the_sweep_changed(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path, total=1, joining=True)
    StudyRecord(trials=2).save(ctx.study)
    source = TrialSource(ctx)
    complete(ctx, source.next())
    complete(ctx, source.next())
    assert source.next() is None and ctx.total == 2


def test_no_trial_starts_after_the_deadline_or_a_stop(tmp_path: Path) -> None:
    now = [0.0]
    ctx = sweep_context(tmp_path, options=SweepOptions(timeout=60))
    source = TrialSource(ctx, clock=lambda: now[0])
    complete(ctx, source.next())
    now[0] = 61.0
    assert source.next() is None
    (tmp_path / "other").mkdir()
    stopped = sweep_context(tmp_path / "other")
    stopped.control.stop.set()
    assert TrialSource(stopped).next() is None


@pytest.mark.parametrize(("state", "reason"), [("FAIL", "crash"), ("PRUNED", "pruned"),
                                               ("PRUNED", "oom")])
def test_failed_and_pruned_trials_use_the_budget(tmp_path: Path, state: str,
                                                 reason: str) -> None:
    ctx = sweep_context(tmp_path, total=1)
    source = TrialSource(ctx)
    trial = source.next()
    trial.set_user_attr(REASON, reason)
    ctx.study.tell(trial, state=getattr(optuna.trial.TrialState, state))
    assert source.next() is None
