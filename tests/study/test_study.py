"""The study storage's contract, on the journal file, SQLite and PostgreSQL: a study created by
one process and joined by another, the budget and its lock, heartbeats, trials whose worker died
(failed, retried once), and trials the sweep stopped (never counted, always run again)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest

from harness.config import StudySettings
from harness.procs import start_time
from harness.study.budget import (
    budget_lock,
    reason_of,
    remaining,
    requeue,
    requeue_stopped,
    retried_from,
)
from harness.study.handles import storage_of, trial_id
from harness.study.liveness import (
    Heartbeat,
    beat,
    grace_seconds,
    recover_abandoned,
    this_host,
    worker_id,
)
from harness.study.record import HEARTBEAT, REASON, WORKER, StudyRecord
from harness.study.storage import load_study, open_storage, open_study

State = optuna.trial.TrialState


@pytest.fixture(params=["journal", "sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HARNESS_HEARTBEAT_SECONDS", "1")  # a worker is dead after 3 s
    if request.param == "postgresql":
        return request.getfixturevalue("postgres").create_database(f"t{uuid.uuid4().hex}")
    return (str(tmp_path / "optuna.journal") if request.param == "journal"
            else f"sqlite:///{tmp_path / 'optuna.db'}")


@pytest.fixture
def study(url: str) -> Any:
    return open_study("budget", open_storage(url), SETTINGS)


SETTINGS = StudySettings(sampler="random", seed=0)


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


def test_a_study_created_by_one_process_is_joined_by_another_with_its_settings(
        url: str, study: Any) -> None:
    StudyRecord(space_text="search: {}", trials=7, registry_model="m",
                tracking_uri="sqlite:///x.db").save(study)
    _end(study, _ask(study), "finished")
    joined = load_study("budget", open_storage(url))
    assert StudyRecord.load(joined) == StudyRecord.load(study)
    assert StudyRecord.load(joined).trials == 7
    assert [t.state for t in joined.trials] == [State.COMPLETE]
    again = open_study("budget", open_storage(url), SETTINGS)  # a resumed sweep
    assert len(again.trials) == 1


def test_the_budget_lock_admits_one_worker_at_a_time(url: str, study: Any) -> None:
    inside = threading.Event()
    order: list[str] = []

    def second() -> None:
        inside.wait()
        with budget_lock(url, "budget"):
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    with budget_lock(url, "budget"):
        inside.set()
        thread.join(timeout=1.5)  # it must still be waiting for the lock
        order.append("first")
    thread.join()
    assert order == ["first", "second"]


def _dead_pid() -> tuple[int, int | None]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    since = start_time(proc.pid)
    proc.wait()
    return proc.pid, since


def _run_by(study: Any, trial: Any, worker: dict[str, Any]) -> None:
    storage_of(study).set_trial_system_attr(trial_id(trial), WORKER, worker)
    beat(study, trial_id(trial))


def test_a_trial_whose_worker_died_here_is_failed_and_retried_once(study: Any) -> None:
    first = _ask(study)
    pid, since = _dead_pid()
    _run_by(study, first, {"host": this_host(), "pid": pid, "since": since, "pgid": None})
    assert recover_abandoned(study) == [first.number]
    assert reason_of(study.get_trials()[first.number]) == "abandoned"
    assert recover_abandoned(study) == []

    retry = _ask(study)
    assert retried_from(study.get_trials()[retry.number]) == first.number
    assert retry.params == first.params
    _run_by(study, retry, {"host": this_host(), "pid": pid, "since": since, "pgid": None})
    assert recover_abandoned(study) == [retry.number]
    assert not study.get_trials(states=(State.WAITING,))  # abandoned twice: not again
    assert remaining(study, 2) == 1


def test_a_live_worker_keeps_its_trial_and_a_silent_one_elsewhere_loses_it(
        tmp_path: Path) -> None:
    """On a journal the harness judges heartbeats itself, at the time it is given (on RDB
    storages Optuna does, by the database's clock: tests/sweep/test_distributed.py)."""
    study = open_study("budget", open_storage(str(tmp_path / "optuna.journal")), SETTINGS)
    mine = _ask(study)
    _run_by(study, mine, worker_id())
    silent, beating = _ask(study), _ask(study)
    for trial, host in ((silent, "machine-b"), (beating, "machine-c")):
        _run_by(study, trial, {"host": host, "pid": 1, "since": 0, "pgid": None})
    assert recover_abandoned(study) == []
    later = time.time() + grace_seconds() + 1  # the other workers' grace is over
    beat(study, trial_id(beating), now=later - 1)  # one of them said it lives meanwhile
    assert recover_abandoned(study, now=later) == [silent.number]
    assert [study.get_trials()[t.number].state for t in (mine, beating)] == [State.RUNNING] * 2


def test_a_heartbeat_is_recorded_as_its_trial_starts(tmp_path: Path) -> None:
    study = open_study("budget", open_storage(str(tmp_path / "optuna.journal")), SETTINGS)
    trial = _ask(study)
    before = time.time()
    with Heartbeat(study, trial_id(trial)):
        beaten = study.get_trials()[trial.number].system_attrs[HEARTBEAT]
    assert beaten >= before  # at once, not a heartbeat period later


def test_every_trial_a_dead_worker_left_is_handed_on_before_its_retry(tmp_path: Path) -> None:
    """Also one its worker had already given a reason when it died (the sweep ends the MLflow
    run of each through this hook)."""
    study = open_study("budget", open_storage(str(tmp_path / "optuna.journal")), SETTINGS)
    pid, since = _dead_pid()
    quiet, said = _ask(study), _ask(study)
    said.set_user_attr(REASON, "crash")  # recorded, then the worker died before telling
    for trial in (quiet, said):
        _run_by(study, trial, {"host": this_host(), "pid": pid, "since": since, "pgid": None})
    lost: list[tuple[int, int]] = []

    def on_lost(seen: Any, trial: Any) -> None:
        lost.append((trial.number, len(seen.get_trials(states=(State.WAITING,)))))

    assert recover_abandoned(study, on_lost=on_lost) == [quiet.number]  # said: not abandoned
    assert lost == [(quiet.number, 0), (said.number, 1)]  # each before its own retry
