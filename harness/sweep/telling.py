"""Telling Optuna how a trial ended, with the reason, message and log tail kept beside it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.errors import disk_full, is_disk_full
from harness.study.record import LOG_TAIL, MESSAGE, REASON, RUN_ID
from harness.sweep.context import SweepContext
from harness.sweep.judge import Verdict
from harness.tracking.trial_run import TrialRun

if TYPE_CHECKING:
    import optuna


def tell(ctx: SweepContext, trial: optuna.Trial, verdict: Verdict, *,
         run: TrialRun | None = None) -> bool:
    """Tell Optuna how ``trial`` ended; False when that did not take (another worker took the
    trial over, or the storage's disk is full)."""
    import optuna

    state: str = verdict.state
    reason: str = verdict.reason
    if run is not None:
        run.set_tag("optuna.state", state)
    try:
        _record(trial, verdict, run=run)
        if state == "COMPLETE":
            ctx.study.tell(trial, verdict.values)
        else:
            ctx.study.tell(trial, state=getattr(optuna.trial.TrialState, state))
    except optuna.exceptions.UpdateFinishedTrialError:
        # Silent too long (a storage outage): another worker failed it and queued a retry.
        state, reason, told = "FAIL", "taken over by another worker", False
    except Exception as err:
        if not is_disk_full(err):
            raise
        # The storage's disk is full: the trial stays RUNNING there until a sweep started
        # after space is freed recovers it (its worker, this process, will be gone).
        ctx.control.halt(disk_full(err, ctx.url))
        state, reason, told = "FAIL", "disk_full", False
    else:
        told = True
    if trial.number in ctx.view.rows:
        told_value = verdict.values[0] if state == "COMPLETE" and verdict.values else None
        ctx.view.end(trial.number, state, "" if reason in ("finished", "pruned") else reason,
                     value=told_value)
    return told


def _record(trial: optuna.Trial, verdict: Verdict, *, run: TrialRun | None) -> None:
    trial.set_user_attr(REASON, verdict.reason)
    for name, value in verdict.figures.items():
        trial.set_user_attr(name, value)
    if verdict.message:
        trial.set_user_attr(MESSAGE, verdict.message[:2000])
    if verdict.log_tail:
        trial.set_user_attr(LOG_TAIL, verdict.log_tail[-4000:])
    if run is not None and run.run_id and RUN_ID not in trial.user_attrs:
        trial.set_user_attr(RUN_ID, run.run_id)
