"""`harness sweep SPACE.yaml` and `harness worker`: an Optuna study whose trials are
accelerate-launched fine-tunes.

The parent asks Optuna for a trial, runs it with the runner, reports every eval event to Optuna,
stops the child's process group when the pruner says so, and tells Optuna how it ended:

| trial ended      | Optuna                       | MLflow run                |
| ---------------- | ---------------------------- | ------------------------- |
| finished         | COMPLETE with the objective  | FINISHED                  |
| pruned           | PRUNED                       | KILLED, reason `pruned`   |
| oom              | retried once in half-size forward passes; again: PRUNED, `oom` | FAILED |
| too big (estimate) | PRUNED, reason `too_big`, never launched | KILLED            |
| nan, crash, timeout | FAIL, reason + log tail   | FAILED, log tail artifact |
| Ctrl-C           | FAIL `interrupted`, re-queued; the sweep stops | KILLED  |

No trial's failure stops the sweep. Running the same command again continues the study.

Many workers can share one study (`harness worker`, or `--parallel` / `--gpus` slots in one
process): each asks for its next trial under the study's budget lock, so together they start
exactly the study's total, and the last one to finish draws the plots and promotes.

A sweep reads: open (create or join) -> check -> create the parent run and queued trials ->
recover and run the slot pool over the objective -> finish.
"""

from __future__ import annotations

from rich.console import Console

from harness.config import DEFAULT_MODEL
from harness.launch.runner import run_trial
from harness.procs import stop_signals_as_interrupt
from harness.space.load import load_space
from harness.sweep.context import SweepContext, SweepOptions, SweepOutcome
from harness.sweep.deliveries import Deliveries
from harness.sweep.finish import finish
from harness.sweep.objective import Launcher, Objective
from harness.sweep.opening import create, join_sweep, open_sweep
from harness.sweep.pool import SlotPool
from harness.sweep.preflight import preflight
from harness.sweep.slots import Slot, make_slots
from harness.sweep.source import TrialSource
from harness.urls import redact

__all__ = ["SweepOptions", "SweepOutcome", "run_sweep", "sweep_command", "worker_command"]


def run_sweep(ctx: SweepContext, *, launch: Launcher = run_trial) -> SweepOutcome:
    """This process's part in the study: trials until the study has enough or time is up,
    each run by ``launch`` (the harness's runner; a stand-in in tests)."""
    from harness.models import resolve_model

    with stop_signals_as_interrupt():  # docker stop, a batch scheduler, a closed terminal
        resolve_model(ctx.space.base.get("model", DEFAULT_MODEL))
        preflight(ctx)
        parent = create(ctx)
        deliveries = Deliveries()
        pool = SlotPool(ctx, source=TrialSource(ctx), deliveries=deliveries,
                        objective=Objective(ctx, parent=parent, deliveries=deliveries,
                                            launch=launch))
        interrupted = pool.run(make_slots(gpus=ctx.options.gpus, parallel=ctx.options.parallel,
                                          per_trial=ctx.space.processes_per_trial,
                                          per_gpu=ctx.options.per_gpu))
        return finish(ctx, parent=parent, deliveries=deliveries, interrupted=interrupted)


def sweep_command(space_path: str, options: SweepOptions, console: Console | None = None, *,
                  no_run: bool = False, launch: Launcher = run_trial) -> SweepOutcome | None:
    """`harness sweep`: create or continue the study and run it (or only create it)."""
    console = console or Console(stderr=True)
    ctx = open_sweep(load_space(space_path), options, console)
    if no_run:
        preflight(ctx, data=False)  # the workers check it where they run
        show_memory(ctx)
        create(ctx)
        console.print(f"study {ctx.name} is ready in {redact(ctx.url)}: start workers with\n"
                      f"  harness worker --study {ctx.name} --storage URL")
        return None
    return run_sweep(ctx, launch=launch)


def show_memory(ctx: SweepContext) -> None:
    """The memory table of the space's enqueued trials and corners (its base model's shape
    read from its config; a model whose shape cannot be read is said, not fatal)."""
    from harness.errors import HarnessError
    from harness.sweep.memory_table import memory_table
    from harness.sweep.sizing import Sizing

    sizing = Sizing(limit_gb=ctx.space.study.memory_limit_gb)
    where = "study.memory_limit_gb" if sizing.limit_gb is not None else (
        "GPU" if sizing.device == "cuda" else "this machine's RAM (no GPU here)")
    try:
        ctx.console.print(memory_table(ctx.space, limit_mb=sizing.limit_mb(Slot("")),
                                       where=where, here=sizing.device))
    except HarnessError as err:
        ctx.console.print(f"[yellow]memory not estimated:[/] {err}")


def worker_command(options: SweepOptions, console: Console | None = None, *,
                   launch: Launcher = run_trial) -> SweepOutcome:
    """`harness worker`: join an existing study and run its trials until its budget is met."""
    console = console or Console(stderr=True)
    return run_sweep(join_sweep(options, console), launch=launch)
