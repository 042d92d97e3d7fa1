"""The models side by side: one row per model with its loss, perplexity and task metrics, each
with a seeded 95 % bootstrap interval, its difference from the first model (paired over the
examples both scored), and in words whether the two can be told apart at this data size."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.assess.scoring import Scored
from harness.metrics.intervals import (
    Interval,
    bootstrap_mean,
    paired_difference,
    ratio_difference,
    ratio_mean,
)

LOSS = "loss"


@dataclass
class Row:
    """One model's figures."""

    label: str
    kind: str
    examples: int
    """Examples (or raw-text windows) its loss stands on."""
    figures: dict[str, Interval] = field(default_factory=dict)
    """`loss` and each task metric: the mean and its interval."""
    versus_first: dict[str, Interval] = field(default_factory=dict)
    """The same, minus the first model's, on the examples both scored (none on row one)."""
    seconds: float = 0.0

    @property
    def perplexity(self) -> float:
        loss = self.figures[LOSS].mean
        return math.exp(loss) if loss < 50 else math.inf


def compare(results: list[Scored], *, seed: int = 0) -> list[Row]:
    """A row per model, in the order given; differences against the first."""
    rows = []
    first = results[0]
    for i, scored in enumerate(results):
        row = Row(scored.subject.label, scored.subject.kind, len(scored.losses),
                  seconds=scored.seconds)
        nll, tokens = _columns(scored.losses, list(scored.losses))
        row.figures[LOSS] = ratio_mean(nll, tokens, seed=seed)
        for name, values in scored.scores.items():
            row.figures[name] = bootstrap_mean(list(values.values()), seed=seed)
        if i:
            row.versus_first = _differences(scored, first, seed=seed)
        rows.append(row)
    return rows


def _columns(losses: dict[str, tuple[float, int]], keys: list[str]) -> tuple[list[float],
                                                                             list[float]]:
    return [losses[k][0] for k in keys], [float(losses[k][1]) for k in keys]


def _differences(scored: Scored, first: Scored, *, seed: int) -> dict[str, Interval]:
    shared = [k for k in first.losses if k in scored.losses]
    out = {LOSS: ratio_difference(*_columns(scored.losses, shared),
                                  *_columns(first.losses, shared), seed=seed)}
    for name, values in scored.scores.items():
        theirs = first.scores.get(name, {})
        keys = [k for k in theirs if k in values]
        out[name] = paired_difference([values[k] for k in keys], [theirs[k] for k in keys],
                                      seed=seed)
    return out


def verdicts(rows: list[Row]) -> list[str]:
    """Each later model against the first, per figure, in words."""
    lines = []
    first = rows[0]
    for row in rows[1:]:
        for name, diff in row.versus_first.items():
            if diff.n < 2:
                continue
            if not diff.excludes_zero:
                lines.append(f"{row.label} and {first.label} cannot be told apart on {name} "
                             f"with {diff.n} examples (difference {diff.mean:+.4f}, 95 % "
                             f"interval {diff.low:+.4f} to {diff.high:+.4f})")
                continue
            better = diff.mean < 0 if name == LOSS else diff.mean > 0
            lines.append(f"{row.label} is {'better' if better else 'worse'} than {first.label} "
                         f"on {name}: {diff.mean:+.4f} (95 % interval {diff.low:+.4f} to "
                         f"{diff.high:+.4f}, {diff.n} examples)")
    return lines


def as_json(rows: list[Row], *, data: dict[str, Any]) -> dict[str, Any]:
    """The comparison as one JSON-able object."""
    def interval(value: Interval) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(value).items()}

    models = [{"label": r.label, "kind": r.kind, "examples": r.examples,
               "perplexity": r.perplexity if math.isfinite(r.perplexity) else None,
               "seconds": round(r.seconds, 1),
               "figures": {k: interval(v) for k, v in r.figures.items()},
               "versus_first": {k: interval(v) for k, v in r.versus_first.items()}}
              for r in rows]
    return {"data": data, "models": models, "verdicts": verdicts(rows)}


def table(rows: list[Row], *, title: str) -> Any:
    """The rows as a terminal table: in each figure's cell its mean, its 95 % interval, and
    (after the first row) its difference from the first row."""
    from rich.table import Table

    names = [n for n in rows[0].figures if any(_scored(r, n) for r in rows)]
    empty = [n for n in rows[0].figures if n not in names]
    # e.g. number_match on references without numbers: a column of blanks says nothing
    out = Table(title=title, title_justify="left", caption_justify="left", caption=(
        f"not shown: {', '.join(empty)} (no example could be scored)" if empty else None))
    for column in ("model", "n", *names, "ppl"):
        out.add_column(column, justify="left" if column == "model" else "right",
                       overflow="fold")
    for row in rows:
        cells = [_cell(row.figures.get(name), row.versus_first.get(name)) for name in names]
        out.add_row(row.label, str(row.examples), *cells, f"{row.perplexity:.2f}")
    return out


def _scored(row: Row, name: str) -> bool:
    return name in row.figures and math.isfinite(row.figures[name].mean)


def _cell(value: Interval | None, diff: Interval | None) -> str:
    if value is None or not math.isfinite(value.mean):
        return ""
    lines = [f"{value.mean:.3f}"]
    if math.isfinite(value.low):
        lines.append(f"{value.low:.2f}..{value.high:.2f}")
    if diff is not None and math.isfinite(diff.mean):
        told = "*" if diff.n >= 2 and diff.excludes_zero else ""
        lines.append(f"Δ{diff.mean:+.3f}{told}")
    return "\n".join(lines)
