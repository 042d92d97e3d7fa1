"""Study plots as PNG files, drawn with Optuna's matplotlib backend. (No interactive HTML: MLflow's
artifact view shows an HTML page without running its scripts, so plotly charts stay blank.)

A plot the study cannot support is left out with the reason, never failing a sweep, and never
drawn where it would mislead: importances need enough complete trials to tell parameters apart
(with one complete trial fANOVA gives every parameter the same share). The learning curves are
the harness's own: Optuna's intermediate-values plot shows only reported values, and a trial's
final eval is its result, never reported, so each curve would stop short of where it ended.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.study.record import FINAL_EVAL, FINAL_EVAL_STEP

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

MIN_COMPLETE_PER_PARAM = 2
"""Importances are drawn with at least this many complete trials per varied parameter (and
five at least)."""


def plot_names(multi_objective: bool) -> list[str]:
    if multi_objective:
        return ["pareto_front", "param_importances"]
    return ["optimization_history", "param_importances", "parallel_coordinate",
            "learning_curves"]


def write_plots(study: optuna.Study, out: Path) -> dict[str, str]:
    """Write every plot the study supports to ``out``; returns plot name -> why it is
    missing."""
    out.mkdir(parents=True, exist_ok=True)
    multi = len(study.directions) > 1
    skipped: dict[str, str] = {}
    for name in plot_names(multi):
        why = unsupported(study, name)
        if why:
            skipped[name] = why
            continue
        try:
            write_png(study, name, out / f"{name}.png", multi=multi)
        except Exception as err:  # a plot never stops a sweep
            skipped[name] = f"{type(err).__name__}: {err}"
    return skipped


def unsupported(study: optuna.Study, name: str) -> str:
    """Why ``name`` would say nothing true about the study yet; empty when it can be drawn."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if name == "param_importances":
        varied = {k for t in complete for k in t.params
                  if len({repr(u.params.get(k)) for u in complete}) > 1}
        needed = max(5, MIN_COMPLETE_PER_PARAM * len(varied))
        if len(complete) < needed:
            return (f"too few complete trials to tell which parameter matters: {len(complete)}"
                    f" complete, {needed} needed for {len(varied)} varied parameter(s)")
    if name == "learning_curves" and not any(curve(t) for t in study.get_trials(deepcopy=False)):
        return "no trial has reported an eval yet"
    if not complete and name != "learning_curves":
        return "no complete trial yet"
    return ""


def curve(trial: FrozenTrial) -> dict[int, float]:
    """A trial's evals by step: what it reported, and its final eval (its result's curve end)."""
    points = dict(trial.intermediate_values)
    step, value = trial.user_attrs.get(FINAL_EVAL_STEP), trial.user_attrs.get(FINAL_EVAL)
    if isinstance(step, int) and isinstance(value, int | float):
        points[step] = float(value)
    return dict(sorted(points.items()))


def write_png(study: optuna.Study, name: str, path: Path, *, multi: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm

    try:
        if name == "learning_curves":
            figure = _curves_figure(study, plt)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna flags its matplotlib backend experimental
                axes = getattr(ovm, f"plot_{name}")(study, **_target(name, multi))
            figure = _figure(axes)
        figure.set_size_inches(10, 6)
        if name == "parallel_coordinate":
            _readable_axis_labels(figure)
        figure.tight_layout()
        figure.savefig(path, dpi=110)
    finally:
        plt.close("all")


def _curves_figure(study: optuna.Study, plt: Any) -> Any:
    figure, ax = plt.subplots()
    for trial in study.get_trials(deepcopy=False):
        points = curve(trial)
        if not points:
            continue
        state = trial.state.name.lower()
        style = {"complete": "-", "pruned": ":"}.get(state, "--")
        (line,) = ax.plot(list(points), list(points.values()), style, marker=".",
                          label=f"trial {trial.number} ({state})")
        if state == "pruned":  # where the pruner stopped it
            last = max(points)
            ax.plot([last], [points[last]], "x", color=line.get_color(), markersize=9)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("eval objective")
    ax.set_title("Learning curves: every eval of every trial, the final one included")
    ax.legend(fontsize="small", ncol=2)
    return figure


def _readable_axis_labels(figure: Any) -> None:
    """Parallel-coordinate axis names (lora.alpha_per_rank, training.learning_rate) slanted
    so that neighbours do not overlap or run off the figure."""
    for ax in figure.axes:
        for label in ax.get_xticklabels():
            label.set_rotation(25)
            label.set_horizontalalignment("right")


def _target(name: str, multi: bool) -> dict[str, Any]:
    if multi and name == "param_importances":
        return {"target": lambda t: t.values[0], "target_name": "objective 0"}
    return {}


def _figure(axes: Any) -> Any:
    first = axes.flat[0] if hasattr(axes, "flat") else axes
    return first.get_figure()
