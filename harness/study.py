"""The Optuna side of a sweep: storage, sampler, pruner, opening a study, the trial budget shared
by every worker, and recovering trials whose worker died.

Storage is a URL: sqlite:///, postgresql://, mysql:// go to Optuna's RDB storage; anything else
is a journal file (the default, mlruns/optuna.journal), which several processes on one machine
can share. Liveness: on RDB storages Optuna's own heartbeats (`heartbeat_interval`,
`grace_period`); on a journal file a heartbeat attribute. Either way a worker's host and pid are
kept with its running trial, so a dead worker on the same host is noticed at once. A trial whose
worker died is failed, its MLflow run closed as FAILED, and its parameters retried once by
Optuna's `RetryHeartbeatStaleTrialCallback` (the retry keeps the first trial's number).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import fcntl
import hashlib
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.space import StudySettings

DEFAULT_STORAGE = Path("mlruns") / "optuna.journal"
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")

REASON = "harness.reason"
RUN_ID = "mlflow_run_id"
WORKER = "harness.worker"
HEARTBEAT = "harness.heartbeat"
RETRY_KEYS = ("failed_trial", "retry_history")
"""System attributes Optuna's retry callback writes: the first trial's number, and the chain."""


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
    from optuna.storages.journal import JournalFileBackend

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
    path = Path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def redact(url: str) -> str:
    """A storage URL without its password, for messages."""
    head, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if sep and at and ":" in creds:
        return f"{head}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def make_sampler(settings: StudySettings) -> Any:
    import optuna

    seed = settings.seed
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    if settings.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    multi = len(settings.objectives) > 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=not multi, group=not multi)


def open_study(name: str, storage: Any, settings: StudySettings, *,
               worker: bool = False) -> Any:
    """Create the study, or load it to continue; its directions must not have changed.

    A joining ``worker`` offsets the sampler's seed (by host, pid and time: containers share
    pids), so that workers asking at the same moment do not propose the same parameters."""
    import optuna

    from harness.pruners import make_pruner

    directions = ["minimize"] * len(settings.objectives)
    if worker and settings.seed is not None:
        salt = hashlib.sha1(f"{this_host()}:{os.getpid()}:{time.time_ns()}".encode()).digest()
        settings = dataclasses.replace(settings, seed=settings.seed + int.from_bytes(salt[:3]))
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
    return {"host": this_host(), "pid": os.getpid(), "since": _start_time(os.getpid()),
            "pgid": pgid}


def _start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot): a restarted container reuses pids, and the
    start time tells its new process from the dead worker's."""
    return _stat_field(Path(f"/proc/{pid}"), 19)


def _stat_field(proc: Path, index: int) -> int | None:
    """A numeric field of /proc/PID/stat, counted after the command name (state is 0)."""
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[index])
    except (OSError, ValueError, IndexError):
        return None


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
        pid, since = worker["pid"], worker.get("since")
        return not _alive(pid) or (since is not None and _start_time(pid) not in (since, None))
    if heartbeats_in_storage:
        return False  # Optuna's fail_stale_trials judges these
    now = now or time.time()
    last = trial.system_attrs.get(HEARTBEAT)
    if last is None and trial.datetime_start is not None:
        last = trial.datetime_start.timestamp()
    return last is None or now - last > grace_seconds()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RetryStale:
    """Optuna's retry callback for a trial whose worker died, plus the harness's clean-up: what is
    left of the trial's processes on this host is killed and its MLflow run ends FAILED."""

    def __call__(self, study: Any, trial: Any) -> None:
        _kill_leftover(trial.system_attrs.get(WORKER) or {})
        close_run(study, trial, reason="abandoned", status="FAILED")
        retry(study, trial)


def retry(study: Any, trial: Any) -> None:
    """Queue ``trial``'s parameters again, once, through Optuna's retry callback; the new trial
    keeps the first one's number (`failed_trial`) but none of its worker's attributes."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    if not trial.params:
        return
    clean = copy.deepcopy(trial)
    clean.user_attrs = {}
    clean.system_attrs = {k: v for k, v in trial.system_attrs.items() if k in RETRY_KEYS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-API warning
        RetryHeartbeatStaleTrialCallback(max_retry=1)(study, clean)


def retried_from(trial: Any) -> int | None:
    return trial.system_attrs.get("failed_trial")


def close_run(study: Any, trial: Any, *, reason: str, status: str) -> None:
    """End a trial's MLflow run that its runner will never end."""
    run_id = trial.user_attrs.get(RUN_ID)
    uri = study.user_attrs.get("tracking_uri")
    if not run_id or not uri:
        return
    with contextlib.suppress(Exception):  # the tracking server may be down; Optuna is the truth
        from mlflow import MlflowClient

        client = MlflowClient(uri)
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
    if pgid and worker.get("host") == this_host() and _group_is_trial(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def _group_is_trial(pgid: int) -> bool:
    """Whether a live process of group ``pgid`` is a harness trial (the id was not reused)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or _stat_field(proc, 2) != pgid:
            continue
        with contextlib.suppress(OSError):
            if b"harness.trial" in (proc / "cmdline").read_bytes():
                return True
    return False


def superseded(trials: list[Any]) -> set[int]:
    """Numbers of trials that were retried: their retry counts instead of them."""
    return {t.system_attrs["retry_history"][-1] for t in trials
            if t.system_attrs.get("retry_history")}


def counted(trial: Any, retried: set[int]) -> bool:
    """Whether a finished trial counts towards the study's total."""
    return trial.state.is_finished() and trial.number not in retried


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
