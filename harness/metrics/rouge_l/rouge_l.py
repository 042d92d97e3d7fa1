"""ROUGE-L as a local `evaluate` module (`evaluate.load("harness/metrics/rouge_l")`): the hub's
metrics cannot be fetched here. It scores as `harness.metrics.answers.rouge_l` does, and serves
as the example of a metric given by its directory (`evaluation.metrics: [path/to/module]`)."""

from __future__ import annotations

import datasets
import evaluate

from harness.metrics.answers import rouge_l


class RougeL(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="ROUGE-L F-measure (Google's rouge-score package)",
            citation="Lin, C.-Y. (2004). ROUGE: A Package for Automatic Evaluation of Summaries.",
            inputs_description="predictions: list of str; references: list of str",
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, object]:
        scores = rouge_l(predictions, references)
        mean = sum(scores) / len(scores) if scores else 0.0
        return {"rouge_l": mean, "scores": scores}
