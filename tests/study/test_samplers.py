"""Samplers seeded per trial: processes sharing a study never repeat each other's draws, and a
seeded study proposes the same trials every time it is run from scratch."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import warnings
from itertools import combinations
from pathlib import Path
from typing import Any

import optuna
import pytest

from harness.config import StudySettings
from harness.study.samplers import PerTrialSampler, make_sampler, trial_seed
from harness.study.storage import open_storage, open_study

SAMPLERS = ["tpe", "gp", "random", "qmc", "cmaes"]


def _ask_and_tell(study: Any) -> dict[str, Any]:
    trial = study.ask()
    params = {"lr": trial.suggest_float("lr", 1e-5, 1e-2, log=True),
              "r": trial.suggest_categorical("r", [2, 4, 8, 16]),
              "epochs": trial.suggest_int("epochs", 1, 20)}
    study.tell(trial, params["lr"] * params["r"])
    return params


def _process(storage: str, sampler: str, *, seed: int | None = 7) -> Any:
    """What a `harness sweep` or `harness worker` process builds: its own storage handle and
    its own sampler on the shared study."""
    return open_study("shared", open_storage(storage),
                      StudySettings(sampler=sampler, seed=seed))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_processes_sharing_a_study_never_propose_the_same_trial(
        tmp_path: Path, sampler: str) -> None:
    storage = str(tmp_path / "optuna.journal")
    first, second = _process(storage, sampler), _process(storage, sampler)
    proposed = [json.dumps(_ask_and_tell(study), sort_keys=True)
                for _ in range(4) for study in (first, second)]
    assert len(set(proposed)) == len(proposed), proposed


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_a_seeded_study_proposes_the_same_trials_every_time(
        tmp_path: Path, sampler: str) -> None:
    def run(where: Path) -> list[dict[str, Any]]:
        study = _process(str(where / "optuna.journal"), sampler)
        return [_ask_and_tell(study) for _ in range(6)]

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert run(tmp_path / "a") == run(tmp_path / "b")


def test_a_resumed_process_continues_the_study_instead_of_repeating_it(
        tmp_path: Path) -> None:
    """The real case: one process runs three trials and exits; a second process on the same
    study (a resumed sweep) starts with a fresh interpreter and a fresh sampler."""
    script = f"""
import json, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_samplers import _ask_and_tell, _process
study = _process({str(tmp_path / 'optuna.journal')!r}, "random")
print(json.dumps([_ask_and_tell(study) for _ in range(3)]))
"""
    runs = [json.loads(subprocess.run([sys.executable, "-c", script], check=True,
                                      capture_output=True, text=True).stdout)
            for _ in range(2)]
    first, second = runs
    assert not [p for p in second if p in first], runs
    trials = optuna.load_study(study_name="shared",
                               storage=open_storage(str(tmp_path / "optuna.journal"))).trials
    assert len(trials) == 6


def test_trial_seeds_differ_by_trial_and_by_study_seed() -> None:
    seeds = {trial_seed(42, n) for n in range(1000)}
    assert len(seeds) == 1000
    assert trial_seed(42, 3) == trial_seed(42, 3) != trial_seed(43, 3)
    assert trial_seed(None, 3) is None


@pytest.mark.parametrize(("trials", "given", "startup"),
                         [(6, None, 3), (10, None, 3), (40, None, 10), (6, 0, 0), (6, 5, 5)])
def test_the_start_is_a_share_of_the_budget_unless_set(trials: int, given: int | None,
                                                       startup: int) -> None:
    assert StudySettings(trials=trials, start_trials=given).sampler_startup() == startup


def _lr_trial(study: optuna.Study) -> float:
    trial = study.ask()
    lr = trial.suggest_float("lr", 1e-5, 1e-2, log=True)
    study.tell(trial, (math.log10(lr) + 3.5) ** 2)
    return lr


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_the_model_takes_over_after_the_startup_trials(sampler: str) -> None:
    """With `start: random` the start trials are drawn at random from the trial's seed; from
    trial `start_trials` on, the model proposes instead, so the proposal differs."""
    def third(startup: int) -> float:
        study = optuna.create_study(sampler=make_sampler(StudySettings(
            sampler=sampler, seed=3, start="random", start_trials=startup)))
        return [_lr_trial(study) for _ in range(3)][2]

    random_study = optuna.create_study(sampler=make_sampler(
        StudySettings(sampler="random", seed=3)))
    at_random = [_lr_trial(random_study) for _ in range(3)][2]
    assert third(10) == pytest.approx(at_random)
    assert third(2) != pytest.approx(at_random)


def _parallel_spread(sampler: optuna.samplers.BaseSampler) -> float:
    """Mean distance (in decades of learning rate) between four trials asked at once after
    eight finished ones, as parallel slots ask."""
    study = optuna.create_study(sampler=sampler)
    for _ in range(8):
        _lr_trial(study)
    running = [math.log10(study.ask().suggest_float("lr", 1e-5, 1e-2, log=True))
               for _ in range(4)]
    return statistics.mean(abs(a - b) for a, b in combinations(running, 2))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parallel_trials_spread_out_instead_of_crowding_the_best_spot(seed: int) -> None:
    ours = _parallel_spread(make_sampler(StudySettings(seed=seed, start_trials=4)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        no_liar = _parallel_spread(PerTrialSampler(
            lambda s: optuna.samplers.TPESampler(seed=s, n_startup_trials=4, multivariate=True,
                                                 constant_liar=False), seed))
    assert ours > 0.5 and ours > 1.5 * no_liar, (ours, no_liar)
