"""The pre-flight's line: what the trial's data holds, and how finely a metric objective can
tell trials apart on it."""

from __future__ import annotations

from harness.data.preflight import DataChecked


def checked(answered: int, objective: str) -> str:
    return DataChecked(path="d.json", train=60, evals=answered, tests=20, general=0,
                       metrics=("exact_match",), answered=answered, objective=objective).line()


def test_a_metric_objective_is_told_how_coarse_its_eval_prompts_make_it() -> None:
    line = checked(36, "eval/exact_match")
    assert line.startswith("data d.json: 60 train, 36 eval and 20 test examples, checked; "
                           "answers scored by exact_match\n")
    assert "eval/exact_match is judged on 36 eval prompts: one answer moves it by 0.028, " \
        "and a score's 95 % interval spans up to +-0.16; with this few" in line


def test_many_prompts_get_the_figures_without_the_advice() -> None:
    line = checked(1000, "eval/exact_match")
    assert "judged on 1000 eval prompts" in line and "+-0.03" in line
    assert "with this few" not in line


def test_a_loss_objective_gets_one_line() -> None:
    assert "\n" not in checked(36, "eval_loss")
