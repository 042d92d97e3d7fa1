"""ROUGE-L as a local `evaluate` module: `evaluate.load` cannot fetch metrics from the hub here,
so the harness ships its own and loads it by path.

ROUGE-L F-measure (Lin, 2004): the longest common subsequence of the prediction's and the
reference's tokens, as precision and recall combined by the harmonic mean (beta = 1). Tokens are
lowercased alphanumeric runs.
"""

from __future__ import annotations

import re

import datasets
import evaluate

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


class RougeL(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="ROUGE-L F-measure over lowercased alphanumeric tokens",
            citation="Lin, C.-Y. (2004). ROUGE: A Package for Automatic Evaluation of Summaries.",
            inputs_description="predictions: list of str; references: list of str",
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, object]:
        scores = [rouge_l(p, r) for p, r in zip(predictions, references, strict=True)]
        mean = sum(scores) / len(scores) if scores else 0.0
        return {"rougeL": mean, "scores": scores}
