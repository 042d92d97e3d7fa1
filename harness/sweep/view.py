"""The terminal view of a sweep: a live table of trials and the final summary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from harness.config import maximised
from harness.protocol import Eval, Event, Started, Step
from harness.study.budget import STOPPED, reason_of, state_word, superseded
from harness.study.record import (
    BASE_TEST_LOSS,
    BASELINE,
    DATA_CLEANING,
    MESSAGE,
    OUTPUT_DIR,
    RETENTION_CHANGE,
    SELECTED_EPOCH,
    TEST_LOSS,
    held_out_metric,
)
from harness.sweep.judge import objective_label

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial


@dataclass
class TrialRow:
    number: int
    params: dict[str, Any]
    state: str = "RUNNING"
    step: int = 0
    total: int | None = None
    loss: float | None = None
    eval_loss: float | None = None
    note: str = ""
    where: str = ""


ENDINGS = {"COMPLETE": "finished", "PRUNED": "pruned", "FAIL": "failed"}
"""How a trial's end reads in a plain line."""


@dataclass
class SweepView:
    """Rows of the trials of this sweep, rendered as a rich table (a `Live` renderable) on a
    terminal, and as one plain line per trial event anywhere else."""

    study: str
    rows: dict[int, TrialRow] = field(default_factory=dict)
    plain: Console | None = None
    """Where a line per trial event goes when the output is not a terminal (a log file, CI,
    `nohup`), where a live table would show nothing until the sweep ends."""
    objective: str = "eval_loss"
    """What a finished trial's line names: the value the study was told."""

    def start(self, number: int, params: dict[str, Any], *, where: str = "") -> None:
        self.rows[number] = TrialRow(number, params, where=where)
        self._say(number, f"started{f' on {where}' if where else ''}: "
                  f"{short_params(params) or 'the fixed settings'}")

    def on_event(self, number: int, event: Event) -> None:
        row = self.rows[number]
        if isinstance(event, Started):
            row.total = event.total_steps
            self._say(number, f"training {event.total_steps} steps on {event.device}")
        elif isinstance(event, Step):
            row.step, row.loss = event.step, event.loss
        elif isinstance(event, Eval):
            row.eval_loss = event.loss
            answers = "".join(f", {k} {v:.4f}" for k, v in (event.answers or {}).items())
            self._say(number, f"eval at step {event.step}: loss {event.loss:.4f}, "
                      f"perplexity {event.perplexity:.2f}{answers}")

    def end(self, number: int, state: str, note: str = "", *,
            value: float | None = None) -> None:
        """The trial ended; ``value`` is what the study was told of a complete one."""
        self.rows[number].state, self.rows[number].note = state, note
        row = self.rows[number]
        figure = (f" ({objective_label(self.objective)} {value:.4f})" if value is not None
                  else f" (eval loss {row.eval_loss:.4f})" if row.eval_loss is not None else "")
        self._say(number, f"{ENDINGS.get(state, state.lower())}{f': {note}' if note else ''}"
                  f"{figure if state != 'FAIL' else ''}")

    def _say(self, number: int, text: str) -> None:
        if self.plain is not None:
            self.plain.print(f"{time.strftime('%H:%M:%S')} trial {number} {text}",
                             markup=False, highlight=False, soft_wrap=True)

    def __rich__(self) -> Table:
        table = Table(title=f"study {self.study}", expand=False)
        rows = list(self.rows.values())
        placed = any(row.where for row in rows)
        for name in ("#", *(["on"] if placed else []), "params", "step", "loss", "eval loss",
                     "state"):
            table.add_column(name, justify="left" if name in ("on", "params", "state")
                             else "right")
        for row in rows:
            table.add_row(str(row.number), *([row.where] if placed else []),
                          short_params(row.params),
                          f"{row.step}/{row.total if row.total is not None else '?'}",
                          _num(row.loss), _num(row.eval_loss), _state(row))
        return table


