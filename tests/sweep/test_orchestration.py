"""The small pieces around the slot pool, on a real journal study: finishing a study once per
state, recovering what other processes left, and halting for a full disk."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
from helpers import sweep_context
from rich.console import Console

from harness.errors import DiskFullError
from harness.procs import start_time
from harness.study.handles import storage_of, trial_id
from harness.study.liveness import this_host, worker_id
from harness.study.record import REASON, WORKER
from harness.sweep.context import Control
from harness.sweep.finish import claim_finish
from harness.sweep.recovery import look

State = optuna.trial.TrialState


def _claimed(ctx: Any, interrupted: bool = False) -> bool | None:
    return claim_finish(ctx, interrupted=interrupted)


def test_a_study_is_finished_once_per_state_not_once_per_worker(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path)
    assert _claimed(ctx) is False  # this worker finishes it
    assert _claimed(ctx) is True  # the next finds it finished with these trials
    trial = ctx.study.ask()
    ctx.study.tell(trial, 1.0)
    assert _claimed(ctx) is False  # a new trial since: finished again
    assert _claimed(ctx, interrupted=True) is False  # and an interrupted end is another state


def test_the_last_worker_finishes_while_others_still_run_their_trials(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path)
    other = ctx.study.ask()
    storage_of(ctx.study).set_trial_system_attr(trial_id(other), WORKER,
                                                {**worker_id(), "pid": 1, "since": 0})
    assert _claimed(ctx) is None
    ctx.study.tell(other, 1.0)
    assert _claimed(ctx) is False


def _dead_worker() -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    since = start_time(proc.pid)
    proc.wait()
    return {"host": this_host(), "pid": proc.pid, "since": since, "pgid": None}


def test_a_look_at_the_start_recovers_dead_workers_and_queues_stopped_trials(
        tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path)
    abandoned = ctx.study.ask()
    storage_of(ctx.study).set_trial_system_attr(trial_id(abandoned), WORKER, _dead_worker())
    stopped = ctx.study.ask()
    stopped.set_user_attr(REASON, "interrupted")
    ctx.study.tell(stopped, state=State.FAIL)  # its sweep was killed before it queued it again

    later = look(ctx, stopped=False)  # while trials run: only dead workers
    assert later.abandoned == [abandoned.number] and later.queued == []
    found = look(ctx, stopped=True)
    assert found.queued == [stopped.number]
    assert len(ctx.study.get_trials(states=(State.WAITING,))) == 2
    assert f"trial {stopped.number} was stopped before it finished" in " ".join(found.lines())
    assert look(ctx, stopped=True).queued == []  # queued once


def test_a_full_disk_halts_once_and_keeps_the_first_error() -> None:
    out = io.StringIO()
    control = Control(Console(file=out, width=200))
    control.halt(DiskFullError("/data/mlruns"))
    control.halt(DiskFullError("/elsewhere"))
    assert control.stop.is_set()
    assert control.halted is not None and control.halted.where == "/data/mlruns"
    assert out.getvalue().count("disk full at") == 1
