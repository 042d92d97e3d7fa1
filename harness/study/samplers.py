"""The samplers a study can use, seeded per trial.

A sampler seeded once per process repeats itself: every `harness sweep` or `harness worker`
process starts the same random stream, so a resumed sweep (or a second worker) proposes exactly
the startup trials that were already run. Here every trial gets a sampler of its own whose seed
is derived from the study's seed and the trial's number. Trial numbers are handed out by the
storage and never repeat, so no two trials of a study draw the same random stream, whichever
process runs them, and the same study seed still proposes the same trials.

What the samplers learn lives in the storage (TPE and GP read the finished trials, CMA-ES keeps
its optimizer in trial attributes, QMC counts its sample index in the study), so a fresh sampler
per trial loses nothing. QMC keeps the study's own seed for its sequence (scrambling must be
the same in every process) and takes the per-trial seed only for the parameters it samples
independently.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from harness.config import StudySettings
from harness.study.start import LoraStart

SamplerFactory = Callable[[int | None], BaseSampler]


def trial_seed(seed: int | None, number: int) -> int | None:
    """The seed of trial ``number`` of a study seeded with ``seed`` (None stays unseeded)."""
    if seed is None:
        return None
    digest = hashlib.sha256(f"harness-trial-seed:{seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


class PerTrialSampler(BaseSampler):
    """Delegates each trial to a sampler built for it by ``factory(trial_seed(seed, number))``.

    Samplers are kept by trial number from `before_trial` to `after_trial`; slots of one
    process run trials in threads, hence the lock around the table (never around sampling)."""

    def __init__(self, factory: SamplerFactory, seed: int | None) -> None:
        self._factory = factory
        self._seed = seed
        self._by_trial: dict[int, BaseSampler] = {}
        self._lock = threading.Lock()

    def _for(self, trial: FrozenTrial) -> BaseSampler:
        with self._lock:
            sampler = self._by_trial.get(trial.number)
            if sampler is None:
                sampler = self._factory(trial_seed(self._seed, trial.number))
                self._by_trial[trial.number] = sampler
            return sampler

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name,
                                                    param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._for(trial).after_trial(study, trial, state, values)
        with self._lock:
            self._by_trial.pop(trial.number, None)

    def reseed_rng(self) -> None:
        """Nothing to reseed: every trial's sampler is seeded from its number."""


def make_sampler(settings: StudySettings) -> BaseSampler:
    """The study's sampler, each trial seeded from the study seed and its number."""
    return PerTrialSampler(_factory(settings), settings.seed)


def _factory(settings: StudySettings) -> SamplerFactory:
    multi = len(settings.objectives) > 1
    if settings.sampler == "random":
        return lambda seed: optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "qmc":
        return lambda seed: _quiet(lambda: optuna.samplers.QMCSampler(
            seed=settings.seed, independent_sampler=optuna.samplers.RandomSampler(seed=seed),
            warn_independent_sampling=False, warn_asynchronous_seeding=False))
    if settings.sampler == "cmaes":
        return lambda seed: optuna.samplers.CmaEsSampler(
            seed=seed, independent_sampler=optuna.samplers.RandomSampler(seed=seed),
            warn_independent_sampling=False)

    startup = settings.sampler_startup()

    def model(seed: int | None) -> BaseSampler:
        if settings.sampler == "gp":
            return _quiet(lambda: optuna.samplers.GPSampler(
                seed=seed, n_startup_trials=startup,
                independent_sampler=optuna.samplers.RandomSampler(seed=seed),
                warn_independent_sampling=False))
        # Multivariate TPE models the parameters jointly (learning rate and rank interact);
        # group splits the space where conditional parameters come and go; the constant liar
        # counts running trials as bad, so parallel trials do not crowd one promising spot.
        return _quiet(lambda: optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=startup, multivariate=not multi, group=not multi,
            constant_liar=True))

    if settings.start == "random":
        return model
    return lambda seed: LoraStart(model(seed), start=startup,
                                  fallback=optuna.samplers.RandomSampler(seed=seed))


def _quiet(build: Callable[[], BaseSampler]) -> BaseSampler:
    """``build()``, without Optuna's warning that the options it is given are experimental."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return build()
