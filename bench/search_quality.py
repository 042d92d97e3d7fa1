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
import itertools
import json
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import optuna  # noqa: E402

from harness.config import StudySettings, TrainConfig, from_mapping  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

MEDQUAD = ROOT.parent / "shared" / "data" / "medquad"
RANKS = [4, 8, 16, 32]
PER_RANK = [0.25, 1.0, 2.0]
LR = (3e-5, 3e-3)  # the grid's range
EPOCHS = (1, 3)
GRID_LR = [3e-5, 1e-4, 3e-4, 1e-3, 3e-3]
# the harness's names, so that its start knows them
R, PER, LRATE, EP = ("lora.r", "lora.alpha_per_rank", "training.learning_rate",
                     "training.epochs")
WEBUI = {R: 32, PER: 2.0, LRATE: 3e-4, EP: 3}


@dataclass
class Outcome:
    """One trial as the bench saw it."""

    params: dict[str, Any]
    steps: int
    """Optimizer steps trained (all of them, or up to the prune)."""
    pruned: bool
    value: float
    """What the method judges it by: the eval loss it chose (best epoch's or last)."""
    evals: dict[int, float] = field(default_factory=dict)
    test: float = math.nan
    """Test loss of the adapter it kept (a complete trial's)."""


@dataclass
class Trained:
    """A trial trained to its end, kept so that another method asking for the same trial
    replays it instead of training it again (training is deterministic on the CPU: same
    seed, same data order, same result)."""

    steps: int
    evals: dict[int, float]
    last_test: float
    """Test loss of the adapter at the trial's end."""
    best: tuple[float, float] | None
    """Eval and test loss of the best epoch end's adapter."""

    def replay(self, params: dict[str, Any], *, on_eval: Callable[[int, float, int], None],
               keep_best: bool) -> Outcome:
        """The outcome the asking method would have seen, its pruner consulted at each eval."""
        for step, loss in sorted(self.evals.items()):
            try:
                on_eval(step, loss, self.steps)
            except Pruned:
                return Outcome(params, step, True, math.nan,
                               {s: v for s, v in self.evals.items() if s <= step})
        if keep_best and self.best:
            value, test = self.best
        else:
            value, test = self.evals[max(self.evals)], self.last_test
        return Outcome(params, self.steps, False, value, dict(self.evals), test)


class Pruned(Exception):
    """Raised from an eval to stop a trial its method prunes."""


