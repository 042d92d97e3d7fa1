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


def test_the_sweeps_check_says_what_it_left_out(tmp_path, tiny_model_dir, harness_home) -> None:
    import json
    from dataclasses import replace

    from helpers import make_config

    from harness.data.preflight import check_trial_data

    rows = [{"instruction": f"Name fact {i} about river {i} and its {i} bridges.",
             "output": f"River {i} has {i} bridges and flows {i} miles to the sea."}
            for i in range(30)]
    rows += [{**rows[3], "output": rows[3]["output"] + " Really."}]  # a near-duplicate
    path = tmp_path / "d.json"
    path.write_text(json.dumps(rows))
    config = make_config(tmp_path, tiny_model_dir)
    config = replace(config, data=replace(config.data, path=str(path), format_file=None,
                                          cutoff_len=128))
    line = check_trial_data(config).line()
    assert "1 near-duplicate(s) left out (1 clusters at similarity 0.8)" in line
