"""The `harness` command: argparse subcommands, each a few lines that call one function. One
module per group of commands; each adds its subcommands with `add`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from harness import __version__
from harness.cli import adapters, data, evaluate, models, sweep, train, ui
from harness.errors import HarnessError, disk_full, is_disk_full

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
        code: int = args.run(args)
        return code
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
    for group in (data, models, train, sweep, evaluate, adapters, ui):
        group.add(sub)
    return parser
