"""`harness pull` and `harness export`: a registered adapter onto this machine, as it is or
merged into its base model."""

from __future__ import annotations

import argparse

from harness.config import ComputeDtype, choices


def add(sub: argparse._SubParsersAction) -> None:
    _add_pull(sub)
    _add_export(sub)


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
    p.add_argument("--dtype", default="auto", choices=list(choices(ComputeDtype)),
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
