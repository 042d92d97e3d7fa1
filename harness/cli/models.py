"""`harness models`: the base models there are, and converting an embedded one."""

from __future__ import annotations

import argparse

from harness.errors import HarnessError


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list base models, or prepare one",
                       description="List embedded and locally cached base models.")
    p.set_defaults(run=_list)
    prep = p.add_subparsers(title="models").add_parser(
        "prepare", help="convert an embedded model ahead of training")
    prep.add_argument("name", help="an embedded model's name (`harness models` lists them)")
    prep.set_defaults(run=_prepare)


def _list(args: argparse.Namespace) -> int:
    from harness.models import harness_home, list_models

    print(f"models (HARNESS_HOME={harness_home()}):")
    for entry in list_models():
        print(f"  {entry.name:<32} {entry.kind:<9} {entry.where}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from harness.models import EMBEDDED, prepare_embedded

    if args.name not in EMBEDDED:
        raise HarnessError(f"{args.name!r} is not an embedded model; embedded: "
                           f"{', '.join(EMBEDDED)}. Hub models are fetched on first use.")
    print(f"{args.name}: ready at {prepare_embedded(args.name)}")
    return 0
