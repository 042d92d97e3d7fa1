"""Task metrics inside a trial: measured at each epoch end and on the test split, beside the base
model's (cached), and the epoch kept by a metric objective is the one that scored highest."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from helpers import make_config, run_client, tracked_trial

from harness.protocol import BaseEval, Eval, HeldOutTest, Selected, Started
from harness.sweep.judge import judge


def test_a_metric_objective_keeps_the_epoch_whose_answers_scored_highest(
        tmp_path: Path, tiny_model_dir: Path, harness_home: Path) -> None:
    # a metric of the user's own whose score moves from epoch to epoch even on a random model
    metric = tmp_path / "lengthy.py"
    metric.write_text("def characters(predictions, references):\n"
                      "    return [float(len(set(p))) for p in predictions]\n")
    config = make_config(tmp_path, tiny_model_dir, max_steps=-1, epochs=3, eval_steps=2)
    config.samples.count = 0
    config.evaluation.metrics = ["exact_match", f"{metric}:characters"]
    config.evaluation.max_new_tokens = 8
    config.evaluation.objective = "eval/characters"
    result, run = tracked_trial(config, tmp_path / "out")
    assert result.reason == "finished", result.log_tail
    started, selected = result.last(Started), result.last(Selected)
    assert started is not None and selected is not None
    evals = [e for e in result.events if isinstance(e, Eval)]
    ends = {e.step: e.answers for e in evals if e.answers is not None}
    per_epoch = -(-started.train_examples // 2)
    assert sorted(ends) == [per_epoch, 2 * per_epoch, 3 * per_epoch]  # epoch ends only
    assert all(e.answers is None for e in evals if e.step not in ends)
    scores = {step: answers["characters"] for step, answers in ends.items()}
    best = max(scores.values())
    assert selected.answers == ends[selected.step] and scores[selected.step] == best
    # the first epoch end of the best score is kept (a later tie does not replace it)
    assert selected.step == min(s for s, v in scores.items() if v == best)
    assert judge(result, ["eval/characters"]).values == [best]
    metrics = run.data.metrics
    base = result.last(BaseEval)
    assert base is not None and base.answers is not None
    test = result.last(HeldOutTest)
    assert test is not None and test.answers is not None and test.base_answers is not None
    assert metrics["test/characters"] == pytest.approx(test.answers["characters"])
    assert metrics["base/test_exact_match"] == test.base_answers["exact_match"]
    assert metrics["selected/characters"] == best
    assert "base/eval_characters" in metrics and "eval/answer_seconds" in metrics
    curve = [m.step for m in run_client(config).get_metric_history(run.info.run_id,
                                                                   "eval/characters")]
    assert curve == [0, *sorted(ends)]  # the curve starts at the base model, as the loss does
    # the base model's answers are cached per study: the next trial reads them
    cached = list((harness_home / "base_answers").iterdir())
    assert len(cached) >= 2  # eval prompts and test prompts
    assert not math.isnan(scores[selected.step])



def test_the_adapter_carries_a_model_card_with_its_figures(tmp_path: Path, tiny_model_dir: Path,
                                                           harness_home: Path) -> None:
    config = make_config(tmp_path, tiny_model_dir, max_steps=-1, epochs=1)
    config.samples.count = 0
    config.evaluation.metrics = ["rougeL"]
    config.evaluation.max_new_tokens = 4
    result, _ = tracked_trial(config, tmp_path / "out")
    assert result.reason == "finished", result.log_tail
    card = (tmp_path / "out" / "adapter" / "README.md").read_text()
    test = result.last(HeldOutTest)
    assert test is not None and test.answers is not None
    assert f"base_model: {tiny_model_dir}" in card  # no hub id for a local model: its path
    assert "[More Information Needed]" not in card  # not PEFT's blank template
    assert f"| loss | {test.loss:.4f} | test |" in card
    assert f"| rougeL | {test.answers['rougeL']:.4f} | test | base model " in card
    assert "| loss change against the base model |" in card and "train_config.json" in card
    assert "r=4, alpha=8" in card
