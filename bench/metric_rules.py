"""What each selection rule of bench/metric_selection.py keeps, from the trials it recorded, and
the table of the result. Kept apart so a saved run can be reported again (``--from``) with a
rule added after it ran: every trial trained to its end was measured on the test split at the
epoch each rule keeps, so a rule that differs only in its pick needs no new training."""

from __future__ import annotations

import math
from typing import Any

METRIC = {"instructions": "exact_match", "word_problems": "number_match"}
RULES = {
    "loss": "by loss: pruned, kept and picked by eval loss",
    "metric": "by metric: pruned, kept and picked by the eval metric",
    "hybrid": "prune by loss, keep and pick by the metric (the loss search's trials)",
    "keep_loss": "prune by the metric, keep each trial's lowest-loss epoch, pick the trial "
                 "whose kept epoch scored highest",
    "ties_by_loss": "by metric, ties (epoch ends, then trials) broken by the lower eval loss",
}


def value(trial: dict[str, Any], rule: str) -> float:
    """A recorded trial's value under ``rule``, lower better (a score negated)."""
    if rule == "loss":
        return min(trial["losses"].values(), default=math.nan)
    if rule == "keep_loss":  # the eval metric at the lowest-loss epoch end
        losses = trial["losses"]
        return -trial["scores"].get(min(losses, key=losses.get), math.nan) if losses \
            else math.nan
    return -max(trial["scores"].values(), default=math.nan)


def picked_test(trials: list[dict[str, Any]], *, by: str, kept: str) -> float:
    """The test metric of the trial ``by`` picks among the unpruned, at the epoch ``kept``
    keeps."""
    done = [t for t in trials if not t["pruned"] and math.isfinite(value(t, by))]
    return min(done, key=lambda t: value(t, by))["test"].get(kept, math.nan) if done \
        else math.nan


def tie_broken(trial: dict[str, Any]) -> tuple[tuple[float, float], float]:
    """``trial`` ranked by its best score, then by the lowest loss among the epoch ends that
    scored it; and the test metric of that epoch end, where the bench measured it (the
    lowest-loss, the earliest best-scoring and the last epoch end; else nan)."""
    scores, losses = trial["scores"], trial["losses"]
    best = max(scores.values(), default=math.nan)
    tied = [step for step, score in scores.items() if score == best and step in losses]
    if not tied:
        return (math.nan, math.nan), math.nan
    kept = min(tied, key=losses.get)
    measured = {min(losses, key=losses.get): "loss", tied[0]: "metric",
                max(losses, key=int): "last"}
    return (-best, losses[kept]), trial["test"].get(measured.get(kept, ""), math.nan)


def outcomes(recorded: dict[str, Any]) -> dict[tuple[str, int], dict[str, float]]:
    """(dataset, seed) -> each rule's test metric, and the webui trial's (its last adapter)."""
    out: dict[tuple[str, int], dict[str, float]] = {}
    for key in sorted(recorded):
        dataset, seed, rule = key.split("/")
        got = out.setdefault((dataset, int(seed)), {})
        trials = recorded[key]
        if rule == "webui":
            got["webui"] = trials[0]["test"].get("last", math.nan)
        elif rule == "loss":
            got["loss"] = picked_test(trials, by="loss", kept="loss")
            got["hybrid"] = picked_test(trials, by="metric", kept="metric")
        else:
            got["metric"] = picked_test(trials, by="metric", kept="metric")
            got["keep_loss"] = picked_test(trials, by="keep_loss", kept="loss")
            ranked = [tie_broken(t) for t in trials if not t["pruned"]]
            ranked = [r for r in ranked if math.isfinite(r[0][0])]
            got["ties_by_loss"] = min(ranked)[1] if ranked else math.nan
    return out


def report(results: dict[tuple[str, int], dict[str, float]]) -> str:
    """The table, and each rule against choosing by loss, in words."""
    rules = [r for r in RULES if any(r in got for got in results.values())]
    lines = ["| dataset | seed | " + " | ".join(rules) + " | webui |",
             "| --- | ---: |" + " ---: |" * (len(rules) + 1)]
    for (dataset, seed), got in results.items():
        cells = " | ".join(f"{got.get(r, math.nan):.3f}" for r in [*rules, "webui"])
        lines.append(f"| {dataset} ({METRIC[dataset]}) | {seed} | {cells} |")
    lines.append("")
    for rule in rules:
        against = [_against(results, rule, other) for other in ("loss", "webui")
                   if other != rule]
        lines.append(f"- {RULES[rule]}: " + "; ".join(a for a in against if a))
    return "\n".join(lines)


def _against(results: dict[tuple[str, int], dict[str, float]], rule: str, other: str) -> str:
    pairs = [(got[rule], got[other]) for got in results.values()
             if math.isfinite(got.get(rule, math.nan)) and math.isfinite(got.get(other, math.nan))]
    if not pairs:
        return ""
    at_least = sum(a >= b for a, b in pairs)
    mean = sum(a - b for a, b in pairs) / len(pairs)
    return (f"at least as good as {'by loss' if other == 'loss' else 'the webui defaults'} in "
            f"{at_least} of {len(pairs)} cases, {mean:+.3f} on average")
