"""Optuna keeps a trial's storage id and a study's storage in private members: this is the one
place that reaches for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage a study object writes to."""
    return study._storage


def trial_id(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """A trial's id in its storage, as the storage's own methods take it."""
    return trial._trial_id
