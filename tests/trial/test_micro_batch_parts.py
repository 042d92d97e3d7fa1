"""A micro-batch trained in parts: each part weighted by its share of the targets."""

from __future__ import annotations

from harness.data.encode import IGNORE_INDEX, Encoded
from harness.trial.loop import split_batch


def example(targets: int, prompt: int = 2) -> Encoded:
    ids = list(range(prompt + targets))
    return Encoded(input_ids=ids, labels=[IGNORE_INDEX] * prompt + ids[prompt:], length=len(ids))


def test_parts_are_weighted_by_their_targets_and_sum_to_one() -> None:
    batch = [example(3), example(1), example(5, prompt=0), example(2)]
    whole = split_batch(batch, 1)
    assert whole == [(batch, 1.0)]
    parts = split_batch(batch, 2)
    # the first token is never a target: the third example counts 4 of its 5
    assert [p for p, _ in parts] == [batch[:2], batch[2:]]
    assert [w for _, w in parts] == [4 / 10, 6 / 10]


def test_a_part_without_targets_is_left_out() -> None:
    batch = [example(0), example(0), example(3), example(2)]
    (only,) = split_batch(batch, 2)
    assert only == (batch[2:], 1.0)
    nothing = [example(0), example(0)]
    assert split_batch(nothing, 2) == [(nothing, 1.0)]
