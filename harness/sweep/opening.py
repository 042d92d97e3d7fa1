"""Opening a sweep: the study created or continued by `harness sweep`, or joined by `harness
worker`; then what a study needs before its trials run (its stored settings, the parent run,
the queued baselines)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from harness.errors import HarnessError
from harness.names import check_name
from harness.space.file import SpaceFile
from harness.space.load import parse_space
from harness.study.handles import storage_of
from harness.study.pruners import describe as describe_pruner
from harness.study.record import BASELINE, StudyRecord
from harness.study.storage import best_trial, load_study, open_storage, open_study
from harness.study.url import storage_url
from harness.sweep.context import Control, SweepContext, SweepOptions
from harness.tracking.store import check_tracking, tracking_uri
from harness.tracking.study_run import StudyRun, close_lost_run
from harness.urls import redact

if TYPE_CHECKING:
    from optuna.storages import BaseStorage


def open_sweep(space: SpaceFile, options: SweepOptions, console: Console, *,
               joining: bool = False, storage: BaseStorage | None = None) -> SweepContext:
    """The study of ``space``, created or loaded, after the tracking store is checked (before
    anything is created or trained). A sweep sets the study's total (its --trials, else the
    file's); a joining worker follows the study's."""
    name = check_name(space.study_name if options.study is None else options.study,
                      "study name")
    uri = tracking_uri(options.tracking_uri)
    check_tracking(uri)
    url = storage_url(options.storage)
    study = open_study(name, storage or open_storage(url, on_lost=close_lost_run), space.study)
    total = (StudyRecord.load(study).trials or space.study.trials) if joining \
        else options.trials or space.study.trials
    return SweepContext(space=space, options=options, console=console, name=name, uri=uri,
                        url=url, study=study, joining=joining, total=total,
                        control=Control(console))


def join_sweep(options: SweepOptions, console: Console) -> SweepContext:
    """A worker for an existing study: its space and tracking URI come from the study."""
    if not options.study:
        raise HarnessError("harness worker needs --study NAME")
    storage = open_storage(storage_url(options.storage), on_lost=close_lost_run)
    study = load_study(check_name(options.study, "study name"), storage)
    record = StudyRecord.load(study)
    if not record.space_text:
        raise HarnessError(f"study {options.study!r} was not created by `harness sweep` "
                           "(it keeps no search space); create it with `harness sweep "
                           "SPACE.yaml --storage URL --no-run`")
    space = parse_space(record.space_text, record.space_path or options.study)
    options.tracking_uri = (options.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
                            or record.tracking_uri)
    shared = storage_url(options.storage).startswith(("postgres", "mysql"))
    if shared and not options.tracking_uri.startswith(("http://", "https://")):
        console.print(f"[yellow]warning:[/] the study is shared but its runs go to "
                      f"{redact(options.tracking_uri)}, a store on this machine only; set "
                      "MLFLOW_TRACKING_URI to the team's MLflow server")
    return open_sweep(space, options, console, joining=True, storage=storage)


def create(ctx: SweepContext) -> StudyRun:
    """The study's settings kept with it (for workers, resumes and `harness promote`), the
    parent run, and the queued trials; a joining worker only opens the parent run."""
    if not ctx.joining:
        # a study that ran trials without the constraint keeps going without it
        constrained = StudyRecord.load(ctx.study).memory_constraint or \
            not ctx.study.get_trials(deepcopy=False)
        StudyRecord(space_path=str(Path(ctx.space.path).resolve()), space_text=ctx.space.text,
                    trials=ctx.total, registry_model=ctx.space.model_name,
                    registry_margin=ctx.space.registry.margin,
                    registry_max_forgetting=ctx.space.registry.max_forgetting,
                    objectives=ctx.objectives, tracking_uri=ctx.uri,
                    memory_constraint=constrained).save(ctx.study)
    parent = StudyRun(uri=ctx.uri, study=ctx.name, space_text=ctx.space.text,
                      params=study_params(ctx))
    if not ctx.joining:
        enqueue(ctx)
    return parent


def study_params(ctx: SweepContext) -> dict[str, str]:
    """The parent run's params: how the study searches."""
    s = ctx.space.study
    return {"sampler": s.sampler, "seed": str(s.seed), "pruner": s.pruner,
            "pruner_settings": describe_pruner(s), "objective": ",".join(ctx.objectives),
            "trials": str(ctx.total), "space_file": ctx.space.path,
            "search": ", ".join(p.name for p in ctx.space.params)}


def enqueue(ctx: SweepContext) -> None:
    """Queue the best parameters of --enqueue-best-from, then the space file's baselines."""
    if ctx.options.enqueue_best_from:
        other = load_study(ctx.options.enqueue_best_from, storage_of(ctx.study))
        best = best_trial(other)
        if best is None:
            raise HarnessError(f"--enqueue-best-from {other.study_name}: that study has no "
                               "COMPLETE trial yet")
        names = {p.name for p in ctx.space.params}
        ctx.study.enqueue_trial({k: v for k, v in best.params.items() if k in names},
                                skip_if_exists=True)
    for params, name in zip(ctx.space.enqueue, ctx.space.baselines, strict=True):
        ctx.study.enqueue_trial(ctx.space.as_params(params), skip_if_exists=True,
                                user_attrs={BASELINE: name})
