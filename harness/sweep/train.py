"""`harness train CONFIG.yaml`: one trial in the foreground, tracked in MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from harness.config import TrainConfig, load_train_config
from harness.procs import signals_held, stop_signals_as_request
from harness.sweep.runner import TrialResult, run_trial
from harness.sweep.slots import require_gpus
from harness.trialdir import TrialDir, prepare


def write_trial_config(config: TrainConfig, output_dir: Path) -> None:
    config.output_dir = str(output_dir)
    TrialDir(output_dir).write_config(config)


def train_command(config_path: str, *, output_dir: str | None = None, resume: bool = False,
                  force: bool = False, console: Console | None = None) -> TrialResult:
    from harness.models import resolve_model
    from harness.tracking.runs import TrialRun

    console = console or Console(stderr=True)
    config = load_train_config(config_path)
    require_gpus(config.training.num_processes)
    out = Path(output_dir or config.output_dir).resolve()
    prepare(out, resume=resume, force=force)
    write_trial_config(config, out)
    resolve_model(config.model)  # convert an embedded model here, once, with its progress bar
    run = TrialRun(config, run_name=config.tracking.run_name or out.name)
    console.print(f"[bold]trial[/] {out}  MLflow run {run.run_id}")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
            "{task.completed}/{task.total} steps"), TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("training", total=None, status="starting")

        def on_event(event: dict[str, Any]) -> None:
            run.on_event(event)
            _show(progress, task, event, console)

        with stop_signals_as_request() as signalled:  # `kill`, `timeout`, a closed terminal
            result = run_trial(out, resume=resume, on_event=on_event,
                               should_stop=lambda: "interrupted" if signalled.is_set() else None)
    with signals_held():
        run.finish(result, out)
    _summary(result, out, run.run_id, console)
    return result


def _show(progress: Progress, task: Any, event: dict[str, Any], console: Console) -> None:
    kind = event.get("event")
    if kind == "started":
        progress.update(task, total=event["total_steps"], status=f"on {event['device']}")
    elif kind == "step":
        progress.update(task, completed=event["step"], status=(
            f"loss {event['loss']:.4f}  {event['tokens_per_second']:.0f} tok/s"))
    elif kind == "eval":
        console.print(f"  eval at step {event['step']}: loss {event['loss']:.4f}, perplexity "
                      f"{event['perplexity']:.2f} ({event['perplexity_ratio_to_base']:.3f} x base)")
    elif kind == "checkpoint_damaged":
        console.print(f"  [yellow]{event['checkpoint']} is damaged[/] ({event['message']}): "
                      "not resumed from; trying the one before it")
    elif kind == "resumed":
        console.print(f"  resumed from {event['checkpoint']} (step {event['step']})")
    elif kind == "base_eval":
        console.print(f"  base model eval: loss {event['loss']:.4f}, perplexity "
                      f"{event['perplexity']:.2f}{' (cached)' if event['cached'] else ''}")


def _summary(result: TrialResult, out: Path, run_id: str, console: Console) -> None:
    if result.ok:
        console.print(f"[green]finished[/]: adapter in {out / 'adapter'}; samples in "
                      f"{out / 'samples' / 'samples.md'}; MLflow run {run_id}")
    else:
        console.print(f"[red]{result.reason}[/]: {result.message}\n  log: {out / 'trial.log'}")
