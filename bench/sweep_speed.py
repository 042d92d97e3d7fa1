"""Benchmark: what a sweep costs over its training, and what pruning saves.

1. Overhead. A sweep of fixed trials (enqueued parameters, no pruning, no samples) runs as
   `harness sweep`; then, for each of its trials, a bare script in a fresh process loads the
   same data and model, trains the same steps with a plain peft loop, evaluates once and saves
   the adapter. Ratio: the sweep's wall time over the sum of the bare scripts' wall times.
2. Pruning. The same seeded TPE study twice, median pruner on and off: total optimizer steps
   trained and the best eval loss of each.

Usage: python bench/sweep_speed.py [--part overhead|pruning|both] [--trials N] [--steps N]
Prints Markdown tables for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SPACE = """
model: {model}
data: {{path: {data}, format: medquad, cutoff_len: {cutoff}, eval_fraction: 0.15}}
quantization: {{mode: 4bit}}
training: {{max_steps: {steps}, micro_batch_size: 4, eval_steps: {eval_steps}, warmup_steps: 0}}
samples: {{count: 0}}
study: {{sampler: tpe, seed: 3, pruner: {pruner}, trials: {trials}, output_dir: {out}{extra}}}
search:
  training.learning_rate: {{low: 1.0e-5, high: 5.0e-3, log: true}}
  lora.r: [4, 8, 16]
"""
FIXED = [(1e-3, 8), (3e-4, 16), (2e-3, 4), (1e-4, 8), (5e-4, 8), (3e-3, 16)]


def write_space(tmp: Path, name: str, args: argparse.Namespace, *, pruner: str,
                eval_steps: int, enqueue: list[tuple[float, int]]) -> Path:
    extra = "".join(f", {key}: {value}" for key, value in pruner_settings(args).items())
    text = SPACE.format(model=args.model, data=ROOT / "datasets/samples/medquad",
                        cutoff=args.cutoff_len, steps=args.steps, eval_steps=eval_steps,
                        pruner=pruner, trials=args.trials, out=tmp / "studies", extra=extra)
    if enqueue:
        text += "enqueue:\n" + "".join(f"  - {{training.learning_rate: {lr}, lora.r: {r}}}\n"
                                       for lr, r in enqueue)
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    return path


def run_sweep(space: Path, tmp: Path) -> float:
    cmd = [sys.executable, "-m", "harness", "sweep", str(space), "--storage",
           str(tmp / "optuna.journal"), "--tracking-uri", f"sqlite:///{tmp / 'mlflow.db'}",
           "--no-promote"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"sweep failed:\n{done.stderr[-4000:]}")
    return time.perf_counter() - start


def bare_script(config_path: str) -> None:
    """What a user would write without the harness: data, model, LoRA, train, eval, save."""
    from bare import build, train

    from harness.config import TrainConfig, from_mapping
    from harness.trial.evaluation import eval_loss

    config = from_mapping(TrainConfig, json.loads(Path(config_path).read_text()))
    data, model, optimizer, on = build(config)
    train(config, data, model, optimizer, on)
    eval_loss(model, data.evals, batch_size=config.training.micro_batch_size,
              pad_id=data.tokenizer.pad_token_id, device=on)
    model.save_pretrained(Path(config.output_dir) / "bare-adapter")


def overhead(args: argparse.Namespace) -> None:
    """Rounds of (sweep, bare scripts), the order alternating, so that a burst of load on this
    shared machine shows as a round that disagrees instead of biasing one side."""
    ratios, rows = [], []
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            space = write_space(tmp, "overhead", args, pruner="none", eval_steps=0,
                                enqueue=FIXED[:args.trials])
            configs = bare_configs(space, tmp / "bare")
            if round_ % 2:
                bare = run_bare(configs)
                harness = run_sweep(space, tmp)
            else:
                harness = run_sweep(space, tmp)
                bare = run_bare(configs)
            trials = trial_run_seconds(tmp, "overhead")
        ratios.append(harness / sum(bare))
        rows.append(f"| {round_ + 1} | {', '.join(f'{b:.1f}' for b in bare)} | {sum(bare):.1f} "
                    f"| {', '.join(f'{t:.1f}' for t in trials)} | {harness:.1f} "
                    f"| {ratios[-1]:.3f} |")
    print(f"\nOverhead: {args.trials} trials of {args.steps} steps, {args.model}, 4-bit, "
          f"cutoff {args.cutoff_len}, {args.rounds} rounds (sweep first in odd rounds)\n")
    print("| round | bare scripts s | bare sum s | sweep's trial runs s | `harness sweep` s "
          "| sweep / bare |")
    print("| --- | --- | ---: | --- | ---: | ---: |")
    print("\n".join(rows))
    print(f"| **median** | | | | | **{statistics.median(ratios):.3f}** (goal <= 1.05) |")


def trial_run_seconds(tmp: Path, study: str) -> list[float]:
    """How long each trial's MLflow run lasted (spawn to result), so a slow round shows whether
    its time went into the trials or into the sweep around them."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study)
    runs = [r for r in client.search_runs([experiment.experiment_id])
            if "optuna.trial" in r.data.tags]
    runs.sort(key=lambda r: int(r.data.tags["optuna.trial"]))
    return [(r.info.end_time - r.info.start_time) / 1000 for r in runs]