def short_params(params: dict[str, Any]) -> str:
    parts = []
    for name, value in params.items():
        key = name.rsplit(".", 1)[-1]
        parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _state(row: TrialRow) -> str:
    colour = {"COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red"}.get(row.state, "cyan")
    text = f"[{colour}]{row.state}[/]"
    return f"{text} {row.note}" if row.note else text


def print_summary(console: Console, study: optuna.Study, *, objectives: list[str]) -> None:
    """Counts by state, then for one objective what the search found against the baselines
    and the base model (held-out test figures beside the eval ones), or the Pareto front."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        counts[state_word(t)] = counts.get(state_word(t), 0) + 1
    console.print(f"study {study.study_name}: " + ", ".join(
        f"{n} {s}" for s, n in sorted(counts.items())))
    cleaning = study.user_attrs.get(DATA_CLEANING)
    if cleaning:
        console.print(f"data: {cleaning}", markup=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return
    if len(objectives) > 1:
        table = Table(title="Pareto front")
        for name in ("#", *objectives, "params"):
            table.add_column(name)
        for t in study.best_trials:
            table.add_row(str(t.number), *(f"{v:.4f}" for v in t.values),
                          short_params(t.params))
        console.print(table)
        return
    best = study.best_trial
    console.print(story_table(trials, best, objective=objectives[0]))
    console.print(gain_line(trials, best, objective=objectives[0]))


def story_table(trials: list[FrozenTrial], best: FrozenTrial, *, objective: str) -> Table:
    """The base model, each baseline and the best trial, on eval and test, with each task
    metric the trials measured on the test split."""
    metrics = task_metrics(best)
    table = Table(title=f"what the search found ({objective} and test loss"
                  f"{', test task metrics' if metrics else ''}; general text: loss change "
                  "against the base model; the epoch kept)", title_justify="left")
    for name in ("", "#", "eval", "test", *(f"test {m}" for m in metrics), "general",
                 "epoch", "params"):
        table.add_column(name, justify="left" if name in ("", "params") else "right",
                         overflow="fold", ratio=2 if name in ("", "params") else None)
    bases = base_figures(trials, metrics)
    for setting, figures in bases.items():
        label = f"base model, {setting}" if len(bases) > 1 else "base model"
        table.add_row(label, "", "", *(_num(f) for f in figures), "", "", "")
    retried = superseded(trials)  # a stopped trial queued again: its retry is the one shown
    shown = [(f"baseline: {t.user_attrs[BASELINE]}", t) for t in trials if BASELINE in
             t.user_attrs and t.state.is_finished() and t.number not in retried]
    shown.append(("best" if BASELINE not in best.user_attrs else "best (a baseline)", best))
    for label, t in shown:
        attrs = t.user_attrs
        # a pruned trial's value is its last eval on the way, not a result
        value = _num(t.values[0]) if _complete(t) else t.state.name.lower()
        change = attrs.get(RETENTION_CHANGE)
        table.add_row(label, str(t.number), value, _num(attrs.get(TEST_LOSS)),
                      *(_num(attrs.get(held_out_metric(m))) for m in metrics),
                      "" if change is None else f"{change:+.1%}",
                      _num_short(attrs.get(SELECTED_EPOCH)), compact_params(t.params))
    return table


def task_metrics(trial: FrozenTrial) -> list[str]:
    """The task metrics a trial measured on the test split."""
    prefix = held_out_metric("")
    return [k.removeprefix(prefix) for k in trial.user_attrs
            if k.startswith(prefix) and k != TEST_LOSS]


SHORT_NAMES = {"alpha_per_rank": "a/r", "learning_rate": "lr", "epochs": "ep",
               "quant_type": "", "mode": "", "double_quant": "dq"}
"""Names shortened in the summary's narrow params column (empty: the value alone)."""


