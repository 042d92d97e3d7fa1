"""One trial from the parent's side: its parameters and directory, its MLflow run, the runner
launching it while its evals are reported and pruned, and what Optuna is told at the end.

A trial stopped by Ctrl-C or a full disk, or whose result could not all be written to MLflow
(a full disk), is not judged: it is queued again and never counts against the budget.
"""

from __future__ import annotations

import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, DiskFullError, disk_full, is_disk_full
from harness.faults import for_trial
from harness.study.budget import STOPPED, budget_lock, requeue
from harness.study.liveness import worker_id
from harness.study.record import OUTPUT_DIR, RUN_ID, WORKER
from harness.study.storage import storage_of, trial_id
from harness.sweep.context import SweepContext
from harness.sweep.deliveries import Deliveries
from harness.sweep.judge import PruneWatch, Verdict, judge
from harness.sweep.runner import TrialResult, run_trial
from harness.sweep.slots import Slot
from harness.sweep.telling import tell
from harness.sweep.train import write_trial_config
from harness.tracking.runs import StudyRun, TrialRun
from harness.trialdir import prepare_for_sweep


class Objective:
    """Runs the trials Optuna hands out, in any slot, and tells Optuna how each ended."""

    def __init__(self, ctx: SweepContext, *, parent: StudyRun, deliveries: Deliveries) -> None:
        self.ctx = ctx
        self.parent = parent
        self.deliveries = deliveries

    def __call__(self, trial: Any, slot: Slot) -> None:
        """Run ``trial`` in ``slot`` to its end; Optuna is told how it ended, whatever happens."""
        ctx = self.ctx
        try:
            values = ctx.space.suggest(trial)
        except Exception:
            tell(ctx, trial, Verdict("FAIL", "crash", log_tail=traceback.format_exc()))
            return
        ctx.view.start(trial.number, values, where=slot.label)
        out = ctx.out_root / f"trial-{trial.number:04d}"
        try:
            config = ctx.space.train_config(values, output_dir=str(out), tracking_uri=ctx.uri)
        except ConfigError as err:
            tell(ctx, trial, Verdict("FAIL", "config", log_tail=str(err)))
            return
        run = None
        try:
            self._prepare(config, out=out)
            run = self._open_run(trial, config, slot=slot)
            if run.run_id:
                trial.set_user_attr(RUN_ID, run.run_id)
            trial.set_user_attr(OUTPUT_DIR, str(out))
            result = self._train(trial, run, out=out, slot=slot)
            run.finish(result, out)
        except Exception as err:  # a harness bug in one trial must not end the sweep
            self._crashed(trial, err, run=run, out=out)
            return
        self._settle(trial, result, run, out=out)

    def _prepare(self, config: Any, *, out: Path) -> None:
        """The trial's directory made ready and its config written."""
        moved = prepare_for_sweep(out)
        if moved is not None:
            self.ctx.console.print(f"{out} held files of an earlier study named "
                                   f"{self.ctx.name}: moved to {moved}")
        write_trial_config(config, out)

    def _open_run(self, trial: Any, config: Any, *, slot: Slot) -> TrialRun:
        """The trial's MLflow run, its writes held while the server is away."""
        run = TrialRun(config, run_name=f"trial-{trial.number}",
                       parent_run_id=self.parent.run_id, exp_id=self.parent.experiment_id,
                       tags={"optuna.study": self.ctx.name, "optuna.trial": str(trial.number),
                             **({"harness.slot": slot.label} if slot.label else {})})
        self.deliveries.add(run.outbox)
        return run

    def _train(self, trial: Any, run: TrialRun, *, out: Path, slot: Slot) -> TrialResult:
        ctx = self.ctx
        single = len(ctx.objectives) == 1
        watch = PruneWatch(trial, objective=ctx.objectives[0] if single else None,
                           may_prune=ctx.space.study.may_prune)

        def on_event(event: dict[str, Any]) -> None:
            run.on_event(event)
            ctx.view.on_event(trial.number, event)
            watch.on_event(event)

        def should_stop() -> str | None:
            if ctx.control.stop.is_set():
                return "interrupted"
            return "pruned" if watch.pruned else None

        def on_spawn(pgid: int) -> None:
            storage_of(ctx.study).set_trial_system_attr(trial_id(trial), WORKER,
                                                        worker_id(pgid))

        result = run_trial(out, on_event=on_event, should_stop=should_stop, on_spawn=on_spawn,
                           timeout=ctx.space.study.trial_timeout, threads=slot.cpu_threads,
                           env={**for_trial(trial.number), **slot.env()})
        if result.reason == "pruned" and watch.why:
            # the child only knows it got a SIGTERM; the reason is the parent's
            result = replace(result, message=watch.why)
        return result

    def _crashed(self, trial: Any, err: Exception, *, run: TrialRun | None, out: Path) -> None:
        full = is_disk_full(err)
        if full:
            self.ctx.control.halt(disk_full(err, out))
        told = tell(self.ctx, trial, Verdict("FAIL", "disk_full" if full else "crash",
                                             log_tail=traceback.format_exc()), run=run)
        if run is not None:
            run.terminate("FAILED")
        if full and told:
            self._requeue(trial)

    def _settle(self, trial: Any, result: TrialResult, run: TrialRun, *, out: Path) -> None:
        """Judge the trial and tell Optuna; queue it again when it was stopped, not judged."""
        control = self.ctx.control
        if result.reason == "disk_full":
            failed = result.last("failed") or {}
            control.halt(DiskFullError(failed.get("where") or out))
        if run.outbox.disk_full is not None:
            control.halt(run.outbox.disk_full)
        verdict = judge(result, self.ctx.objectives)
        if control.halted is not None and (verdict.reason in STOPPED or run.outbox.disk_full):
            verdict = Verdict("FAIL", "disk_full")
        failed = verdict.state == "FAIL" and verdict.reason not in STOPPED
        verdict = replace(verdict, log_tail=result.log_tail if failed else "",
                          message=result.message)
        told = tell(self.ctx, trial, verdict, run=run)
        if told and verdict.reason in STOPPED:
            self._requeue(trial)

    def _requeue(self, trial: Any) -> None:
        """Queue a stopped trial again now (under the budget lock: a worker starting meanwhile
        may queue it too); if the storage cannot take it (its disk is full), the next sweep or
        worker to start does (`requeue_stopped`)."""
        study = self.ctx.study
        try:
            with budget_lock(self.ctx.url, self.ctx.name):
                requeue(study, study.get_trials(deepcopy=False)[trial.number])
        except Exception as err:
            if not is_disk_full(err):
                raise
