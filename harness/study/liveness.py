"""Whether a running trial's worker is alive, and what happens to a trial whose worker died.

On RDB storages Optuna's own heartbeats (`heartbeat_interval`, `grace_period`) judge a trial; on
a journal file a heartbeat attribute does. Either way a worker's host, pid and start time are
kept with its running trial, so a dead worker on the same host is noticed at once. A trial whose
worker died is failed and its parameters queued again (once).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeGuard

from harness.procs import group_runs_trial, same_process, start_time
from harness.study.budget import reason_of, requeue
from harness.study.handles import storage_of, trial_id
from harness.study.record import HEARTBEAT, WORKER

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.storages._heartbeat import BaseHeartbeat
    from optuna.trial import FrozenTrial


def heartbeat_seconds() -> int:
    """How often a running trial's worker says it is alive (HARNESS_HEARTBEAT_SECONDS)."""
    value = os.environ.get("HARNESS_HEARTBEAT_SECONDS", "10")
    return int(value) if value.isdigit() and int(value) > 0 else 10


def grace_seconds() -> int:
    """Silence after which a running trial's worker is taken for dead."""
    return 3 * heartbeat_seconds()


def this_host() -> str:
    """The machine a worker runs on (HARNESS_WORKER_HOST when containers share a hostname)."""
    return os.environ.get("HARNESS_WORKER_HOST") or socket.gethostname()


def worker_id(pgid: int | None = None) -> dict[str, Any]:
    return {"host": this_host(), "pid": os.getpid(), "since": start_time(os.getpid()),
            "pgid": pgid}


def _heartbeat_storage(storage: BaseStorage) -> TypeGuard[BaseHeartbeat]:
    """Whether ``storage`` keeps Optuna's own heartbeats (an RDB storage)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled  # not re-exported

    return is_heartbeat_enabled(storage)


def beat(study: optuna.Study, trial_id: int, *, now: float | None = None) -> None:
    """Say that the worker of trial ``trial_id`` is alive (at ``now``: on a journal)."""
    storage = storage_of(study)
    if _heartbeat_storage(storage):
        storage.record_heartbeat(trial_id)
    else:
        storage.set_trial_system_attr(trial_id, HEARTBEAT, now or time.time())


class Heartbeat:
    """Keeps a running trial alive in the storage from a thread of its own, so a worker busy
    uploading an adapter or drawing plots is never taken for dead."""

    def __init__(self, study: optuna.Study, trial_id: int) -> None:
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


def is_stale(trial: FrozenTrial, *, heartbeats_in_storage: bool, now: float | None = None) -> bool:
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


LostTrial = Callable[["optuna.Study", "FrozenTrial"], None]
"""What else a trial whose worker died needs, as its worker cannot give it (a sweep ends its
MLflow run: `harness.tracking.study_run.close_lost_run`)."""


class RetryStale:
    """Called for a trial whose worker died, once it is failed (by Optuna's heartbeat check on
    RDB storages, by `recover_abandoned` on a journal): what is left of the trial's processes
    on this host is killed, ``on_lost`` is called, and its parameters are queued again."""

    def __init__(self, on_lost: LostTrial | None = None) -> None:
        self.on_lost = on_lost

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        _kill_leftover(trial.system_attrs.get(WORKER) or {})
        if self.on_lost is not None:
            self.on_lost(study, trial)
        requeue(study, trial)


def recover_abandoned(study: optuna.Study, *, now: float | None = None,
                      on_lost: LostTrial | None = None) -> list[int]:
    """Fail the trials dead workers left RUNNING (and retry them once); their numbers. On a
    journal, a heartbeat is judged stale at ``now`` (the present by default) and ``on_lost``
    is told of each; on RDB storages Optuna judges by the database's clock, and tells the
    storage's own `RetryStale` (`open_storage`'s ``on_lost``)."""
    import optuna
    from optuna.storages import fail_stale_trials

    running = optuna.trial.TrialState.RUNNING
    before = {t.number for t in study.get_trials(deepcopy=False, states=(running,))}
    rdb = _heartbeat_storage(storage_of(study))
    if rdb:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fail_stale_trials(study)  # calls RetryStale for each
    on_stale = RetryStale(on_lost)
    for trial in study.get_trials(deepcopy=False, states=(running,)):
        if not is_stale(trial, heartbeats_in_storage=rdb, now=now):
            continue
        storage = storage_of(study)
        try:  # no reason attribute: a FAIL without one is `abandoned` (see reason_of)
            if not storage.set_trial_state_values(trial_id(trial),
                                                  optuna.trial.TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker recovered it first
        on_stale(study, storage.get_trial(trial_id(trial)))
    fail = optuna.trial.TrialState.FAIL
    return [t.number for t in study.get_trials(deepcopy=False)
            if t.number in before and t.state == fail and reason_of(t) == "abandoned"]


def _kill_leftover(worker: dict[str, Any]) -> None:
    """SIGKILL the process group of a dead worker's trial, if it still runs on this host."""
    pgid = worker.get("pgid")
    if pgid and worker.get("host") == this_host() and group_runs_trial(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
