from __future__ import annotations

import pytest

from harness.data.records import (
    Message,
    Record,
    Segment,
    drop_duplicates,
    drop_refusals,
    fingerprint,
    normalise,
    split_records,
)


def rec(i: int, response: str = "answer", group: str | None = None, prompt: str = "q") -> Record:
    return Record(path="f.json", index=i, group=group or f"g{i}",
                  segments=(Segment(prompt, False), Segment(response, True)))


def test_record_holds_segments_or_messages_not_both() -> None:
    with pytest.raises(ValueError):
        Record("f", 0, "g")
    with pytest.raises(ValueError):
        Record("f", 0, "g", segments=(Segment("a", True),), messages=(Message("user", "b"),))


def test_normalise_unifies_newlines_unicode_and_trailing_space() -> None:
    assert normalise("  Cafe\u0301 \r\nline two\t\r\n") == "Caf\u00e9\nline two"


def test_duplicates_keep_the_first_and_name_it() -> None:
    records = [rec(0, "same"), rec(1, "other"), rec(2, "same  \r\n")]
    kept, dropped = drop_duplicates(records)
    assert [r.index for r in kept] == [0, 1]
    assert [(p.reason, p.record) for p in dropped] == [("duplicate", 2)]
    assert "f.json record 0" in dropped[0].detail


def test_prompt_and_response_roles_matter_for_duplicates() -> None:
    a = Record("f", 0, "a", segments=(Segment("x", False), Segment("y", True)))
    b = Record("f", 1, "b", segments=(Segment("x", True), Segment("y", True)))
    assert len(drop_duplicates([a, b])[0]) == 2


def test_refusal_filter_is_case_insensitive_and_configurable() -> None:
    records = [rec(0, "As an AI Language Model, I cannot."), rec(1, "Sure: 4."),
               rec(2, "Nope, not today")]
    kept, dropped = drop_refusals(records, ["as an ai language model", "nope"])
    assert [r.index for r in kept] == [1]
    assert {p.record for p in dropped} == {0, 2}
    assert all(p.reason == "refusal" for p in dropped)


def test_refusal_filter_looks_at_the_response_only() -> None:
    r = Record("f", 0, "g", messages=(Message("user", "As an AI language model, answer"),
                                      Message("assistant", "Fine.")))
    assert drop_refusals([r], ["as an ai language model"])[0] == [r]


def test_fingerprint_is_stable_and_sensitive() -> None:
    records = [rec(i, f"a{i}") for i in range(5)]
    same = [rec(i, f"a{i} ") for i in range(5)]
    assert fingerprint(records) == fingerprint(same)
    assert fingerprint(records) != fingerprint(records[::-1])
    assert fingerprint(records) != fingerprint([*records[:4], rec(4, "changed")])
    assert len(fingerprint(records)) == 64


def test_split_is_deterministic_and_keeps_groups_whole() -> None:
    records = [rec(i, f"a{i}", group=f"doc{i % 17}") for i in range(200)]
    first = split_records(records, eval_fraction=0.2, seed=7)
    again = split_records(records, eval_fraction=0.2, seed=7)
    assert first == again
    train_groups = {r.group for r in first.train}
    eval_groups = {r.group for r in first.eval}
    assert not train_groups & eval_groups
    assert len(first.train) + len(first.eval) == 200
    assert 0 < len(first.eval) <= 40
    other = split_records(records, eval_fraction=0.2, seed=8)
    assert {r.group for r in other.eval} != eval_groups


def test_split_with_one_group_says_why_eval_is_empty() -> None:
    records = [rec(i, f"a{i}", group="only") for i in range(5)]
    split = split_records(records, eval_fraction=0.2, seed=1)
    assert split.eval == [] and "one source document" in split.note


def test_split_with_only_large_groups_holds_out_the_smallest() -> None:
    records = [rec(i, f"a{i}", group="big" if i < 8 else "small") for i in range(12)]
    split = split_records(records, eval_fraction=0.1, seed=3)
    assert {r.group for r in split.eval} == {"small"} and split.note


def test_no_eval_fraction_means_everything_trains() -> None:
    records = [rec(i) for i in range(4)]
    assert split_records(records, eval_fraction=0.0, seed=1).train == records


def test_the_test_split_holds_whole_groups_apart_from_train_and_eval() -> None:
    records = [rec(i, f"a{i}", group=f"doc{i % 17}") for i in range(200)]
    split = split_records(records, eval_fraction=0.15, test_fraction=0.15, seed=7)
    sides = [{r.group for r in side} for side in (split.train, split.eval, split.test)]
    assert all(sides) and not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert len(split.train) + len(split.eval) + len(split.test) == 200
    assert 0 < len(split.test) <= 30
    # Adding a test split takes from train only: the eval split, and so every eval figure of
    # an earlier study, stays as it was.
    assert split.eval == split_records(records, eval_fraction=0.15, seed=7).eval


def test_too_few_groups_for_a_test_split_say_so_and_keep_training_data() -> None:
    records = [rec(i, f"a{i}", group=f"doc{i % 2}") for i in range(10)]
    split = split_records(records, eval_fraction=0.3, test_fraction=0.3, seed=1)
    assert split.test == [] and split.train and split.eval
    assert "no test split" in split.note
