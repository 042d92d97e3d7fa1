"""Benchmark: is the adapter chosen by a task metric better, in its answers, than the adapter
chosen by the loss? Two datasets with checkable answers, three seeds each, judged by the task
metric on the test split, which neither choice saw.

- ``instructions``: the seeded rule-following set (bench/instruction_set.py), judged by
  ``exact_match``;
- ``word_problems``: seeded arithmetic word problems (bench/word_problems.py), judged by
  ``number_match``.

On each (dataset, seed), the harness's search runs twice at the same budget of optimizer steps,
the same trials proposed while its start lasts (the start does not depend on the objective):

- by loss: the study's objective is eval_loss: each trial keeps its lowest-loss epoch end, the
  pruner compares losses, the pick is the lowest;
- by metric: the objective is eval/METRIC: each trial keeps its highest-scoring epoch end, the
  pruner compares scores at epoch ends, the pick is the highest;

and text-generation-webui's defaults run as one trial keeping its last adapter. Every trial is
trained once with the harness's own loop and evaluated at each epoch's end by both its loss and
its answers to every eval prompt; what each rule would keep is measured on the test prompts.
A trial asked for again (the other rule, the same parameters and seed) is replayed. Rules that
differ only in what they keep and pick are read from the saved trials (bench/metric_rules.py):
prune by the loss and choose by the metric; keep each trial's lowest-loss epoch; ties broken by
the loss.

Usage: python bench/metric_selection.py [--datasets instructions,word_problems] [--seeds 0,1,2]
           [--budget STEPS] [--records 120] [--json OUT] [--quick]
       python bench/metric_selection.py --from OUT [OUT ...]   (the table of saved runs)
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
from metric_rules import METRIC, outcomes, report
from metric_rules import value as rule_value
from search_methods import suggest
from search_trials import EPOCHS, WEBUI, Bench, Pruned, trial_config

from harness.config import StudySettings, TrainConfig, from_mapping

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass
class Trial:
    """One trial, as each rule would keep and judge it."""

    params: dict[str, Any]
    steps: int
    pruned: bool = False
    losses: dict[int, float] = field(default_factory=dict)
    """Epoch-end step -> eval loss."""
    scores: dict[int, float] = field(default_factory=dict)
    """Epoch-end step -> eval task metric."""
    test: dict[str, float] = field(default_factory=dict)
    """Test task metric of the adapter kept by `loss`, by `metric`, and the `last` one."""

    def value(self, rule: str) -> float:
        """The trial's value under ``rule``, lower better (a score negated)."""
        return rule_value(asdict(self), rule)


class MetricBench(Bench):
    """One dataset, as the search-quality bench holds it (its splits, the base model loaded
    once, each trial's state), whose trials are judged by their answers too."""

    def __init__(self, config: TrainConfig, *, scratch: Path) -> None:
        super().__init__(config, scratch=scratch)
        self.scored: dict[str, Trial] = {}
        """Trials trained to their end, by their params and seed."""

    def run_scored(self, params: dict[str, Any], *, seed: int,
            on_eval: Callable[[int, float, float, int], None]) -> Trial:
        """A trial (``on_eval(step, loss, score, total)`` may raise Pruned), trained once."""
        key = json.dumps([params, seed], sort_keys=True)
        if key not in self.scored:
            self.scored[key] = self.train_scored(params, seed=seed)
        done = self.scored[key]
        for step in sorted(done.losses):
            try:
                on_eval(step, done.losses[step], done.scores.get(step, math.nan), done.steps)
            except Pruned:
                return Trial(params, step, True,
                             {s: v for s, v in done.losses.items() if s <= step},
                             {s: v for s, v in done.scores.items() if s <= step})
        return done

    def train_scored(self, params: dict[str, Any], *, seed: int) -> Trial:
        from harness.trial.evaluation import base_loss, evaluate
        from harness.trial.loop import train_loop
        from harness.trial.selection import EpochSelection
        from harness.trial.task_metrics import TaskMetrics

        state = self.state(trial_config(self.config, params, seed=seed), seed=seed)
        metrics = TaskMetrics(state, self.data)
        metric = self.config.evaluation.metrics[0]
        keep = {"loss": EpochSelection(state.out / "loss", ends=state.epoch_ends),
                "metric": EpochSelection(state.out / "metric", ends=state.epoch_ends,
                                         objective=f"eval/{metric}")}
        base, _ = base_loss(state, self.data.evals, fingerprint=self.data.eval_fingerprint)
        trial = Trial(params, state.total_steps)

        def evaluate_now(step: int) -> None:
            event = evaluate(state, self.data, step=step, base_loss=base, metrics=metrics)
            trial.losses[step] = event.loss
            trial.scores[step] = (event.answers or {}).get(metric, math.nan)
            model = state.accelerator.unwrap_model(state.model)
            for selection in keep.values():
                selection.consider(model, step=step, loss=event.loss, main=True,
                                   answers=event.answers)

        train_loop(state, evaluate_now=evaluate_now)
        evaluate_now(state.total_steps)
        trial.test = self.kept_scores(state, metrics, keep, metric=metric)
        self.release(state.model)
        return trial

    def kept_scores(self, state: Any, metrics: Any, keep: dict[str, Any], *,
                    metric: str) -> dict[str, float]:
        """The test metric of the last adapter and of each rule's kept epoch end."""
        from peft import get_peft_model_state_dict, set_peft_model_state_dict

        model = state.accelerator.unwrap_model(state.model)
        last = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
        scores = {"last": self.test_score(metrics, metric)}
        for rule, selection in keep.items():
            set_peft_model_state_dict(model, last)
            selection.restore(model, last_step=state.total_steps)
            scores[rule] = self.test_score(metrics, metric)
        return scores

    @staticmethod
    def test_score(metrics: Any, metric: str) -> float:
        tuned, _ = metrics.on_test()
        return float(tuned.means()[metric]) if tuned is not None else math.nan


