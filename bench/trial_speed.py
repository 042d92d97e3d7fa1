"""Benchmark: a harness trial's training throughput against a bare peft loop, and launch overhead.

Both sides train the same base model with the same quantization, LoRA settings, micro-batches
(the harness's own encoded examples in the same order) and optimizer for the same number of
steps, each in a fresh Python process, alternating harness and bare in every round. Throughput is
tokens (non-padding) over the wall time of the steps after a warm-up, from the harness's step
events on one side and a stopwatch around the loop on the other. Launch overhead is the time from
starting the trial (``accelerate launch``) to its first optimizer step, split at the ``started``
event (imports, data, model) and the base-model evaluation before training.

With ``--processes N`` the harness trial runs data-parallel on N GPUs (training.num_processes,
N times the sequences per step) against the one-process bare loop: the ratio is then the
scaling of a data-parallel trial.

Usage: python bench/trial_speed.py [--quantization none|8bit|4bit] [--steps N] [--rounds R]
                                   [--processes N]
Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from common import ROOT, harness_trial, step_times, tokens_per_second

from harness.config import TrainConfig, from_mapping
from harness.protocol import Started, Step


def bench_config(args: argparse.Namespace, out: Path) -> TrainConfig:
    return from_mapping(TrainConfig, {
        "model": args.model,
        "data": {"path": args.data, "cutoff_len": args.cutoff_len, "eval_fraction": 0.1},
        "quantization": {"mode": args.quantization},
        "lora": {"r": 16, "alpha": 32},
        "training": {"max_steps": args.steps, "micro_batch_size": args.batch,
                     "learning_rate": 1e-4, "eval_steps": 0, "save_steps": 0,
                     "warmup_steps": 0, "logging_steps": 1, "num_processes": args.processes},
        "samples": {"count": 0},
        "tracking": {"uri": f"sqlite:///{out / 'unused.db'}"},
        "output_dir": str(out),
    })


def harness_side(config: TrainConfig, out: Path, warmup: int) -> dict[str, float]:
    launched = time.time()
    result = harness_trial(config, out)
    steps = [e for e in result.events if isinstance(e, Step)]
    started = result.first(Started)
    assert started is not None, "a finished trial started"
    return {"tokens_per_second": tokens_per_second(*step_times(steps), warmup),
            "to_started": started.time - launched,
            "to_first_step": steps[0].time - launched}


def bare_side(config: TrainConfig, warmup: int) -> dict[str, float]:
    """Run `bare_loop` in a fresh interpreter, as the harness trial is."""
    cmd = [sys.executable, __file__, "--bare-config", json.dumps(asdict(config)),
           "--warmup", str(warmup)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"bare loop failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bare_loop(config: TrainConfig, warmup: int) -> dict[str, float]:
    from bare import build, train

    data, model, optimizer, on = build(config)
    return {"tokens_per_second": train(config, data, model, optimizer, on, warmup=warmup)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default=str(ROOT / "datasets/samples/medquad"))
    parser.add_argument("--quantization", default="4bit", choices=["none", "8bit", "4bit"])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--cutoff-len", type=int, default=256)
    parser.add_argument("--processes", type=int, default=1,
                        help="data-parallel processes (GPUs) of the harness trial")
    parser.add_argument("--bare-config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_config:
        config = from_mapping(TrainConfig, json.loads(args.bare_config))
        print(json.dumps(bare_loop(config, args.warmup)))
        return
    from harness.models import device, resolve_model

    resolve_model(args.model)  # convert an embedded model before anything is timed
    harness, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            config = bench_config(args, Path(tmp) / f"round{r}")
            harness.append(harness_side(config, Path(tmp) / f"round{r}", args.warmup))
            bare.append(bare_side(config, args.warmup))
    report(args, device(), harness, bare)


def report(args: argparse.Namespace, on: str, harness: list[dict[str, float]],
           bare: list[dict[str, float]]) -> None:
    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    h, b = med(harness, "tokens_per_second"), med(bare, "tokens_per_second")
    print(f"\n{args.model}, quantization {args.quantization}, micro-batch {args.batch}, cutoff "
          f"{args.cutoff_len}, {args.steps} steps ({args.warmup} warm-up), {args.rounds} rounds, "
          f"device {on}, {platform.machine()}, Python {platform.python_version()}, harness "
          f"trial on {args.processes} process(es), bare loop on one\n")
    print("| measure | median | per round |\n| --- | ---: | --- |")
    for name, rows, key in (("bare peft loop, tokens/s", bare, "tokens_per_second"),
                            ("harness trial, tokens/s", harness, "tokens_per_second"),
                            ("launch to `started` (imports, data, model), s", harness,
                             "to_started"),
                            ("launch to first step (+ base eval), s", harness,
                             "to_first_step")):
        print(f"| {name} | {med(rows, key):.2f} | "
              f"{', '.join(f'{r[key]:.2f}' for r in rows)} |")
    goal = "goal >= 0.97" if args.processes == 1 else f"ideal {args.processes}"
    print(f"| **harness / bare throughput** | **{h / b:.3f}** | {goal} |")


if __name__ == "__main__":
    main()
