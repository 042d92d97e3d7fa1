"""The Optuna side of a sweep: storage, sampler, pruner, opening a study, the trial budget shared
by every worker, and recovering trials whose worker died.

Storage is a URL: sqlite:///, postgresql://, mysql:// go to Optuna's RDB storage; anything else
is a journal file (the default, mlruns/optuna.journal), which several processes on one machine
can share. Liveness: on RDB storages Optuna's own heartbeats (`heartbeat_interval`,
`grace_period`); on a journal file a heartbeat attribute. Either way a worker's host and pid are
kept with its running trial, so a dead worker on the same host is noticed at once. A trial whose
worker died is failed, its MLflow run closed as FAILED, and its parameters queued again (once).
A trial the sweep stopped (Ctrl-C, a full disk) never counts against the budget and is always
queued again. A queued retry keeps the first trial's number (Optuna's `failed_trial`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.procs import group_runs_trial, same_process, start_time
from harness.sweep.space import StudySettings
from harness.urls import redact

DEFAULT_STORAGE = Path("mlruns") / "optuna.journal"
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")

REASON = "harness.reason"
RUN_ID = "mlflow_run_id"
WORKER = "harness.worker"
HEARTBEAT = "harness.heartbeat"


def heartbeat_seconds() -> int:
    """How often a running trial's worker says it is alive (HARNESS_HEARTBEAT_SECONDS)."""
    value = os.environ.get("HARNESS_HEARTBEAT_SECONDS", "10")
    return int(value) if value.isdigit() and int(value) > 0 else 10


def grace_seconds() -> int:
    """Silence after which a running trial's worker is taken for dead."""
    return 3 * heartbeat_seconds()


def storage_url(given: str | None) -> str:
    return given or os.environ.get("HARNESS_STORAGE") or str(DEFAULT_STORAGE.resolve())


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""


def open_storage(url: str) -> Any:
    import optuna
    from optuna.storages import JournalStorage, RDBStorage

    from harness.study.journal import JournalFile

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep shows its own progress
    scheme = _scheme(url)
    if scheme in RDB_SCHEMES:
        # SQLite: wait for a lock held by another worker instead of "database is locked".
        engine = ({"connect_args": {"timeout": 120}} if scheme == "sqlite"
                  else {"pool_pre_ping": True})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=engine,
                                  heartbeat_interval=heartbeat_seconds(),
                                  grace_period=grace_seconds(),
                                  heartbeat_stale_trial_callback=RetryStale())
        except Exception as err:
            raise HarnessError(f"cannot open the study storage {redact(url)}: "
                               f"{str(err).splitlines()[0]}") from None
    if scheme:
        raise HarnessError(f"study storage {redact(url)}: unknown scheme {scheme!r}; use "
                           "sqlite:///, postgresql://, mysql:// or a journal file path")
    journal = JournalFile(url)
    for note in journal.repairs:
        print(f"harness: note: {note}", file=sys.stderr)
    return JournalStorage(journal)


def open_study(name: str, storage: Any, settings: StudySettings) -> Any:
    """Create the study, or load it to continue; its directions must not have changed.

    Every process builds the same sampler: it seeds each trial from the study seed and the
    trial's number (`harness.study.samplers`), so resumes and workers never repeat a draw."""
    import optuna

    from harness.study.samplers import make_sampler
    from harness.sweep.pruners import make_pruner

    directions = ["minimize"] * len(settings.objectives)
    study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                                directions=directions, sampler=make_sampler(settings),
                                pruner=make_pruner(settings))
    if len(study.directions) != len(directions):
        raise HarnessError(f"study {name!r} already exists with {len(study.directions)} "
                           f"objective(s); this space has {len(directions)}. Use --study to "
                           "start a new study.")
    return study


def load_study(name: str, storage: Any) -> Any:
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        known = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise HarnessError(f"no study named {name!r} in this storage; known: "
                           f"{', '.join(known) or 'none'}") from None


def this_host() -> str:
    """The machine a worker runs on (HARNESS_WORKER_HOST when containers share a hostname)."""
    return os.environ.get("HARNESS_WORKER_HOST") or socket.gethostname()


def worker_id(pgid: int | None = None) -> dict[str, Any]:
    return {"host": this_host(), "pid": os.getpid(), "since": start_time(os.getpid()),
            "pgid": pgid}


def _heartbeat_storage(storage: Any) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled  # not re-exported

    return is_heartbeat_enabled(storage)


def beat(study: Any, trial_id: int) -> None:
    storage = study._storage
    if _heartbeat_storage(storage):
        storage.record_heartbeat(trial_id)
    else:
        storage.set_trial_system_attr(trial_id, HEARTBEAT, time.time())


class Heartbeat:
    """Keeps a running trial alive in the storage from a thread of its own, so a worker busy
    uploading an adapter or drawing plots is never taken for dead."""

    def __init__(self, study: Any, trial_id: int) -> None:
        self.study, self.trial_id = study, trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="heartbeat")

    def __enter__(self) -> Heartbeat:
        beat(self.study, self.trial_id)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(heartbeat_seconds()):
            with contextlib.suppress(Exception):  # a storage hiccup; the next beat may pass
                beat(self.study, self.trial_id)


