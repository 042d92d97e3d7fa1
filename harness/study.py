"""The Optuna side of a sweep: storage, sampler, pruner, opening a study, and recovering trials
that a dead process left RUNNING.

Storage is a URL: sqlite:///, postgresql://, mysql:// go to Optuna's RDB storage; anything else
is a journal file (the default, mlruns/optuna.journal), which several processes on one machine
can share. Liveness works the same on every storage: a running trial carries its worker's host,
pid and child process group, and a heartbeat refreshed while it runs. A trial is abandoned when
its worker's pid is gone (same host) or its heartbeat is older than `STALE_SECONDS`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
import warnings
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.space import StudySettings

DEFAULT_STORAGE = Path("mlruns") / "optuna.journal"
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 300.0
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")

REASON = "harness.reason"
RETRY_OF = "harness.retry_of"
RUN_ID = "mlflow_run_id"
WORKER = "harness.worker"
HEARTBEAT = "harness.heartbeat"
REQUEUED_REASONS = ("abandoned", "interrupted")
"""Trials ended this way were not judged: their parameters run again once, and they do not
count towards the study's trial total."""


def storage_url(given: str | None) -> str:
    return given or os.environ.get("HARNESS_STORAGE") or str(DEFAULT_STORAGE.resolve())


def open_storage(url: str) -> Any:
    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep shows its own progress
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme in RDB_SCHEMES:
        try:
            return RDBStorage(url, engine_kwargs={"pool_pre_ping": True}
                              if scheme != "sqlite" else None)
        except Exception as err:
            raise HarnessError(f"cannot open the study storage {url}: {err}") from None
    if scheme:
        raise HarnessError(f"study storage {url}: unknown scheme {scheme!r}; use sqlite:///, "
                           "postgresql://, mysql:// or a journal file path")
    path = Path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


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


def make_pruner(settings: StudySettings) -> Any:
    import optuna

    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=settings.startup_trials,
                                           n_warmup_steps=settings.warmup_steps)
    if settings.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=settings.min_resource, reduction_factor=settings.reduction_factor)
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=settings.min_resource, reduction_factor=settings.reduction_factor)
    return optuna.pruners.NopPruner()


def open_study(name: str, storage: Any, settings: StudySettings) -> Any:
    """Create the study, or load it to continue; its directions must not have changed."""
    import optuna

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


def worker_id(pgid: int | None = None) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "pgid": pgid}


def beat(study: Any, trial_id: int) -> None:
    study._storage.set_trial_system_attr(trial_id, HEARTBEAT, time.time())


def is_stale(trial: Any, now: float | None = None) -> bool:
    """Whether a RUNNING trial's worker is gone."""
    now = now or time.time()
    worker = trial.system_attrs.get(WORKER) or {}
    if worker.get("host") == socket.gethostname() and worker.get("pid"):
        return not _alive(worker["pid"])
    last = trial.system_attrs.get(HEARTBEAT)
    if last is None and trial.datetime_start is not None:
        last = trial.datetime_start.timestamp()
    return last is None or now - last > STALE_SECONDS


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_abandoned(study: Any, on_abandoned: Any = lambda trial: None) -> list[int]:
    """Mark trials a dead worker left RUNNING as FAIL (reason `abandoned`), stop what is left of
    their child processes on this host, and re-queue their parameters once."""
    import optuna

    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if not is_stale(trial):
            continue
        _kill_leftover(trial.system_attrs.get(WORKER) or {})
        storage = study._storage
        storage.set_trial_user_attr(trial._trial_id, REASON, "abandoned")
        if not storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL):
            continue  # another worker recovered it first
        requeue(study, trial)
        on_abandoned(trial)
        recovered.append(trial.number)
    return recovered


def requeue(study: Any, trial: Any) -> None:
    """Run ``trial``'s parameters again, once: a retry is never re-queued itself."""
    if trial.user_attrs.get(RETRY_OF) is None and trial.params:
        study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})


def _kill_leftover(worker: dict[str, Any]) -> None:
    """SIGKILL the process group of a dead worker's trial, if it still runs on this host."""
    pgid = worker.get("pgid")
    if pgid and worker.get("host") == socket.gethostname() and _group_is_trial(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def _group_is_trial(pgid: int) -> bool:
    """Whether a live process of group ``pgid`` is a harness trial (the id was not reused)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            group = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
            if group == pgid and b"harness.trial" in (proc / "cmdline").read_bytes():
                return True
    return False


def counted(trial: Any) -> bool:
    """Whether a finished trial counts towards the study's total."""
    import optuna

    finished = trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                               optuna.trial.TrialState.FAIL)
    return finished and trial.user_attrs.get(REASON) not in REQUEUED_REASONS


def remaining(study: Any, total: int) -> int:
    """Trials still to start: the total less those counted and those running elsewhere."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
    return max(0, total - sum(counted(t) for t in trials) - running)


def best_trial(study: Any) -> Any:
    """The best COMPLETE trial: lowest first objective (on the Pareto front when several)."""
    try:
        candidates = study.best_trials if len(study.directions) > 1 else [study.best_trial]
    except ValueError:
        return None
    return min(candidates, key=lambda t: t.values[0]) if candidates else None
