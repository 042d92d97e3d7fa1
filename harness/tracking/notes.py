"""The study's own page in the MLflow UI: a Markdown description (MLflow's run note) of the
parent run, saying what was searched, how the trials ended and which one won, with links to the
best run and its registered version; and the tag that marks the best trial's run.

Links are the UI's own relative routes (``#/experiments/ID/runs/RUN``), so they work behind any
host name the server is reached by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.study.budget import state_word
from harness.study.record import BASELINE, MESSAGE, RUN_ID, TEST_LOSS
from harness.urls import ui_route

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient
    from optuna.trial import FrozenTrial

NOTE = "mlflow.note.content"
"""The tag MLflow shows as a run's description."""
BEST_TAG = "harness.best_trial"
"""Set to "true" on the run of the study's best trial, and on no other."""


def study_note(study: optuna.Study, *, experiment_id: str, objective: str,
               version: tuple[str, str | int, str] | None = None) -> str:
    """The parent run's description; ``version`` is the registered (model, version, alias)
    of the best trial, once promoted."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    counts: dict[str, int] = {}
    for t in trials:
        counts[state_word(t)] = counts.get(state_word(t), 0) + 1
    searched = sorted({name for t in trials for name in t.distributions})
    lines = [f"**Study `{study.study_name}`**: {len(trials)} trials ("
             + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) + ")"
             + (f", searching {', '.join(f'`{n}`' for n in searched)}." if searched else ".")]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if complete and len(study.directions) == 1:
        best = study.best_trial
        lines.append(f"\nBest: {_run_link(best, experiment_id)}, {objective} "
                     f"{best.values[0]:.4f}" + _test(best) + f" (chosen by {objective}; the test "
                     "split chose nothing, so another trial may test better).")
    if version is not None:
        model, number, alias = version
        lines.append(f"Registered as [{model} version {number}](#/models/{model}/versions/"
                     f"{number}) with alias `@{alias}`.")
    lines += ["", "| trial | state | " + objective + " | test loss | note |",
              "| ---: | --- | ---: | ---: | --- |"]
    lines += [_row(t, experiment_id) for t in trials]
    return "\n".join(lines)


def _row(trial: FrozenTrial, experiment_id: str) -> str:
    value = f"{trial.values[0]:.4f}" if trial.state.name == "COMPLETE" else ""
    test = trial.user_attrs.get(TEST_LOSS)
    said = (trial.user_attrs.get(MESSAGE) or "").strip().splitlines()
    parts = [trial.user_attrs.get(BASELINE, ""), said[0][:160] if said else ""]
    note = "; ".join(p for p in parts if p).replace("|", "/")
    return (f"| {_run_link(trial, experiment_id)} | {state_word(trial)} | {value} | "
            f"{'' if test is None else f'{test:.4f}'} | {note} |")


def _run_link(trial: FrozenTrial, experiment_id: str) -> str:
    run_id = trial.user_attrs.get(RUN_ID)
    name = f"trial {trial.number}"
    return f"[{name}]({ui_route(experiment_id, run_id)})" if run_id else name


def _test(trial: FrozenTrial) -> str:
    test = trial.user_attrs.get(TEST_LOSS)
    return "" if test is None else f", test loss {test:.4f}"


def mark_best(client: MlflowClient, *, experiment_id: str, study: str, run_id: str) -> None:
    """Tag ``run_id`` as the study's best trial, and untag a run that was before a resume."""
    earlier = client.search_runs([experiment_id], filter_string=(
        f"tags.`{BEST_TAG}` = 'true' and tags.`optuna.study` = '{study}'"))
    for run in earlier:
        if run.info.run_id != run_id:
            client.delete_tag(run.info.run_id, BEST_TAG)
    client.set_tag(run_id, BEST_TAG, "true")
