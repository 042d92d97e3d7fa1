from __future__ import annotations

import math

import optuna
import pytest

from harness.config import StudySettings
from harness.study.pruners import LatestMedianPruner, describe, make_pruner

optuna.logging.set_verbosity(optuna.logging.WARNING)


def run(study: optuna.Study, curve: list[float]) -> int | None:
    """Report a curve step by step; the step it was pruned at, or None if it finished."""
    trial = study.ask()
    for step, value in enumerate(curve, start=1):
        trial.report(value, step)
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return step
    study.tell(trial, curve[-1])
    return None


GOOD = [2.8, 2.7, 2.65, 2.62]
DIVERGING = [2.4, 3.1, 4.3, 5.0]  # a too-high learning rate: best at the first eval, then worse
SLOW = [2.95, 2.94, 2.93, 2.93]


RUNNER_UP = [2.85, 2.75, 2.7, 2.66]  # behind GOOD all along, ahead of SLOW
HOPELESS = [3.4, 3.3, 3.25, 3.2]


def test_a_trial_that_gets_worse_is_pruned_once_it_is_worse_than_the_median() -> None:
    study = optuna.create_study(pruner=LatestMedianPruner(min_peers=1))
    assert run(study, GOOD) is None
    assert run(study, DIVERGING) == 2
    # Optuna's own median pruner compares the best value so far, so it never cuts this trial.
    theirs = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    run(theirs, GOOD)
    assert run(theirs, DIVERGING) is None


def test_a_runner_up_is_kept_and_the_hopeless_cut() -> None:
    """With the baseline the only trial so far, Optuna's median cuts whatever trails it;
    here one peer is not enough to judge by. Later, SLOW (pruned at step 1) still counts at
    steps 2-4 at its step-1 value, so the median there is not just the leaders'."""
    ours = optuna.create_study(pruner=LatestMedianPruner())
    assert [run(ours, c) for c in (GOOD, RUNNER_UP, SLOW, RUNNER_UP, HOPELESS)] == [
        None, None, 1, None, 1]
    theirs = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    assert [run(theirs, c) for c in (GOOD, RUNNER_UP)] == [None, 1]


def test_pruned_trials_count_as_peers_at_the_values_they_were_pruned_with() -> None:
    study = optuna.create_study(pruner=LatestMedianPruner(min_peers=2))
    assert run(study, GOOD) is None
    assert run(study, SLOW) is None  # one peer: not judged
    assert run(study, HOPELESS) == 1  # above the median of GOOD and SLOW
    # At step 3 the peers are GOOD 2.65, SLOW 2.93 and HOPELESS at its 3.4: median 2.93;
    # without HOPELESS carried forward it would be 2.79, pruning this trial.
    assert run(study, [2.9, 2.9, 2.9, 2.9]) is None
    # At step 2 the peers are now 2.7, 2.94, 3.4 and 2.9: median 2.92.
    assert run(study, [2.92, 2.96, 2.9, 2.9]) == 2


def test_nothing_is_judged_at_a_step_fewer_than_min_peers_reached() -> None:
    study = optuna.create_study(pruner=LatestMedianPruner(min_peers=2))
    assert run(study, GOOD[:2]) is None
    assert run(study, GOOD) is None
    # Two peers at steps 1-2, one at steps 3-4: a trial bad only late is not judged late.
    assert run(study, [2.7, 2.6, 9.0, 9.0]) is None


def test_a_nan_value_is_pruned_even_before_any_trial_finished() -> None:
    study = optuna.create_study(pruner=LatestMedianPruner(min_peers=1))
    assert run(study, [math.nan]) == 1
    assert run(study, GOOD) is None
    assert run(study, [2.0, math.nan]) == 2


def test_maximized_objectives_prune_the_lower_values() -> None:
    study = optuna.create_study(direction="maximize",
                                pruner=LatestMedianPruner(min_peers=1))
    assert run(study, [0.5, 0.6, 0.7]) is None
    assert run(study, [0.6, 0.55, 0.5]) == 2


@pytest.mark.parametrize(("name", "kind"), [
    ("median", LatestMedianPruner), ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
    ("hyperband", optuna.pruners.HyperbandPruner), ("none", optuna.pruners.NopPruner)])
def test_every_pruner_name_makes_its_pruner(name: str, kind: type) -> None:
    assert isinstance(make_pruner(StudySettings(pruner=name)), kind)


def test_the_settings_each_pruner_runs_with_are_described() -> None:
    assert describe(StudySettings(min_peers=3)) == (
        "min_peers=3, warmup_steps=0, warmup_fraction=0.25")
    assert describe(StudySettings(pruner="hyperband", warmup_fraction=0)) == (
        "min_resource=1, reduction_factor=3, warmup_steps=0, warmup_fraction=0")
    assert describe(StudySettings(pruner="none")) == ""

