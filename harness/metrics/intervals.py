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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

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


def ratio_difference(nll: Sequence[float], tokens: Sequence[float], base_nll: Sequence[float],
                     base_tokens: Sequence[float], *, seed: int = 0,
                     resamples: int = RESAMPLES) -> Interval:
    """The difference of two token-weighted mean losses (sum of nll over sum of tokens) on the
    same examples, resampled example by example, with its seeded 95 % interval."""
    import numpy as np

    a, n_a, b, n_b = (np.asarray(v, dtype=np.float64) for v in (nll, tokens, base_nll,
                                                                 base_tokens))

    def stat(rows: Any) -> Any:
        return a[rows].sum(-1) / n_a[rows].sum(-1) - b[rows].sum(-1) / n_b[rows].sum(-1)

    everything = np.arange(len(a))[None, :]
    return _resampled(len(a), stat, mean=float(stat(everything)[0]) if len(a) else math.nan,
                      seed=seed, resamples=resamples)


def ratio_mean(nll: Sequence[float], tokens: Sequence[float], *, seed: int = 0,
               resamples: int = RESAMPLES) -> Interval:
    """A token-weighted mean loss (sum of nll over sum of tokens) with its seeded 95 %
    interval, resampled example by example."""
    import numpy as np

    a, n = np.asarray(nll, dtype=np.float64), np.asarray(tokens, dtype=np.float64)
    mean = float(a.sum() / n.sum()) if len(a) else math.nan
    return _resampled(len(a), lambda rows: a[rows].sum(-1) / n[rows].sum(-1), mean=mean,
                      seed=seed, resamples=resamples)


def _bootstrap(values: list[float], *, seed: int, resamples: int) -> Interval:
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    mean = float(data.mean()) if len(values) else math.nan
    return _resampled(len(values), lambda rows: data[rows].mean(axis=-1), mean=mean, seed=seed,
                      resamples=resamples)


def _resampled(n: int, stat: Callable[[Any], Any], *, mean: float, seed: int,
               resamples: int) -> Interval:
    """``stat`` (of a matrix of example indices, one resample per row) at the percentile
    bootstrap's 95 % ends; the interval is nan with fewer than two examples."""
    import numpy as np

    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    rng = np.random.default_rng(seed)
    # in chunks, so that a large split never holds resamples x n indices at once
    chunk = max(1, 2_000_000 // n)
    values = np.concatenate([stat(rng.integers(0, n, size=(min(chunk, resamples - start), n)))
                             for start in range(0, resamples, chunk)])
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(mean, float(low), float(high), n)
