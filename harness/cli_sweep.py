"""Subcommands of the sweep's life: sweep, promote, pull, ui."""

from __future__ import annotations

import argparse
import os
import sys


def add_commands(sub: argparse._SubParsersAction) -> None:
    _add_sweep(sub)
    _add_promote(sub)
    _add_pull(sub)
    _add_ui(sub)


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
                       "end, 130 when Ctrl-C stopped it (run the same command to continue).")
    p.add_argument("space", help="search-space YAML (see search_spaces/)")
    p.add_argument("--trials", type=int, help="trials in the study in total")
    p.add_argument("--timeout", type=float, help="seconds after which no new trial starts")
    p.add_argument("--study", help="study name (default: from the file)")
    p.add_argument("--enqueue-best-from", metavar="STUDY",
                   help="first try the best parameters of another study in the same storage")
    p.add_argument("--no-promote", action="store_true", help="do not promote at the end")
    _storage_args(p)
    p.set_defaults(run=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    import logging

    from harness.sweep import SweepOptions, sweep_command

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # table creation notes on first use

    outcome = sweep_command(args.space, SweepOptions(
        trials=args.trials, timeout=args.timeout, study=args.study, storage=args.storage,
        tracking_uri=args.tracking_uri, enqueue_best_from=args.enqueue_best_from,
        promote=False if args.no_promote else None))
    if outcome.interrupted:
        return 130
    if outcome.promotion is not None:
        name = outcome.promotion.model
        print(f"\nSee the runs:   harness ui   (then open http://127.0.0.1:5000)\n"
              f"Get the adapter: harness pull {name}@{outcome.promotion.alias} --out "
              f"adapters/{name}", file=sys.stderr)
    return 0


def _add_promote(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("promote", help="register a study's best adapter (gated @champion)")
    p.add_argument("--study", required=True)
    _storage_args(p)
    p.set_defaults(run=_promote)


def _promote(args: argparse.Namespace) -> int:
    from harness.registry import promote_study
    from harness.study import load_study, open_storage, storage_url

    study = load_study(args.study, open_storage(storage_url(args.storage)))
    promote_study(study, tracking_uri=args.tracking_uri)
    return 0


def _add_pull(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pull", help="download a registered adapter and check that it works")
    p.add_argument("ref", help="NAME@alias, NAME/version, or NAME (= NAME@champion)")
    p.add_argument("--out", required=True, help="directory to write the adapter files to")
    p.add_argument("--tracking-uri", help="MLflow tracking/registry URI")
    p.add_argument("--prompt", help="what the check asks the adapter (default: a medical "
                   "question, as the demo trains on MedQuAD)")
    p.set_defaults(run=_pull)


def _pull(args: argparse.Namespace) -> int:
    from harness.pull import CHECK_PROMPT, pull

    pull(args.ref, args.out, tracking_uri=args.tracking_uri, prompt=args.prompt or CHECK_PROMPT)
    return 0


def _add_ui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="start the MLflow UI on the harness's store")
    p.add_argument("--port", default="5000")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--tracking-uri", help="store to show (default: as for sweep)")
    p.set_defaults(run=_ui)


def _ui(args: argparse.Namespace) -> int:
    from harness.tracking import LOCAL_STORE, tracking_uri

    store = tracking_uri(args.tracking_uri)
    LOCAL_STORE.mkdir(exist_ok=True)
    print(f"MLflow UI for {store} at http://{args.host}:{args.port} (Ctrl-C to stop)",
          file=sys.stderr)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store,
           "--registry-store-uri", store, "--host", args.host, "--port", str(args.port)]
    os.execv(sys.executable, cmd)
    return 0
