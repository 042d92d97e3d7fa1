"""`harness sweep SPACE.yaml`: an Optuna study whose trials are accelerate-launched fine-tunes.

The parent asks Optuna for a trial, runs it with the runner, reports every eval event to Optuna,
stops the child's process group when the pruner says so, and tells Optuna how it ended:

| trial ended      | Optuna                       | MLflow run                |
| ---------------- | ---------------------------- | ------------------------- |
| finished         | COMPLETE with the objective  | FINISHED                  |
| pruned           | PRUNED                       | KILLED, reason `pruned`   |
| oom              | PRUNED, reason `oom`         | FAILED                    |
| nan, crash, timeout | FAIL, reason + log tail   | FAILED, log tail artifact |
| Ctrl-C           | FAIL `interrupted`, re-queued; the sweep stops | KILLED  |

No trial's failure stops the sweep. Running the same command again continues the study.

Many workers can share one study (`harness worker`, or `--parallel` / `--gpus` slots in one
process): each asks for its next trial under the study's budget lock, so together they start
exactly the study's total, and the last one to finish draws the plots and promotes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from harness.errors import ConfigError, DiskFullError, HarnessError, disk_full, is_disk_full
from harness.names import check_name
from harness.procs import stop_signals_as_interrupt
from harness.study.storage import (
    REASON,
    RUN_ID,
    STOPPED,
    WORKER,
    Heartbeat,
    beat,
    best_trial,
    budget_lock,
    heartbeat_seconds,
    load_study,
    open_storage,
    open_study,
    reason_of,
    recover_abandoned,
    remaining,
    requeue,
    requeue_stopped,
    storage_url,
    worker_id,
)
from harness.sweep.pruners import describe as describe_pruner
from harness.sweep.runner import TrialResult, run_trial
from harness.sweep.slots import Slot, make_slots
from harness.sweep.space import SpaceFile, load_space, parse_space, space_changes
from harness.sweep.train import write_trial_config
from harness.sweep.view import SweepView, failure_lines, print_summary
from harness.tracking.outbox import RUN
from harness.tracking.runs import StudyRun, TrialRun, check_tracking, close_left_open, tracking_uri
from harness.trialdir import prepare_for_sweep
from harness.urls import redact

LOG_TAIL = "harness.log_tail"
WAIT = object()
"""_next_trial's answer while the budget is spent but trials of other workers still run."""
DRAIN_SECONDS = float(os.environ.get("HARNESS_MLFLOW_DRAIN_SECONDS", "120"))
SPACE_TEXT = "space_text"
FINISHED_AT = "harness.finished_at"
"""Finished trials when a worker last finished the study (plots, parent run, promotion)."""


@dataclass
class SweepOptions:
    """Command-line overrides of the space file, and how this process runs trials."""

    trials: int | None = None
    """The study's total (sweep); at most this many trials in this process (worker)."""
    timeout: float | None = None
    study: str | None = None
    storage: str | None = None
    tracking_uri: str | None = None
    enqueue_best_from: str | None = None
    promote: bool | None = None
    parallel: int = 1
    """Trials run at once by this process, on the CPU or sharing the visible GPUs."""
    gpus: list[str] = field(default_factory=list)
    """One trial per listed GPU at a time, or per training.num_processes of them (the
    CUDA_VISIBLE_DEVICES of each child); ["auto"] claims GPUs no other worker here holds."""


@dataclass
class SweepOutcome:
    study: Any
    interrupted: bool
    promotion: Any = None
    failed: list[str] = field(default_factory=list)
    """Why the study's trials ended, when none of them completed."""


