"""Subcommands of the sweep's life: sweep, promote, pull, export, ui."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

EXIT_ALL_FAILED = 1
"""`harness sweep` / `worker`: the study ended without one complete trial."""


def add_commands(sub: argparse._SubParsersAction) -> None:
    _add_sweep(sub)
    _add_worker(sub)
    _add_promote(sub)
    _add_pull(sub)
    _add_export(sub)
    _add_ui(sub)


def at_least_one(text: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or str(value) != text.strip():
        raise argparse.ArgumentTypeError(f"give a whole number of 1 or more, not {text!r}")
    return value


def seconds(text: str) -> float:
    """An argparse type: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"give a positive number of seconds, not {text!r}")
    return value


def study_name(text: str) -> str:
    """An argparse type: a name a study can have (letters, digits and ._-)."""
    from harness.names import name_problem

    problem = name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r} {problem}; use letters, digits and ._-")
    return text


def _storage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", help="Optuna storage: a journal file path, sqlite:///, "
                   "postgresql:// or mysql:// URL (default: mlruns/optuna.journal, or "
                   "HARNESS_STORAGE)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                   "else the local store in mlruns/)")


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
    _storage_args(p)
    _slot_args(p)
    p.set_defaults(run=_sweep)


def _slot_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--gpus", help="comma-separated GPU ids: one trial per GPU at a time "
                       "(e.g. 0,1,2,3), or per training.num_processes GPUs; auto: GPUs no "
                       "other worker on this machine holds")
    group.add_argument("--parallel", type=at_least_one, default=1, metavar="N",
                       help="run N trials at once (CPU trials share the cores)")


def _options(args: argparse.Namespace, **extra: Any) -> Any:
    import logging

    from harness.errors import HarnessError
    from harness.sweep.command import SweepOptions

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # table creation notes on first use
    gpus = [g.strip() for g in (args.gpus or "").split(",") if g.strip()]
    if args.gpus is not None and gpus != ["auto"] and (
            not gpus or not all(g.isdigit() for g in gpus)):
        raise HarnessError(f"--gpus {args.gpus!r}: give GPU ids like 0,1,2,3, or auto")
    return SweepOptions(trials=args.trials, timeout=args.timeout, study=args.study,
                        storage=args.storage, tracking_uri=args.tracking_uri,
                        parallel=args.parallel, gpus=gpus, **extra)


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
    _storage_args(p)
    _slot_args(p)
    p.set_defaults(run=_worker)


def _worker(args: argparse.Namespace) -> int:
    from harness.sweep.command import worker_command

    return _report(worker_command(_options(args)))


def _report(outcome: Any) -> int:
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
    _storage_args(p)
    p.set_defaults(run=_promote)


def _promote(args: argparse.Namespace) -> int:
    from harness.study.storage import load_study, open_storage, storage_url
    from harness.tracking.registry import promote_study

    study = load_study(args.study, open_storage(storage_url(args.storage)))
    promote_study(study, tracking_uri=args.tracking_uri)
    return 0


def _add_pull(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pull", help="download a registered adapter and check that it works")
    p.add_argument("ref", help="NAME@alias, NAME/version, or NAME (= NAME@champion)")
    p.add_argument("--out", required=True, help="directory to write the adapter files to "
                   "(empty or new, unless --force)")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out: files "
                   "of the adapter's names are replaced, everything else is kept")
    p.add_argument("--tracking-uri", help="MLflow tracking/registry URI")
    p.add_argument("--prompt", help="what the check asks the adapter (default: a medical "
                   "question, as the demo trains on MedQuAD)")
    p.set_defaults(run=_pull)


def _pull(args: argparse.Namespace) -> int:
    from harness.tracking.pull import CHECK_PROMPT, pull

    pull(args.ref, args.out, tracking_uri=args.tracking_uri, prompt=args.prompt or CHECK_PROMPT,
         force=args.force)
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="merge an adapter into its base: a plain transformers "
                       "model directory")
    p.add_argument("ref", help="NAME@alias, NAME/version, NAME (= NAME@champion), or a run id")
    p.add_argument("--merged", required=True, metavar="DIR", help="directory to write the "
                   "merged model to (empty or new, unless --force)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="precision of the saved weights (default: the adapter's training "
                   "precision; float32 is exact)")
    p.add_argument("--force", action="store_true", help="write into a non-empty DIR: files of "
                   "the model's names are replaced, everything else is kept")
    p.add_argument("--tracking-uri", help="MLflow tracking/registry URI")
    p.set_defaults(run=_export)


def _export(args: argparse.Namespace) -> int:
    from harness.tracking.export import export_merged

    export_merged(args.ref, args.merged, tracking_uri=args.tracking_uri, dtype=args.dtype,
                  force=args.force)
    return 0


def _add_ui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="start the MLflow UI on the harness's store")
    p.add_argument("--port", default="5000", help="the port the UI listens on (default: 5000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address the UI listens on (default: 127.0.0.1, this machine only)")
    p.add_argument("--tracking-uri", help="store to show (default: as for sweep)")
    p.add_argument("--study", help="the study whose runs the link opens (default: the latest)")
    p.set_defaults(run=_ui)


def _ui(args: argparse.Namespace) -> int:
    from harness.tracking.runs import LOCAL_STORE, client_for, tracking_uri
    from harness.tracking.ui import landing, mlflow_ui_command, serve, stop
    from harness.urls import redact

    store = tracking_uri(args.tracking_uri)
    LOCAL_STORE.mkdir(exist_ok=True)
    client = client_for(store)  # a new local store is created here, not racing the server
    base = f"http://{args.host}:{args.port}"
    link = landing(base, client, args.study)
    print(f"starting the MLflow UI for {redact(store)} (it can take a minute)...",
          file=sys.stderr)
    # the server runs in a session of its own: whatever ends this process must end it too
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(0))
    proc = serve(mlflow_ui_command(store, host=args.host, port=args.port),
                 health=f"{base}/health")
    print(f"ready: {link}   (Ctrl-C to stop)", file=sys.stderr)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop(proc)
