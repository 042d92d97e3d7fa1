"""The `harness` command: argparse subcommands, each a few lines that call one function."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from harness import __version__
from harness.cli_flags import add_flags, values
from harness.cli_sweep import add_commands
from harness.config import DEFAULT_MODEL, DataConfig
from harness.errors import HarnessError, disk_full, is_disk_full

LIST_FLAGS = {"sources": "source", "qtypes": "qtype", "ignore_keys": "ignore_key",
              "refusal_phrases": "refusal_phrase"}
"""`harness data check`'s repeatable flags, one value each."""
EXIT_UNUSABLE = 1
EXIT_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_ERROR
    from harness.tracking.outbox import use_short_http_retries

    use_short_http_retries()
    # MLflow's SQL store logs every database error with its traceback before raising it; the
    # harness reports each raised error in its own words (a full disk, a refused write, ...).
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    try:
        return args.run(args)
    except HarnessError as err:
        print(f"harness: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if not is_disk_full(err):
            raise
        print(f"harness: error: {disk_full(err, None)}", file=sys.stderr)
        return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="LoRA/QLoRA sweep harness tracked in MLflow")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(title="commands")
    data = sub.add_parser("data", help="inspect training data").add_subparsers(title="data")
    _add_data_check(data)
    _add_models(sub)
    _add_train(sub)
    add_commands(sub)
    return parser


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="run one LoRA fine-tune, tracked in MLflow",
                       description="Run one trial from a YAML config with Accelerate. "
                       "Exit 0 when it finished; otherwise the trial's exit code (10 crash, "
                       "11 nan, 12 oom, 13 killed).")
    p.add_argument("config", help="train config YAML")
    p.add_argument("--output-dir", help="overrides output_dir of the config")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue the trial in the output dir from its last intact "
                      "checkpoint")
    mode.add_argument("--force", action="store_true",
                      help="start over in a non-empty output dir: the files the harness wrote "
                      "there before are removed, anything else is kept")
    p.set_defaults(run=_train)


def _train(args: argparse.Namespace) -> int:
    from harness.events import EXIT_CODES
    from harness.sweep.train import train_command

    result = train_command(args.config, output_dir=args.output_dir, resume=args.resume,
                           force=args.force)
    return EXIT_CODES.get(result.reason, EXIT_CODES["crash"])


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list base models, or prepare one",
                       description="List embedded and locally cached base models.")
    p.set_defaults(run=_models_list)
    prep = p.add_subparsers(title="models").add_parser(
        "prepare", help="convert an embedded model ahead of training")
    prep.add_argument("name", help="an embedded model's name (`harness models` lists them)")
    prep.set_defaults(run=_models_prepare)


def _models_list(args: argparse.Namespace) -> int:
    from harness.models import harness_home, list_models

    print(f"models (HARNESS_HOME={harness_home()}):")
    for entry in list_models():
        print(f"  {entry.name:<32} {entry.kind:<9} {entry.where}")
    return 0


def _models_prepare(args: argparse.Namespace) -> int:
    from harness.models import EMBEDDED, prepare_embedded

    if args.name not in EMBEDDED:
        raise HarnessError(f"{args.name!r} is not an embedded model; embedded: "
                           f"{', '.join(EMBEDDED)}. Hub models are fetched on first use.")
    print(f"{args.name}: ready at {prepare_embedded(args.name)}")
    return 0


def _add_data_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="pre-flight report on a dataset",
        description="Read a dataset as training would and report what is usable, what is "
        "left out and why, token lengths against the cutoff, and examples as the model sees "
        "them. Exit 0 if usable, 1 if not, 2 on an error.")
    p.add_argument("path", help="a data file or directory")
    p.add_argument("--model", help="base model whose tokenizer measures and renders the data "
                   f"(e.g. {DEFAULT_MODEL}, a hub id, or a local directory)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_flags(p, DataConfig, skip=("path",), singular=LIST_FLAGS)
    p.add_argument("--examples", type=int, default=3, help="examples to show")
    p.set_defaults(run=_data_check)


def _data_check(args: argparse.Namespace) -> int:
    from harness.data.doctor import check

    config = DataConfig(path=args.path, **values(args, DataConfig, skip=("path",)))
    report = check(config, model=args.model, examples=args.examples)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        from rich.console import Console

        from harness.data.doctor_view import print_report

        print_report(report, Console())
    return 0 if report["verdict"]["usable"] else EXIT_UNUSABLE
