"""Held-out scoring: per-example loss sums that give the model's own loss and an interval,
and the seeded sample that bounds how much of a large test split is scored."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch

from harness.data.encode import IGNORE_INDEX, Encoded
from harness.trial.batching import collate, forward
from harness.trial.evaluation import LossSums, eval_sums
from harness.trial.setup import scored_sample


def examples(n: int, *, seed: int = 0, vocab: int = 60) -> list[Encoded]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(4, 24)
        ids = [rng.randrange(3, vocab) for _ in range(length)]
        prompt = rng.randint(1, length - 2)
        out.append(Encoded(ids, [IGNORE_INDEX] * prompt + ids[prompt:], length))
    return out


def test_the_per_example_sums_give_the_models_own_token_weighted_loss(
        tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    data = examples(11)
    sums = eval_sums(model, data, batch_size=4, pad_id=0, device="cpu")
    nll = tokens = 0.0
    with torch.no_grad():
        for e in data:  # one at a time, as the model scores itself: no padding at all
            n = sum(label != IGNORE_INDEX for label in e.labels[1:])
            nll += float(forward(model, collate([e], 0), "cpu").loss) * n
            tokens += n
    assert sums.examples == 11 and sums.tokens == tokens
    assert sums.loss == pytest.approx(nll / tokens, rel=1e-5)
    halves = [eval_sums(model, data, batch_size=4, pad_id=0, device="cpu", shard=(r, 2))
              for r in (0, 1)]  # two processes' shares add up to the whole
    whole = LossSums(*(a + b for a, b in zip(*(h.as_list() for h in halves), strict=True)))
    assert whole.loss == pytest.approx(sums.loss, rel=1e-6)
    assert whole.ci95 == pytest.approx(sums.ci95, rel=1e-6)


def test_the_interval_matches_a_bootstrap_of_the_examples() -> None:
    rng = random.Random(1)
    per_example = [(rng.uniform(1, 4) * n, n) for n in (rng.randint(5, 80) for _ in range(300))]
    sums = LossSums()
    for nll, n in per_example:
        sums.add(nll, n)

    def mean(rows: list[tuple[float, int]]) -> float:
        return sum(s for s, _ in rows) / sum(n for _, n in rows)

    boots = sorted(mean([rng.choice(per_example) for _ in per_example]) for _ in range(2000))
    bootstrap = (boots[1949] - boots[50]) / 2
    assert sums.loss == pytest.approx(mean(per_example))
    assert sums.ci95 == pytest.approx(bootstrap, rel=0.15)


def test_one_example_has_no_interval() -> None:
    sums = LossSums()
    sums.add(6.0, 3)
    assert sums.loss == 2.0 and math.isnan(sums.ci95)


def test_a_large_test_split_is_scored_on_a_seeded_sample_in_its_own_order() -> None:
    split = list(range(1000))
    sample = scored_sample(split, 200, seed=7)
    assert len(sample) == 200 and sample == sorted(sample)
    assert sample == scored_sample(split, 200, seed=7)
    assert sample != scored_sample(split, 200, seed=8)
    assert sample[0] < 100 and sample[-1] > 900  # spread over the whole split
    assert scored_sample(split, 0, seed=7) is split  # 0: all of it
    small = list(range(50))
    assert scored_sample(small, 200, seed=7) is small