class Sweep:
    """One process's part in a study: runs trials until the study has enough or time is up."""

    def __init__(self, space: SpaceFile, options: SweepOptions, console: Console, *,
                 joining: bool = False, storage: Any = None) -> None:
        self.space, self.options, self.console = space, options, console
        self.joining = joining
        self.name = check_name(space.study_name if options.study is None else options.study,
                               "study name")
        self.uri = tracking_uri(options.tracking_uri)
        check_tracking(self.uri)  # before anything is created or trained
        self.url = storage_url(options.storage)
        self.storage = storage or open_storage(self.url)
        self.study = open_study(self.name, self.storage, space.study)
        # A sweep sets the study's total (its --trials, else the file's); workers follow it.
        self.total = (int(self.study.user_attrs.get("trials", space.study.trials)) if joining
                      else options.trials or space.study.trials)
        self.own_limit = options.trials if joining else None
        self.objectives = space.study.objectives
        self.view = SweepView(self.name)
        self.out_root = (Path(space.study.output_dir) / self.name).resolve()
        self.stop = threading.Event()
        self._ask_lock = threading.Lock()
        self.started = 0
        self.outboxes: list[Any] = []
        """MLflow writes of this process's trials, retried while the server is away."""
        self._box_lock = threading.Lock()
        self.halted: DiskFullError | None = None
        """Set when a disk filled up: the sweep stops and reports it."""

    @classmethod
    def join(cls, options: SweepOptions, console: Console) -> Sweep:
        """A worker for an existing study: its space comes from the study itself."""
        if not options.study:
            raise HarnessError("harness worker needs --study NAME")
        storage = open_storage(storage_url(options.storage))
        study = load_study(check_name(options.study, "study name"), storage)
        text = study.user_attrs.get(SPACE_TEXT)
        if not text:
            raise HarnessError(f"study {options.study!r} was not created by `harness sweep` "
                               "(it keeps no search space); create it with `harness sweep "
                               "SPACE.yaml --storage URL --no-run`")
        space = parse_space(text, study.user_attrs.get("space_path", options.study))
        options.tracking_uri = options.tracking_uri or os.environ.get(
            "MLFLOW_TRACKING_URI") or study.user_attrs.get("tracking_uri")
        shared = storage_url(options.storage).startswith(("postgres", "mysql"))
        if shared and not options.tracking_uri.startswith(("http://", "https://")):
            console.print(f"[yellow]warning:[/] the study is shared but its runs go to "
                          f"{redact(options.tracking_uri)}, a store on this machine only; set "
                          "MLFLOW_TRACKING_URI to the team's MLflow server")
        return cls(space, options, console, joining=True, storage=storage)

    def create(self) -> None:
        """Everything a study needs before trials run: settings kept with the study (for
        workers, resumes and `harness promote`), the parent run, queued trials."""
        if not self.joining:
            self._remember_settings()
        self.parent = StudyRun(uri=self.uri, study=self.name, space_text=self.space.text,
                               params=self._study_params())
        if not self.joining:
            self._enqueue()

    def run(self) -> SweepOutcome:
        from harness.models import resolve_model

        with stop_signals_as_interrupt():  # docker stop, a batch scheduler, a closed terminal
            resolve_model(self.space.base.get("model", "smollm2-135m-instruct"))
            self.preflight()
            self.create()
            interrupted = self._work(make_slots(
                gpus=self.options.gpus, parallel=self.options.parallel,
                per_trial=self.space.processes_per_trial))
            return self._finish(interrupted)

    def preflight(self, *, data: bool = True) -> None:
        """What every trial would trip over, found once before any trial starts: a search
        space edited in a way the study cannot follow, and (with ``data``; a machine that only
        creates the study may not hold the data) data that cannot train."""
        if not self.joining:
            changed = space_changes(self.space, self.study.get_trials(deepcopy=False))
            if changed:
                raise ConfigError([*changed, f"Optuna cannot change a parameter's choices, kind "
                                   f"or log scale within one study: run this space as a new "
                                   f"study (--study {self.name}-2), or restore the file"],
                                  source=self.space.path)
        if data:
            self._check_data()

    def _check_data(self) -> None:
        """The data of every distinct data setting the space can give (searched data keys
        at each edge), checked as a trial checks it; a problem is named by file and record,
        and by the searched values that lead to it."""
        from harness.data.ready import ready_for_training
        from harness.errors import DataError
        from harness.models import training_tokenizer

        seen: set[str] = set()
        for values in self.space.edge_values():
            config = self.space.train_config(values, output_dir="unused")
            key = json.dumps([config.model, asdict(config.data)], sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            try:
                ready = ready_for_training(config.data, training_tokenizer(config.model))
            except DataError as err:
                searched = {k: v for k, v in values.items() if k.startswith("data.")}
                if not searched:
                    raise
                raise HarnessError(f"with {', '.join(f'{k}={v}' for k, v in searched.items())}"
                                   f" (searched): {err}") from None
            self.console.print(f"data {config.data.path}: {len(ready.train)} train and "
                               f"{len(ready.evals)} eval examples, checked")

    def _remember_settings(self) -> None:
        for key, value in {"space_path": str(Path(self.space.path).resolve()),
                           SPACE_TEXT: self.space.text, "trials": self.total,
                           "registry_model": self.space.model_name,
                           "registry_margin": self.space.registry.margin,
                           "objectives": self.objectives, "tracking_uri": self.uri}.items():
            self.study.set_user_attr(key, value)

    def _study_params(self) -> dict[str, str]:
        s = self.space.study
        return {"sampler": s.sampler, "seed": str(s.seed), "pruner": s.pruner,
                "pruner_settings": describe_pruner(s),
                "objective": ",".join(self.objectives), "trials": str(self.total),
                "space_file": self.space.path, "search": ", ".join(p.name for p in
                                                                   self.space.params)}

    def _enqueue(self) -> None:
        if self.options.enqueue_best_from:
            other = load_study(self.options.enqueue_best_from, self.storage)
            best = best_trial(other)
            if best is None:
                raise HarnessError(f"--enqueue-best-from {other.study_name}: that study has no "
                                   "COMPLETE trial yet")
            names = {p.name for p in self.space.params}
            self.study.enqueue_trial({k: v for k, v in best.params.items() if k in names},
                                     skip_if_exists=True)
        for params in self.space.enqueue:
            self.study.enqueue_trial(self.space.as_params(params), skip_if_exists=True)

    def _work(self, slots: list[Slot]) -> bool:
        """Run the slots until the budget is met; True when Ctrl-C (or SIGTERM) stopped it."""
        limit = self.options.timeout or self.space.study.timeout
        self.deadline = time.monotonic() + limit if limit else math.inf
        # Each slot says when it is done through an Event: a Thread.join() that Ctrl-C
        # interrupts can leave the thread marked dead while it still runs (CPython 3.11).
        done = [threading.Event() for _ in slots]
        threads = [threading.Thread(target=self._slot_loop, args=(slot, end), name=slot.label,
                                    daemon=True) for slot, end in zip(slots, done, strict=True)]
        with Live(self.view, console=self.console, refresh_per_second=2, transient=False):
            self._recover(stopped=True)
            for thread in threads:
                thread.start()
            try:
                self._watch(done)
            except KeyboardInterrupt:
                self.stop.set()
                _wait_through_interrupts(done)
        return self.stop.is_set()

    def _watch(self, done: list[threading.Event]) -> None:
        """Wait for the slots; meanwhile notice workers that died elsewhere."""
        last = time.monotonic()
        while not all(end.is_set() for end in done):
            time.sleep(0.5)
            full = next((box.disk_full for box in self.outboxes if box.disk_full), None)
            if full is not None:
                self._halt(full)
            if time.monotonic() - last > heartbeat_seconds():
                self._recover()
                self._deliver()
                last = time.monotonic()

    def _deliver(self) -> None:
        """Retry MLflow writes held while the server was away; forget runs fully delivered."""
        with self._box_lock:
            boxes = list(self.outboxes)
        for box in boxes:
            box.flush()
        with self._box_lock:
            self.outboxes = [box for box in self.outboxes if not box.done]

    def _recover(self, *, stopped: bool = False) -> None:
        """Fail and retry the trials of dead workers; with ``stopped``, also queue again the
        stopped trials (Ctrl-C, disk full) that a sweep stopped before it could."""
        try:
            numbers = recover_abandoned(self.study)
            queued, closed = [], []
            if stopped:
                with budget_lock(self.url, self.name):
                    queued = requeue_stopped(self.study)
                closed = close_left_open(self.uri, self.name, ended={
                    t.number: reason_of(t) for t in self.study.get_trials(deepcopy=False)
                    if t.state.is_finished()})
        except Exception as err:  # the storage may be briefly unreachable; try again later
            if is_disk_full(err) and stopped:  # at the start: nothing runs yet
                raise disk_full(err, self.url) from err
            if is_disk_full(err):
                self._halt(disk_full(err, self.url))
                return
            self.console.print(f"could not check for dead workers: {err}")
            return
        if closed:
            self.console.print(f"{len(closed)} MLflow run(s) of finished trials were left "
                               "RUNNING by a sweep that could not end them: ended now")
        for number in numbers:
            self.console.print(f"trial {number} was left running by a dead worker: marked "
                               "FAIL (abandoned), its MLflow run FAILED, its parameters "
                               "queued again")
        for number in queued:
            self.console.print(f"trial {number} was stopped before it finished: its "
                               "parameters are queued again")

    def _slot_loop(self, slot: Slot, done: threading.Event) -> None:
        try:
            self._run_slot(slot)
        finally:
            done.set()

    def _run_slot(self, slot: Slot) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                trial = self._next_trial()
            except Exception as err:  # the storage went away for a moment
                if is_disk_full(err):
                    self._halt(disk_full(err, self.url))
                    return
                failures += 1
                self.console.print(f"[red]cannot ask the study for a trial[/] ({err}); "
                                   f"{'giving up' if failures > 5 else 'trying again in 10 s'}")
                if failures > 5:
                    return
                self.stop.wait(10)
                continue
            if trial is None:
                return
            if trial is WAIT:
                self.stop.wait(heartbeat_seconds())
                self._recover()
                continue
            failures = 0
            try:
                with Heartbeat(self.study, trial._trial_id):
                    self._run_one(trial, slot)
            except Exception as err:  # e.g. the trial was taken over after a storage outage
                if is_disk_full(err):
                    self._halt(disk_full(err, self.url))
                    return
                self.console.print(f"[red]trial {trial.number}: the worker lost track of it[/] "
                                   f"({type(err).__name__}: {err})")

    def _next_trial(self) -> Any:
        """A trial while the budget allows (asked under the study's budget lock); WAIT while
        the budget is spent but other workers' trials still run (one may die and be retried);
        None when this slot is done."""
        with self._ask_lock, budget_lock(self.url, self.name):
            if self.stop.is_set() or time.monotonic() >= self.deadline:
                return None
            if self.own_limit is not None and self.started >= self.own_limit:
                return None
            if self.joining:  # a sweep may have changed the total since
                self.total = int(self.study.user_attrs.get("trials", self.total))
            if not remaining(self.study, self.total):
                return WAIT if self._running_elsewhere() else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "heartbeat ... with optimize"
                trial = self.study.ask()
            self.study._storage.set_trial_system_attr(trial._trial_id, WORKER, worker_id())
            beat(self.study, trial._trial_id)  # a trial without a heartbeat is never judged
            self.started += 1
            return trial

    def _running_elsewhere(self) -> list[Any]:
        """RUNNING trials of other workers (not those this process runs or lost track of)."""
        import optuna

        me = worker_id()
        running = self.study.get_trials(deepcopy=False,
                                        states=(optuna.trial.TrialState.RUNNING,))
        return [t for t in running
                if {k: (t.system_attrs.get(WORKER) or {}).get(k) for k in ("host", "pid")}
                != {"host": me["host"], "pid": me["pid"]}]

    def _run_one(self, trial: Any, slot: Slot) -> None:
        try:
            values = self.space.suggest(trial)
        except Exception:
            self._tell(trial, "FAIL", "crash", None, log_tail=traceback.format_exc())
            return
        self.view.start(trial.number, values, where=slot.label)
        out = self.out_root / f"trial-{trial.number:04d}"
        try:
            config = self.space.train_config(values, output_dir=str(out), tracking_uri=self.uri)
        except ConfigError as err:
            self._tell(trial, "FAIL", "config", None, log_tail=str(err))
            return
        run = None
        try:
            moved = prepare_for_sweep(out)
            if moved is not None:
                self.console.print(f"{out} held files of an earlier study named {self.name}: "
                                   f"moved to {moved}")
            write_trial_config(config, out)
            run = TrialRun(config, run_name=f"trial-{trial.number}",
                           parent_run_id=self.parent.run_id, exp_id=self.parent.experiment_id,
                           tags={"optuna.study": self.name, "optuna.trial": str(trial.number),
                                 **({"harness.slot": slot.label} if slot.label else {})})
            with self._box_lock:
                self.outboxes.append(run.outbox)
            if run.run_id:
                trial.set_user_attr(RUN_ID, run.run_id)
            trial.set_user_attr("output_dir", str(out))
            result = self._train(trial, out, run, slot)
            run.finish(result, out)
        except Exception as err:  # a harness bug in one trial must not end the sweep
            full = is_disk_full(err)
            if full:
                self._halt(disk_full(err, out))
            told = self._tell(trial, "FAIL", "disk_full" if full else "crash", None,
                              log_tail=traceback.format_exc(), run=run)
            if run is not None:
                run.terminate("FAILED")
            if full and told:
                self._requeue(trial)
            return
        self._judge_and_tell(trial, result, run, out=out)

    def _judge_and_tell(self, trial: Any, result: TrialResult, run: TrialRun, *,
                        out: Path) -> None:
        """Tell Optuna how the trial ended. A trial stopped by Ctrl-C or a full disk, or whose
        result could not all be written to MLflow (a full disk), is not judged: it is queued
        again and never counts against the budget."""
        if result.reason == "disk_full":
            failed = result.last("failed") or {}
            self._halt(DiskFullError(failed.get("where") or out))
        if run.outbox.disk_full is not None:
            self._halt(run.outbox.disk_full)
        state, reason, objective_values = judge(result, self.objectives)
        if self.halted is not None and (reason in STOPPED or run.outbox.disk_full):
            state, reason, objective_values = "FAIL", "disk_full", None
        tail = result.log_tail if state == "FAIL" and reason not in STOPPED else ""
        told = self._tell(trial, state, reason, objective_values, log_tail=tail,
                          message=result.message, run=run)
        if told and reason in STOPPED:
            self._requeue(trial)

    def _requeue(self, trial: Any) -> None:
        """Queue a stopped trial again now (under the budget lock: a worker starting meanwhile
        may queue it too); if the storage cannot take it (its disk is full), the next sweep or
        worker to start does (`requeue_stopped`)."""
        try:
            with budget_lock(self.url, self.name):
                requeue(self.study, self.study.get_trials(deepcopy=False)[trial.number])
        except Exception as err:
            if not is_disk_full(err):
                raise

    def _halt(self, error: DiskFullError) -> None:
        """Stop the sweep for a full disk: trial after trial would fail on it. The running
        trials are stopped and queued again; the first error is the one reported."""
        with self._box_lock:
            first = self.halted is None
            if first:
                self.halted = error
        if first:
            self.console.print(f"[red]disk full at {error.where or 'a disk'}[/]: stopping the "
                               "sweep (its running trials are queued again)")
        self.stop.set()

    def _train(self, trial: Any, out: Path, run: TrialRun, slot: Slot) -> TrialResult:
        storage, single = self.study._storage, len(self.objectives) == 1
        pruned, total = [False], [math.inf]

        def on_event(event: dict[str, Any]) -> None:
            run.on_event(event)
            self.view.on_event(trial.number, event)
            if event.get("event") == "started":
                total[0] = event["total_steps"]  # the final eval is the result, not a rung
            if event.get("event") == "eval" and single and event["step"] < total[0]:
                trial.report(objective_value(event, self.objectives[0]), event["step"])
                if self.space.study.may_prune(event["step"], total[0]):
                    pruned[0] = pruned[0] or trial.should_prune()

        def should_stop() -> str | None:
            if self.stop.is_set():
                return "interrupted"
            return "pruned" if pruned[0] else None

        def on_spawn(pgid: int) -> None:
            storage.set_trial_system_attr(trial._trial_id, WORKER, worker_id(pgid))

        return run_trial(out, on_event=on_event, should_stop=should_stop, on_spawn=on_spawn,
                         timeout=self.space.study.trial_timeout, threads=slot.cpu_threads,
                         env={**fault_env(trial.number), **slot.env()})

    def _tell(self, trial: Any, state: str, reason: str, values: list[float] | None, *,
              log_tail: str = "", message: str = "", run: TrialRun | None = None) -> bool:
        """Tell Optuna how ``trial`` ended; False when that did not take (another worker took
        the trial over, or the storage's disk is full)."""
        import optuna

        if run is not None:
            run.set_tag("optuna.state", state)
        try:
            trial.set_user_attr(REASON, reason)
            if message:
                trial.set_user_attr("harness.message", message[:2000])
            if log_tail:
                trial.set_user_attr(LOG_TAIL, log_tail[-4000:])
            if run is not None and run.run_id and RUN_ID not in trial.user_attrs:
                trial.set_user_attr(RUN_ID, run.run_id)
            if state == "COMPLETE":
                self.study.tell(trial, values)
            else:
                self.study.tell(trial, state=getattr(optuna.trial.TrialState, state))
        except optuna.exceptions.UpdateFinishedTrialError:
            # Silent too long (a storage outage): another worker failed it and queued a retry.
            state, reason, told = "FAIL", "taken over by another worker", False
        except Exception as err:
            if not is_disk_full(err):
                raise
            # The storage's disk is full: the trial stays RUNNING there until a sweep started
            # after space is freed recovers it (its worker, this process, will be gone).
            self._halt(disk_full(err, self.url))
            state, reason, told = "FAIL", "disk_full", False
        else:
            told = True
        if trial.number in self.view.rows:
            self.view.end(trial.number, state, "" if reason == "finished" else reason)
        return told

    def _finish(self, interrupted: bool) -> SweepOutcome:
        """Plots, the parent run's end and promotion, by the last worker to stop."""
        outcome = SweepOutcome(self.study, interrupted)
        self._drain()
        if self.halted is not None:
            # Plots, the study run and promotion would only meet the full disk again.
            self.parent.outbox.send("set_terminated", RUN, "KILLED")
            raise self.halted
        self._recover()
        already = self._claim_finish(interrupted)
        if already is None:
            return outcome
        best = best_trial(self.study)
        if already:
            self.console.print(f"study {self.name} was already finished with these trials")
            self.parent.outbox.send("set_terminated", RUN,  # joining reopened it
                                    "KILLED" if interrupted else "FINISHED")
        else:
            self._end_parent(interrupted, best)
            self._drain(parent=True)
            print_summary(self.console, self.study, objectives=self.objectives)
        outcome.failed = [] if interrupted else failure_lines(self.study)
        if outcome.failed:
            self.console.print("[red]no trial completed[/]; the trials ended so:\n  "
                               + "\n  ".join(outcome.failed))
        promote = self.space.registry.promote if self.options.promote is None \
            else self.options.promote
        if interrupted:
            self.console.print("sweep interrupted: run the same command again to continue")
        elif promote and best is not None:
            # also when already finished: a promotion cut short last time is settled now
            outcome.promotion = self._promote()
        return outcome

    def _claim_finish(self, interrupted: bool) -> bool | None:
        """Whether the study was already finished with these trials (False: this worker
        finishes it now), or None when other workers' trials still run (the last finishes)."""
        with budget_lock(self.url, self.name):  # one worker finishes the study, not two
            running = len(self._running_elsewhere())
            if running:
                self.console.print(f"this worker stops; {running} trial(s) still run in other "
                                   "workers, and the last of them finishes the study")
                return None
            done = sum(t.state.is_finished() for t in self.study.get_trials(deepcopy=False))
            mark = [done, "KILLED" if interrupted else "FINISHED"]
            if self.study.user_attrs.get(FINISHED_AT) == mark:
                return True
            self.study.set_user_attr(FINISHED_AT, mark)
            return False

    def _promote(self) -> Any:
        from harness.tracking.outbox import is_transient
        from harness.tracking.registry import promote_study

        try:
            return promote_study(self.study, console=self.console, tracking_uri=self.uri)
        except Exception as err:
            if not is_transient(err):
                raise
            self.console.print(f"[red]could not promote now[/] ({str(err).splitlines()[0]}); "
                               f"when the tracking server is back: harness promote --study "
                               f"{self.name}")
            return None

    def _drain(self, *, parent: bool = False) -> None:
        """Last chance for MLflow writes held while the tracking server was away."""
        from harness.tracking.outbox import drain

        boxes = [*self.outboxes, *([self.parent.outbox] if parent else [])]
        waiting = drain(boxes, DRAIN_SECONDS)
        dropped = sum(len(box.dropped) for box in boxes)
        if dropped:
            self.console.print(f"[red]the MLflow server refused {dropped} write(s)[/] (see the "
                               "warnings above): check the user's permissions")
        full = [box for box in waiting if box.disk_full]
        if full:
            count = sum(len(box.pending) for box in full)
            self.console.print(f"[red]{count} MLflow write(s) of {len(full)} run(s) could not "
                               f"be made: {full[0].disk_full.where} is full[/]; the next sweep "
                               "closes the runs they leave open")
        away = [box for box in waiting if not box.disk_full]
        if away:
            count = sum(len(box.pending) for box in away)
            self.console.print(f"[red]the MLflow tracking server at {redact(self.uri)} is still "
                               f"unreachable: {count} write(s) of {len(away)} run(s) were "
                               "not delivered[/]; the trials' results are in the study and "
                               f"their files under {self.out_root}")

    def _end_parent(self, interrupted: bool, best: Any) -> None:
        from harness.sweep.plots import write_plots

        plots = self.out_root / "plots"
        skipped = write_plots(self.study, plots)
        tags, metrics = {"trials.total": str(len(self.study.trials))}, {}
        for name, why in skipped.items():
            tags[f"plot.{name}.skipped"] = why[:500]
        if best is not None:
            tags["best_trial"] = str(best.number)
            tags["best_run_id"] = best.user_attrs.get(RUN_ID, "")
            metrics = {f"best/{o}": v for o, v in zip(self.objectives, best.values, strict=True)}
        self.parent.end("KILLED" if interrupted else "FINISHED", tags=tags, metrics=metrics,
                        plots=plots)


def _wait_through_interrupts(done: list[threading.Event]) -> None:
    """Wait for the slots to stop their trials; further Ctrl-C presses do not cut this short."""
    while not all(end.is_set() for end in done):
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(0.2)


def judge(result: TrialResult, objectives: list[str]) -> tuple[str, str, list[float] | None]:
    """(Optuna state, reason, objective values) for a trial's result."""
    if result.interrupted:
        return "FAIL", "interrupted", None
    if result.reason in ("pruned", "oom"):
        return "PRUNED", result.reason, None
    if not result.ok:
        return "FAIL", result.reason, None
    last_eval = result.last("eval")
    if last_eval is None:
        return "FAIL", "crash", None
    values = [objective_value(last_eval, objectives[0])]
    if len(objectives) > 1:
        values.append(second_objective(result, objectives[1]))
    if not all(math.isfinite(v) for v in values):
        return "FAIL", "nan", None
    return "COMPLETE", "finished", values


def objective_value(event: dict[str, Any], objective: str) -> float:
    return float(event["perplexity" if objective == "perplexity" else "loss"])


def second_objective(result: TrialResult, name: str) -> float:
    finished, started = result.last("finished") or {}, result.last("started") or {}
    if name == "peak_memory":
        return float(finished.get("peak_memory_mb", math.nan))
    return float(finished.get("time", math.nan)) - float(started.get("time", math.nan))


def fault_env(number: int) -> dict[str, str]:
    """HARNESS_FAULT for trial ``number``: `crash@2#1,3` injects only into trials 1 and 3;
    several specs join with `|` (`oom@1#3|nan@1#7`); a spec without `#` reaches every trial."""
    for spec in os.environ.get("HARNESS_FAULT", "").split("|"):
        fault, _, only = spec.partition("#")
        if fault and (not only or str(number) in only.split(",")):
            return {"HARNESS_FAULT": fault}
    return {"HARNESS_FAULT": ""}


def sweep_command(space_path: str, options: SweepOptions,
                  console: Console | None = None, *, no_run: bool = False) -> SweepOutcome | None:
    """`harness sweep`: create or continue the study and run it (or only create it)."""
    console = console or Console(stderr=True)
    sweep = Sweep(load_space(space_path), options, console)
    if no_run:
        sweep.preflight(data=False)  # the workers check it where they run
        sweep.create()
        console.print(f"study {sweep.name} is ready in {redact(sweep.url)}: start workers with\n"
                      f"  harness worker --study {sweep.name} --storage URL")
        return None
    return sweep.run()


def worker_command(options: SweepOptions, console: Console | None = None) -> SweepOutcome:
    """`harness worker`: join an existing study and run its trials until its budget is met."""
    console = console or Console(stderr=True)
    return Sweep.join(options, console).run()
