"""What a registered version records of its trial, as tags: the study, the figures the
promotion gate reads (losses and task metrics on each split), the data they were measured on,
and the harness that made it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.tracking.gate import Tags
from harness.tracking.provenance import git_commit

if TYPE_CHECKING:
    from mlflow.entities import Run


@dataclass(frozen=True)
class Candidate:
    """The trial a run belongs to, as its model version records it."""

    study: str
    """The study's name."""
    trial: int
    """The trial's number in the study."""
    objective: str
    """The study's first objective."""
    value: float
    """The trial's value of that objective."""


def version_tags(run: Run, candidate: Candidate) -> Tags:
    """What a version records of its trial: the study, the figures the gate reads, the data it
    was measured on, and the harness that made it."""
    from harness import __version__

    metrics, run_tags = run.data.metrics, run.data.tags
    figures = {name: repr(metrics.get(metric, math.nan)) for name, metric in FIGURES.items()}
    for name in task_metrics(metrics):
        figures |= {f"eval_{name}": repr(metrics[f"selected/{name}"]),
                    f"test_{name}": repr(metrics.get(f"test/{name}", math.nan)),
                    f"base_test_{name}": repr(metrics.get(f"base/test_{name}", math.nan))}
    return {
        "study": candidate.study, "trial": str(candidate.trial),
        "objective": candidate.objective, "objective_value": repr(candidate.value),
        "eval_loss": repr(kept_eval_loss(metrics)), **figures,
        "dataset_fingerprint": run_tags.get("dataset.fingerprint", ""),
        "eval_fingerprint": run_tags.get("dataset.eval_fingerprint", ""),
        "test_fingerprint": run_tags.get("dataset.test_fingerprint", ""),
        "base_model": run_tags.get("base_model", ""),
        "quantization": run_tags.get("quantization", ""),
        "harness_version": __version__, "git_commit": git_commit(),
        "run_id": run.info.run_id,
    }


FIGURES = {"selected_epoch": "selected/epoch",
           "perplexity_ratio_to_base": "eval/perplexity_ratio_to_base",
           "test_loss": "test/loss", "retention_loss": "retention/loss",
           "base_retention_loss": "base/retention_loss", "base_test_loss": "base/test_loss"}
"""A version's tags that copy one of its run's metrics."""


def task_metrics(metrics: dict[str, float]) -> list[str]:
    """The task metrics a trial's run measured on the epoch end it kept."""
    known = {"selected/eval_loss", "selected/perplexity", "selected/epoch"}
    return [k.removeprefix("selected/") for k in metrics
            if k.startswith("selected/") and k not in known]


def kept_eval_loss(metrics: dict[str, float]) -> float:
    """The eval loss of the adapter a trial kept: its best epoch's, else its last eval's."""
    return metrics.get("selected/eval_loss", metrics.get("eval/loss", math.nan))
