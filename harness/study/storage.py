"""Where a study lives and how it is opened.

Storage is a URL: sqlite:///, postgresql://, mysql:// go to Optuna's RDB storage (with Optuna's
heartbeats); anything else is a journal file (the default, mlruns/optuna.journal), which several
processes on one machine can share, torn records repaired on open (`harness.study.journal`).

Optuna keeps a trial's storage id and a study's storage in private members; `storage_of` and
`trial_id` are the one place that reaches for them.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

from harness.config import StudySettings
from harness.errors import HarnessError
from harness.urls import redact

DEFAULT_STORAGE = Path("mlruns") / "optuna.journal"
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")


def storage_url(given: str | None) -> str:
    return given or os.environ.get("HARNESS_STORAGE") or str(DEFAULT_STORAGE.resolve())


def scheme_of(url: str) -> str:
    """The URL's scheme without its driver (`postgresql+psycopg` -> `postgresql`); '' for a path."""
    return url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""


def open_storage(url: str) -> Any:
    import optuna
    from optuna.storages import JournalStorage, RDBStorage

    from harness.study.journal import JournalFile
    from harness.study.liveness import RetryStale, grace_seconds, heartbeat_seconds

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep shows its own progress
    scheme = scheme_of(url)
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


def best_trial(study: Any) -> Any:
    """The best COMPLETE trial: lowest first objective (on the Pareto front when several)."""
    try:
        candidates = study.best_trials if len(study.directions) > 1 else [study.best_trial]
    except ValueError:
        return None
    return min(candidates, key=lambda t: t.values[0]) if candidates else None


def storage_of(study: Any) -> Any:
    """The storage a study object writes to (Optuna keeps it private)."""
    return study._storage


def trial_id(trial: Any) -> int:
    """A trial's id in its storage, as the storage's own methods take it (private in Optuna)."""
    return trial._trial_id
