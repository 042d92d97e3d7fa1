"""The study run's note: how the study's trials ended, and which one won."""

from __future__ import annotations

import optuna

from harness.study.record import REASON
from harness.tracking.notes import study_note

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_the_note_counts_a_trial_the_sweep_stopped_as_stopped() -> None:
    study = optuna.create_study(study_name="s")
    for reason, state in (("finished", None), ("crash", optuna.trial.TrialState.FAIL),
                          ("interrupted", optuna.trial.TrialState.FAIL)):
        trial = study.ask()
        trial.suggest_float("lr", 1e-5, 1e-2, log=True)
        trial.set_user_attr(REASON, reason)
        if state is None:
            study.tell(trial, 2.0)
        else:
            study.tell(trial, state=state)
    note = study_note(study, experiment_id="1", objective="eval_loss")
    assert note.startswith("**Study `s`**: 3 trials (1 complete, 1 fail, 1 stopped)")
    rows = [line for line in note.splitlines() if line.startswith("| ") and "trial" in line]
    assert [row.split(" | ")[1] for row in rows[1:]] == ["complete", "fail", "stopped"]


def test_trial_links_open_the_runs_in_the_model_training_view() -> None:
    from harness.study.record import RUN_ID

    study = optuna.create_study(study_name="s")
    trial = study.ask()
    trial.set_user_attr(RUN_ID, "abc")
    study.tell(trial, 1.5)
    note = study_note(study, experiment_id="7", objective="eval_loss")
    assert "[trial 0](#/experiments/7/runs/abc?workflowType=machine_learning)" in note
    assert "(chosen by eval_loss; the test split chose nothing" in note
