"""Benchmark: does the harness's search pick a better adapter than the first guesses people try,
at equal compute? Test loss of each method's pick, on two datasets, three seeds each.

Methods, each given the same budget of training steps on one (dataset, seed):

- harness: the harness's defaults (`StudySettings()`) as the shipped spaces use them: a start
  of a quarter of the expected trials (at least 3) placed by what is known of LoRA (a
  learning-rate sweep at alpha = 2 x rank, harness/study/start.py), then multivariate TPE
  with constant liar; the
  median pruner against every trial that reached the step (pruned ones included) after a
  quarter of each trial's steps; epochs as a fidelity: every trial runs the space's most epochs
  and is judged by, and keeps, its best epoch end.
- webui: text-generation-webui's defaults as one trial (r 32, alpha 64, lr 3e-4, 3 epochs).
- grid: an Axolotl-style grid over the same space (cartesian product of r, alpha per rank,
  learning rates 3e-5..3e-3 by half-decades and 1..3 epochs), shuffled by the seed, run in that
  order until the budget is spent; no pruning, the last adapter.
- random: Optuna's RandomSampler, no pruning, the last adapter.
- optuna: stock `TPESampler(seed)` with `MedianPruner()`, reporting each eval; the last adapter.
- harness-epochs-searched, harness-random-start (with --methods): the harness with
  `training.epochs` searched like the other parameters, or with Optuna's random start instead
  of the LoRA one: what each of the two choices is worth.

Every trial trains with the harness's own loop (`harness.trial.loop.train_loop`, grouped
batching) on the same encoded splits of the harness (train / eval / test by source document),
from the same training seed, in this one process: the base model is loaded once per dataset and
each trial wraps it in a fresh LoRA adapter (`add_lora`), removed again after it (peft
`unload`). Every method evaluates at each epoch's end (the eval split) and picks the trial with
the lowest eval value; a pruned trial is never picked. What the bench compares is the pick's
loss on the test split, which no method saw. The budget is in optimizer steps actually trained
(a pruned trial costs what it trained); a method starts no trial once it has spent the budget,
so each overshoots by at most one trial (the steps spent are reported). A trial another method
already trained to its end (the same parameters and seed) is replayed, its evals shown to the
asking method's pruner, instead of trained again: on the CPU training is deterministic, and
stock TPE proposes exactly the random search's trials until its tenth.

Datasets: `medquad`, some documents of a collection in ../shared/data/medquad (each document
stays on one side of the split), and `instructions`, a seeded instruction set of everyday rule-
following tasks (bench/instruction_set.py). The model is the embedded SmolLM2-135M-Instruct,
unquantized (4-bit matmuls on a CPU are slow, and the quantization is a memory choice, not what
this compares), LoRA on all linear layers.

Usage: python bench/search_quality.py [--datasets medquad,instructions] [--seeds 0,1,2]
           [--budget STEPS] [--methods harness,webui,grid,random,optuna] [--json OUT]
       python bench/search_quality.py --quick   (smoke test: tiny budget, one seed)
Sized for about an hour on 2 CPU cores at the defaults; on a GPU raise --budget, the data
(--medquad-docs, --instructions) and the cutoff, and run the 4-bit space (--quantization 4bit).
Prints a Markdown table for bench/RESULTS.md, and each method's best-so-far curve.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from dataclasses import asdict
from pathlib import Path

import optuna
from common import MEDQUAD
from search_methods import Run, method, run_method
from search_trials import Bench

from harness.config import TrainConfig, from_mapping

optuna.logging.set_verbosity(optuna.logging.WARNING)


def dataset_config(name: str, *, work: Path, args: argparse.Namespace) -> TrainConfig:
    """The fixed part of every trial on dataset ``name``."""
    if name == "medquad":
        path = medquad_subset(work / "medquad", docs=args.medquad_docs)
        data = {"path": str(path), "format": "medquad", "cutoff_len": args.cutoff}
    else:
        from instruction_set import instruction_set

        work.mkdir(parents=True, exist_ok=True)
        path = work / "instructions.json"
        path.write_text(json.dumps(instruction_set(args.instructions, seed=0)))
        # its examples are short: a longer cutoff would only pad
        data = {"path": str(path), "format": "alpaca", "cutoff_len": min(args.cutoff, 64)}
    data.update(eval_fraction=args.held_out, test_fraction=args.held_out)
    return from_mapping(TrainConfig, {
        "data": data, "quantization": {"mode": args.quantization},
        "lora": {"dropout": 0.05, "target_modules": "all-linear"},
        "training": {"micro_batch_size": args.micro_batch, "scheduler": "cosine",
                     "warmup_steps": 2, "eval_steps": 0},
        "samples": {"count": 0}, "retention": {"enabled": False}})


def medquad_subset(out: Path, *, docs: int) -> Path:
    """The first ``docs`` documents of a MedQuAD collection, linked (not copied) under ``out``."""
    collection = MEDQUAD / "5_NIDDK_QA"
    if not collection.is_dir():
        raise SystemExit(f"the shared MedQuAD collections are missing at {MEDQUAD}")
    target = out / collection.name
    target.mkdir(parents=True, exist_ok=True)
    for source in sorted(collection.glob("*.xml"))[:docs]:
        (target / source.name).symlink_to(source)
    return out


def report(results: dict[tuple[str, int], dict[str, Run]], methods: list[str]) -> str:
    lines = ["| dataset | seed | " + " | ".join(methods) + " | harness lowest | beats webui |",
             "| --- | ---: | " + " | ".join("---:" for _ in methods) + " | :---: | :---: |"]
    lowest = beats = 0
    for (dataset, seed), runs in results.items():
        tests = {m: runs[m].pick.test if runs[m].pick else math.nan for m in methods}
        ours = tests.get("harness", math.nan)
        is_lowest = all(ours <= v for m, v in tests.items() if m != "harness"
                        and math.isfinite(v))
        beat = ours < tests.get("webui", math.nan)
        lowest, beats = lowest + is_lowest, beats + beat
        cells = [f"{tests[m]:.4f} ({runs[m].steps} st, {len(runs[m].trials)} tr)"
                 for m in methods]
        lines.append(f"| {dataset} | {seed} | " + " | ".join(cells)
                     + f" | {'yes' if is_lowest else 'no'} | {'yes' if beat else 'no'} |")
    n = len(results)
    lines.append(f"\nHarness lowest test loss in {lowest} of {n} cases (goal >= 5 of 6); beats "
                 f"the webui defaults in {beats} of {n} (goal 6 of 6).")
    return "\n".join(lines)


def curves(results: dict[tuple[str, int], dict[str, Run]]) -> str:
    lines = ["| dataset | seed | method | best-so-far test loss at steps spent |",
             "| --- | ---: | --- | --- |"]
    for (dataset, seed), runs in results.items():
        for name, run in runs.items():
            points = ", ".join(f"{s}: {t:.3f}" for s, _, t in run.curve if math.isfinite(t))
            lines.append(f"| {dataset} | {seed} | {name} | {points} |")
    return "\n".join(lines)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="medquad,instructions")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default="harness,webui,grid,random,optuna")
    parser.add_argument("--budget", type=int, default=96, help="optimizer steps per method")
    parser.add_argument("--expected-trials", type=int, default=8,
                        help="the harness's `trials` (its start is a quarter, at least 3)")
    parser.add_argument("--medquad-docs", type=int, default=10)
    parser.add_argument("--instructions", type=int, default=120)
    parser.add_argument("--held-out", type=float, default=0.3,
                        help="eval_fraction and test_fraction each")
    parser.add_argument("--cutoff", type=int, default=96)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--quantization", default="none", choices=["none", "8bit", "4bit"])
    parser.add_argument("--json", type=Path, help="write every trial here")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.budget, args.medquad_docs, args.instructions = "0", 4, 6, 30
    return args


def main() -> None:
    args = arguments()
    methods = args.methods.split(",")
    results: dict[tuple[str, int], dict[str, Run]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for dataset in args.datasets.split(","):
            bench = Bench(dataset_config(dataset, work=work / dataset, args=args),
                          scratch=work)
            print(f"{dataset}: {len(bench.data.train)} train, {len(bench.data.evals)} eval, "
                  f"{len(bench.data.tests)} test examples; base model eval loss "
                  f"{bench.base_loss:.4f}, test loss {bench.base_test:.4f}", flush=True)
            for seed in map(int, args.seeds.split(",")):
                results[(dataset, seed)] = {name: run_method(
                    name, method(name, expected=args.expected_trials)(bench, seed), bench=bench,
                    budget=args.budget) for name in methods}
    print("\n" + report(results, methods) + "\n\n" + curves(results))
    if args.json:
        args.json.write_text(json.dumps({f"{d}/{s}": {m: asdict(r) for m, r in runs.items()}
                                         for (d, s), runs in results.items()}, indent=1))


if __name__ == "__main__":
    main()
