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
    forgetting,
    loss_on,
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
    assert loss_on(tags(1.0, 1.1), "test", like=champion) == 1.1
    assert loss_on(tags(1.0, 1.1, data="other"), "test", like=champion) is None
    assert loss_on(tags(float("nan")), "eval") is None
    assert loss_on({"eval_loss": "1.0"}, "eval") is None  # measured on unknown data
    # a fingerprint kept whole (64 digits, older versions) matches its 32-digit spelling
    whole, short = {"eval_loss": "1.0", "eval_fingerprint": "a" * 64}, {
        "eval_loss": "2.0", "eval_fingerprint": "a" * 32}
    assert loss_on(whole, "eval", like=short) == 1.0


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
