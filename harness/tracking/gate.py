"""The promotion gate's verdicts, on a model version's tags alone (no MLflow here).

A new version takes `champion` when there is none, or when it beats the champion on the same
held-out data (same split fingerprint) by the relative margin: on the test split where both
have a figure there, else on the eval split. What is compared is what the version's study
optimized: its loss (lower better), or for a study with a task-metric objective
(`eval/exact_match`) that metric (higher better) when the champion measured it too, else the
loss. A version that forgets (its loss on general text more than `max_forgetting` above the
base model's) is `challenger` whatever its held-out figures. Of the versions that passed,
`champion` belongs to the best on the champion's data, by the champion's measure.
"""

from __future__ import annotations

import math
from typing import Literal, Protocol

from harness.tracking.values import short_fingerprint

Alias = Literal["champion", "challenger"]
CHAMPION: Alias = "champion"
CHALLENGER: Alias = "challenger"
Split = Literal["test", "eval"]
Tags = dict[str, str]

GATE = "harness.gate"
"""A version's tag: `passed` when the gate gave it `champion`, `held` when it did not."""
ALIAS = "harness.alias"
"""A version's tag: the alias the gate gave it."""


class Version(Protocol):
    """A registered model version, as the gate reads it (MLflow's `ModelVersion` is one; its
    number is an int from a SQL store, a str from a server)."""

    @property
    def version(self) -> str | int: ...

    @property
    def tags(self) -> Tags: ...


def task_metric(tags: Tags) -> str | None:
    """The task metric a version's study optimized (None: its loss)."""
    objective = tags.get("objective", "")
    return objective.removeprefix("eval/") if objective.startswith("eval/") else None


def figure_on(tags: Tags, split: Split, *, metric: str | None = None,
              like: Tags | None = None) -> float | None:
    """A version's loss (or task ``metric``) on ``split``, if it has a finite one there,
    measured on the same data as the version whose tags are ``like`` (same split
    fingerprint), when given."""
    value = float(tags.get(f"{split}_{metric or 'loss'}", "nan"))
    data = tags.get(f"{split}_fingerprint")
    if not (math.isfinite(value) and data):
        return None
    # versions registered before fingerprints were shortened hold all 64 digits
    theirs = like.get(f"{split}_fingerprint", "") if like is not None else ""
    if like is not None and short_fingerprint(theirs) != short_fingerprint(data):
        return None
    return value


def compared_on(tags: Tags, champion: Tags, *,
                metric: str | None = None) -> Split | None:
    """The split two versions are compared on: test where both have a figure on the same test
    data, else eval on the same eval data; None when they share neither."""
    for split in ("test", "eval"):
        ours = figure_on(tags, split, metric=metric, like=champion)
        theirs = figure_on(champion, split, metric=metric)
        if ours is not None and theirs is not None:
            return split
    return None


def forgetting(tags: Tags, limit: float | None) -> tuple[bool, str]:
    """Whether a version forgets more than ``limit`` allows, and the verdict in words."""
    loss = float(tags.get("retention_loss", "nan"))
    base = float(tags.get("base_retention_loss", "nan"))
    if not (math.isfinite(loss) and math.isfinite(base) and base > 0):
        return False, "not measured (retention off for this trial)"
    share = loss / base - 1
    if limit is None:
        return False, f"general-text loss {share:+.1%} against the base model (no limit set)"
    if share > limit:
        return True, (f"forgets: its general-text loss {loss:.4f} is {share:+.1%} against the "
                      f"base model's {base:.4f}, over the {limit:.0%} allowed")
    return False, (f"passed: general-text loss {share:+.1%} against the base model "
                   f"(limit {limit:.0%})")


def against(tags: Tags, champion: Version | None, *, margin: float) -> tuple[Alias, str]:
    """`champion` when there is none, or when the version with ``tags`` beats it on the same
    held-out data by ``margin``, on its study's measure; the alias and why."""
    if champion is None:
        return CHAMPION, "first champion"
    metric = task_metric(tags)
    split = compared_on(tags, champion.tags, metric=metric) if metric else None
    if split is None:
        metric, split = None, compared_on(tags, champion.tags)
    if split is None:
        return CHALLENGER, (f"version {champion.version} is champion on different eval and "
                            "test data; compare them on one held-out set before moving the "
                            "alias")
    key = f"{split}_{metric or 'loss'}"
    new, old = float(tags[key]), float(champion.tags[key])
    better = new > old * (1 + margin) if metric else new < old * (1 - margin)
    what = f"{split} {metric or 'loss'}"
    if better:
        return CHAMPION, f"{what} {new:.4f} beats version {champion.version}'s {old:.4f}"
    return CHALLENGER, (f"{what} {new:.4f} does not beat version {champion.version}'s "
                        f"{old:.4f} by the {margin:.1%} margin")


def verdict(tags: Tags, champion: Version | None, *, margin: float,
            max_forgetting: float | None) -> tuple[Alias, str]:
    """The gate: a version that forgets is `challenger`; otherwise `against` the champion."""
    forgets, why = forgetting(tags, max_forgetting)
    return (CHALLENGER, why) if forgets else against(tags, champion, margin=margin)


def best_passed(champion: Version, versions: list[Version]) -> Version:
    """The version `champion` belongs to: the best, on the champion's own held-out data (test
    where it has a figure, else eval) and by its measure (its task metric, else the loss), of
    the champion and the ``versions`` that passed the gate; the older version on a tie."""
    metric = task_metric(champion.tags)
    if metric and figure_on(champion.tags, "test", metric=metric) is None \
            and figure_on(champion.tags, "eval", metric=metric) is None:
        metric = None
    split: Split = "test" if figure_on(champion.tags, "test", metric=metric) is not None \
        else "eval"
    passed = [v for v in versions if v.tags.get(GATE) == "passed"
              and figure_on(v.tags, split, metric=metric, like=champion.tags) is not None]
    return min([champion, *passed], key=lambda v: _ranked(v, split, metric))


def _ranked(version: Version, split: Split, metric: str | None) -> tuple[float, int]:
    value = figure_on(version.tags, split, metric=metric)
    if value is None:
        return math.inf, int(version.version)
    return (-value if metric else value), int(version.version)
