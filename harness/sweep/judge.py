"""How a trial's events become what Optuna hears: the value of an eval, the decision to prune,
and the verdict on a finished trial. Pure logic, tested without a trial."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.sweep.runner import TrialResult


@dataclass(frozen=True)
class Verdict:
    """How a trial ended, as Optuna is told."""

    state: str
    """The Optuna state: COMPLETE, PRUNED or FAIL."""
    reason: str
    """Why (finished, pruned, oom, nan, crash, timeout, interrupted, ...)."""
    values: list[float] | None = None
    """The objective values of a COMPLETE trial."""
    log_tail: str = ""
    """The end of a failed trial's log, kept with the trial."""
    message: str = ""
    """The trial's own words on how it ended."""


def objective_value(event: dict[str, Any], objective: str) -> float:
    """An eval event's value for ``objective`` (eval_loss or perplexity)."""
    return float(event["perplexity" if objective == "perplexity" else "loss"])


def second_objective(result: TrialResult, name: str) -> float:
    """The second objective of a multi-objective study: peak memory or training time."""
    finished, started = result.last("finished") or {}, result.last("started") or {}
    if name == "peak_memory":
        return float(finished.get("peak_memory_mb", math.nan))
    return float(finished.get("time", math.nan)) - float(started.get("time", math.nan))


def judge(result: TrialResult, objectives: list[str]) -> Verdict:
    """The verdict on a trial's result: its state, reason and objective values."""
    if result.interrupted:
        return Verdict("FAIL", "interrupted")
    if result.reason in ("pruned", "oom"):
        return Verdict("PRUNED", result.reason)
    if not result.ok:
        return Verdict("FAIL", result.reason)
    last_eval = result.last("eval")
    if last_eval is None:
        return Verdict("FAIL", "crash")
    values = [objective_value(last_eval, objectives[0])]
    if len(objectives) > 1:
        values.append(second_objective(result, objectives[1]))
    if not all(math.isfinite(v) for v in values):
        return Verdict("FAIL", "nan")
    return Verdict("COMPLETE", "finished", values)


class PruneWatch:
    """Reports a trial's intermediate evals to Optuna and remembers whether the pruner cut it.

    Only single-objective studies prune (Optuna has no multi-objective pruning). The final
    eval is the trial's result, not a rung: it is never reported as intermediate. The pruner
    is asked only where the study's warm-up (``may_prune``) allows."""

    def __init__(self, trial: Any, *, objective: str | None,
                 may_prune: Callable[[int, float], bool]) -> None:
        self.trial = trial
        self.objective = objective
        """The objective reported, None for a multi-objective study."""
        self.may_prune = may_prune
        self.total_steps: float = math.inf
        self.pruned = False

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "started":
            self.total_steps = event["total_steps"]
        if kind != "eval" or self.objective is None or event["step"] >= self.total_steps:
            return
        self.trial.report(objective_value(event, self.objective), event["step"])
        if self.may_prune(event["step"], self.total_steps):
            self.pruned = self.pruned or self.trial.should_prune()
