"""A trial's data checked as the trial will read it (its splits, then its general text), before
a model is loaded or a run opened: a defect is an error naming the file and record, not a
crash after minutes of loading."""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.config import TrainConfig, maximised
from harness.errors import DataError
from harness.metrics.answers import load_metric

COARSE = 400
"""Eval prompts below which a 0/1 metric's 95 % interval can be wider than +-0.05."""


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
    answered: int = 0
    """Eval prompts answered at each epoch end for the metrics."""
    objective: str = "eval_loss"
    cleaning: str = ""
    """Near-duplicates and contamination found, in words (`Cleaning.line`)."""

    def line(self) -> str:
        general = f", {self.general} general-text" if self.general else ""
        metrics = f"; answers scored by {', '.join(self.metrics)}" if self.metrics else ""
        cleaning = f"; {self.cleaning}" if self.cleaning else ""
        return (f"data {self.path}: {self.train} train, {self.evals} eval and {self.tests} "
                f"test examples{general}, checked{cleaning}{metrics}" + self._resolution())

    def _resolution(self) -> str:
        """How finely a metric objective tells trials apart on this many prompts: on a few
        dozen, one or two answers decide (bench/RESULTS.md, issue 30)."""
        if not maximised(self.objective) or not self.answered:
            return ""
        n = self.answered
        widest = 1.96 * math.sqrt(0.25 / n)  # a 0/1 score's interval is widest at p = 0.5
        said = (f"\n{self.objective} is judged on {n} eval prompts: one answer moves it by "
                f"{1 / n:.3f}, and a score's 95 % interval spans up to +-{widest:.2f}")
        if n < COARSE:
            said += ("; with this few, more eval data, or objective eval_loss with the metric "
                     "logged beside it, choose more surely")
        return said


def check_trial_data(config: TrainConfig) -> DataChecked:
    """Read, check and encode the data and the general text of ``config`` with its model's
    tokenizer; a DataError names what is wrong. The encoded splits stay in the cache, where
    the trial reads them."""
    from harness.data.ready import ready_for_training
    from harness.data.retention import retention_data, retention_records
    from harness.models import harness_home, training_tokenizer

    tokenizer = training_tokenizer(config.model)
    general = retention_records(config.retention, tokenizer=tokenizer)
    ready = ready_for_training(config.data, tokenizer, cache=harness_home(), general=general)
    retention, _ = retention_data(config.retention, tokenizer=tokenizer, renderer=ready.renderer,
                                  records=general)
    metrics = [load_metric(spec).name for spec in config.evaluation.metrics]
    if metrics and not any(r.has_prompt for r, _ in ready.evals):
        raise DataError(config.data.path, "evaluation.metrics score answers to prompts, and "
                        "no eval record has a prompt before its answer (raw text has none)",
                        hint="use instruction, chat or Q&A data, or drop evaluation.metrics")
    asked = sum(r.has_prompt for r, _ in ready.evals)
    cap = config.evaluation.max_answer_examples
    return DataChecked(path=config.data.path, train=len(ready.train), evals=len(ready.evals),
                       tests=len(ready.tests), general=len(retention), metrics=tuple(metrics),
                       answered=min(asked, cap) if cap else asked,
                       objective=config.evaluation.objective,
                       cleaning=ready.dataset.cleaning.line())
