"""`harness train`: one fine-tune, tracked in MLflow."""

from __future__ import annotations

import argparse

from harness.protocol import EXIT_CODES, FAILURES, exit_code


def add(sub: argparse._SubParsersAction) -> None:
    codes = ", ".join(f"{EXIT_CODES[reason]} {reason}" for reason in FAILURES)
    p = sub.add_parser("train", help="run one LoRA fine-tune, tracked in MLflow",
                       description="Run one trial from a YAML config with Accelerate. "
                       f"Exit 0 when it finished; otherwise the trial's exit code ({codes}).")
    p.add_argument("config", help="train config YAML")
    p.add_argument("--output-dir", help="overrides output_dir of the config")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue the trial in the output dir from its last intact "
                      "checkpoint")
    mode.add_argument("--force", action="store_true",
                      help="start over in a non-empty output dir: the files the harness wrote "
                      "there before are removed, anything else is kept")
    mode.add_argument("--dry-run", action="store_true",
                      help="check the config and its data and estimate the trial's peak memory "
                      "(from the model's config alone); train nothing. Exit 0 when it fits "
                      "this machine, 2 when it does not")
    p.set_defaults(run=_train)


def _train(args: argparse.Namespace) -> int:
    from harness.launch.train import dry_run, train_command

    if args.dry_run:
        return 0 if dry_run(args.config) else 2
    result = train_command(args.config, output_dir=args.output_dir, resume=args.resume,
                           force=args.force)
    return exit_code(result.reason)
