"""Study plots as PNG files, drawn with Optuna's matplotlib backend.

A plot that the study cannot support yet (importances need two finished trials with differing
parameters; intermediate values need reports) is left out with the reason, never failing a sweep.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def plot_names(multi_objective: bool) -> list[str]:
    if multi_objective:
        return ["pareto_front", "param_importances"]
    return ["optimization_history", "param_importances", "parallel_coordinate",
            "intermediate_values"]


def write_plots(study: Any, out: Path) -> dict[str, str]:
    """Write every plot the study supports to ``out``; returns plot name -> why it is missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm

    out.mkdir(parents=True, exist_ok=True)
    multi = len(study.directions) > 1
    skipped: dict[str, str] = {}
    for name in plot_names(multi):
        kwargs: dict[str, Any] = {}
        if multi and name == "param_importances":
            kwargs["target"] = lambda t: t.values[0]
            kwargs["target_name"] = "objective 0"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna flags its matplotlib backend experimental
                axes = getattr(ovm, f"plot_{name}")(study, **kwargs)
            figure = _figure(axes)
            figure.set_size_inches(9, 5.5)
            figure.tight_layout()
            figure.savefig(out / f"{name}.png", dpi=110)
            plt.close(figure)
        except Exception as err:  # a plot never stops a sweep
            skipped[name] = f"{type(err).__name__}: {err}"
            plt.close("all")
    return skipped


def _figure(axes: Any) -> Any:
    first = axes.flat[0] if hasattr(axes, "flat") else axes
    return first.get_figure()
