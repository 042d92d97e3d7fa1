"""`harness eval`: models scored side by side on the same data."""

from __future__ import annotations

import argparse
import json
import sys

from harness.cli.data import LIST_FLAGS
from harness.cli.flags import add_flags, values
from harness.cli.types import at_least_one, store_args, study_name
from harness.config import DataConfig


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="score models side by side: loss and the task metrics of their answers",
        description="Score each MODEL on the same data: loss and perplexity on the responses "
        "(raw text: sliding-window perplexity), and task metrics of greedy answers, each with "
        "a seeded 95%% bootstrap interval and its difference from the first MODEL. MODEL is "
        "base, NAME@ALIAS, NAME/VERSION, a run id, an adapter directory or a merged model "
        "directory. The comparison is recorded as an MLflow run.")
    p.add_argument("models", nargs="+", metavar="MODEL", help="the models; the first is the "
                   "one the others are compared with")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", metavar="PATH", help="a data file or directory, read as "
                       "`harness data check` reads it (every usable record)")
    where.add_argument("--study", type=study_name, help="score a study's split instead")
    p.add_argument("--split", choices=["eval", "test"], default="test",
                   help="with --study: which split (default: test)")
    p.add_argument("--metric", dest="metrics", action="append", default=[], metavar="M",
                   help="a task metric: exact_match, number_match, rougeL, MODULE:FUNCTION, or "
                   "a local evaluate module's directory (repeatable; default: the study's, else "
                   "all three built-in)")
    p.add_argument("--max-examples", type=int, metavar="N", help="records scored for loss, a "
                   "seeded sample (0: all; default: the study's test cap, else 200)")
    p.add_argument("--max-answers", type=int, metavar="N", help="prompts answered for the "
                   "metrics (0: all; default 100)")
    p.add_argument("--max-new-tokens", type=at_least_one, metavar="N",
                   help="longest answer, in tokens (default 64)")
    p.add_argument("--window", type=at_least_one, default=512, help="raw text: tokens the "
                   "model reads at once (default 512)")
    p.add_argument("--stride", type=at_least_one, default=256, help="raw text: tokens "
                   "between windows' starts (default 256)")
    p.add_argument("--base-model", help="what `base` is (default: the study's model, else the "
                   "adapters' base, else the embedded model)")
    p.add_argument("--experiment", help="MLflow experiment of the evaluation run (default: "
                   "the study's, else harness-eval)")
    p.add_argument("--no-log", action="store_true", help="do not record it in MLflow")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    store_args(p)
    add_flags(p, DataConfig, skip=("path", "near_dup"), singular=LIST_FLAGS)
    p.set_defaults(run=_eval)


def _eval(args: argparse.Namespace) -> int:
    import logging

    from rich.console import Console

    from harness.assess.command import (
        EvalOptions,
        evaluate_models,
        json_evaluation,
        print_evaluation,
    )

    data = DataConfig(path=args.data, **values(args, DataConfig, skip=("path", "near_dup"))) \
        if args.data else None
    options = EvalOptions(
        models=args.models, data=data, study=args.study, split=args.split,
        storage=args.storage, tracking_uri=args.tracking_uri, metrics=args.metrics,
        max_examples=args.max_examples, max_answers=args.max_answers,
        max_new_tokens=args.max_new_tokens, base_model=args.base_model, window=args.window,
        stride=args.stride, log=not args.no_log, experiment=args.experiment)
    console = Console(stderr=True) if args.json else Console()
    # an 8-bit model warns at every forward pass that int8 matmuls take float16 inputs: by
    # design of LLM.int8, and a flood in a terminal that generates hundreds of tokens
    logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)
    evaluation = evaluate_models(options, console)
    if args.json:
        print(json.dumps(json_evaluation(evaluation), ensure_ascii=False), file=sys.stdout)
    else:
        print_evaluation(evaluation, console)
    return 0
