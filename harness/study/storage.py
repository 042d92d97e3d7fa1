"""How a study is opened.

Its storage is a URL (`harness.study.url`): sqlite:///, postgresql://, mysql:// go to Optuna's
RDB storage (with Optuna's heartbeats); anything else is a journal file (the default,
mlruns/optuna.journal), which several processes on one machine can share, torn records repaired
on open (`harness.study.journal`).
"""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING, Any

from harness.config import StudySettings, maximised
from harness.errors import HarnessError
from harness.study.url import RDB_SCHEMES, scheme_of
from harness.urls import redact

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

    from harness.study.liveness import LostTrial


def open_storage(url: str, *, on_lost: LostTrial | None = None) -> BaseStorage:
    """The storage at ``url``; on an RDB storage Optuna's heartbeats call ``on_lost`` for a
    trial whose worker died (see `harness.study.liveness.RetryStale`)."""
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
                                  heartbeat_stale_trial_callback=RetryStale(on_lost))
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


def open_study(name: str, storage: BaseStorage, settings: StudySettings) -> optuna.Study:
    """Create the study, or load it to continue; its directions must not have changed.

    Every process builds the same sampler: it seeds each trial from the study seed and the
    trial's number (`harness.study.samplers`), so resumes and workers never repeat a draw."""
    import optuna
    from optuna.study import StudyDirection

    from harness.study.pruners import make_pruner
    from harness.study.samplers import make_sampler

    directions = [StudyDirection.MAXIMIZE if maximised(o) else StudyDirection.MINIMIZE
                  for o in settings.objectives]
    study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                                directions=directions, sampler=make_sampler(settings),
                                pruner=make_pruner(settings))
    if study.directions != directions:
        raise HarnessError(f"study {name!r} already exists with {len(study.directions)} "
                           f"objective(s) ({_shown(study.directions)}); this space has "
                           f"{len(directions)} ({_shown(directions)}). Use --study to start a "
                           "new study.")
    return study


def _shown(directions: list[Any]) -> str:
    return ", ".join(d.name.lower() for d in directions)


def load_study(name: str, storage: BaseStorage) -> optuna.Study:
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        known = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise HarnessError(f"no study named {name!r} in this storage; known: "
                           f"{', '.join(known) or 'none'}") from None


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best COMPLETE trial: the best first objective, in its direction (on the Pareto
    front when several)."""
    from optuna.study import StudyDirection

    try:
        candidates = study.best_trials if len(study.directions) > 1 else [study.best_trial]
    except ValueError:
        return None
    sign = -1 if study.directions[0] == StudyDirection.MAXIMIZE else 1
    return min(candidates, key=lambda t: sign * t.values[0]) if candidates else None

