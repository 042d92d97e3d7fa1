"""What a trial's size leaves on it in the study: its estimate, and in a study that records the
constraint, the margin every trial must carry for Optuna's constrained samplers."""

from __future__ import annotations

import optuna
import pytest

from harness.memory.estimate import Estimate
from harness.study.record import ESTIMATED_ATTR
from harness.sweep.sizing import MEMORY_CONSTRAINT, Sized, keep_size


def sized(total_mb: float | None, limit_mb: float = 1000.0) -> Sized:
    found = None if total_mb is None else Estimate(
        runtime_mb=0.0, weights_mb=total_mb, adapter_mb=0.0, activations_mb=0.0,
        logits_mb=0.0, slack_mb=0.0, device="cuda")
    return Sized(found, limit_mb)


def test_a_trial_run_unsized_still_carries_the_constraint_the_gp_sampler_needs() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=0, n_startup_trials=3))
    for n, total in enumerate([400.0, None, 2000.0, 700.0, None, 300.0]):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        keep_size(trial, sized(total), constrained=True)
        study.tell(trial, (x - 0.3) ** 2 + n * 1e-3)
    # the GP fits the constraint over every trial: one without it would raise here
    study.tell(study.ask(), 0.0)
    trials = study.trials
    assert [t.constraints[MEMORY_CONSTRAINT] for t in trials[:3]] == \
        pytest.approx([-600 / 1024, 0.0, 1000 / 1024])
    assert ESTIMATED_ATTR not in trials[1].user_attrs
    assert trials[2].user_attrs[ESTIMATED_ATTR] == 2000


def test_a_study_without_the_constraint_gets_none() -> None:
    study = optuna.create_study()
    trial = study.ask()
    keep_size(trial, sized(400.0), constrained=False)
    study.tell(trial, 1.0)
    assert study.trials[0].constraints == {} and study.trials[0].user_attrs[ESTIMATED_ATTR] == 400
