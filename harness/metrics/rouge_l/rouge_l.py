"""ROUGE-L as a local `evaluate` module (`evaluate.load("harness/metrics/rouge_l")`): the hub's
metrics cannot be fetched here. The scoring itself is `harness.metrics.rouge`."""

from __future__ import annotations

import datasets
import evaluate

from harness.metrics.rouge import rouge_l_scores


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
        scores = rouge_l_scores(predictions, references)
        mean = sum(scores) / len(scores) if scores else 0.0
        return {"rougeL": mean, "scores": scores}
