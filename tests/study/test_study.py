"""The study's budget and retries, on the journal file and on SQLite: a trial the sweep stopped
never counts and is always run again; a trial whose worker died is retried once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from harness.study.storage import (
    REASON,
    open_storage,
    open_study,
    remaining,
    requeue,
    requeue_stopped,
    retried_from,
)
from harness.sweep.space import StudySettings

State = optuna.trial.TrialState


@pytest.fixture(params=["journal", "sqlite"])
def study(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = (str(tmp_path / "optuna.journal") if request.param == "journal"
           else f"sqlite:///{tmp_path / 'optuna.db'}")
    return open_study("budget", open_storage(url), StudySettings(sampler="random", seed=0))


def _ask(study: Any, *, searched: bool = True) -> Any:
    trial = study.ask()
    if searched:
        trial.suggest_float("lr", 1e-5, 1e-2, log=True)
    return trial


def _end(study: Any, trial: Any, reason: str) -> Any:
    """End ``trial`` as the sweep does for ``reason``; the trial as stored."""
    trial.set_user_attr(REASON, reason)
    if reason == "finished":
        study.tell(trial, 1.0)
    else:
        study.tell(trial, state=State.FAIL)
    return study.get_trials(deepcopy=False)[trial.number]


@pytest.mark.parametrize("searched", [True, False], ids=["searched", "empty-space"])
def test_a_trial_interrupted_twice_is_run_again_and_never_counts(
        study: Any, searched: bool) -> None:
    first = _ask(study, searched=searched)
    requeue(study, _end(study, first, "interrupted"))
    assert remaining(study, 2) == 2

    again = _ask(study, searched=searched)
    assert retried_from(study.get_trials()[again.number]) == first.number
    assert again.params == first.params
    requeue(study, _end(study, again, "interrupted"))
    assert remaining(study, 2) == 2

    third = _ask(study, searched=searched)
    assert retried_from(study.get_trials()[third.number]) == first.number
    _end(study, third, "finished")
    assert remaining(study, 2) == 1
    _end(study, _ask(study, searched=searched), "finished")
    assert remaining(study, 2) == 0
    assert [t.state for t in study.trials] == [State.FAIL, State.FAIL, State.COMPLETE,
                                              State.COMPLETE]


def test_a_stopped_trial_left_without_a_retry_is_queued_once(study: Any) -> None:
    stopped = _end(study, _ask(study), "disk_full")  # the sweep could not queue it
    assert remaining(study, 1) == 1
    assert requeue_stopped(study) == [stopped.number]
    assert requeue_stopped(study) == []
    waiting = study.get_trials(states=(State.WAITING,))
    assert len(waiting) == 1 and waiting[0].params == stopped.params


def test_a_trial_abandoned_twice_is_not_retried_a_second_time(study: Any) -> None:
    first = _ask(study)
    study.tell(first, state=State.FAIL)  # no reason: a dead worker's trial
    assert requeue(study, study.get_trials()[first.number])
    retry = _ask(study)
    study.tell(retry, state=State.FAIL)
    assert not requeue(study, study.get_trials()[retry.number])
    assert remaining(study, 2) == 1  # the retry counts, in place of the first


def test_failed_and_pruned_trials_count(study: Any) -> None:
    _end(study, _ask(study), "crash")
    pruned = _ask(study)
    study.tell(pruned, state=State.PRUNED)
    assert remaining(study, 3) == 1
