"""Task metrics on known answers, and a user's own metric by function or evaluate module."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.metrics.answers import (
    exact_match,
    last_number,
    load_metric,
    metric_name,
    number_match,
    rouge_l,
    spec_problem,
)

MODULE = Path(__file__).resolve().parents[2] / "harness" / "metrics" / "rouge_l"


def test_exact_match_ignores_case_spaces_and_a_final_full_stop() -> None:
    assert exact_match(["  The  Answer is 42. ", "no", "yes!"],
                       ["the answer is 42", "No.", "yes"]) == [1.0, 1.0, 0.0]


def test_number_match_compares_the_last_number_of_each() -> None:
    assert last_number("from 3 apples to 1,200.50 dollars") == 1200.5
    assert last_number("-7 degrees") == -7 and last_number("none") is None
    got = number_match(["So she has 12 apples.", "The answer: 12.0", "about 13", "unsure"],
                       ["12", "Total is 12", "12", "12"])
    assert got == [1.0, 1.0, 0.0, 0.0]
    # a reference without a number cannot be scored: nan, left out of means
    assert math.isnan(number_match(["4"], ["four"])[0])


def test_rouge_l_known_values() -> None:
    assert rouge_l(["Fever, cough and aches."], ["fever cough and aches"]) == [1.0]
    # 2 of 4 prediction tokens in order, 2 of 2 reference tokens: P 0.5, R 1.0
    assert rouge_l(["fever and some cough"], ["fever cough"]) == [pytest.approx(2 / 3)]
    assert rouge_l(["", "no overlap"], ["anything", "at all"]) == [0.0, 0.0]


def test_a_function_of_the_users_by_module_or_file(tmp_path: Path) -> None:
    file = tmp_path / "mine.py"
    file.write_text("def length_ratio(predictions, references):\n"
                    "    return [len(p) / len(r) for p, r in zip(predictions, references)]\n"
                    "def wrong(predictions, references):\n    return [1.0]\n")
    metric = load_metric(f"{file}:length_ratio")
    assert metric.name == "length_ratio"
    assert metric.score(["ab", "abcd"], ["abcd", "ab"]) == [0.5, 2.0]
    with pytest.raises(HarnessError, match="returned 1 scores for 2 examples"):
        load_metric(f"{file}:wrong").score(["a", "b"], ["a", "b"])
    with pytest.raises(HarnessError, match="has no function missing"):
        load_metric(f"{file}:missing")
    with pytest.raises(HarnessError, match="cannot import"):
        load_metric("no_such_module_here:score")


def test_a_local_evaluate_module_scores_each_example() -> None:
    metric = load_metric(str(MODULE))
    assert metric.name == "rouge_l"
    predictions, references = ["fever and some cough", "the quick brown fox"], \
        ["fever cough", "a quick fox jumps"]
    assert metric.score(predictions, references) == pytest.approx(
        rouge_l(predictions, references))


def test_specs_that_name_nothing_are_refused_up_front() -> None:
    assert spec_problem("rougeL") is None and spec_problem("pkg.mod:fn") is None
    assert "not MODULE:FUNCTION" in str(spec_problem("pkg:not an identifier"))
    assert "is not a metric" in str(spec_problem("bleu"))
    assert metric_name("pkg.mod:score") == "score" and metric_name("exact_match") == "exact_match"