class Collector:
    """The trial's events, kept in memory (the trial's `Events`)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, **fields})

    def close(self) -> None:
        """Nothing to close."""


class Bench:
    """One dataset: its encoded splits, the base model loaded once, and trials on it."""

    def __init__(self, config: TrainConfig, *, scratch: Path) -> None:
        import torch
        from accelerate import Accelerator

        from harness.models import load_model
        from harness.trial.setup import prepare_data

        self.config = config
        self.scratch = scratch
        self.data = prepare_data(config)
        if not self.data.tests:
            raise SystemExit(f"{config.data.path}: no test split (too few documents); give "
                             "more data")
        self.base = load_model(config.model, config.quantization)
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        self.trained: dict[str, Trained] = {}
        """Complete trials by their params and seed."""
        self.base_loss = self.loss(self.base, self.data.evals)
        """The base model's eval loss."""
        self.base_test = self.loss(self.base, self.data.tests)
        """And its test loss."""

    def run(self, params: dict[str, Any], *, seed: int,
            on_eval: Callable[[int, float, int], None], keep_best: bool) -> Outcome:
        """One trial of ``params``: ``on_eval(step, loss, total)`` may raise Pruned; trained,
        or replayed when an earlier method trained the same trial to its end."""
        key = json.dumps([params, seed], sort_keys=True)
        if key not in self.trained:
            trained = self.train(params, seed=seed, on_eval=on_eval)
            if isinstance(trained, Outcome):
                return trained  # pruned or diverged: nothing to replay
            self.trained[key] = trained
        return self.trained[key].replay(params, on_eval=on_eval, keep_best=keep_best)

    def train(self, params: dict[str, Any], *, seed: int,
              on_eval: Callable[[int, float, int], None]) -> Outcome | Trained:
        """Train a trial: its outcome if pruned or diverged, else what a replay needs."""
        from harness.trial.evaluation import evaluate
        from harness.trial.loop import TrainState, train_loop
        from harness.trial.recipe import keep_best_epoch
        from harness.trial.selection import EpochSelection, epoch_ends
        from harness.trial.setup import (
            add_lora,
            build_optimizer,
            seed_everything,
            steps_per_epoch,
        )
        from harness.trial.stopping import Stop, StopRequest

        config = trial_config(self.config, params, seed=seed)
        seed_everything(seed)
        model = add_lora(self.base, config)
        optimizer, scheduler, total = build_optimizer(model, config, len(self.data.train))
        model, optimizer = self.accelerator.prepare(model, optimizer)
        out = Path(tempfile.mkdtemp(dir=self.scratch))
        state = TrainState(config=config, accelerator=self.accelerator, model=model,
                           optimizer=optimizer, scheduler=scheduler, train=self.data.train,
                           pad=self.data.tokenizer.pad_token_id, events=Collector(), out=out,
                           total_steps=total, stop=StopRequest(), epoch_ends=epoch_ends(
                               total_steps=total, steps_per_epoch=steps_per_epoch(
                                   config, len(self.data.train))))
        selection = EpochSelection(out, ends=state.epoch_ends)
        evals: dict[int, float] = {}

        def evaluate_now(step: int) -> None:
            loss = evaluate(state, self.data, step=step, base_loss=self.base_loss)
            evals[step] = loss
            selection.consider(model, step=step, loss=loss, main=True)
            on_eval(step, loss, total)

        try:
            train_loop(state, evaluate_now=evaluate_now)
            evaluate_now(total)
        except (Pruned, Stop) as stopped:  # Stop: the loss became NaN, a failed trial
            self.release(model)
            pruned = isinstance(stopped, Pruned)
            return Outcome(params, state.step, pruned, math.nan, evals)
        last_test = self.loss(model, self.data.tests)
        best = None
        if selection.best:
            keep_best_epoch(state, selection)
            best = (selection.best.loss, self.loss(model, self.data.tests))
        self.release(model)
        return Trained(state.step, evals, last_test, best)

    def loss(self, model: Any, examples: list[Any]) -> float:
        from harness.trial.evaluation import eval_loss

        return eval_loss(model, examples, batch_size=self.config.training.micro_batch_size,
                         pad_id=self.data.tokenizer.pad_token_id,
                         device=self.accelerator.device)

    def release(self, model: Any) -> None:
        """Take a trial's adapter off the base model, and let the accelerator forget the
        trial's model and optimizer (it keeps what it prepared)."""
        self.base = self.accelerator.unwrap_model(model).unload()
        self.accelerator.free_memory()


def trial_config(base: TrainConfig, params: dict[str, Any], *, seed: int) -> TrainConfig:
    raw = asdict(base)
    raw["lora"].update(r=params[R], alpha=params[R] * params[PER])
    raw["training"].update(learning_rate=params[LRATE], epochs=params[EP], seed=seed)
    return from_mapping(TrainConfig, raw)


def suggest(trial: optuna.Trial, *, epochs: int | None = None) -> dict[str, Any]:
    """The space's values for ``trial``; ``epochs`` fixed, or searched when None."""
    return {R: trial.suggest_categorical(R, RANKS),
            PER: trial.suggest_categorical(PER, PER_RANK),
            LRATE: trial.suggest_float(LRATE, *LR, log=True),
            EP: epochs or trial.suggest_int(EP, *EPOCHS)}


def harness_method(bench: Bench, seed: int, *, expected: int, epochs: int | None = EPOCHS[1],
                   start: str = "lora") -> Iterator[Outcome]:
    from harness.study.pruners import make_pruner
    from harness.study.samplers import make_sampler

    settings = StudySettings(seed=seed, trials=expected, start=start)
    yield from optuna_trials(bench, optuna.create_study(
        sampler=make_sampler(settings), pruner=make_pruner(settings)), seed=seed,
        may_prune=settings.may_prune, keep_best=True, epochs=epochs)


def stock_optuna(bench: Bench, seed: int) -> Iterator[Outcome]:
    yield from optuna_trials(bench, optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=seed), pruner=optuna.pruners.MedianPruner()),
        seed=seed, may_prune=lambda step, total: True, keep_best=False)


