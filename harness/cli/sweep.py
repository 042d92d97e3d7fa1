"""`harness sweep`, `harness worker` and `harness promote`: a study's life from the command
line."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from harness.cli.types import at_least_one, seconds, store_args, study_name

if TYPE_CHECKING:
    from harness.sweep.context import SweepOptions, SweepOutcome

EXIT_ALL_FAILED = 1
"""`harness sweep` / `worker`: the study ended without one complete trial."""


def add(sub: argparse._SubParsersAction) -> None:
    _add_sweep(sub)
    _add_worker(sub)
    _add_promote(sub)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run an Optuna study of LoRA fine-tunes",
                       description="Run (or continue) the study a search-space file describes; "
                       "at the end, promote the best adapter. Exit 0 when the sweep ran to its "
                       "end, 1 when no trial of the study completed (the reasons are printed), "
                       "2 on an error (bad data, a full disk, ...), 130 when Ctrl-C stopped it "
                       "(run the same command to continue).")
    p.add_argument("space", help="search-space YAML (see search_spaces/)")
    p.add_argument("--trials", type=at_least_one, help="trials in the study in total")
    p.add_argument("--timeout", type=seconds, help="seconds after which no new trial starts")
    p.add_argument("--study", type=study_name, help="study name (default: from the file)")
    p.add_argument("--enqueue-best-from", metavar="STUDY", type=study_name,
                   help="first try the best parameters of another study in the same storage")
    p.add_argument("--no-promote", action="store_true", help="do not promote at the end")
    p.add_argument("--no-run", action="store_true", help="only create the study (for "
                   "`harness worker` processes to run), then exit")
    store_args(p)
    _slot_args(p)
    p.set_defaults(run=_sweep)


def _slot_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--gpus", help="comma-separated GPU ids (e.g. 0,1,2,3), or auto: GPUs "
                       "no other worker on this machine holds. A trial starts on the GPU "
                       "where its memory estimate fits beside the trials running there")
    group.add_argument("--parallel", type=at_least_one, default=1, metavar="N",
                       help="run N trials at once (CPU trials share the cores)")
    p.add_argument("--per-gpu", type=at_least_one, default=4, metavar="N",
                   help="with --gpus: at most N trials on one GPU at once (default 4; 1: each "
                   "trial holds whole GPUs, one per training.num_processes)")


def _options(args: argparse.Namespace, *, enqueue_best_from: str | None = None,
             promote: bool | None = None) -> SweepOptions:
    import logging

    from harness.errors import HarnessError
    from harness.sweep.context import SweepOptions

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # table creation notes on first use
    gpus = [g.strip() for g in (args.gpus or "").split(",") if g.strip()]
    if args.gpus is not None and gpus != ["auto"] and (
            not gpus or not all(g.isdigit() for g in gpus)):
        raise HarnessError(f"--gpus {args.gpus!r}: give GPU ids like 0,1,2,3, or auto")
    return SweepOptions(trials=args.trials, timeout=args.timeout, study=args.study,
                        storage=args.storage, tracking_uri=args.tracking_uri,
                        parallel=args.parallel, gpus=gpus, per_gpu=args.per_gpu,
                        enqueue_best_from=enqueue_best_from, promote=promote)


def _sweep(args: argparse.Namespace) -> int:
    from harness.sweep.command import sweep_command

    options = _options(args, enqueue_best_from=args.enqueue_best_from,
                       promote=False if args.no_promote else None)
    outcome = sweep_command(args.space, options, no_run=args.no_run)
    return _report(outcome)


def _add_worker(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="join an existing study and run its trials",
                       description="Join a study created by `harness sweep` (the first worker, "
                       "or `--no-run`) in a shared storage, and run trials until the study's "
                       "total is met. Start as many workers as you like, on any machine that "
                       "reaches the storage.")
    p.add_argument("--study", required=True, type=study_name, help="the study to join")
    p.add_argument("--trials", type=at_least_one, help="run at most N trials in this worker "
                   "(the study's total is set by the sweep that created it)")
    p.add_argument("--timeout", type=seconds, help="seconds after which no new trial starts")
    store_args(p)
    _slot_args(p)
    p.set_defaults(run=_worker)


def _worker(args: argparse.Namespace) -> int:
    from harness.sweep.command import worker_command

    return _report(worker_command(_options(args)))


def _report(outcome: SweepOutcome | None) -> int:
    if outcome is None:
        return 0
    if outcome.interrupted:
        return 130
    if outcome.failed:
        return EXIT_ALL_FAILED
    if outcome.promotion is not None:
        name = outcome.promotion.model
        study = outcome.study.study_name
        print(f"\nSee the runs:   harness ui --study {study}   (it prints the link once the "
              "UI answers)\n"
              f"Get the adapter: harness pull {name}@{outcome.promotion.alias} --out "
              f"adapters/{name}", file=sys.stderr)
    return 0


def _add_promote(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("promote", help="register a study's best adapter (gated @champion)")
    p.add_argument("--study", required=True, type=study_name, help="the study to promote from")
    store_args(p)
    p.set_defaults(run=_promote)


def _promote(args: argparse.Namespace) -> int:
    from harness.study.storage import load_study, open_storage
    from harness.study.url import storage_url
    from harness.tracking.promotion import promote_study

    study = load_study(args.study, open_storage(storage_url(args.storage)))
    promote_study(study, tracking_uri=args.tracking_uri)
    return 0
