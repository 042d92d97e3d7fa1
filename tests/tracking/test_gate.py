"""The promotion gate's verdicts on version tags alone: which split two versions are compared
on, the margin, forgetting, and which version that passed holds `champion`."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from harness.tracking.gate import (
    CHALLENGER,
    CHAMPION,
    GATE,
    best_passed,
    compared_on,
    figure_on,
    forgetting,
    verdict,
)


def tags(eval_loss: float | None = None, test_loss: float | None = None, *,
         data: str = "same", **more: str) -> dict[str, str]:
    out = {**more}
    if eval_loss is not None:
        out |= {"eval_loss": repr(eval_loss), "eval_fingerprint": f"e-{data}"}
    if test_loss is not None:
        out |= {"test_loss": repr(test_loss), "test_fingerprint": f"t-{data}"}
    return out


@dataclass
class Version:
    version: str
    tags: dict[str, str] = field(default_factory=dict)


def test_a_loss_counts_only_on_the_same_data_and_when_finite() -> None:
    champion = tags(1.5, 1.2)
    assert figure_on(tags(1.0, 1.1), "test", like=champion) == 1.1
    assert figure_on(tags(1.0, 1.1, data="other"), "test", like=champion) is None
    assert figure_on(tags(float("nan")), "eval") is None
    assert figure_on({"eval_loss": "1.0"}, "eval") is None  # measured on unknown data
    # a fingerprint kept whole (64 digits, older versions) matches its 32-digit spelling
    whole, short = {"eval_loss": "1.0", "eval_fingerprint": "a" * 64}, {
        "eval_loss": "2.0", "eval_fingerprint": "a" * 32}
    assert figure_on(whole, "eval", like=short) == 1.0


@pytest.mark.parametrize(("new", "champion", "split"), [
    (tags(1.0, 1.1), tags(1.5, 1.2), "test"),
    (tags(1.0, 1.1), tags(1.5), "eval"),  # the champion has no test figure
    (tags(1.0), tags(1.5, 1.2), "eval"),
    (tags(1.0, 1.1, data="other"), tags(1.5, 1.2), None),
])
def test_two_versions_are_compared_on_test_where_both_can_be(
        new: dict[str, str], champion: dict[str, str], split: str | None) -> None:
    assert compared_on(new, champion) == split


def test_the_first_version_is_champion_and_later_ones_must_beat_it_by_the_margin() -> None:
    assert verdict(tags(2.0, 2.0), None, margin=0.01, max_forgetting=None) == (
        CHAMPION, "first champion")
    champion = Version("1", tags(1.5, 1.2))
    alias, why = verdict(tags(1.0, 1.19), champion, margin=0.01, max_forgetting=None)
    assert alias == CHALLENGER and "by the 1.0% margin" in why  # 1.19 is not 1 % below 1.2
    alias, why = verdict(tags(1.6, 1.1), champion, margin=0.01, max_forgetting=None)
    assert alias == CHAMPION and why == "test loss 1.1000 beats version 1's 1.2000"
    alias, why = verdict(tags(0.5, 0.5, data="x"), champion, margin=0.0, max_forgetting=None)
    assert alias == CHALLENGER and "different eval and test data" in why


@pytest.mark.parametrize(("loss", "limit", "forgets", "said"), [
    ("2.04", 0.05, False, "passed: general-text loss +2.0%"),
    ("2.2", 0.05, True, "over the 5% allowed"),
    ("2.2", None, False, "no limit set"),
    ("nan", 0.05, False, "not measured"),
])
def test_forgetting_is_the_general_text_loss_against_the_base_models(
        loss: str, limit: float | None, forgets: bool, said: str) -> None:
    found, why = forgetting({"retention_loss": loss, "base_retention_loss": "2.0"}, limit)
    assert found is forgets and said in why


def test_a_version_that_forgets_is_challenger_however_good_its_loss() -> None:
    forgetful = tags(0.1, 0.1, retention_loss="3.0", base_retention_loss="2.0")
    alias, why = verdict(forgetful, None, margin=0.0, max_forgetting=0.05)
    assert alias == CHALLENGER and why.startswith("forgets")


def test_champion_belongs_to_the_best_version_that_passed_on_the_champions_data() -> None:
    champion = Version("1", tags(1.5, 1.2, **{GATE: "passed"}))
    better = Version("2", tags(1.6, 1.0, **{GATE: "passed"}))
    held = Version("3", tags(0.5, 0.5, **{GATE: "held"}))  # never passed: never champion
    elsewhere = Version("4", tags(0.4, 0.4, data="other", **{GATE: "passed"}))
    assert best_passed(champion, [champion, better, held, elsewhere]).version == "2"
    tie = Version("5", tags(1.6, 1.0, **{GATE: "passed"}))
    assert best_passed(champion, [tie, better]).version == "2"  # the older on a tie


def metric_tags(test_score: float, test_loss: float, *, objective: str = "eval/exact_match",
                data: str = "same") -> dict[str, str]:
    return tags(2.0, test_loss, data=data, objective=objective,
                test_exact_match=repr(test_score))


def test_a_task_metric_study_promotes_the_higher_score_even_at_a_higher_loss() -> None:
    champion = Version("1", metric_tags(0.40, 1.0))
    alias, why = verdict(metric_tags(0.50, 1.3), champion, margin=0.1, max_forgetting=None)
    assert alias == CHAMPION and why.startswith("test exact_match 0.5000 beats")
    # the margin is relative, upwards: 0.43 is not 10 % above 0.40
    alias, why = verdict(metric_tags(0.43, 0.5), champion, margin=0.1, max_forgetting=None)
    assert alias == CHALLENGER and "by the 10.0% margin" in why


def test_a_champion_that_never_measured_the_metric_is_compared_by_loss() -> None:
    champion = Version("1", tags(2.0, 1.0))  # a loss study's version
    alias, why = verdict(metric_tags(0.9, 1.2), champion, margin=0.0, max_forgetting=None)
    assert alias == CHALLENGER and why.startswith("test loss 1.2000")


def test_the_champion_of_a_metric_study_is_its_best_scoring_passed_version() -> None:
    champion = Version("1", metric_tags(0.40, 1.0))
    versions = [Version("2", {**metric_tags(0.60, 1.5), GATE: "passed"}),
                Version("3", {**metric_tags(0.50, 0.9), GATE: "passed"}),
                Version("4", {**metric_tags(0.90, 0.9), GATE: "held"})]
    assert best_passed(champion, versions).version == "2"
