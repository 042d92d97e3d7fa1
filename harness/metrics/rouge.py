"""ROUGE-L F-measure (Lin, 2004): the longest common subsequence of the prediction's and the
reference's tokens, as precision and recall combined by the harmonic mean (beta = 1). Tokens are
lowercased alphanumeric runs.

Plain Python, so a trial scores its samples without importing `evaluate` (and with it `datasets`
and pyarrow, seconds of every trial's start); `rouge_l/` wraps the same function as an
`evaluate` module for use outside the harness.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def lcs_length(a: list[str], b: list[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[-1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return 0.0
    common = lcs_length(pred, ref)
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def rouge_l_scores(predictions: list[str], references: list[str]) -> list[float]:
    return [rouge_l(p, r) for p, r in zip(predictions, references, strict=True)]
