"""The pruners a study can use.

`median` is the harness's own: a trial is pruned when its latest eval value is worse than the
median of the finished trials' values at the same step. Optuna's MedianPruner judges a trial by
its best value so far instead, which never prunes a trial whose learning rate makes the loss
drop at the first eval and then climb: the most hopeless kind in a learning-rate search, and
one whose early values also drag the median down so that good trials get cut. The warm-up share
of each trial's steps, during which nothing is pruned, is applied by the sweep (it knows each
trial's length); this pruner only sees steps.
"""

from __future__ import annotations

import math
import statistics

import optuna

from harness.space import StudySettings


class LatestMedianPruner(optuna.pruners.BasePruner):
    """Prune a trial whose latest value is worse than the finished trials' median at its step."""

    def __init__(self, startup_trials: int = 1, warmup_steps: int = 0) -> None:
        self.startup_trials = max(startup_trials, 1)
        self.warmup_steps = warmup_steps

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.warmup_steps:
            return False
        latest = trial.intermediate_values[step]
        if math.isnan(latest):
            return True
        finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if len(finished) < self.startup_trials:
            return False
        theirs = [t.intermediate_values[step] for t in finished if step in t.intermediate_values]
        theirs = [value for value in theirs if not math.isnan(value)]
        if not theirs:
            return False
        median = statistics.median(theirs)
        if study.direction == optuna.study.StudyDirection.MAXIMIZE:
            return latest < median
        return latest > median


def make_pruner(settings: StudySettings) -> optuna.pruners.BasePruner:
    if settings.pruner == "median":
        return LatestMedianPruner(settings.startup_trials, settings.warmup_steps)
    if settings.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=settings.min_resource, reduction_factor=settings.reduction_factor)
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=settings.min_resource, reduction_factor=settings.reduction_factor)
    return optuna.pruners.NopPruner()


def describe(settings: StudySettings) -> str:
    """The settings the study's pruner runs with, defaults included, for the study's run."""
    if settings.pruner == "median":
        keys = ["startup_trials", "warmup_steps", "warmup_fraction"]
    elif settings.pruner in ("successive_halving", "hyperband"):
        keys = ["min_resource", "reduction_factor", "warmup_fraction"]
    else:
        return ""
    return ", ".join(f"{key}={getattr(settings, key)}" for key in keys)
