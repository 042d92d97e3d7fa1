"""The first trials of a study, placed by what is known of LoRA instead of at random.

A LoRA sweep has a budget of a handful of trials, so a random start spends most of it on
settings nobody would try: alpha a quarter of the rank, a learning rate a decade below anything
that trains in the steps given. What is known instead (QLoRA's scripts, "LoRA Learns Less and
Forgets Less", "LoRA Without Regret"): the learning rate matters most; alpha = 2 x rank is a
sound default, and with alpha scaling with the rank the best learning rate barely depends on the
rank; with the best epoch kept, the most epochs costs nothing a shorter run would have found.

So the start holds everything but the learning rate at those defaults and spreads the learning
rate over its range in a fixed low-discrepancy order (the range's geometric middle, then a
quarter above it, a quarter below, ...): the start is a learning-rate sweep, which tells the
model that takes over what it most needs to know. Above before below: the few steps a sweep
affords favour the higher rates, and the point most likely hopeless, the low one, then comes
when the median pruner has two trials to judge it by at its first epoch end. Parameters the
prior knows nothing of (quantization, dropout, the LoRA variants) are drawn at random from the
trial's seed. Enqueued trials (the baselines) count towards the start but take no point of
the sweep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeGuard

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from harness.space.params import ALPHA_PER_RANK

LEARNING_RATE = "training.learning_rate"
RANK = "lora.r"
ALPHA = "lora.alpha"
EPOCHS = "training.epochs"
SOUND_ALPHA_PER_RANK = 2.0


def spread(index: int) -> float:
    """Point ``index`` of the base-2 van der Corput sequence mirrored: 0.5, 0.75, 0.25, 0.875,
    ... each new point halving the largest gap the earlier ones left, the upper side first."""
    point, scale, n = 0.0, 0.5, index + 1
    while n:
        point += scale * (n & 1)
        n >>= 1
        scale /= 2
    return 1 - point


def at_fraction(distribution: BaseDistribution, fraction: float) -> Any:
    """The value ``fraction`` of the way through a numeric range (in log space when the range
    is logarithmic), or of a categorical's choices in their order."""
    if isinstance(distribution, CategoricalDistribution):
        choices = distribution.choices
        return choices[min(len(choices) - 1, int(fraction * len(choices)))]
    distribution = _numeric(distribution)
    low, high = distribution.low, distribution.high
    if fraction >= 1:
        return high
    value = (math.exp(math.log(low) + fraction * (math.log(high) - math.log(low)))
             if distribution.log else low + fraction * (high - low))
    step = distribution.step  # always set on an IntDistribution
    return value if step is None else min(high, low + step * round((value - low) / step))


def nearest(distribution: BaseDistribution, target: float) -> Any:
    """The value of ``distribution`` closest to ``target`` (None when it holds no numbers)."""
    if isinstance(distribution, CategoricalDistribution):
        numbers = [c for c in distribution.choices if _is_number(c)]
        return min(numbers, key=lambda c: abs(c - target)) if numbers else None
    distribution = _numeric(distribution)
    value = min(max(target, distribution.low), distribution.high)
    if isinstance(distribution, IntDistribution):
        return round(value)
    return float(value)


def prior_value(name: str, distribution: BaseDistribution, *, index: int,
                chosen: dict[str, Any]) -> Any:
    """The start's value of parameter ``name`` in its ``index``-th sweep point, given the
    values ``chosen`` so far in the trial; None where the prior has no opinion."""
    if name == LEARNING_RATE:
        return at_fraction(_ascending(distribution), spread(index))
    if name == RANK:
        return at_fraction(distribution, 0.5)
    if name == ALPHA_PER_RANK:
        return nearest(distribution, SOUND_ALPHA_PER_RANK)
    if name == ALPHA and isinstance(chosen.get(RANK), int | float):
        return nearest(distribution, SOUND_ALPHA_PER_RANK * chosen[RANK])
    if name == EPOCHS:
        return at_fraction(_ascending(distribution), 1.0)
    return None


def _ascending(distribution: BaseDistribution) -> BaseDistribution:
    """A categorical of numbers with its choices in ascending order (a list of learning rates
    or epoch counts in any order); any other distribution as it is."""
    if not isinstance(distribution, CategoricalDistribution):
        return distribution
    numbers = [c for c in distribution.choices if _is_number(c)]
    if len(numbers) == len(distribution.choices):
        return CategoricalDistribution(sorted(numbers))
    return distribution


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric(distribution: BaseDistribution) -> IntDistribution | FloatDistribution:
    """A range distribution (the sampler asks of no other kind but categoricals)."""
    if not isinstance(distribution, IntDistribution | FloatDistribution):
        raise TypeError(f"not a numeric range: {distribution!r}")
    return distribution


class LoraStart(BaseSampler):
    """Trials numbered below ``start`` take the prior's values (enqueued ones their own);
    later trials are the ``model``'s. ``fallback`` draws what the prior has no value for."""

    def __init__(self, model: BaseSampler, *, start: int, fallback: BaseSampler) -> None:
        self._model = model
        self._start = start
        self._fallback = fallback

    def _starting(self, trial: FrozenTrial) -> bool:
        return trial.number < self._start

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if self._starting(trial):
            return {}
        return self._model.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if self._starting(trial):
            return {}
        return self._model.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if not self._starting(trial):
            return self._model.sample_independent(study, trial, param_name,
                                                  param_distribution)
        value = prior_value(param_name, param_distribution, index=sweep_index(study, trial),
                            chosen=trial.params)
        if value is None:
            return self._fallback.sample_independent(study, trial, param_name,
                                                     param_distribution)
        return value

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._model.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._model.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._model.reseed_rng()
        self._fallback.reseed_rng()


def sweep_index(study: optuna.Study, trial: FrozenTrial) -> int:
    """How many trials before ``trial`` took a point of the sweep: those not enqueued."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.number < trial.number and "fixed_params" not in t.system_attrs)
