"""The pruners a study can use.

`median` is the harness's own: a trial is pruned when its latest eval value is worse than the
median of the finished trials' values at the same step. Optuna's MedianPruner judges a trial by
its best value so far instead, which never prunes a trial whose learning rate makes the loss
drop at the first eval and then climb: the most hopeless kind in a learning-rate search, and
one whose early values also drag the median down so that good trials get cut.

The warm-up (`warmup_steps`, `warmup_fraction` of each trial's own steps), before which no
pruner is asked about a trial, is applied by the sweep for every pruner alike
(`StudySettings.may_prune`): only the sweep knows each trial's length.
"""

from __future__ import annotations

import math
import statistics

import optuna

from harness.config import StudySettings

OWN_SETTINGS = {"median": ["startup_trials"],
                "successive_halving": ["min_resource", "reduction_factor"],
                "hyperband": ["min_resource", "reduction_factor"]}
"""The settings each pruner takes itself; the warm-up applies to all of them."""


class LatestMedianPruner(optuna.pruners.BasePruner):
    """Prune a trial whose latest value is worse than the finished trials' median at its step."""

    def __init__(self, startup_trials: int = 1) -> None:
        self.startup_trials = startup_trials

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        latest = trial.intermediate_values[step]
        if math.isnan(latest):
            return True
        finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        theirs = [t.intermediate_values[step] for t in finished if step in t.intermediate_values]
        if len(finished) < self.startup_trials or not theirs:
            return False
        median = statistics.median(theirs)
        if study.direction == optuna.study.StudyDirection.MAXIMIZE:
            return latest < median
        return latest > median


def make_pruner(settings: StudySettings) -> optuna.pruners.BasePruner:
    if settings.pruner == "median":
        return LatestMedianPruner(settings.startup_trials)
    if settings.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=settings.min_resource, reduction_factor=settings.reduction_factor)
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=settings.min_resource, reduction_factor=settings.reduction_factor)
    return optuna.pruners.NopPruner()


def describe(settings: StudySettings) -> str:
    """The settings the study's pruner runs with, defaults included, for the study's run."""
    if settings.pruner not in OWN_SETTINGS:
        return ""
    keys = [*OWN_SETTINGS[settings.pruner], "warmup_steps", "warmup_fraction"]
    return ", ".join(f"{key}={getattr(settings, key)}" for key in keys)
