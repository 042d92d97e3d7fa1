"""How a study runs and where its best adapter goes: the `study:` and `registry:` sections of a
search-space file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.config.coerce import choice_problems, choices, raise_problems
from harness.config.evaluation import LOSS_OBJECTIVES

SamplerName = Literal["tpe", "gp", "random", "qmc", "cmaes"]
StartName = Literal["lora", "random"]
PrunerName = Literal["median", "successive_halving", "hyperband", "none"]
SecondObjective = Literal["peak_memory", "train_time"]


@dataclass
class StudySettings:
    """How the Optuna study runs."""

    name: str | None = None
    """Study name, also the MLflow experiment; None uses the space file's name."""
    sampler: SamplerName = "tpe"
    """The Optuna sampler that proposes trials: tpe (multivariate, with constant liar so that
    parallel trials spread), gp (Gaussian process), random, qmc or cmaes."""
    seed: int | None = 42
    """Sampler seed: the same seed proposes the same trials."""
    start: StartName = "lora"
    """tpe and gp: how the first `start_trials` are placed: lora (a learning-rate sweep at
    alpha = 2 x rank, the middle rank and the most epochs; see harness/study/start.py) or
    random."""
    start_trials: int | None = None
    """tpe and gp: trials (enqueued ones included) placed by `start` before the model takes
    over; None uses a quarter of `trials`, at least 3 (the middle and either side of the
    learning-rate range; Optuna's own default, 10 at random, makes any sweep of 10 trials or
    fewer a random search)."""
    pruner: PrunerName = "median"
    """median (a trial's latest eval against the median of every trial that reached the same
    step, pruned ones included), successive_halving (asynchronous), hyperband or none
    (single objective only)."""
    min_peers: int = 2
    """Median pruner: other trials that must have reached a step before a trial is judged at
    it (with one, the pruner would cut every trial not leading)."""
    warmup_steps: int = 0
    """Any pruner: optimizer steps a trial trains before it can be pruned."""
    warmup_fraction: float = 0.25
    """Any pruner: the share of its own steps a trial trains before it can be pruned (early
    evaluations favour high learning rates that do not finish best)."""
    min_resource: int = 1
    """Successive halving / hyperband: the smallest step count a trial is judged at."""
    reduction_factor: int = 3
    """Successive halving / hyperband: how aggressively rungs are cut."""
    objective: list[str] | str = "eval_loss"
    """eval_loss or perplexity (minimised), or eval/METRIC for a task metric listed in
    `evaluation.metrics` (maximised); or a list: that, then peak_memory or train_time
    (multi-objective; the Pareto front is reported, pruning is off)."""
    trials: int = 10
    """Trials to run in total; a resumed study runs only what is missing."""
    timeout: float | None = None
    """Stop starting new trials after this many seconds."""
    trial_timeout: float | None = None
    """A trial running longer than this many seconds is stopped and counted as failed (its
    retry after running out of memory included)."""
    memory_limit_gb: float | None = None
    """Memory one process of a trial may use, in GB; None: its device's (the GPU's memory, or
    this machine's on the CPU). A trial estimated above it ends before it starts
    (`too_big`)."""
    output_dir: str = "mlruns/studies"
    """Each trial's checkpoints and adapter go to OUTPUT_DIR/STUDY/trial-NNNN."""

    def __post_init__(self) -> None:
        problems = choice_problems(self) + _objective_problems(self.objectives)
        if self.trials < 1:
            problems.append("trials: must be at least 1")
        for key in ("start_trials", "min_peers", "warmup_steps"):
            if (getattr(self, key) or 0) < 0:
                problems.append(f"{key}: must be 0 or more")
        if not 0 <= self.warmup_fraction < 1:
            problems.append("warmup_fraction: must be at least 0 and below 1")
        if self.min_resource < 1 or self.reduction_factor < 2:
            problems.append("min_resource must be >= 1 and reduction_factor >= 2")
        if self.memory_limit_gb is not None and self.memory_limit_gb <= 0:
            problems.append(f"memory_limit_gb: {self.memory_limit_gb} must be positive GB "
                            "(or leave it out)")
        for key in ("timeout", "trial_timeout"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                problems.append(f"{key}: must be positive seconds (or leave it out)")
        raise_problems(problems)

    def sampler_startup(self) -> int:
        """Trials placed by `start` before TPE or GP models the finished ones."""
        if self.start_trials is not None:
            return self.start_trials
        return max(3, -(-self.trials // 4))

    def may_prune(self, step: int, total_steps: float) -> bool:
        """Whether a trial of ``total_steps`` is past its warm-up at ``step``."""
        return step >= max(self.warmup_steps, self.warmup_fraction * total_steps)

    @property
    def objectives(self) -> list[str]:
        return [self.objective] if isinstance(self.objective, str) else list(self.objective)


@dataclass
class RegistrySettings:
    """Where the best adapter is promoted."""

    model_name: str | None = None
    """Registered model name; None uses `harness-STUDY`."""
    margin: float = 0.0
    """Relative improvement in held-out loss (test split, else eval) a new version needs to
    take `champion` (0.01 = 1 %)."""
    max_forgetting: float | None = 0.05
    """How much higher than the base model's the adapter's loss on general text may be (0.05
    = 5 %) for it to take `champion`; None: no such gate."""
    promote: bool = True
    """Promote at the end of every sweep (`harness promote` does it on demand)."""

    def __post_init__(self) -> None:
        problems = [] if 0 <= self.margin < 1 else [f"margin: {self.margin} must be in [0, 1)"]
        if self.max_forgetting is not None and self.max_forgetting < 0:
            problems.append(f"max_forgetting: {self.max_forgetting} must be 0 or more")
        raise_problems(problems)


def _objective_problems(objectives: list[str]) -> list[str]:
    if not 1 <= len(objectives) <= 2:
        return ["objective: give one objective or a list of two"]
    first = objectives[0]
    out = [] if first in LOSS_OBJECTIVES or (first.startswith("eval/") and first[5:]) else [
        f"objective: {first!r} is not one of {', '.join(LOSS_OBJECTIVES)}, eval/METRIC"]
    allowed = choices(SecondObjective)
    if len(objectives) > 1 and objectives[1] not in allowed:
        out.append(f"objective[1]: {objectives[1]!r} is not one of {', '.join(allowed)}")
    return out
