"""Seeded bootstrap intervals for per-example scores: a model's mean, and the paired difference
between two models scored on the same examples.

The percentile bootstrap resamples examples with replacement; pairing (one resample of
example indices applied to both models) removes the examples' own spread from the difference,
so two models far apart on average but close on each example are told apart with fewer
examples than two separate intervals would suggest. Examples without a score (nan) are left
out; for a difference, those either model lacks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

RESAMPLES = 2000
"""Bootstrap resamples: the interval's ends move by well under 1 % of its width between
seeds at this count."""
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean over examples and its bootstrap interval."""

    mean: float
    """The mean over the scored examples (nan when there are none)."""
    low: float
    """The interval's lower end (nan with fewer than two examples)."""
    high: float
    """Its upper end."""
    n: int
    """Examples it stands on."""

    @property
    def excludes_zero(self) -> bool:
        """For a difference: whether the two models can be told apart at this data size."""
        return self.low > 0 or self.high < 0


def bootstrap_mean(scores: Sequence[float], *, seed: int = 0,
                   resamples: int = RESAMPLES) -> Interval:
    """The mean of ``scores`` with its seeded 95 % percentile interval."""
    return _bootstrap([s for s in scores if math.isfinite(s)], seed=seed, resamples=resamples)


def paired_difference(scores: Sequence[float], baseline: Sequence[float], *, seed: int = 0,
                      resamples: int = RESAMPLES) -> Interval:
    """Mean of ``scores`` minus ``baseline``, example by example, with its seeded 95 %
    interval; both score the same examples in the same order."""
    if len(scores) != len(baseline):
        raise ValueError(f"{len(scores)} scores against {len(baseline)}: not the same examples")
    diffs = [a - b for a, b in zip(scores, baseline, strict=True)
             if math.isfinite(a) and math.isfinite(b)]
    return _bootstrap(diffs, seed=seed, resamples=resamples)


def _bootstrap(values: list[float], *, seed: int, resamples: int) -> Interval:
    import numpy as np

    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    data = np.asarray(values, dtype=np.float64)
    mean = float(data.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    rng = np.random.default_rng(seed)
    # in chunks, so that a large split never holds resamples x n indices at once
    chunk = max(1, 2_000_000 // n)
    means = np.concatenate([data[rng.integers(0, n, size=(min(chunk, resamples - start), n))]
                            .mean(axis=1) for start in range(0, resamples, chunk)])
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(mean, float(low), float(high), n)
