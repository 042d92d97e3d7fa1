"""The end-of-sweep summary: what the search found against the baselines and the base model."""

from __future__ import annotations

import io

import optuna
from rich.console import Console

from harness.study.record import (
    BASE_TEST_LOSS,
    BASELINE,
    REASON,
    RETENTION_CHANGE,
    SELECTED_EPOCH,
    TEST_LOSS,
)
from harness.sweep.view import print_summary

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _finish(study: optuna.Study, value: float | None, **attrs: object) -> None:
    trial = study.ask()
    trial.suggest_float("lr", 1e-5, 1e-2, log=True)
    for key, v in attrs.items():
        trial.set_user_attr(key, v)
    if value is None:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        study.tell(trial, value)


def _summary(study: optuna.Study) -> str:
    out = io.StringIO()
    print_summary(Console(file=out, width=200), study, objectives=["eval_loss"])
    return out.getvalue()


def _study() -> optuna.Study:
    study = optuna.create_study(study_name="s")
    study.enqueue_trial({"lr": 3e-4}, user_attrs={BASELINE: "text-generation-webui defaults"})
    study.enqueue_trial({"lr": 2e-4}, user_attrs={BASELINE: "QLoRA paper"})
    return study


def test_the_summary_tells_what_the_search_gained_over_the_best_baseline() -> None:
    study = _study()
    _finish(study, 2.10, **{TEST_LOSS: 2.30, BASE_TEST_LOSS: 2.90, RETENTION_CHANGE: 0.01,
                            SELECTED_EPOCH: 3.0})
    _finish(study, 2.20, **{TEST_LOSS: 2.20, BASE_TEST_LOSS: 2.90})
    _finish(study, None)
    _finish(study, 1.90, **{TEST_LOSS: 2.00, BASE_TEST_LOSS: 2.90, RETENTION_CHANGE: 0.03,
                            SELECTED_EPOCH: 2.0})
    text = _summary(study)
    assert "3 complete, 1 pruned" in text
    assert "base model" in text and "2.9000" in text
    assert "baseline: text-generation-webui defaults" in text and "baseline: QLoRA paper" in text
    assert "+3.0%" in text  # the best trial's general-text change
    # the yardstick is the baseline best on test (QLoRA's 2.20), not the one best on eval
    assert "test loss 2.0000 against 2.2000 for the best baseline ('QLoRA paper'), +9.1% lower" \
        in text


def test_a_baseline_that_stays_best_is_said_plainly() -> None:
    study = _study()
    _finish(study, 1.90, **{TEST_LOSS: 2.00})
    _finish(study, 2.20, **{TEST_LOSS: 2.20})
    _finish(study, None)
    text = _summary(study)
    assert "best (a baseline)" in text
    assert "the best trial is the baseline 'text-generation-webui defaults'" in text


def test_a_pruned_baseline_is_shown_pruned_and_never_the_yardstick() -> None:
    study = _study()
    _finish(study, None)  # the webui baseline, pruned
    _finish(study, 2.2, **{TEST_LOSS: 2.2})
    _finish(study, 2.0, **{TEST_LOSS: 2.1})
    text = _summary(study)
    assert "pruned" in text.split("baseline: text-generation-webui defaults")[1].splitlines()[0]
    assert "against 2.2000 for the best baseline ('QLoRA paper')" in text


def test_without_test_figures_the_gain_is_on_eval_loss() -> None:
    study = _study()
    _finish(study, 2.0)
    _finish(study, 2.2)
    _finish(study, 1.5)
    assert "eval loss 1.5000 against 2.0000" in _summary(study)


def test_the_summary_params_fit_a_narrow_column() -> None:
    from harness.sweep.view import compact_params

    assert compact_params({"lora.r": 32, "lora.alpha_per_rank": 2,
                           "training.learning_rate": 3e-4, "training.epochs": 3,
                           "quantization.mode": "4bit", "quantization.quant_type": "nf4"}) == (
        "r=32 a/r=2 lr=3.0e-04 ep=3 4bit nf4")


def test_the_base_model_is_shown_once_per_quantization_it_was_loaded_with() -> None:
    # A 4-bit base scores worse than an 8-bit one: one figure would misstate the start.
    study = optuna.create_study(study_name="q")
    for mode, base in (("4bit", 3.10), ("8bit", 2.78), ("4bit", 3.10)):
        study.enqueue_trial({"quantization.mode": mode})
        trial = study.ask()
        trial.suggest_categorical("quantization.mode", ["4bit", "8bit"])
        trial.set_user_attr(TEST_LOSS, base - 0.4)
        trial.set_user_attr(BASE_TEST_LOSS, base)
        study.tell(trial, base - 0.5)
    text = _summary(study)
    assert "base model, 4bit" in text and "3.1000" in text
    assert "base model, 8bit" in text and "2.7800" in text
    assert text.count("base model, 4bit") == 1


def test_a_trial_stopped_by_the_sweep_is_counted_as_stopped_not_as_searched() -> None:
    study = _study()
    _finish(study, 1.90, **{TEST_LOSS: 2.00})
    _finish(study, 2.20, **{TEST_LOSS: 2.20})
    stopped = study.ask()  # SIGTERM while the third trial trained
    stopped.suggest_float("lr", 1e-5, 1e-2, log=True)
    stopped.set_user_attr(REASON, "interrupted")
    study.tell(stopped, state=optuna.trial.TrialState.FAIL)
    text = _summary(study)
    assert "study s: 2 complete, 1 stopped" in text
    assert "nothing better on eval loss in 2 trials (1 stopped before they ended, not " \
        "counted)" in text


def test_off_a_terminal_each_trial_event_is_one_plain_line() -> None:
    from harness.protocol import Eval
    from harness.sweep.view import SweepView

    out = io.StringIO()
    view = SweepView("s", plain=Console(file=out, width=40))
    view.start(3, {"lora.target_modules": ["q_proj", "v_proj"], "training.learning_rate": 3e-4})
    view.on_event(3, Eval(step=4, loss=2.5, perplexity=12.18, perplexity_ratio_to_base=0.9))
    view.end(3, "PRUNED")
    view.start(4, {})
    view.end(4, "FAIL", "nan: loss became nan at step 1")
    lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "trial 3 started: target_modules=['q_proj', 'v_proj'] learning_rate=0.0003",
        "trial 3 eval at step 4: loss 2.5000, perplexity 12.18",
        "trial 3 pruned (eval loss 2.5000)",
        "trial 4 started: the fixed settings",
        "trial 4 failed: nan: loss became nan at step 1"]


def test_a_finished_trial_line_names_the_value_the_study_was_told() -> None:
    from harness.protocol import Eval
    from harness.sweep.view import SweepView

    out = io.StringIO()
    view = SweepView("s", plain=Console(file=out, width=60), objective="eval/exact_match")
    view.start(0, {})
    for step, score in ((4, 0.5), (8, 0.25)):
        view.on_event(0, Eval(step=step, loss=1.0, perplexity=2.72,
                              perplexity_ratio_to_base=0.9, answers={"exact_match": score}))
    view.end(0, "COMPLETE", value=0.5)  # the best epoch end's, not the last one's
    assert out.getvalue().splitlines()[-1].endswith("trial 0 finished (eval exact_match 0.5000)")
