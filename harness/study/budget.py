"""The study's budget of trials, shared by every worker: which finished trials count, how many
are left to start, the lock under which a worker checks and asks, and the retries of trials the
sweep stopped or whose worker died.

A trial the sweep stopped (Ctrl-C, a full disk) never counts against the budget and is always
queued again; a trial whose worker died is retried once. A queued retry keeps the first trial's
number (Optuna's `failed_trial`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.study.record import BASELINE, REASON
from harness.study.url import scheme_of

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

STOPPED = ("interrupted", "disk_full")
"""Reasons a trial was stopped by the sweep rather than judged: such a trial never counts
against the study's budget and is always run again."""


ABANDONED_RETRIES = 1
"""How often a trial whose worker died is retried: a trial that takes its machine down with it
(the kernel's OOM killer) must not do so forever."""


def reason_of(trial: FrozenTrial) -> str:
    """Why a trial ended; a trial failed by Optuna's heartbeat check carries no reason of its
    own (a finished trial takes no attributes), and is `abandoned`."""
    import optuna

    reason = trial.user_attrs.get(REASON)
    if reason is None and trial.state == optuna.trial.TrialState.FAIL:
        return "abandoned"
    return reason or ""


def retried_from(trial: FrozenTrial) -> int | None:
    return trial.system_attrs.get("failed_trial")


def state_word(trial: FrozenTrial) -> str:
    """How the summary and the study note count a trial: its Optuna state, but `stopped` for
    one the sweep stopped (Ctrl-C, a full disk) rather than judged, and `too big` for one
    estimated too big for its device (never launched)."""
    if trial.state.name == "FAIL" and reason_of(trial) in STOPPED:
        return "stopped"
    if reason_of(trial) == "too_big":
        return "too big"
    return trial.state.name.lower()


def superseded(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of trials that were retried: their retry counts instead of them."""
    return {t.system_attrs["retry_history"][-1] for t in trials
            if t.system_attrs.get("retry_history")}


def counted(trial: FrozenTrial, retried: set[int]) -> bool:
    """Whether a finished trial counts towards the study's total: not when it was retried (its
    retry counts instead) nor when the sweep stopped it before it could be judged."""
    return (trial.state.is_finished() and trial.number not in retried
            and reason_of(trial) not in STOPPED)


def remaining(study: optuna.Study, total: int) -> int:
    """Trials still to start: the total less those counted and those running."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    retried = superseded(trials)
    running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
    return max(0, total - sum(counted(t, retried) for t in trials) - running)


def requeue(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Queue ``trial``'s parameters (none, for an empty search space) as a new waiting trial;
    False when it is queued already, or is a trial abandoned again (not retried). The new
    trial records the chain in Optuna's retry attributes (`failed_trial`: the first number,
    `retry_history`), and none of the old trial's worker attributes."""
    import optuna

    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    trials = study.get_trials(deepcopy=False)
    if trial.number in superseded(trials):
        return False  # queued already (by another worker, or by this one before)
    if reason_of(trial) == "abandoned":
        chain = [t for t in trials if t.number in history]
        if sum(reason_of(t) == "abandoned" for t in chain) > ABANDONED_RETRIES:
            return False
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING, params=trial.params,
        distributions=trial.distributions,
        user_attrs={k: v for k, v in trial.user_attrs.items() if k == BASELINE},
        system_attrs={"failed_trial": history[0], "retry_history": history}))
    return True


def requeue_stopped(study: optuna.Study) -> list[int]:
    """Queue again every trial that should have a retry and has none: one the sweep stopped
    (interrupted, disk full) or whose worker died, left so by a process stopped before it could
    queue it; their numbers. Call under the budget lock, so two workers do not both queue one."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    retried = superseded(trials)
    fail = optuna.trial.TrialState.FAIL
    lost = [t for t in trials if t.state == fail and t.number not in retried
            and reason_of(t) in (*STOPPED, "abandoned")]
    return [t.number for t in lost if requeue(study, t)]


@contextlib.contextmanager
def budget_lock(url: str, study_name: str) -> Iterator[None]:
    """Held while a worker checks the budget and asks for a trial, so that workers together
    never start more trials than the study's total: a PostgreSQL advisory lock or MySQL named
    lock (released by the database if the worker dies), else a file lock beside the storage."""
    scheme = scheme_of(url)
    key = int.from_bytes(hashlib.sha1(study_name.encode()).digest()[:8], "big", signed=True)
    if scheme in ("postgresql", "postgres", "mysql"):
        yield from _db_lock(url, scheme, key)
        return
    path = Path(url.removeprefix("sqlite:///")) if scheme == "sqlite" else Path(url)
    lock = path.with_name(f"{path.name}.{key & 0xFFFFFFFF:08x}.lock")
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _db_lock(url: str, scheme: str, key: int | str) -> Iterator[None]:
    import sqlalchemy

    if scheme == "mysql":
        take, give = "SELECT GET_LOCK(:k, 3600)", "SELECT RELEASE_LOCK(:k)"
        key = str(key)  # MySQL locks are named
    else:
        take, give = "SELECT pg_advisory_lock(:k)", "SELECT pg_advisory_unlock(:k)"
    engine = _lock_engine(url)
    with engine.connect() as conn:
        got = conn.execute(sqlalchemy.text(take), {"k": key}).scalar()
        if scheme == "mysql" and got != 1:
            raise HarnessError("could not take the study's budget lock in MySQL within an hour")
        try:
            yield
        finally:
            conn.execute(sqlalchemy.text(give), {"k": key})
            conn.commit()


_engines: dict[str, Any] = {}


def _lock_engine(url: str) -> Any:
    import sqlalchemy

    if url not in _engines:
        _engines[url] = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    return _engines[url]