def is_stale(trial: Any, *, heartbeats_in_storage: bool, now: float | None = None) -> bool:
    """Whether a RUNNING trial's worker is gone: its pid is dead on this host, or (journal
    storage) its heartbeat attribute is older than the grace period."""
    worker = trial.system_attrs.get(WORKER) or {}
    if worker.get("host") == this_host() and worker.get("pid"):
        return not same_process(worker["pid"], worker.get("since"))
    if heartbeats_in_storage:
        return False  # Optuna's fail_stale_trials judges these
    now = now or time.time()
    last = trial.system_attrs.get(HEARTBEAT)
    if last is None and trial.datetime_start is not None:
        last = trial.datetime_start.timestamp()
    return last is None or now - last > grace_seconds()


class RetryStale:
    """Called for a trial whose worker died (by Optuna's heartbeat check on RDB storages, by
    `recover_abandoned` on a journal): what is left of the trial's processes on this host is
    killed, its MLflow run ends FAILED, and its parameters are queued again."""

    def __call__(self, study: Any, trial: Any) -> None:
        _kill_leftover(trial.system_attrs.get(WORKER) or {})
        close_run(study, trial, reason="abandoned", status="FAILED")
        requeue(study, trial)


STOPPED = ("interrupted", "disk_full")
"""Reasons a trial was stopped by the sweep rather than judged: such a trial never counts
against the study's budget and is always run again."""
ABANDONED_RETRIES = 1
"""How often a trial whose worker died is retried: a trial that takes its machine down with it
(the kernel's OOM killer) must not do so forever."""


def requeue(study: Any, trial: Any) -> bool:
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
        system_attrs={"failed_trial": history[0], "retry_history": history}))
    return True


def requeue_stopped(study: Any) -> list[int]:
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


def retried_from(trial: Any) -> int | None:
    return trial.system_attrs.get("failed_trial")


def close_run(study: Any, trial: Any, *, reason: str, status: str) -> None:
    """End a trial's MLflow run that its runner will never end."""
    run_id = trial.user_attrs.get(RUN_ID)
    uri = study.user_attrs.get("tracking_uri")
    if not run_id or not uri:
        return
    with contextlib.suppress(Exception):  # the tracking server may be down; Optuna is the truth
        from harness.tracking.runs import client_for

        client = client_for(uri)
        client.set_tag(run_id, "trial.reason", reason)
        client.set_tag(run_id, "optuna.state", "FAIL")
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status)


def recover_abandoned(study: Any) -> list[int]:
    """Fail the trials dead workers left RUNNING (and retry them once); their numbers."""
    import optuna
    from optuna.storages import fail_stale_trials

    running = optuna.trial.TrialState.RUNNING
    before = {t.number for t in study.get_trials(deepcopy=False, states=(running,))}
    rdb = _heartbeat_storage(study._storage)
    if rdb:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fail_stale_trials(study)  # calls RetryStale for each
    on_stale = RetryStale()
    for trial in study.get_trials(deepcopy=False, states=(running,)):
        if not is_stale(trial, heartbeats_in_storage=rdb):
            continue
        storage = study._storage
        try:  # no reason attribute: a FAIL without one is `abandoned` (see reason_of)
            if not storage.set_trial_state_values(trial._trial_id,
                                                  optuna.trial.TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker recovered it first
        on_stale(study, storage.get_trial(trial._trial_id))
    fail = optuna.trial.TrialState.FAIL
    return [t.number for t in study.get_trials(deepcopy=False)
            if t.number in before and t.state == fail and reason_of(t) == "abandoned"]


def reason_of(trial: Any) -> str:
    """Why a trial ended; a trial failed by Optuna's heartbeat check carries no reason of its
    own (a finished trial takes no attributes), and is `abandoned`."""
    import optuna

    reason = trial.user_attrs.get(REASON)
    if reason is None and trial.state == optuna.trial.TrialState.FAIL:
        return "abandoned"
    return reason or ""


def _kill_leftover(worker: dict[str, Any]) -> None:
    """SIGKILL the process group of a dead worker's trial, if it still runs on this host."""
    pgid = worker.get("pgid")
    if pgid and worker.get("host") == this_host() and group_runs_trial(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def superseded(trials: list[Any]) -> set[int]:
    """Numbers of trials that were retried: their retry counts instead of them."""
    return {t.system_attrs["retry_history"][-1] for t in trials
            if t.system_attrs.get("retry_history")}


def counted(trial: Any, retried: set[int]) -> bool:
    """Whether a finished trial counts towards the study's total: not when it was retried (its
    retry counts instead) nor when the sweep stopped it before it could be judged."""
    return (trial.state.is_finished() and trial.number not in retried
            and reason_of(trial) not in STOPPED)


def remaining(study: Any, total: int) -> int:
    """Trials still to start: the total less those counted and those running."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    retried = superseded(trials)
    running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
    return max(0, total - sum(counted(t, retried) for t in trials) - running)


@contextlib.contextmanager
def budget_lock(url: str, study_name: str) -> Iterator[None]:
    """Held while a worker checks the budget and asks for a trial, so that workers together
    never start more trials than the study's total: a PostgreSQL advisory lock or MySQL named
    lock (released by the database if the worker dies), else a file lock beside the storage."""
    scheme = _scheme(url)
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


def best_trial(study: Any) -> Any:
    """The best COMPLETE trial: lowest first objective (on the Pareto front when several)."""
    try:
        candidates = study.best_trials if len(study.directions) > 1 else [study.best_trial]
    except ValueError:
        return None
    return min(candidates, key=lambda t: t.values[0]) if candidates else None