def random_search(bench: Bench, seed: int) -> Iterator[Outcome]:
    yield from optuna_trials(bench, optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=seed), pruner=optuna.pruners.NopPruner()),
        seed=seed, may_prune=lambda step, total: False, keep_best=False)


def optuna_trials(bench: Bench, study: optuna.Study, *, seed: int,
                  may_prune: Callable[[int, int], bool], keep_best: bool,
                  epochs: int | None = None) -> Iterator[Outcome]:
    while True:
        trial = study.ask()
        params = suggest(trial, epochs=epochs)

        def on_eval(step: int, loss: float, total: int, trial: optuna.Trial = trial) -> None:
            if step >= total:
                return  # the final eval is the result, not a rung (as in the sweep)
            trial.report(loss, step)
            if may_prune(step, total) and trial.should_prune():
                raise Pruned

        outcome = bench.run(params, seed=seed, on_eval=on_eval, keep_best=keep_best)
        if outcome.pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif math.isfinite(outcome.value):
            study.tell(trial, outcome.value)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        yield outcome


def grid(bench: Bench, seed: int) -> Iterator[Outcome]:
    cells = [dict(zip((R, PER, LRATE, EP), cell, strict=True))
             for cell in itertools.product(RANKS, PER_RANK, GRID_LR,
                                           range(EPOCHS[0], EPOCHS[1] + 1))]
    random.Random(seed).shuffle(cells)
    for params in cells:
        yield bench.run(params, seed=seed, on_eval=lambda *_: None, keep_best=False)


def webui(bench: Bench, seed: int) -> Iterator[Outcome]:
    yield bench.run(dict(WEBUI), seed=seed, on_eval=lambda *_: None, keep_best=False)


@dataclass
class Run:
    """A method's trials on one (dataset, seed), and its pick."""

    method: str
    trials: list[Outcome]
    curve: list[tuple[int, float, float]]
    """(steps spent, best eval value so far, that trial's test loss) after each trial."""
    seconds: float

    @property
    def pick(self) -> Outcome | None:
        done = [t for t in self.trials if not t.pruned and math.isfinite(t.value)]
        return min(done, key=lambda t: t.value) if done else None

    @property
    def steps(self) -> int:
        return sum(t.steps for t in self.trials)


def run_method(name: str, trials: Iterator[Outcome], *, bench: Bench, budget: int) -> Run:
    started = time.perf_counter()
    spent, best, curve, kept = 0, None, [], []
    for outcome in trials:
        spent += outcome.steps
        improves = (not outcome.pruned and math.isfinite(outcome.value)
                    and (best is None or outcome.value < best.value))
        if improves:
            best = outcome
        kept.append(outcome)
        curve.append((spent, best.value if best else math.nan, best.test if best else math.nan))
        print(f"  {name}: {short(outcome)}  spent {spent}/{budget}", flush=True)
        if spent >= budget:
            break
    trials.close()
    return Run(name, kept, curve, time.perf_counter() - started)


def short(o: Outcome) -> str:
    p = o.params
    end = "pruned" if o.pruned else f"value {o.value:.4f}"
    test = f" test {o.test:.4f}" if math.isfinite(o.test) else ""
    return (f"r={p[R]} a/r={p[PER]:g} lr={p[LRATE]:.2e} ep={p[EP]} "
            f"{o.steps} steps {end}{test}")


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


def main() -> None:
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
                runs = {}
                for name in methods:
                    trials = {"harness": lambda b, s: harness_method(
                                  b, s, expected=args.expected_trials),
                              "harness-epochs-searched": lambda b, s: harness_method(
                                  b, s, expected=args.expected_trials, epochs=None),
                              "harness-random-start": lambda b, s: harness_method(
                                  b, s, expected=args.expected_trials, start="random"),
                              "webui": webui, "grid": grid, "random": random_search,
                              "optuna": stock_optuna}[name](bench, seed)
                    runs[name] = run_method(name, trials, bench=bench, budget=args.budget)
                results[(dataset, seed)] = runs
    print("\n" + report(results, methods) + "\n\n" + curves(results))
    if args.json:
        args.json.write_text(json.dumps({f"{d}/{s}": {m: asdict(r) for m, r in runs.items()}
                                         for (d, s), runs in results.items()}, indent=1))


if __name__ == "__main__":
    main()
