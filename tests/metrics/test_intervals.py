"""Seeded bootstrap intervals: reproducible, covering the truth, and pairing the examples."""

from __future__ import annotations

import math
import random

from harness.metrics.intervals import bootstrap_mean, paired_difference


def test_the_same_seed_gives_the_same_interval_and_another_a_close_one() -> None:
    rng = random.Random(1)
    scores = [rng.random() for _ in range(200)]
    a, b = bootstrap_mean(scores, seed=3), bootstrap_mean(scores, seed=3)
    assert a == b
    c = bootstrap_mean(scores, seed=4)
    assert abs(c.low - a.low) < 0.01 and abs(c.high - a.high) < 0.01
    assert a.low < a.mean < a.high and a.n == 200


def test_the_interval_matches_the_normal_approximation_of_a_mean() -> None:
    rng = random.Random(0)
    scores = [float(rng.random() < 0.3) for _ in range(400)]
    got = bootstrap_mean(scores, seed=0)
    p = sum(scores) / len(scores)
    half = 1.96 * math.sqrt(p * (1 - p) / len(scores))
    assert math.isclose(got.high - got.low, 2 * half, rel_tol=0.1)


def test_pairing_tells_apart_models_that_differ_on_every_example() -> None:
    rng = random.Random(0)
    base = [rng.random() for _ in range(30)]
    better = [b + 0.02 for b in base]
    # separately the two intervals overlap widely; example by example the gain is clear
    assert bootstrap_mean(better).low < bootstrap_mean(base).high
    diff = paired_difference(better, base, seed=0)
    assert diff.excludes_zero and math.isclose(diff.mean, 0.02)
    same = paired_difference(base, list(reversed(base)), seed=0)
    assert not same.excludes_zero


def test_unscored_examples_are_left_out() -> None:
    got = paired_difference([1.0, math.nan, 0.0, 1.0], [0.0, 1.0, math.nan, 0.0])
    assert got.n == 2 and got.mean == 1.0
    assert math.isnan(bootstrap_mean([math.nan]).mean) and bootstrap_mean([1.0]).n == 1
