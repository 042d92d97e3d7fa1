"""`harness train CONFIG.yaml`: one trial in the foreground, tracked in MLflow."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from harness.config import TrainConfig, load_train_config
from harness.launch.command import write_trial_config
from harness.launch.gpus import require_gpus
from harness.launch.runner import Launch, Watcher, run_trial
from harness.procs import signals_held, stop_signals_as_request
from harness.protocol import (
    BaseEval,
    CheckpointDamaged,
    Eval,
    Event,
    HeldOutTest,
    Resumed,
    Retention,
    Started,
    Step,
    StopRequest,
    TrialResult,
)
from harness.tracking.trial_run import TrialRun
from harness.trialdir import prepare


def dry_run(config_path: str, *, console: Console | None = None) -> bool:
    """`harness train --dry-run`: the config and its data checked and the trial's memory
    estimated, nothing trained; whether it fits this machine."""
    from harness.data.preflight import check_trial_data
    from harness.memory.device import device_kind, gpu_memory_mb, limit_mb
    from harness.memory.estimate import estimate
    from harness.memory.shape import model_shape

    console = console or Console(stderr=True)
    config = load_train_config(config_path)
    console.print(check_trial_data(config).line(), markup=False)
    shape = model_shape(config.model)
    gpus = gpu_memory_mb()
    here = device_kind(gpus)
    found = {device: estimate(config, shape, device=device) for device in ("cuda", "cpu")}
    for device, one in found.items():
        mark = " (this machine)" if device == here else ""
        console.print(f"memory{mark}: {one.line()}", markup=False)
    room = limit_mb(limit_gb=None, device=here, gpus=gpus)
    total = found[here].total_mb
    fits = total <= room
    console.print(f"{'fits' if fits else '[red]too big[/]'}: {total:,.0f} MB of "
                  f"{room:,.0f} MB {'per GPU' if here == 'cuda' else 'of RAM'} here")
    return fits


def log_estimate(config: TrainConfig, run: TrialRun, console: Console) -> None:
    """The trial's memory estimate, said and logged beside the peak it will measure."""
    from harness.errors import HarnessError
    from harness.memory.device import device_kind
    from harness.memory.estimate import estimate
    from harness.memory.shape import model_shape
    from harness.tracking.trial_run import ESTIMATED_METRIC

    try:
        found = estimate(config, model_shape(config.model), device=device_kind())
    except HarnessError as err:
        console.print(f"memory not estimated: {err}", markup=False)
        return
    console.print(f"memory: {found.line()}", markup=False)
    run.log_metric(ESTIMATED_METRIC, found.measured_like_mb)


def train_command(config_path: str, *, output_dir: str | None = None, resume: bool = False,
                  force: bool = False, console: Console | None = None) -> TrialResult:
    from harness.data.preflight import check_trial_data

    console = console or Console(stderr=True)
    config = load_train_config(config_path)
    require_gpus(config.training.num_processes)
    # before the output dir, the model and the run: bad data is an error, not a crashed trial
    # (an embedded model is converted here, once, with its progress bar)
    console.print(check_trial_data(config).line(), markup=False)
    out = Path(output_dir or config.output_dir).resolve()
    prepare(out, resume=resume, force=force)
    write_trial_config(config, out)
    run = TrialRun(config, run_name=config.tracking.run_name or out.name)
    console.print(f"[bold]trial[/] {out}  MLflow run {run.run_id}")
    log_estimate(config, run, console)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
            "{task.completed}/{task.total} steps"), TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("training", total=None, status="starting")
        with stop_signals_as_request() as signalled:  # `kill`, `timeout`, a closed terminal
            watcher = Foreground(run, Shown(progress, task, console), signalled)
            result = run_trial(Launch(out, resume=resume), watcher)
    with signals_held():
        run.finish(result, out)
    _summary(result, out, run.run_id, console)
    return result


class Foreground(Watcher):
    """A foreground trial's watcher: its run records the events, the terminal shows them, and
    a stop signal stops it."""

    def __init__(self, run: TrialRun, shown: Shown, signalled: threading.Event) -> None:
        self.run = run
        self.shown = shown
        self.signalled = signalled

    def seen(self, event: Event) -> None:
        self.run.on_event(event)
        self.shown.show(event)

    def stop_for(self) -> StopRequest | None:
        return "interrupted" if self.signalled.is_set() else None


class Shown:
    """A foreground trial's progress bar and messages."""

    def __init__(self, progress: Progress, task: TaskID, console: Console) -> None:
        self.progress = progress
        self.task = task
        self.console = console

    def show(self, event: Event) -> None:
        if isinstance(event, Started):
            self.progress.update(self.task, total=event.total_steps, status=f"on {event.device}")
        elif isinstance(event, Step):
            self.progress.update(self.task, completed=event.step, status=(
                f"loss {event.loss:.4f}  {event.tokens_per_second:.0f} tok/s"))
        else:
            line = _line(event)
            if line:
                self.console.print(line)


def _line(event: Event) -> str:
    if isinstance(event, Eval):
        return (f"  eval at step {event.step}: loss {event.loss:.4f}, perplexity "
                f"{event.perplexity:.2f} ({event.perplexity_ratio_to_base:.3f} x base)")
    if isinstance(event, CheckpointDamaged):
        return (f"  [yellow]{event.checkpoint} is damaged[/] ({event.message}): not resumed "
                "from; trying the one before it")
    if isinstance(event, Resumed):
        return f"  resumed from {event.checkpoint} (step {event.step})"
    if isinstance(event, HeldOutTest | Retention):
        name = "test" if isinstance(event, HeldOutTest) else "general text"
        return (f"  {name}: loss {event.loss:.4f} +- {event.ci95:.4f} (95 %, {event.examples} "
                f"examples; base model {event.base_loss:.4f}), {event.seconds:.0f} s")
    if isinstance(event, BaseEval):
        return (f"  base model eval: loss {event.loss:.4f}, perplexity "
                f"{event.perplexity:.2f}{' (cached)' if event.cached else ''}")
    return ""


def _summary(result: TrialResult, out: Path, run_id: str | None, console: Console) -> None:
    if result.ok:
        console.print(f"[green]finished[/]: adapter in {out / 'adapter'}; samples in "
                      f"{out / 'samples' / 'samples.md'}; MLflow run {run_id}")
    else:
        console.print(f"[red]{result.reason}[/]: {result.message}\n  log: {out / 'trial.log'}")
