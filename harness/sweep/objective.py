"""One trial from the parent's side: its parameters and directory, its MLflow run, the runner
launching it while its evals are reported and pruned, and what Optuna is told at the end.

A trial stopped by Ctrl-C or a full disk, or whose result could not all be written to MLflow
(a full disk), is not judged: it is queued again and never counts against the budget.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config import TrainConfig
from harness.errors import ConfigError, DiskFullError, disk_full, is_disk_full
from harness.faults import for_trial
from harness.launch.command import write_trial_config
from harness.launch.retry import halved, retry_note
from harness.launch.runner import Launch, Watcher, run_trial
from harness.protocol import Eval, Event, Failed, Step, StopRequest, TrialResult
from harness.space.params import ALPHA_PER_RANK
from harness.study.budget import STOPPED, budget_lock, requeue
from harness.study.handles import storage_of, trial_id
from harness.study.liveness import worker_id
from harness.study.record import OUTPUT_DIR, RUN_ID, WORKER, StudyRecord
from harness.sweep.context import SweepContext
from harness.sweep.deliveries import Deliveries
from harness.sweep.judge import PruneWatch, Verdict, Why, judge
from harness.sweep.sizing import Sized, Sizing, keep_size
from harness.sweep.slots import Slot
from harness.sweep.telling import tell
from harness.tracking.study_run import StudyRun
from harness.tracking.trial_run import ESTIMATED_METRIC, RETRY_TAG, TrialRun
from harness.trialdir import prepare_for_sweep, start_again

if TYPE_CHECKING:
    import optuna

Launcher = Callable[[Launch, Watcher], TrialResult]
"""Runs one trial process to its end, telling a watcher as it goes."""


class Objective:
    """Runs the trials Optuna hands out, in any slot, and tells Optuna how each ended."""

    def __init__(self, ctx: SweepContext, *, parent: StudyRun, deliveries: Deliveries,
                 launch: Launcher = run_trial, sizing: Sizing | None = None) -> None:
        self.ctx = ctx
        self.parent = parent
        self.deliveries = deliveries
        self.launch = launch
        """How a trial process is run and followed (the runner; a stand-in in tests)."""
        self.sizing = sizing or Sizing(limit_gb=ctx.space.study.memory_limit_gb)
        """Each trial's memory estimate against its slot's."""
        self.constrained = StudyRecord.load(ctx.study).memory_constraint
        """Record the estimate as an Optuna constraint (see `StudyRecord`)."""

    def __call__(self, trial: optuna.Trial, slot: Slot) -> None:
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
            sized = self._size(trial, config, slot)
            self._prepare(config, out=out)
            run = self._open_run(trial, config, slot=slot)
            if run.run_id:
                trial.set_user_attr(RUN_ID, run.run_id)
            trial.set_user_attr(OUTPUT_DIR, str(out))
            self._placed_run(trial, run, config=config, sized=sized, out=out, slot=slot)
        except Exception as err:  # a harness bug in one trial must not end the sweep
            self._crashed(trial, err, run=run, out=out)

    def _placed_run(self, trial: optuna.Trial, run: TrialRun, *, config: TrainConfig,
                    sized: Sized, out: Path, slot: Slot) -> None:
        """The trial run where its estimate fits (on a slot of shared GPUs: once one has room
        for it), then judged; or ended as too big."""
        if sized.estimate is not None:
            run.log_metric(ESTIMATED_METRIC, sized.estimate.measured_like_mb)
        if sized.too_big:
            self._too_big(trial, sized, run=run)
            return
        with self._gpus_for(sized, slot) as placed:
            if not placed:  # the sweep stopped while the trial waited for room
                why: Why = "disk_full" if self.ctx.control.halted is not None else \
                    "interrupted"
                told = tell(self.ctx, trial, Verdict("FAIL", why), run=run)
                run.terminate("KILLED")
                if told:
                    self._requeue(trial)
                return
            if slot.book is not None:
                run.set_tag("harness.gpus", ",".join(slot.gpus))
            result = self._train(trial, run, config=config, out=out, slot=slot)
            run.finish(result, out)
        self._settle(trial, result, run, out=out)

    @contextlib.contextmanager
    def _gpus_for(self, sized: Sized, slot: Slot) -> Iterator[bool]:
        """The slot's GPUs while the trial runs: booked for its estimate on a slot of shared
        GPUs (a trial not sized takes a whole GPU); False when the sweep stopped first."""
        if slot.book is None:
            yield True
            return
        need = sized.estimate.total_mb if sized.estimate else \
            slot.book.largest_mb(slot.processes)
        with slot.book.placed(need, slot.processes, stop=self.ctx.control.stop) as gpus:
            slot.gpus = gpus or []
            yield gpus is not None

    def _size(self, trial: optuna.Trial, config: TrainConfig, slot: Slot) -> Sized:
        """The trial's estimate, kept with it (and as its constraint)."""
        sized = self.sizing.size(config, slot)
        keep_size(trial, sized, constrained=self.constrained)
        return sized

    def _too_big(self, trial: optuna.Trial, sized: Sized, *, run: TrialRun) -> None:
        """End a trial that cannot fit before any process starts: pruned, so that TPE
        learns from it (with its constraint), and counted apart in the summary."""
        message = sized.message()
        run.set_tag("trial.reason", "too_big")
        run.set_tag("trial.message", message[:5000])
        tell(self.ctx, trial, Verdict("PRUNED", "too_big", message=message), run=run)
        run.terminate("KILLED")

    def _prepare(self, config: TrainConfig, *, out: Path) -> None:
        """The trial's directory made ready and its config written."""
        moved = prepare_for_sweep(out)
        if moved is not None:
            self.ctx.console.print(f"{out} held files of an earlier study named "
                                   f"{self.ctx.name}: moved to {moved}")
        write_trial_config(config, out)

    def _open_run(self, trial: optuna.Trial, config: TrainConfig, *, slot: Slot) -> TrialRun:
        """The trial's MLflow run, its writes held while the server is away."""
        run = TrialRun(config, run_name=f"trial-{trial.number}",
                       parent_run_id=self.parent.run_id, exp_id=self.parent.experiment_id,
                       searched={k: v for k, v in trial.params.items() if k == ALPHA_PER_RANK},
                       tags={"optuna.study": self.ctx.name, "optuna.trial": str(trial.number),
                             **({"harness.slot": slot.label} if slot.label else {})})
        self.deliveries.add(run.outbox)
        return run

    def _train(self, trial: optuna.Trial, run: TrialRun, *, config: TrainConfig, out: Path,
               slot: Slot) -> TrialResult:
        """The trial's run; out of memory, once more in smaller forward passes, in what is
        left of its `trial_timeout`."""
        started = time.monotonic()
        result = self._attempt(trial, SweepWatch(self.ctx, trial, run=run), out=out, slot=slot,
                               timeout=self._time_left(started))
        smaller = halved(config) if result.reason == "oom" else None
        left = self._time_left(started)
        if smaller is None or result.interrupted or self.ctx.control.stop.is_set() or \
                (left is not None and left <= 0):
            return result
        done = max((e.step for e in result.events if isinstance(e, Step | Eval)), default=0)
        note = retry_note(config, smaller, after=done)
        self.ctx.console.print(f"trial {trial.number}: {note}")
        trial.set_user_attr(RETRY_TAG, note)
        run.retried(note, logged_until=done, seen=result.events)
        start_again(out)
        write_trial_config(smaller, out)
        watch = SweepWatch(self.ctx, trial, run=run, reported_until=done)
        return self._attempt(trial, watch, out=out, slot=slot, timeout=left)

    def _time_left(self, started: float) -> float | None:
        """Seconds left of the trial's `trial_timeout` (None: no limit)."""
        limit = self.ctx.space.study.trial_timeout
        return None if limit is None else limit - (time.monotonic() - started)

    def _attempt(self, trial: optuna.Trial, watch: SweepWatch, *, out: Path, slot: Slot,
                 timeout: float | None) -> TrialResult:
        result = self.launch(Launch(out, timeout=timeout, threads=slot.cpu_threads,
                                    env={**for_trial(trial.number), **slot.env()}), watch)
        if result.reason == "pruned" and watch.prune.why:
            # the child only knows it got a SIGTERM; the reason is the parent's
            result = replace(result, message=watch.prune.why)
        return result

    def _crashed(self, trial: optuna.Trial, err: Exception, *, run: TrialRun | None,
                 out: Path) -> None:
        full = is_disk_full(err)
        if full:
            self.ctx.control.halt(disk_full(err, out))
        told = tell(self.ctx, trial, Verdict("FAIL", "disk_full" if full else "crash",
                                             log_tail=traceback.format_exc()), run=run)
        if run is not None:
            run.terminate("FAILED")
        if full and told:
            self._requeue(trial)

    def _settle(self, trial: optuna.Trial, result: TrialResult, run: TrialRun, *,
                out: Path) -> None:
        """Judge the trial and tell Optuna; queue it again when it was stopped, not judged."""
        control = self.ctx.control
        if result.reason == "disk_full":
            failure = result.last(Failed)
            control.halt(DiskFullError((failure.where if failure else None) or out))
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

    def _requeue(self, trial: optuna.Trial) -> None:
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


class SweepWatch(Watcher):
    """A sweep's trial as it runs: its events to its MLflow run, the live table and the
    pruner; stopped when the pruner cuts it or the sweep stops."""

    def __init__(self, ctx: SweepContext, trial: optuna.Trial, *, run: TrialRun,
                 reported_until: int = -1) -> None:
        self.ctx = ctx
        self.trial = trial
        self.run = run
        single = len(ctx.objectives) == 1
        self.prune = PruneWatch(trial, objective=ctx.objectives[0] if single else None,
                                may_prune=ctx.space.study.may_prune,
                                reported_until=reported_until)

    def spawned(self, pgid: int) -> None:
        storage_of(self.ctx.study).set_trial_system_attr(trial_id(self.trial), WORKER,
                                                         worker_id(pgid))

    def seen(self, event: Event) -> None:
        self.run.on_event(event)
        self.ctx.view.on_event(self.trial.number, event)
        self.prune.on_event(event)

    def stop_for(self) -> StopRequest | None:
        if self.ctx.control.stop.is_set():
            return "interrupted"
        return "pruned" if self.prune.pruned else None