def base_figures(trials: list[FrozenTrial],
                 metrics: list[str]) -> dict[str, list[float | None]]:
    """The base model's test loss and task metrics under each quantization the trials loaded
    it with: a 4-bit base scores worse than an 8-bit one, so one figure would misstate what
    half the trials started from."""
    found: dict[str, list[float | None]] = {}
    for t in trials:
        if BASE_TEST_LOSS in t.user_attrs:
            setting = compact_params({k: v for k, v in t.params.items()
                                      if k.startswith("quantization.")})
            found.setdefault(setting, [t.user_attrs[BASE_TEST_LOSS], *(
                t.user_attrs.get(held_out_metric(m, base=True)) for m in metrics)])
    return found or {"": [None] * (1 + len(metrics))}


def compact_params(params: dict[str, Any]) -> str:
    """``short_params`` in fewer characters: r=32 a/r=2 lr=3.0e-04 ep=3 4bit nf4."""
    parts = []
    for name, value in params.items():
        key = name.rsplit(".", 1)[-1]
        key = SHORT_NAMES.get(key, key)
        shown = str(value)
        if isinstance(value, float):
            shown = f"{value:.1e}" if 0 < abs(value) < 0.01 else f"{value:.3g}"
        parts.append(f"{key}={shown}" if key else shown)
    return " ".join(parts)


def gain_line(trials: list[FrozenTrial], best: FrozenTrial, *, objective: str) -> str:
    """What the search gained over the best finished baseline on what it optimizes: on the
    test split (else eval), the loss or, for a task-metric objective, that metric."""
    done = [t for t in trials if BASELINE in t.user_attrs and _complete(t)]
    if not done:
        return "no baseline completed: nothing to compare the best trial with"
    metric = objective.removeprefix("eval/") if maximised(objective) else None
    attr = held_out_metric(metric) if metric else TEST_LOSS
    key = attr if all(attr in t.user_attrs for t in [*done, best]) else None
    sign = -1 if metric else 1

    def value(t: FrozenTrial) -> float:
        return float(t.user_attrs[key] if key else t.values[0])

    yardstick = min(done, key=lambda t: sign * value(t))
    name, split = yardstick.user_attrs[BASELINE], "test" if key else "eval"
    what = f"{split} {metric}" if metric else f"{split} loss"
    if best.number == yardstick.number:
        judged = sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
        stopped = sum(state_word(t) == "stopped" for t in trials)
        return (f"the best trial is the baseline {name!r}: the search found nothing better "
                f"on {objective_label(objective)} in {judged} trials"
                + (f" ({stopped} stopped before they ended, not counted)" if stopped else ""))
    ours, theirs = value(best), value(yardstick)
    better = sign * (ours - theirs) <= 0
    change = f"{ours - theirs:+.4f}" if metric else f"{1 - ours / theirs:+.1%}"
    verdict = ("higher" if metric else "lower") if better else \
        f"{'lower' if metric else 'higher'}: the eval split favoured it"
    return (f"the search: {what} {ours:.4f} against {theirs:.4f} for the best baseline "
            f"({name!r}), {change} {verdict}")


def _complete(trial: FrozenTrial) -> bool:
    return trial.state.name == "COMPLETE"


def _num_short(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def failure_lines(study: optuna.Study) -> list[str]:
    """When no trial of the study completed: why its trials ended, one line per reason with
    the first trial's message and log; empty when one did (or none has ended yet)."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    if any(t.state == optuna.trial.TrialState.COMPLETE for t in trials):
        return []
    by_reason: dict[str, list[FrozenTrial]] = {}
    for t in trials:
        if t.state.is_finished() and reason_of(t) not in STOPPED:
            by_reason.setdefault(reason_of(t) or t.state.name.lower(), []).append(t)
    lines = []
    for reason, group in by_reason.items():
        first = group[0]
        message = first.user_attrs.get(MESSAGE, "").strip().splitlines()
        where = first.user_attrs.get(OUTPUT_DIR)
        log = f"; log: {where}/trial.log" if where else ""
        lines.append(f"{len(group)} trial(s) ended {reason}: "
                     f"{message[0][:300] if message else 'no message'} (trial {first.number}"
                     f"{log})")
    return lines
