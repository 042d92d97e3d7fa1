"""How a trial's events become what Optuna hears: the value of an eval, the decision to prune,
and the verdict on a finished trial. Pure logic, tested without a trial."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from harness.protocol import Reason, TrialResult
from harness.protocol.events import Eval, Event, Finished, HeldOutTest, Retention, Selected, Started
from harness.study.pruners import prune_reason
from harness.study.record import (
    BASE_TEST_LOSS,
    FINAL_EVAL,
    FINAL_EVAL_STEP,
    RETENTION_CHANGE,
    SELECTED_EPOCH,
    TEST_LOSS,
    held_out_metric,
)

if TYPE_CHECKING:
    import optuna

State = Literal["COMPLETE", "PRUNED", "FAIL"]
Why = Reason | Literal["interrupted", "config", "too_big"]
"""Why a trial ended as Optuna hears it: how its process ended, or that the sweep was
interrupted, that its sampled config could not be built, or that it was estimated too big
for its device and never launched."""


@dataclass(frozen=True)
class Verdict:
    """How a trial ended, as Optuna is told."""

    state: State
    """The Optuna state: COMPLETE, PRUNED or FAIL."""
    reason: Why
    """Why (finished, pruned, oom, nan, crash, timeout, interrupted, ...)."""
    values: list[float] | None = None
    """The objective values of a COMPLETE trial."""
    log_tail: str = ""
    """The end of a failed trial's log, kept with the trial."""
    message: str = ""
    """The trial's own words on how it ended."""
    figures: dict[str, float] = field(default_factory=dict)
    """A complete trial's held-out figures (test loss, the base model's, forgetting, the
    epoch kept), kept with the trial for the summary."""


def objective_value(event: Eval | Selected, objective: str) -> float:
    """An eval's value for ``objective``: eval_loss, perplexity, or eval/METRIC (nan at an
    eval that did not measure the task metrics)."""
    if objective.startswith("eval/"):
        return float((event.answers or {}).get(objective.removeprefix("eval/"), math.nan))
    return float(event.perplexity if objective == "perplexity" else event.loss)


def objective_label(objective: str) -> str:
    """How a person reads ``objective`` in a message."""
    return {"perplexity": "eval perplexity", "eval_loss": "eval loss"}.get(
        objective, objective.replace("/", " "))


def second_objective(result: TrialResult, name: str) -> float:
    """The second objective of a multi-objective study: peak memory or training time."""
    finished, started = result.last(Finished), result.last(Started)
    if name == "peak_memory":
        return finished.peak_memory_mb if finished is not None else math.nan
    if finished is None or started is None:
        return math.nan
    return finished.time - started.time


def judge(result: TrialResult, objectives: list[str]) -> Verdict:
    """The verdict on a trial's result: its state, reason and objective values."""
    if result.interrupted:
        return Verdict("FAIL", "interrupted")
    if result.reason in ("pruned", "oom"):
        return Verdict("PRUNED", result.reason)
    if not result.ok:
        return Verdict("FAIL", result.reason)
    # A trial's value is its best epoch's (the adapter it kept), else its last eval's.
    chosen = result.last(Selected) or result.last(Eval)
    if chosen is None:
        return Verdict("FAIL", "crash")
    values = [objective_value(chosen, objectives[0])]
    if len(objectives) > 1:
        values.append(second_objective(result, objectives[1]))
    if not all(math.isfinite(v) for v in values):
        return Verdict("FAIL", "nan")
    figures = held_out_figures(result)
    last = last_measured(result, objectives[0])
    if last is not None:
        figures.update({FINAL_EVAL: objective_value(last, objectives[0]),
                        FINAL_EVAL_STEP: last.step})
    return Verdict("COMPLETE", "finished", values, figures=figures)


def last_measured(result: TrialResult, objective: str) -> Eval | None:
    """The trial's last eval that measured ``objective`` (task metrics only at epoch ends)."""
    return next((e for e in reversed(result.events) if isinstance(e, Eval)
                 and math.isfinite(objective_value(e, objective))), None)


def held_out_figures(result: TrialResult) -> dict[str, float]:
    """The figures a finished trial measured on the adapter it kept, by user-attribute name:
    losses, forgetting, the epoch kept, and each task metric on the test split (the adapter's
    and the base model's)."""
    test, retention = result.last(HeldOutTest), result.last(Retention)
    selected = result.last(Selected)
    found = {TEST_LOSS: test and test.loss, BASE_TEST_LOSS: test and test.base_loss,
             RETENTION_CHANGE: retention and retention.change,
             SELECTED_EPOCH: selected and selected.epoch}
    if test is not None:
        found |= {held_out_metric(k): v for k, v in (test.answers or {}).items()}
        found |= {held_out_metric(k, base=True): v for k, v in (test.base_answers or {}).items()}
    return {k: float(v) for k, v in found.items() if isinstance(v, int | float)}


class ReportingTrial(Protocol):
    """What the prune watch needs of a running Optuna trial (`optuna.Trial` is one)."""

    @property
    def number(self) -> int: ...

    @property
    def study(self) -> optuna.Study: ...

    def report(self, value: float, step: int) -> None: ...

    def should_prune(self) -> bool: ...


class PruneWatch:
    """Reports a trial's intermediate evals to Optuna and remembers whether the pruner cut it.

    Only single-objective studies prune (Optuna has no multi-objective pruning). The final
    eval is the trial's result, not a rung: it is never reported as intermediate. The pruner
    is asked only where the study's warm-up (``may_prune``) allows."""

    def __init__(self, trial: ReportingTrial, *, objective: str | None,
                 may_prune: Callable[[int, float], bool], reported_until: int = -1) -> None:
        self.trial = trial
        self.reported_until = reported_until
        """Evals up to this step were reported by the trial's first run (it is a retry)."""
        self.objective = objective
        """The objective reported, None for a multi-objective study."""
        self.may_prune = may_prune
        self.total_steps: float = math.inf
        self.pruned = False
        self.why = ""
        """Where the pruner cut the trial and by how much it was behind, once it did."""

    def on_event(self, event: Event) -> None:
        if isinstance(event, Started):
            self.total_steps = event.total_steps
        if not isinstance(event, Eval) or self.objective is None \
                or event.step >= self.total_steps or event.step <= self.reported_until:
            return
        value = objective_value(event, self.objective)
        if self.objective.startswith("eval/") and math.isnan(value):
            return  # a task metric is measured at epoch ends only
        self.trial.report(value, event.step)
        if self.pruned or not self.may_prune(event.step, self.total_steps):
            return
        self.pruned = self.trial.should_prune()
        if self.pruned:
            self.why = prune_reason(self.trial.study, self.trial.number, step=event.step,
                                    value=value, total=self.total_steps,
                                    label=objective_label(self.objective))
