"""The end of a process's part in a study: held MLflow writes drained, and, by the last worker
to stop, the plots, the parent run's end, the summary and the promotion."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.study.budget import budget_lock
from harness.study.record import (
    BASE_TEST_LOSS,
    FINISHED_AT,
    RETENTION_CHANGE,
    RUN_ID,
    SELECTED_EPOCH,
    TEST_LOSS,
    held_out_metric,
)
from harness.study.storage import best_trial
from harness.sweep.context import SweepContext, SweepOutcome
from harness.sweep.deliveries import Deliveries
from harness.sweep.recovery import recover
from harness.sweep.source import running_elsewhere
from harness.sweep.view import failure_lines, print_summary
from harness.tracking.notes import NOTE, mark_best, study_note
from harness.tracking.outbox import RUN
from harness.tracking.study_run import StudyRun

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from harness.tracking.promotion import Promotion


def finish(ctx: SweepContext, *, parent: StudyRun, deliveries: Deliveries,
           interrupted: bool) -> SweepOutcome:
    """Drain, then finish the study if this worker is the last; promote unless interrupted."""
    outcome = SweepOutcome(ctx.study, interrupted)
    deliveries.drain(ctx.console, also=[], uri=ctx.uri, out_root=ctx.out_root)
    if ctx.control.halted is not None:
        # Plots, the study run and promotion would only meet the full disk again.
        parent.outbox.send("set_terminated", RUN, "KILLED")
        raise ctx.control.halted
    recover(ctx)
    already = claim_finish(ctx, interrupted=interrupted)
    if already is None:
        return outcome
    best = best_trial(ctx.study)
    if already:
        ctx.console.print(f"study {ctx.name} was already finished with these trials")
        parent.outbox.send("set_terminated", RUN,  # joining reopened it
                           "KILLED" if interrupted else "FINISHED")
    else:
        end_parent(ctx, parent, interrupted=interrupted, best=best)
        deliveries.drain(ctx.console, also=[parent.outbox], uri=ctx.uri, out_root=ctx.out_root)
        print_summary(ctx.console, ctx.study, objectives=ctx.objectives)
    outcome.failed = [] if interrupted else failure_lines(ctx.study)
    if outcome.failed:
        ctx.console.print("[red]no trial completed[/]; the trials ended so:\n  "
                          + "\n  ".join(outcome.failed))
    promote = ctx.space.registry.promote if ctx.options.promote is None \
        else ctx.options.promote
    if interrupted:
        ctx.console.print("sweep interrupted: run the same command again to continue")
    elif promote and best is not None:
        # also when already finished: a promotion cut short last time is settled now
        outcome.promotion = promote_best(ctx)
        if outcome.promotion is not None:
            describe_study(ctx, parent, version=outcome.promotion)
    return outcome


def claim_finish(ctx: SweepContext, *, interrupted: bool) -> bool | None:
    """Whether the study was already finished with these trials (False: this worker finishes
    it now), or None when other workers' trials still run (the last of them finishes)."""
    with budget_lock(ctx.url, ctx.name):  # one worker finishes the study, not two
        running = len(running_elsewhere(ctx.study))
        if running:
            ctx.console.print(f"this worker stops; {running} trial(s) still run in other "
                              "workers, and the last of them finishes the study")
            return None
        done = sum(t.state.is_finished() for t in ctx.study.get_trials(deepcopy=False))
        mark = [done, "KILLED" if interrupted else "FINISHED"]
        if ctx.study.user_attrs.get(FINISHED_AT) == mark:
            return True
        ctx.study.set_user_attr(FINISHED_AT, mark)
        return False


def promote_best(ctx: SweepContext) -> Promotion | None:
    """Promote the study's best adapter; a tracking server away for now is said, not raised."""
    from harness.tracking.outbox import is_transient
    from harness.tracking.promotion import promote_study

    try:
        return promote_study(ctx.study, console=ctx.console, tracking_uri=ctx.uri)
    except Exception as err:
        if not is_transient(err):
            raise
        ctx.console.print(f"[red]could not promote now[/] ({str(err).splitlines()[0]}); "
                          f"when the tracking server is back: harness promote --study "
                          f"{ctx.name}")
        return None


def end_parent(ctx: SweepContext, parent: StudyRun, *, interrupted: bool, best: Any) -> None:
    """The study's plots and best trial on the parent run, which ends."""
    from harness.sweep.plots import write_plots

    plots = ctx.out_root / "plots"
    skipped = write_plots(ctx.study, plots)
    tags, metrics = {"trials.total": str(len(ctx.study.trials))}, {}
    for name, why in skipped.items():
        tags[f"plot.{name}.skipped"] = why[:500]
    if best is not None:
        tags["best_trial"] = str(best.number)
        tags["best_run_id"] = best.user_attrs.get(RUN_ID, "")
        metrics = {f"best/{o}": v for o, v in zip(ctx.objectives, best.values, strict=True)}
        metrics |= headline(best)
    tags[NOTE] = study_note(ctx.study, experiment_id=parent.experiment_id,
                            objective=ctx.objectives[0])
    parent.end("KILLED" if interrupted else "FINISHED", tags=tags, metrics=metrics, plots=plots)
    if best is not None and best.user_attrs.get(RUN_ID):
        _best_effort(lambda: mark_best(parent.client, experiment_id=parent.experiment_id,
                                       study=ctx.name, run_id=best.user_attrs[RUN_ID]))


HEADLINE = (TEST_LOSS, BASE_TEST_LOSS, RETENTION_CHANGE, SELECTED_EPOCH)
"""The best trial's figures the study's run carries, beside its objective and task metrics."""


def headline(best: FrozenTrial) -> dict[str, float]:
    """The best trial's number and held-out figures (its test task metrics and the base
    model's among them) as the study run's `best/` metrics: the folded study row in the runs
    table then says who won and by how much."""
    figures = {k: v for k, v in best.user_attrs.items() if isinstance(v, int | float)
               and not isinstance(v, bool) and (k in HEADLINE or k.startswith(
                   (held_out_metric(""), held_out_metric("", base=True))))}
    return {"best/trial": float(best.number), **{f"best/{k}": float(v)
                                                 for k, v in figures.items()}}


def describe_study(ctx: SweepContext, parent: StudyRun, *, version: Promotion) -> None:
    """The parent run's description again, now with the registered version."""
    note = study_note(ctx.study, experiment_id=parent.experiment_id,
                      objective=ctx.objectives[0],
                      version=(version.model, version.version, version.alias))
    _best_effort(lambda: parent.client.set_tag(parent.run_id, NOTE, note))


def _best_effort(write: Callable[[], Any]) -> None:
    """A write the study does not depend on: a tracking server away for now is let be."""
    from harness.tracking.outbox import is_transient

    try:
        write()
    except Exception as err:
        if not is_transient(err):
            raise
