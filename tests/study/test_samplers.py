"""Samplers seeded per trial: processes sharing a study never repeat each other's draws, and a
seeded study proposes the same trials every time it is run from scratch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest

from harness.config import StudySettings
from harness.study.samplers import trial_seed
from harness.study.storage import open_storage, open_study

SAMPLERS = ["tpe", "random", "qmc", "cmaes"]


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
