"""The pruners a study can use.

`median` is the harness's own: a trial is pruned when its latest eval value is worse than the
median of what every other trial that reached the same step had there, a trial pruned earlier
counted at the value it was pruned with. Optuna's MedianPruner differs three times. It compares
finished trials only, so early in a sweep, with the enqueued baseline the only finished trial,
every trial behind the baseline is cut: it prunes whatever is not leading, not what is hopeless.
It judges a trial by its best value so far, which never prunes a trial whose learning rate makes
the loss drop at the first eval and then climb: the most hopeless kind in a learning-rate search.
And it leaves pruned trials out of later steps, so the median there is that of the survivors, the
best trials: the longer a sweep runs, the more it cuts all but the leaders.

The warm-up (`warmup_steps`, `warmup_fraction` of each trial's own steps), before which no
pruner is asked about a trial, is applied by the sweep for every pruner alike
(`StudySettings.may_prune`): only the sweep knows each trial's length.
"""

from __future__ import annotations

import math
import statistics

import optuna

from harness.config import StudySettings

OWN_SETTINGS = {"median": ["min_peers"],
                "successive_halving": ["min_resource", "reduction_factor"],
                "hyperband": ["min_resource", "reduction_factor"]}
"""The settings each pruner takes itself; the warm-up applies to all of them."""


class LatestMedianPruner(optuna.pruners.BasePruner):
    """Prune a trial whose latest value is worse than the median of its peers' at that step:
    the other finished or pruned trials that reached it (see `peer_values`)."""

    def __init__(self, min_peers: int = 2) -> None:
        self.min_peers = min_peers

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        latest = trial.intermediate_values[step]
        if math.isnan(latest):
            return True
        theirs = peer_values(study, step, exclude=trial.number)
        if len(theirs) < max(1, self.min_peers):
            return False
        median = statistics.median(theirs)
        if study.direction == optuna.study.StudyDirection.MAXIMIZE:
            return latest < median
        return latest > median


def peer_values(study: optuna.Study, step: int, *, exclude: int) -> list[float]:
    """What the other ended trials had at ``step``: the value they reported there, or for a
    trial pruned before it, the value it was pruned with. NaNs are left out (a diverged trial
    says nothing about where the median lies), and so are finished trials too short to have
    reached the step."""
    pruned = optuna.trial.TrialState.PRUNED
    ended = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, pruned))
    values = []
    for t in ended:
        value = t.intermediate_values.get(step)
        if value is None and t.state == pruned and t.last_step is not None and t.last_step < step:
            value = t.intermediate_values[t.last_step]
        if t.number != exclude and value is not None and not math.isnan(value):
            values.append(value)
    return values


def prune_reason(study: optuna.Study, trial: int, *, step: int, value: float, total: float,
                 label: str) -> str:
    """Why a trial was cut, in numbers a person can check: where, its value there, and what the
    trials that reached the same step had (the median pruner's yardstick; for the others a
    reference all the same)."""
    where = f"pruned at step {step} of {total:g}" if math.isfinite(total) else \
        f"pruned at step {step}"
    peers = peer_values(study, step, exclude=trial)
    if not peers:
        return f"{where}: {label} {value:.4f}"
    noun = "trial" if len(peers) == 1 else "trials"
    return (f"{where}: {label} {value:.4f}, the median of {len(peers)} other {noun} "
            f"there {statistics.median(peers):.4f}")


def make_pruner(settings: StudySettings) -> optuna.pruners.BasePruner:
    if settings.pruner == "median":
        return LatestMedianPruner(settings.min_peers)
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
