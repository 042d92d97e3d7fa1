"""`harness data check`: the pre-flight report on a dataset."""

from __future__ import annotations

import argparse
import json

from harness.cli.flags import add_flags, values
from harness.config import DEFAULT_MODEL, DataConfig, Decontamination

LIST_FLAGS = {"sources": "source", "qtypes": "qtype", "ignore_keys": "ignore_key",
              "refusal_phrases": "refusal_phrase"}
"""`harness data check`'s repeatable flags, one value each."""
EXIT_UNUSABLE = 1


def add(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="inspect training data").add_subparsers(title="data")
    p = data.add_parser(
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
    p.add_argument("--against", nargs="+", action="extend", default=[], metavar="FILE",
                   help="evaluation sets (files or directories, any format the harness "
                   "reads) whose records training must not contain; the data's own test "
                   "split is always checked")
    add_flags(p, Decontamination, skip=("against",), prefix="contamination_",
              singular={"action": "on_contaminated"})
    p.set_defaults(run=_check)


def _check(args: argparse.Namespace) -> int:
    from harness.data.doctor import check

    settings = Decontamination(against=args.against, **values(args, Decontamination,
                                                                skip=("against",),
                                                                prefix="contamination_"))
    config = DataConfig(path=args.path, decontaminate=settings,
                        **values(args, DataConfig, skip=("path",)))
    report = check(config, model=args.model, examples=args.examples)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        from rich.console import Console

        from harness.data.doctor_view import print_report

        print_report(report, Console())
    return 0 if report["verdict"]["usable"] else EXIT_UNUSABLE
