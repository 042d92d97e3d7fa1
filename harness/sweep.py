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
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from harness.errors import ConfigError, HarnessError
from harness.runner import TrialResult, run_trial
from harness.space import SpaceFile, load_space
from harness.study import (
    REASON,
    RUN_ID,
    WORKER,
    beat,
    best_trial,
    load_study,
    open_storage,
    open_study,
    recover_abandoned,
    remaining,
    requeue,
    storage_url,
    worker_id,
)
from harness.sweep_view import SweepView, print_summary
from harness.tracking import StudyRun, TrialRun, tracking_uri
from harness.train import write_trial_config

LOG_TAIL = "harness.log_tail"


@dataclass
class SweepOptions:
    """Command-line overrides of the space file."""

    trials: int | None = None
    timeout: float | None = None
    study: str | None = None
    storage: str | None = None
    tracking_uri: str | None = None
    enqueue_best_from: str | None = None
    promote: bool | None = None


@dataclass
class SweepOutcome:
    study: Any
    interrupted: bool
    promotion: Any = None


class Sweep:
    """One invocation of a sweep: runs trials until the study has enough or time is up."""

    def __init__(self, space: SpaceFile, options: SweepOptions, console: Console) -> None:
        self.space, self.options, self.console = space, options, console
        self.name = options.study or space.study_name
        self.total = options.trials or space.study.trials
        self.uri = tracking_uri(options.tracking_uri)
        self.storage = open_storage(storage_url(options.storage))
        self.study = open_study(self.name, self.storage, space.study)
        self.objectives = space.study.objectives
        self.view = SweepView(self.name)
        self.out_root = (Path(space.study.output_dir) / self.name).resolve()

    def run(self) -> SweepOutcome:
        from harness.models import resolve_model

        self._remember_settings()
        resolve_model(self.space.base.get("model", "smollm2-135m-instruct"))
        self.parent = StudyRun(uri=self.uri, study=self.name, space_text=self.space.text,
                               params=self._study_params())
        for number in recover_abandoned(self.study, on_abandoned=self._close_abandoned):
            self.console.print(f"trial {number} was left running by a dead process: marked "
                               "FAIL (abandoned), its parameters queued again")
        self._enqueue()
        interrupted = self._loop()
        return self._finish(interrupted)

    def _remember_settings(self) -> None:
        """What `harness promote --study` and later resumes need, kept with the study."""
        for key, value in {"space_path": str(Path(self.space.path).resolve()),
                           "registry_model": self.space.model_name,
                           "registry_margin": self.space.registry.margin,
                           "objectives": self.objectives, "tracking_uri": self.uri}.items():
            self.study.set_user_attr(key, value)

    def _study_params(self) -> dict[str, str]:
        s = self.space.study
        return {"sampler": s.sampler, "seed": str(s.seed), "pruner": s.pruner,
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

    def _loop(self) -> bool:
        limit = self.options.timeout or self.space.study.timeout
        deadline = time.monotonic() + limit if limit else math.inf
        trial = None
        try:
            with Live(self.view, console=self.console, refresh_per_second=2, transient=False):
                while remaining(self.study, self.total) and time.monotonic() < deadline:
                    trial = self.study.ask()
                    if self._run_one(trial):
                        return True
                    trial = None
        except KeyboardInterrupt:
            if trial is not None:
                self._tell(trial, "FAIL", "interrupted", None)
                frozen = self.study.get_trials(deepcopy=False)[trial.number]
                self._close_run(frozen, "interrupted")
                requeue(self.study, frozen)
            return True
        return False

    def _run_one(self, trial: Any) -> bool:
        """Run one trial to its end; True when Ctrl-C stopped it (and so the sweep)."""
        values = self.space.suggest(trial)
        self.view.start(trial.number, values)
        out = self.out_root / f"trial-{trial.number:04d}"
        try:
            config = self.space.train_config(values, output_dir=str(out), tracking_uri=self.uri)
        except ConfigError as err:
            self._tell(trial, "FAIL", "config", None, log_tail=str(err))
            return False
        write_trial_config(config, out)
        run = TrialRun(config, run_name=f"trial-{trial.number}", parent_run_id=self.parent.run_id,
                       experiment=self.name, tags={"optuna.study": self.name,
                                                   "optuna.trial": str(trial.number)})
        trial.set_user_attr(RUN_ID, run.run_id)
        trial.set_user_attr("output_dir", str(out))
        try:
            result = self._train(trial, out, run)
        except Exception:  # a harness bug in one trial must not end the sweep
            self._tell(trial, "FAIL", "crash", None, log_tail=traceback.format_exc(), run=run)
            with contextlib.suppress(Exception):
                run.client.set_terminated(run.run_id, "FAILED")
            return False
        run.finish(result, out)
        state, reason, objective_values = judge(result, self.objectives)
        tail = result.log_tail if state == "FAIL" else ""
        self._tell(trial, state, reason, objective_values, log_tail=tail,
                   message=result.message, run=run)
        if reason == "interrupted":
            requeue(self.study, self.study.get_trials(deepcopy=False)[trial.number])
            return True
        return False

    def _train(self, trial: Any, out: Path, run: TrialRun) -> TrialResult:
        storage, single = self.study._storage, len(self.objectives) == 1
        pruned, last_beat, total = [False], [0.0], [math.inf]

        def on_event(event: dict[str, Any]) -> None:
            run.on_event(event)
            self.view.on_event(trial.number, event)
            if event.get("event") == "started":
                total[0] = event["total_steps"]  # the final eval is the result, not a rung
            if event.get("event") == "eval" and single and event["step"] < total[0]:
                trial.report(objective_value(event, self.objectives[0]), event["step"])
                pruned[0] = pruned[0] or trial.should_prune()

        def should_stop() -> str | None:
            if time.monotonic() - last_beat[0] > 30:
                beat(self.study, trial._trial_id)
                last_beat[0] = time.monotonic()
            return "pruned" if pruned[0] else None

        def on_spawn(pgid: int) -> None:
            storage.set_trial_system_attr(trial._trial_id, WORKER, worker_id(pgid))

        return run_trial(out, on_event=on_event, should_stop=should_stop, on_spawn=on_spawn,
                         timeout=self.space.study.trial_timeout, env=fault_env(trial.number))

    def _tell(self, trial: Any, state: str, reason: str, values: list[float] | None, *,
              log_tail: str = "", message: str = "", run: TrialRun | None = None) -> None:
        import optuna

        trial.set_user_attr(REASON, reason)
        if message:
            trial.set_user_attr("harness.message", message[:2000])
        if log_tail:
            trial.set_user_attr(LOG_TAIL, log_tail[-4000:])
        if run is not None:
            with contextlib.suppress(Exception):
                run.client.set_tag(run.run_id, "optuna.state", state)
        if state == "COMPLETE":
            self.study.tell(trial, values)
        else:
            self.study.tell(trial, state=getattr(optuna.trial.TrialState, state))
        self.view.end(trial.number, state, "" if reason == "finished" else reason)

    def _close_abandoned(self, trial: Any) -> None:
        self._close_run(trial, "abandoned")

    def _close_run(self, trial: Any, reason: str) -> None:
        """End a trial's MLflow run that no runner will end (KILLED, with the reason)."""
        run_id = trial.user_attrs.get(RUN_ID)
        if not run_id:
            return
        with contextlib.suppress(Exception):
            client = self.parent.client
            client.set_tag(run_id, "trial.reason", reason)
            client.set_tag(run_id, "optuna.state", "FAIL")
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, "KILLED")

    def _finish(self, interrupted: bool) -> SweepOutcome:
        from harness.plots import write_plots

        plots = self.out_root / "plots"
        skipped = write_plots(self.study, plots)
        tags, metrics = {"trials.total": str(len(self.study.trials))}, {}
        for name, why in skipped.items():
            tags[f"plot.{name}.skipped"] = why[:500]
        best = best_trial(self.study)
        if best is not None:
            tags["best_trial"] = str(best.number)
            tags["best_run_id"] = best.user_attrs.get(RUN_ID, "")
            metrics = {f"best/{o}": v for o, v in zip(self.objectives, best.values, strict=True)}
        self.parent.end("KILLED" if interrupted else "FINISHED", tags=tags, metrics=metrics,
                        plots=plots)
        print_summary(self.console, self.study, objectives=self.objectives)
        outcome = SweepOutcome(self.study, interrupted)
        promote = self.space.registry.promote if self.options.promote is None \
            else self.options.promote
        if interrupted:
            self.console.print("sweep interrupted: run the same command again to continue")
        elif promote and best is not None:
            from harness.registry import promote_study

            outcome.promotion = promote_study(self.study, console=self.console)
        return outcome


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
    """HARNESS_FAULT for trial ``number``: `crash@2#1,3` injects only into trials 1 and 3."""
    spec = os.environ.get("HARNESS_FAULT", "")
    fault, _, only = spec.partition("#")
    if only and str(number) not in only.split(","):
        fault = ""
    return {"HARNESS_FAULT": fault}


def sweep_command(space_path: str, options: SweepOptions,
                  console: Console | None = None) -> SweepOutcome:
    console = console or Console(stderr=True)
    space = load_space(space_path)
    return Sweep(space, options, console).run()
