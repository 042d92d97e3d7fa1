"""Trials that other processes could not end: those of dead workers (failed, retried once), and,
when a sweep starts, those an earlier sweep stopped (Ctrl-C, a full disk) without queueing them
again, with the MLflow runs left RUNNING beside them."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.errors import disk_full, is_disk_full
from harness.study.budget import budget_lock, reason_of, requeue_stopped
from harness.study.liveness import recover_abandoned
from harness.sweep.context import SweepContext
from harness.tracking.study_run import close_left_open, close_lost_run


@dataclass
class Recovered:
    """What one look at the study set right."""

    abandoned: list[int] = field(default_factory=list)
    """Trials left RUNNING by a dead worker: failed, their retry queued."""
    queued: list[int] = field(default_factory=list)
    """Stopped trials whose retry was missing: queued now."""
    closed: list[str] = field(default_factory=list)
    """MLflow runs of finished trials that were still RUNNING: ended now."""

    def lines(self) -> list[str]:
        out = []
        if self.closed:
            out.append(f"{len(self.closed)} MLflow run(s) of finished trials were left "
                       "RUNNING by a sweep that could not end them: ended now")
        out += [f"trial {n} was left running by a dead worker: marked FAIL (abandoned), its "
                "MLflow run FAILED, its parameters queued again" for n in self.abandoned]
        out += [f"trial {n} was stopped before it finished: its parameters are queued again"
                for n in self.queued]
        return out


def look(ctx: SweepContext, *, stopped: bool) -> Recovered:
    """Recover dead workers' trials; with ``stopped`` (at the start), also queue stopped
    trials again and end the runs left open."""
    found = Recovered(abandoned=recover_abandoned(ctx.study, on_lost=close_lost_run))
    if stopped:
        with budget_lock(ctx.url, ctx.name):
            found.queued = requeue_stopped(ctx.study)
        ended = {t.number: reason_of(t) for t in ctx.study.get_trials(deepcopy=False)
                 if t.state.is_finished()}
        found.closed = close_left_open(ctx.uri, ctx.name, ended=ended)
    return found


def recover(ctx: SweepContext, *, stopped: bool = False) -> None:
    """`look`, and say what it found. The storage may be briefly unreachable: then the next
    look tries again. A full storage disk at the start (nothing runs yet) is raised; later it
    halts the sweep."""
    try:
        found = look(ctx, stopped=stopped)
    except Exception as err:
        if not is_disk_full(err):
            ctx.console.print(f"could not check for dead workers: {err}")
            return
        if stopped:
            raise disk_full(err, ctx.url) from err
        ctx.control.halt(disk_full(err, ctx.url))
        return
    for line in found.lines():
        ctx.console.print(line)
