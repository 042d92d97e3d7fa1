"""Study plots on in-memory studies: none that would mislead, and learning curves that end
where each trial ended."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution

from harness.study.record import FINAL_EVAL, FINAL_EVAL_STEP
from harness.sweep.plots import curve, unsupported, write_plots

optuna.logging.set_verbosity(optuna.logging.WARNING)
LR = {"lr": FloatDistribution(1e-5, 1e-2, log=True), "r": FloatDistribution(1, 64)}


def _trial(study: optuna.Study, number: int, *, state: str = "complete") -> None:
    curve = {4: 3.0 - 0.1 * number, 8: 2.8 - 0.1 * number}
    params = {"lr": 1e-4 * (number + 1), "r": 4.0 * (number + 1)}
    if state == "pruned":
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=LR, intermediate_values={4: 3.5},
            state=optuna.trial.TrialState.PRUNED))
        return
    study.add_trial(optuna.trial.create_trial(
        params=params, distributions=LR, intermediate_values=curve, value=2.7 - 0.1 * number,
        user_attrs={FINAL_EVAL: 2.7 - 0.1 * number, FINAL_EVAL_STEP: 12}))


def test_few_complete_trials_get_no_importance_chart_and_say_why(tmp_path: Path) -> None:
    study = optuna.create_study()
    for n in range(2):
        _trial(study, n)
    _trial(study, 2, state="pruned")
    skipped = write_plots(study, tmp_path)
    assert skipped["param_importances"].startswith("too few complete trials")
    assert "2 complete, 5 needed for 2 varied parameter(s)" in skipped["param_importances"]
    assert not (tmp_path / "param_importances.png").exists()
    for name in ("optimization_history.png", "parallel_coordinate.png", "learning_curves.png"):
        assert (tmp_path / name).stat().st_size > 1000, name


def test_enough_complete_trials_get_their_importances(tmp_path: Path) -> None:
    study = optuna.create_study()
    for n in range(5):
        _trial(study, n)
    assert unsupported(study, "param_importances") == ""
    assert "param_importances" not in write_plots(study, tmp_path)
    assert (tmp_path / "param_importances.png").is_file()


def test_a_learning_curve_ends_at_the_final_eval_never_reported() -> None:
    study = optuna.create_study()
    _trial(study, 0)
    _trial(study, 1, state="pruned")
    complete, pruned = study.trials
    assert curve(complete) == {4: 3.0, 8: 2.8, 12: 2.7}
    assert curve(pruned) == {4: 3.5}
