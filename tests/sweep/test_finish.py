"""What the study's run says of the best trial once the study is finished."""

from __future__ import annotations

import optuna

from harness.sweep.finish import headline


def test_the_study_run_carries_the_best_trials_held_out_figures_and_task_metrics() -> None:
    best = optuna.trial.create_trial(value=0.4, user_attrs={
        "test_loss": 1.9, "base_test_loss": 2.5, "retention_change": 0.02,
        "selected_epoch": 2.0, "test_exact_match": 0.45, "base_test_exact_match": 0.1,
        "mlflow_run_id": "abc", "harness.reason": "finished", "final_eval": 0.4})
    best.number = 3
    assert headline(best) == {
        "best/trial": 3.0, "best/test_loss": 1.9, "best/base_test_loss": 2.5,
        "best/retention_change": 0.02, "best/selected_epoch": 2.0,
        "best/test_exact_match": 0.45, "best/base_test_exact_match": 0.1}