def search(bench: MetricBench, *, rule: str, seed: int, budget: int,
           expected: int) -> list[Trial]:
    """The harness's search with ``rule``'s objective, to the budget; its trials."""
    from harness.study.pruners import make_pruner
    from harness.study.samplers import make_sampler

    metric = bench.config.evaluation.metrics[0]
    objective = "eval_loss" if rule == "loss" else f"eval/{metric}"
    settings = StudySettings(seed=seed, trials=expected, objective=objective)
    study = optuna.create_study(direction="minimize" if rule == "loss" else "maximize",
                                sampler=make_sampler(settings), pruner=make_pruner(settings))
    trials, spent = [], 0
    while spent < budget:
        asked = study.ask()
        params = suggest(asked, epochs=EPOCHS[1])

        def on_eval(step: int, loss: float, score: float, total: int,
                    asked: optuna.Trial = asked) -> None:
            value = loss if rule == "loss" else score
            if step >= total or math.isnan(value):
                return
            asked.report(value, step)
            if settings.may_prune(step, total) and asked.should_prune():
                raise Pruned

        trial = bench.run_scored(params, seed=seed, on_eval=on_eval)
        value = trial.value(rule)
        if trial.pruned or not math.isfinite(value):
            study.tell(asked, state=optuna.trial.TrialState.PRUNED if trial.pruned
                       else optuna.trial.TrialState.FAIL)
        else:
            study.tell(asked, value if rule == "loss" else -value)
        trials.append(trial)
        spent += trial.steps
        print(f"  by {rule}: {short(trial, rule)}  spent {spent}/{budget}", flush=True)
    return trials


def short(trial: Trial, rule: str) -> str:
    p = trial.params
    end = "pruned" if trial.pruned else f"value {abs(trial.value(rule)):.4f}"
    return (f"r={p['lora.r']} a/r={p['lora.alpha_per_rank']:g} "
            f"lr={p['training.learning_rate']:.2e} {trial.steps} steps {end} "
            f"test {trial.test.get(rule, math.nan):.3f}")


def dataset_config(name: str, *, work: Path, args: argparse.Namespace) -> TrainConfig:
    from instruction_set import instruction_set
    from word_problems import word_problems

    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{name}.json"
    make = instruction_set if name == "instructions" else word_problems
    path.write_text(json.dumps(make(args.records, seed=0)))
    return from_mapping(TrainConfig, {
        "data": {"path": str(path), "format": "alpaca", "cutoff_len": 96,
                 "eval_fraction": args.held_out, "test_fraction": args.held_out},
        "lora": {"dropout": 0.05, "target_modules": "all-linear"},
        "training": {"micro_batch_size": 4, "scheduler": "cosine", "warmup_steps": 2,
                     "eval_steps": 0},
        "samples": {"count": 0}, "retention": {"enabled": False},
        "evaluation": {"metrics": [METRIC[name]], "max_answer_examples": 0,
                       "max_new_tokens": args.new_tokens}})


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="instructions,word_problems")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budget", type=int, default=108, help="optimizer steps per rule")
    parser.add_argument("--expected-trials", type=int, default=8)
    parser.add_argument("--records", type=int, default=120)
    parser.add_argument("--held-out", type=float, default=0.3)
    parser.add_argument("--new-tokens", type=int, default=40)
    parser.add_argument("--json", type=Path, help="write every trial here, after each seed")
    parser.add_argument("--from", dest="saved", type=Path, nargs="+",
                        help="report the trials these --json files hold, training nothing")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.budget, args.records, args.new_tokens = "0", 4, 40, 8
    return args


def main() -> None:
    args = arguments()
    if args.saved:
        saved = {k: v for path in args.saved for k, v in json.loads(path.read_text()).items()}
        print(report(outcomes(saved)))
        return
    recorded: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets.split(","):
            bench = MetricBench(dataset_config(dataset, work=Path(tmp) / dataset, args=args),
                                scratch=Path(tmp))
            print(f"{dataset}: {len(bench.data.train)} train, {len(bench.data.evals)} eval, "
                  f"{len(bench.data.tests)} test examples", flush=True)
            for seed in map(int, args.seeds.split(",")):
                for rule in ("loss", "metric"):
                    trials = search(bench, rule=rule, seed=seed, budget=args.budget,
                                    expected=args.expected_trials)
                    recorded[f"{dataset}/{seed}/{rule}"] = [asdict(t) for t in trials]
                webui = bench.run_scored(dict(WEBUI), seed=seed, on_eval=lambda *_: None)
                recorded[f"{dataset}/{seed}/webui"] = [asdict(webui)]
                print(f"{dataset} seed {seed}: {outcomes(recorded)[(dataset, seed)]}",
                      flush=True)
                if args.json:  # after each seed: hours of training survive a stop
                    args.json.write_text(json.dumps(recorded, indent=1))
    print("\n" + report(outcomes(recorded)))


if __name__ == "__main__":
    main()
