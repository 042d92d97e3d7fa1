"""The `harness` command: argparse subcommands, each a few lines that call one function."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from harness import __version__
from harness.cli_sweep import add_commands
from harness.errors import HarnessError, disk_full, is_disk_full

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
                       description="Run one trial from a YAML config under accelerate launch. "
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
    prep.add_argument("name")
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
    p.add_argument("--format", default="auto",
                   choices=["auto", "alpaca", "chat", "rawtext", "medquad"])
    p.add_argument("--format-file", help="format file (path, or a name in datasets/formats)")
    p.add_argument("--model", help="base model whose tokenizer measures and renders the data "
                   "(e.g. smollm2-135m-instruct, a hub id, or a local directory)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--cutoff-len", type=int, default=256)
    p.add_argument("--overlap-len", type=int, default=0)
    p.add_argument("--hard-cut", default="\n\n\n",
                   help="raw text: a string that always ends a chunk (default: three newlines)")
    p.add_argument("--train-on", choices=["response", "all"], default="response")
    p.add_argument("--eval-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--source", action="append", default=[], help="MedQuAD: keep this source")
    p.add_argument("--qtype", action="append", default=[], help="MedQuAD: keep this qtype")
    p.add_argument("--ignore-key", action="append", default=[],
                   help="alpaca: a record key to leave out (ids, scores); repeatable")
    p.add_argument("--refusal-phrase", action="append", default=None,
                   help="leave out responses containing this; repeatable; replaces the "
                   "built-in list (give '' to filter nothing)")
    p.add_argument("--on-invalid", choices=["error", "skip"], default="error")
    p.add_argument("--examples", type=int, default=3, help="examples to show")
    p.set_defaults(run=_data_check)


def _data_check(args: argparse.Namespace) -> int:
    from harness.config import DataConfig
    from harness.data.doctor import check

    config = DataConfig(
        path=args.path, format=args.format, format_file=args.format_file,
        cutoff_len=args.cutoff_len, overlap_len=args.overlap_len, hard_cut=args.hard_cut,
        train_on=args.train_on, eval_fraction=args.eval_fraction, seed=args.seed,
        sources=args.source, qtypes=args.qtype, ignore_keys=args.ignore_key,
        on_invalid=args.on_invalid)
    if args.refusal_phrase is not None:
        config.refusal_phrases = [p for p in args.refusal_phrase if p.strip()]
    report = check(config, model=args.model, examples=args.examples)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        from rich.console import Console

        from harness.data.doctor_view import print_report

        print_report(report, Console())
    return 0 if report["verdict"]["usable"] else EXIT_UNUSABLE
