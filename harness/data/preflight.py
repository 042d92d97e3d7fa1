"""A trial's data checked as the trial will read it (its splits, then its general text), before
a model is loaded or a run opened: a defect is an error naming the file and record, not a
crash after minutes of loading."""

from __future__ import annotations

from dataclasses import dataclass

from harness.config import TrainConfig
from harness.errors import DataError
from harness.metrics.answers import load_metric


@dataclass(frozen=True)
class DataChecked:
    """The examples a trial will have in each split, once its data passed the checks."""

    path: str
    """The training data's path, as configured."""
    train: int
    evals: int
    tests: int
    general: int
    """General-text examples of the forgetting check (0: off)."""
    metrics: tuple[str, ...] = ()
    """The task metrics the trial scores answers with, each loaded once here."""

    def line(self) -> str:
        general = f", {self.general} general-text" if self.general else ""
        metrics = f"; answers scored by {', '.join(self.metrics)}" if self.metrics else ""
        return (f"data {self.path}: {self.train} train, {self.evals} eval and {self.tests} "
                f"test examples{general}, checked{metrics}")


def check_trial_data(config: TrainConfig) -> DataChecked:
    """Read, check and encode the data and the general text of ``config`` with its model's
    tokenizer; a DataError names what is wrong. The encoded splits stay in the cache, where
    the trial reads them."""
    from harness.data.ready import ready_for_training
    from harness.data.retention import retention_data
    from harness.models import harness_home, training_tokenizer

    tokenizer = training_tokenizer(config.model)
    ready = ready_for_training(config.data, tokenizer, cache=harness_home())
    retention, _ = retention_data(config.retention, tokenizer=tokenizer, renderer=ready.renderer)
    metrics = [load_metric(spec).name for spec in config.evaluation.metrics]
    if metrics and not any(r.has_prompt for r, _ in ready.evals):
        raise DataError(config.data.path, "evaluation.metrics score answers to prompts, and "
                        "no eval record has a prompt before its answer (raw text has none)",
                        hint="use instruction, chat or Q&A data, or drop evaluation.metrics")
    return DataChecked(path=config.data.path, train=len(ready.train), evals=len(ready.evals),
                       tests=len(ready.tests), general=len(retention), metrics=tuple(metrics))
