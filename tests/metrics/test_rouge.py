"""ROUGE-L: known values, and the `evaluate` module scores exactly as the trial's own function."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.metrics.rouge import lcs_length, rouge_l, rouge_l_scores

MODULE = Path(__file__).resolve().parents[2] / "harness" / "metrics" / "rouge_l"


def test_known_values() -> None:
    assert lcs_length(["a", "b", "c", "d"], ["a", "c", "d", "e"]) == 3
    assert rouge_l("Fever, cough and aches.", "fever cough and aches") == 1.0
    # 2 of 4 prediction tokens in order, 2 of 2 reference tokens: P 0.5, R 1.0
    assert rouge_l("fever and some cough", "fever cough") == pytest.approx(2 / 3)
    assert rouge_l("", "anything") == 0.0 == rouge_l("no overlap", "at all")


def test_the_evaluate_module_gives_the_same_scores() -> None:
    import evaluate

    predictions = ["fever and some cough", "the quick brown fox", ""]
    references = ["fever cough", "a quick fox jumps", "empty"]
    result = evaluate.load(str(MODULE)).compute(predictions=predictions, references=references)
    assert result["scores"] == rouge_l_scores(predictions, references)
