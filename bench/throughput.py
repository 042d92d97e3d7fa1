"""Benchmark: the harness's batching modes against TRL's SFTTrainer, in real tokens/s, on MedQuAD.

The harness's three `data.batching` modes and TRL's SFTTrainer padded, padding-free and packed,
all measured in one run on the MedQuAD collections, with peak memory and eval loss beside.

Every side runs in a fresh Python process and trains the same base model (the embedded
SmolLM2-135M-Instruct by default), built by the harness's own `build_model` (same quantization,
4-bit nf4 by default; LoRA r 16, alpha 32, dropout 0.05 on all linear layers; gradient
checkpointing on by default, as TRL has it, non-reentrant everywhere), with AdamW at 1e-4 on a
cosine schedule without warm-up, clipping at 1.0, one micro-batch per optimizer step, over the
same number of training examples (--examples), once through:

- harness padded / grouped / packed: a real trial (`run_trial`, as `harness train` runs it),
  `data.batching` set, evaluated at the end only; figures from its step, eval, finished events.
  No test split and no retention measure: those final figures say nothing of speed, and on the
  full MedQuAD a test split takes most of a small side's time (37 of 50 s on a CPU).
- trl-padded: `trl.SFTTrainer` batching as it does by default, each batch padded to its longest.
- trl-padding-free: `padding_free=True`, a batch's examples laid end to end in one row.
- trl-packed: `packing=True` (best fit decreasing): the examples packed into rows of cutoff_len
  tokens first, then a batch of micro_batch_size rows laid end to end as in padding-free.

TRL trains the harness's own encoded examples (the same chat rendering, tokens and response-only
labels, given as `input_ids` + `completion_mask` with `completion_only_loss=True`; checked
against the harness's labels) in the order of the harness's padded trial (sequential sampler).
The harness's padded and packed trials and every TRL side thus train on the same examples; the
grouped trial trains on as many, the first of its length-grouped order. TRL's packing makes fewer
rows of those examples and so takes fewer, larger optimizer steps (hence the examples / steps
column): its eval is after the same examples, not after as many steps.

Measures. Real tokens/s: example tokens (no padding) of the steps after --warmup, over the time
from the end of the last warm-up step to the end of the last (harness: step events; TRL: a
TrainerCallback's on_step_end, tokens counted on the host by a wrapper around TRL's collator).
Padding efficiency: example tokens per computed position, mean over the steps. Peak memory:
`harness.trial.recipe.peak_memory_mb` (peak RSS on CPU, torch.cuda.max_memory_allocated on a
GPU) at the end of each side's process. Eval loss: `harness.trial.evaluation.eval_loss` on the
harness's eval split (kept small by --eval-fraction; the bench checks that every side saw the
same split), the computation the trial itself runs. TRL processes get the thread count the
harness gives its trials (`harness.launch.command.cpu_threads`).

Left as TRL has them: its fused LM head and per-step entropy / token-accuracy metrics; bf16
autocast on a bf16-capable GPU (the harness trial runs without autocast; its 4-bit matmuls use
bf16 there). Undone: TRL casts a quantized model's adapter weights to bf16; the bench casts them
back to fp32 so all sides train the same weights (--trl-bf16-adapter keeps TRL's cast).

Usage: python bench/throughput.py [--quantization none|8bit|4bit] [--examples N] [--warmup N]
           [--settings 512x8,128x4] [--sides harness-padded,...,trl-packed]
           [--eval-fraction F] [--no-gradient-checkpointing] [--trl-bf16-adapter]
       python bench/throughput.py --quick   (smoke test: 128x4, 2 steps, a handful of eval records)
Needs the bench extra (`pip install -e '.[bench]'`: trl). Prints a Markdown table per setting
for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from common import ROOT
from throughput_trl import TRL_SIDES, trl_side

from harness.config import TrainConfig, from_mapping

HARNESS_SIDES = ("harness-padded", "harness-grouped", "harness-packed")
SIDES = (*HARNESS_SIDES, *TRL_SIDES)
BASELINE = "harness-padded"


@dataclass(frozen=True)
class Setting:
    cutoff_len: int
    batch: int

    @classmethod
    def parse(cls, text: str) -> Setting:
        cutoff, _, batch = text.partition("x")
        return cls(int(cutoff), int(batch))

    def __str__(self) -> str:
        return f"{self.cutoff_len}x{self.batch}"


def bench_config(args: argparse.Namespace, setting: Setting, batching: str,
                 out: Path) -> TrainConfig:
    return from_mapping(TrainConfig, {
        "model": args.model,
        "data": {"path": args.data, "format": "medquad", "cutoff_len": setting.cutoff_len,
                 "eval_fraction": args.eval_fraction, "test_fraction": 0.0,
                 "batching": batching},
        "retention": {"enabled": False},
        "quantization": {"mode": args.quantization},
        "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
        "training": {"max_steps": args.examples // setting.batch,
                     "micro_batch_size": setting.batch, "gradient_accumulation": 1,
                     "learning_rate": 1e-4, "scheduler": "cosine", "warmup_steps": 0,
                     "eval_steps": 0, "save_steps": 0, "logging_steps": 1,
                     "gradient_checkpointing": args.gradient_checkpointing},
        "samples": {"count": 0},
        "tracking": {"uri": f"sqlite:///{out / 'unused.db'}"},
        "output_dir": str(out),
    })


# --- the harness: a real trial ---------------------------------------------------------------

def harness_side(config: TrainConfig, out: Path, warmup: int) -> dict[str, Any]:
    from common import harness_trial, step_times, tokens_per_second

    from harness.protocol import BaseEval, Eval, Finished, Started, Step

    result = harness_trial(config, out)
    steps = [e for e in result.events if isinstance(e, Step)]
    started, finished = result.first(Started), result.last(Finished)
    evaluated, base = result.last(Eval), result.last(BaseEval)
    assert started and finished and evaluated and base, "a finished trial says all of these"
    t = config.training
    return {"tokens_per_second": tokens_per_second(*step_times(steps), warmup),
            "padding_efficiency": statistics.fmean(e.padding_efficiency for e in steps),
            "peak_memory_mb": finished.peak_memory_mb, "eval_loss": evaluated.loss,
            "base_eval_loss": base.loss,
            "examples": len(steps) * t.micro_batch_size * t.gradient_accumulation,
            "steps": len(steps), "eval_examples": started.eval_examples,
            "eval_fingerprint": started.eval_fingerprint}


# --- the run and its report ------------------------------------------------------------------

def run_setting(args: argparse.Namespace, setting: Setting) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for side in args.sides:
            out = Path(tmp) / side
            batching = side.removeprefix("harness-") if side in HARNESS_SIDES else "padded"
            config = bench_config(args, setting, batching, out)
            began = time.perf_counter()
            row = (harness_side(config, out, args.warmup) if side in HARNESS_SIDES
                   else trl_side(side, config, warmup=args.warmup,
                                 bf16_adapter=args.trl_bf16_adapter))
            row["wall_s"] = time.perf_counter() - began
            print(f"{setting} {side}: {row['wall_s']:.0f} s", file=sys.stderr, flush=True)
            rows[side] = row
    if len({r["eval_fingerprint"] for r in rows.values()}) > 1:
        raise SystemExit(f"{setting}: the sides evaluated on different eval splits")
    return rows


def machine() -> str:
    import torch

    from harness.launch.command import cpu_threads

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    versions = ", ".join(f"{p} {_version(p)}" for p in
                         ("torch", "transformers", "trl", "peft", "bitsandbytes"))
    return (f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs "
            f"({cpu_threads(1)} threads per side), {gpu}, Python {platform.python_version()}, "
            f"{versions}")


def mfu(args: argparse.Namespace, row: dict[str, Any]) -> str:
    from mfu import utilisation

    return utilisation(row["tokens_per_second"], args.model)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:  # trl, where only the harness sides run
        return "not installed"


def report(args: argparse.Namespace, results: dict[Setting, dict[str, dict[str, Any]]]) -> None:
    print(f"\nMachine: {machine()}\n\nCommand: `python {shlex.join(sys.argv)}`")
    for setting, rows in results.items():
        print(f"\n{heading(args, setting, rows)}\n")
        print("| side | real tokens/s | ratio to harness padded | padding efficiency | "
              "peak memory MB | examples (steps) | eval loss | eval loss vs harness padded "
              f"| side wall s |{' MFU |' if args.mfu else ''}\n| --- | ---: | ---: | ---: | "
              f"---: | ---: | ---: | ---: | ---: |{' ---: |' if args.mfu else ''}")
        for side, row in rows.items():
            print(table_row(side, row, rows.get(BASELINE))
                  + (f" {mfu(args, row)} |" if args.mfu else ""))


def heading(args: argparse.Namespace, setting: Setting, rows: dict[str, dict[str, Any]]) -> str:
    evals = next(iter(rows.values()))["eval_examples"]
    base = next((f", base model's eval loss {r['base_eval_loss']:.4f}"
                 for r in rows.values() if "base_eval_loss" in r), "")
    checkpointing = "on" if args.gradient_checkpointing else "off"
    return (f"{args.model}, quantization {args.quantization}, cutoff_len {setting.cutoff_len}, "
            f"micro-batch {setting.batch}, {args.examples} examples ({args.warmup} warm-up "
            f"step(s) untimed), gradient checkpointing {checkpointing}, {evals} eval "
            f"examples{base}")


def table_row(side: str, r: dict[str, Any], base: dict[str, Any] | None) -> str:
    return (f"| {side} | {r['tokens_per_second']:.1f} | "
            f"{_vs(r['tokens_per_second'], base, 'tokens_per_second', ratio=True)} | "
            f"{r['padding_efficiency']:.3f} | {r['peak_memory_mb']:.0f} | "
            f"{r['examples']} ({r['steps']}) | {r['eval_loss']:.4f} | "
            f"{_vs(r['eval_loss'], base, 'eval_loss', ratio=False)} | {r['wall_s']:.0f} |")


def _vs(value: float, base: dict[str, Any] | None, key: str, *, ratio: bool) -> str:
    if base is None:
        return "n/a"
    if ratio:
        return f"{value / base[key]:.3f}"
    return f"{(value - base[key]) / base[key]:+.2%}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/medquad"),
                        help="MedQuAD collections (format medquad)")
    parser.add_argument("--quantization", default="4bit", choices=["none", "8bit", "4bit"])
    parser.add_argument("--examples", type=int, default=48,
                        help="training examples per side (a multiple of every micro-batch)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first steps (>= 1)")
    parser.add_argument("--settings", default="512x8,128x4",
                        help="CUTOFFxMICROBATCH, comma-separated")
    parser.add_argument("--sides", default=",".join(SIDES), help=f"of {', '.join(SIDES)}")
    parser.add_argument("--eval-fraction", type=float, default=0.005,
                        help="the harness's eval split (0.005: 69 eval examples of MedQuAD)")
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction,
                        default=True)
    parser.add_argument("--trl-bf16-adapter", action="store_true",
                        help="keep TRL's cast of a quantized model's adapter to bf16")
    parser.add_argument("--mfu", action="store_true",
                        help="add model FLOPs utilisation (6 x parameters per token) on a GPU")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 128x4, 2 steps, a handful of eval records")
    args = parser.parse_args()
    if args.quick:
        args.settings, args.examples, args.warmup, args.eval_fraction = "128x4", 8, 1, 0.0003
    args.settings = [Setting.parse(s) for s in args.settings.split(",")]
    args.sides = [s for s in args.sides.split(",") if s]
    check_args(parser, args)
    return args


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if unknown := [s for s in args.sides if s not in SIDES]:
        parser.error(f"unknown sides: {', '.join(unknown)}")
    if args.warmup < 1:
        parser.error("--warmup must be at least 1: the timing starts at a step's end")
    for s in args.settings:
        if args.examples % s.batch or args.examples // s.batch <= args.warmup:
            parser.error(f"--examples {args.examples} must be a multiple of {s.batch} and "
                         f"give more than --warmup {args.warmup} steps")


def main() -> None:
    args = parse_args()
    from harness.models import resolve_model

    resolve_model(args.model)  # convert an embedded model before any side runs
    report(args, {s: run_setting(args, s) for s in args.settings})


if __name__ == "__main__":
    main()
