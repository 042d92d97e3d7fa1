"""How an adapter is judged: the held-out data it is scored on, the task metrics of its
answers, what its trial selects epochs by, and the comparison samples."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.config.coerce import raise_problems


@dataclass
class SampleSettings:
    """Seeded base-versus-adapter comparison samples on eval prompts."""

    count: int = 8
    """Prompts from the eval split, from as many source documents as there are (0 turns
    samples off)."""
    max_new_tokens: int = 60
    """Longest answer generated per prompt, in tokens."""
    do_sample: bool = False
    """False: greedy. True: temperature/top-p sampling with `seed`."""
    temperature: float = 0.7
    """Sampling temperature (with do_sample)."""
    top_p: float = 0.9
    """Nucleus sampling's probability mass (with do_sample)."""
    seed: int = 0
    """Seed of the sampled answers (with do_sample)."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.count < 0 or self.max_new_tokens < 1:
            problems.append("count must be >= 0 and max_new_tokens >= 1")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            problems.append("temperature must be > 0 and top_p in (0, 1]")
        raise_problems(problems)


@dataclass
class EvaluationSettings:
    """How the adapter is judged: the held-out data it is scored on, and the task metrics of its
    generated answers (at each epoch end on the eval split, once on the test split)."""

    metrics: list[str] = field(default_factory=list)
    """Task metrics of greedy answers: exact_match, number_match, rougeL, MODULE:FUNCTION (one
    score per example, higher better) or a local evaluate module's directory. Empty: answers
    are not generated (they cost far more than a loss pass)."""
    max_answer_examples: int = 100
    """Prompts answered per split for the metrics, spread over the source documents (0: all)."""
    max_new_tokens: int = 64
    """Longest answer generated per prompt, in tokens; a row ends earlier at its EOS."""
    generate_batch: int = 16
    """Prompts generated together (left-padded, with the KV cache)."""
    objective: str = "eval_loss"
    """What the trial keeps its best epoch end by: eval_loss, perplexity, or eval/METRIC
    (highest kept) for one of `metrics`. A sweep sets it to the study's objective."""
    max_test_examples: int = 200
    """At most this many test examples are scored: a seeded sample of a larger test split (0:
    all of it). The run logs the test loss's 95 % interval beside it (about +-1.5 % of the loss
    at 200 MedQuAD answers) and the seconds the scoring took."""

    def __post_init__(self) -> None:
        from harness.metrics.answers import metric_name, spec_problem

        problems = [f"metrics[{i}]: {p}" for i, spec in enumerate(self.metrics)
                    if (p := spec_problem(spec))]
        for key in ("max_test_examples", "max_answer_examples"):
            if getattr(self, key) < 0:
                problems.append(f"{key}: {getattr(self, key)} must be at least 0 (0: all)")
        if self.max_new_tokens < 1 or self.generate_batch < 1:
            problems.append("max_new_tokens and generate_batch must be at least 1")
        names = [metric_name(m) for m in self.metrics]
        problems.extend(name_problems(names))
        problems.extend(objective_problems(self.objective, names, key="objective"))
        raise_problems(problems)


RESERVED = ("loss", "perplexity", "perplexity_ratio_to_base", "answer_seconds", "examples",
            "seconds", "loss_ci95", "epoch", "eval_loss")
"""The harness's own figure names: a task metric logged as `eval/loss` or `test/examples`
would overwrite them."""


def name_problems(names: list[str]) -> list[str]:
    """Task metric names that would collide with each other or with the harness's figures."""
    out = [f"metrics: {n!r} is the name of one of the harness's own figures; rename the "
           "function or directory" for n in dict.fromkeys(names) if n in RESERVED]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        out.append(f"metrics: {', '.join(twice)} named twice (a metric is named by its "
                   "function or directory)")
    return out


LOSS_OBJECTIVES = ("eval_loss", "perplexity")
"""Objectives read from the eval loss (lower is better); eval/METRIC ones are higher-better."""


def objective_problems(objective: str, metrics: list[str], *, key: str) -> list[str]:
    """Why ``objective`` is not something a trial measures with these ``metrics``."""
    if objective in LOSS_OBJECTIVES:
        return []
    name = objective.removeprefix("eval/")
    if objective.startswith("eval/") and name in metrics:
        return []
    if objective.startswith("eval/"):
        listed = ", ".join(metrics) or "none"
        return [f"{key}: {objective!r} needs {name!r} in evaluation.metrics (listed: {listed})"]
    return [f"{key}: {objective!r} is not one of eval_loss, perplexity, eval/METRIC"]


def maximised(objective: str) -> bool:
    """Whether a higher value of ``objective`` is better (a task metric's)."""
    return objective.startswith("eval/")