def bare_configs(space_path: Path, out: Path) -> list[Path]:
    """The train config of each enqueued trial, as the sweep writes it for the trial."""
    from harness.launch.command import write_trial_config
    from harness.space.load import load_space

    space = load_space(space_path)
    paths = []
    for i, given in enumerate(space.enqueue):
        trial_dir = out / f"trial-{i:04d}"
        write_trial_config(space.train_config(space.as_params(given),
                                              output_dir=str(trial_dir)), trial_dir)
        paths.append(trial_dir / "train_config.json")
    return paths


def run_bare(configs: list[Path]) -> list[float]:
    """Each trial as a bare script in a fresh process; their wall times."""
    times = []
    for config in configs:
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--bare", str(config)], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def pruning(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as name:  # the report reads the trials' directories
        tmp = Path(args.keep or name)
        tmp.mkdir(parents=True, exist_ok=True)
        report_pruning(args, {pruner: run_pruning_study(args, tmp, pruner)
                              for pruner in args.pruners.split(",")})


def run_pruning_study(args: argparse.Namespace, tmp: Path, pruner: str) -> tuple[Any, float]:
    from harness.study.storage import load_study, open_storage

    space = write_space(tmp, f"prune-{pruner}", args, pruner=pruner,
                        eval_steps=args.eval_steps, enqueue=[])
    wall = run_sweep(space, tmp)
    return load_study(f"prune-{pruner}", open_storage(str(tmp / "optuna.journal"))), wall


def report_pruning(args: argparse.Namespace, results: dict[str, tuple[Any, float]]) -> None:
    settings = ", ".join(f"{k} {v}" for k, v in pruner_settings(args).items()) or "defaults"
    print(f"\nPruning: {args.trials} trials, seeded TPE, up to {args.steps} steps each, eval "
          f"every {args.eval_steps}, {args.model}, 4-bit; pruner settings: {settings}\n")
    print("| pruner | steps trained | best eval loss | pruned trials | wall s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    summary = {}
    for pruner, (study, wall) in results.items():
        steps = sum(trained_steps(Path(t.user_attrs["output_dir"])) for t in study.trials)
        n_pruned = sum(t.state.name == "PRUNED" for t in study.trials)
        summary[pruner] = (steps, study.best_value)
        print(f"| {pruner} | {steps} | {study.best_value:.4f} | {n_pruned} | {wall:.0f} |")
    if set(summary) == {"none", "median"}:
        (s_off, best_off), (s_on, best_on) = summary["none"], summary["median"]
        print(f"| **saving** | **{1 - s_on / s_off:.1%}** (goal >= 40 %) | "
              f"**{best_on / best_off - 1:+.2%}** (goal within 2 %) | | |")
    for pruner, (study, _) in results.items():
        print(f"\nTrials, pruner {pruner}:\n")
        print(trial_table(study))


def pruner_settings(args: argparse.Namespace) -> dict[str, object]:
    """The pruner settings given on the command line; the rest are the space's defaults."""
    given = {"min_peers": args.min_peers, "warmup_steps": args.warmup_steps,
             "warmup_fraction": args.warmup_fraction}
    return {key: value for key, value in given.items() if value is not None}


def trial_table(study: Any) -> str:
    """A row per trial: its parameters, its eval loss curve and how it ended."""
    rows = ["| trial | lr | r | eval loss by step | final | state |",
            "| ---: | ---: | ---: | --- | ---: | --- |"]
    for t in study.trials:
        curve = ", ".join(f"{step}: {v:.3f}" for step, v in sorted(t.intermediate_values.items()))
        final = f"{t.value:.4f}" if t.value is not None else ""
        rows.append(f"| {t.number} | {t.params['training.learning_rate']:.2e} | "
                    f"{t.params['lora.r']} | {curve} | {final} | {t.state.name} |")
    return "\n".join(rows)


def trained_steps(out: Path) -> int:
    steps = 0
    for line in (out / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "step":
            steps = max(steps, event["step"])
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["overhead", "pruning", "both"], default="both")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--eval-steps", type=int, default=4)
    parser.add_argument("--cutoff-len", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2, help="overhead: rounds, order "
                        "alternating")
    parser.add_argument("--pruners", default="none,median",
                        help="pruning: the studies to run, in order")
    parser.add_argument("--min-peers", type=int, help="pruning: override the default")
    parser.add_argument("--warmup-steps", type=int, help="pruning: override the default")
    parser.add_argument("--warmup-fraction", type=float, help="pruning: override the default")
    parser.add_argument("--keep", help="pruning: keep the studies in this directory")
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_script(args.bare)
        return
    if args.part in ("overhead", "both"):
        args.trials = args.trials or 4
        overhead(args)
        args.trials = None
    if args.part in ("pruning", "both"):
        args.trials = args.trials or 10
        pruning(args)


if __name__ == "__main__":
    main()
