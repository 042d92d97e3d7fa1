"""The methods the search-quality bench compares (bench/search_quality.py), each a stream of
trials on a `Bench`, and how a method's trials are run to its budget."""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import optuna
from search_trials import (
    EP,
    EPOCHS,
    GRID_LR,
    LR,
    LRATE,
    PER,
    PER_RANK,
    RANKS,
    WEBUI,
    Bench,
    Outcome,
    Pruned,
    R,
)

from harness.config import StudySettings

Method = Callable[[Bench, int], Iterator[Outcome]]


def method(name: str, *, expected: int) -> Method:
    """The method ``name``; the harness's given the trials it expects (its start's size)."""
    return {"harness": lambda b, s: harness_method(b, s, expected=expected),
            "harness-epochs-searched": lambda b, s: harness_method(b, s, expected=expected,
                                                                   epochs=None),
            "harness-random-start": lambda b, s: harness_method(b, s, expected=expected,
                                                                start="random"),
            "webui": webui, "grid": grid, "random": random_search,
            "optuna": stock_optuna}[name]


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
