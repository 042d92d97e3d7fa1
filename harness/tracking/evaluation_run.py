"""`harness eval` in MLflow: one evaluation run per comparison, holding each model's figures and
the per-example table (what was asked, the reference, each model's answer and scores), with
the data as its dataset input; and each evaluated logged model (a registered version's, or a
trial run's) given its figures linked to that dataset, where its page lists them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.tracking.provenance import source_tags
from harness.tracking.store import client_for, experiment_id

KIND_TAG = "harness.kind"
"""`evaluation` on the runs `harness eval` writes (trial and study runs carry none)."""


@dataclass(frozen=True)
class EvaluatedModel:
    """One model's figures as the run records them."""

    label: str
    """How the user named it."""
    figures: dict[str, float]
    """Figure name (loss, perplexity, a task metric) -> value."""
    model_id: str | None = None
    """Its logged model, when it has one: the figures are linked to it too."""


@dataclass(frozen=True)
class EvaluatedData:
    """The data the models were scored on, as a dataset input."""

    name: str
    digest: str
    source: str
    """A path (a file the user gave, or the study's data)."""


LINKED = "harness_eval"
"""The prefix of the figures given to each evaluated logged model: `harness_eval/loss`, ..."""

UNSAFE = re.compile(r"[^A-Za-z0-9_.\- ]+")
"""What a model's part of an MLflow metric name may not hold (a slash would make it a path)."""


def metric_key(label: str, figure: str) -> str:
    """An MLflow metric name for a model's figure: its label made safe (a directory by its
    last 80 characters), then the figure."""
    return f"{UNSAFE.sub('_', label).strip('_')[-80:]}/{figure}"


def log_evaluation(models: list[EvaluatedModel], data: EvaluatedData, *, uri: str | None,
                   experiment: str, table: dict[str, list[Any]],
                   tags: dict[str, str]) -> tuple[str, str]:
    """The evaluation run, finished; (experiment id, run id)."""
    import time

    from mlflow.entities import DatasetInput, InputTag, LoggedModelInput, Metric

    client = client_for(uri)
    exp = experiment_id(client, experiment)
    run = client.create_run(exp, run_name=f"eval {data.name}"[:250], tags={
        KIND_TAG: "evaluation", **source_tags(), **tags})
    run_id = run.info.run_id
    dataset = _dataset(data)
    # one model named twice (its run id and its version) is one input, its figures linked once
    firsts = list({m.model_id: m for m in reversed(models) if m.model_id}.values())[::-1]
    linked = [m.model_id for m in firsts if m.model_id]
    client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags=[
        InputTag("mlflow.data.context", "evaluation")])],
        models=[LoggedModelInput(i) for i in linked] or None)
    now = int(time.time() * 1000)
    metrics = [Metric(metric_key(m.label, k), v, now, 0) for m in models
               for k, v in m.figures.items()]
    # named for where they come from: beside the trial's own test/loss on the model's page
    metrics += [Metric(f"{LINKED}/{k}", v, now, 0, model_id=m.model_id,
                       dataset_name=data.name, dataset_digest=data.digest)
                for m in firsts for k, v in m.figures.items()]
    for i in range(0, len(metrics), 1000):  # a batch holds at most 1000 metrics
        client.log_batch(run_id, metrics=metrics[i:i + 1000])
    if table:
        import pandas as pd

        client.log_table(run_id, data=pd.DataFrame(table), artifact_file="answers.json")
    client.set_terminated(run_id, "FINISHED")
    return exp, run_id


def _dataset(data: EvaluatedData) -> Any:
    from mlflow.entities import Dataset

    from harness.tracking.trial_run import dataset_source

    source = dataset_source(str(Path(data.source).resolve()))
    return Dataset(data.name, data.digest, source._get_source_type(), source.to_json())
