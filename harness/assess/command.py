"""`harness eval MODEL... (--data PATH | --study NAME --split eval|test)`: models scored side by
side on the same data, in the terminal (or JSON) and in MLflow.

Reads: resolve the models → read the data → score each model in turn (one in memory at a
time) → compare against the first → print → record the evaluation run.

MLflow's own evaluation was weighed first. `mlflow.models.evaluate` scores one model per call,
its question-answering defaults load a toxicity model from the hub (unreachable here), it has
no paired interval between models, and its `mlflow.metrics` are deprecated since MLflow 3.4 in
favour of `mlflow.genai.evaluate`, which scores traced GenAI apps with judges and scorers, not
a local model's greedy answers to a dataset. What both record, metrics linked to a logged
model and a dataset plus a per-example table, is written here directly.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.assess.data import EvalData, Split, from_file, from_study
from harness.assess.report import Row, as_json, compare, table, verdicts
from harness.assess.scoring import STRIDE, WINDOW, Scored, score_subject
from harness.assess.subjects import resolve
from harness.config import DataConfig, EvaluationSettings, TrainConfig
from harness.errors import HarnessError
from harness.metrics.answers import load_metric

DEFAULT_METRICS = ["exact_match", "number_match", "rougeL"]
"""The task metrics when neither the user nor the study names any."""


@dataclass
class EvalOptions:
    """What `harness eval` was asked."""

    models: list[str]
    """The models, as named; the first is what the others are compared with."""
    data: DataConfig | None = None
    """A data file and how to read it (with ``--data``)."""
    study: str | None = None
    """A study whose split to score (with ``--study``)."""
    split: Split = "test"
    storage: str | None = None
    tracking_uri: str | None = None
    metrics: list[str] = field(default_factory=list)
    """Task metrics; empty: the study's, else `DEFAULT_METRICS`."""
    max_examples: int | None = None
    """Records scored for loss (0: all); None: the study's test cap, else 200."""
    max_answers: int | None = None
    max_new_tokens: int | None = None
    base_model: str | None = None
    window: int = WINDOW
    stride: int = STRIDE
    log: bool = True
    experiment: str | None = None


@dataclass
class Evaluation:
    rows: list[Row]
    data: EvalData
    run_id: str | None = None


def evaluate_models(options: EvalOptions, console: Console) -> Evaluation:
    """Score every model on the data, one after the other, and record the comparison in
    MLflow (unless told not to); the rows and where they were recorded."""
    from harness.tracking.store import tracking_uri

    if (options.data is None) == (options.study is None):
        raise HarnessError("give the data to score: --data PATH, or --study NAME --split "
                           "eval|test")
    config = _study_config(options) if options.study else None
    store = tracking_uri(options.tracking_uri)
    base = options.base_model or (config.model if config else None)
    with tempfile.TemporaryDirectory(prefix="harness-eval-") as tmp:
        subjects = resolve(options.models, store=store, into=Path(tmp), base_model=base)
        data = _data(options, config, base_model=subjects[0].base_model)
        metrics = [load_metric(m) for m in data.settings.metrics or DEFAULT_METRICS]
        results = []
        for subject in subjects:
            what = "its text files" if data.is_raw else f"{len(data.records)} records"
            console.print(f"scoring {subject.label} ({subject.kind}) on {data.name}, {what}",
                          highlight=False)
            results.append(score_subject(subject, data, metrics, window=options.window,
                                         stride=options.stride))
    rows = compare(results, seed=data.config.seed)
    run_id = _record(rows, results, data, options, store) if options.log else None
    return Evaluation(rows, data, run_id)


def _study_config(options: EvalOptions) -> TrainConfig:
    """The study's fixed train config (its space without the searched values)."""
    from harness.space.load import parse_space
    from harness.study.record import StudyRecord
    from harness.study.storage import load_study, open_storage
    from harness.study.url import storage_url

    assert options.study is not None
    study = load_study(options.study, open_storage(storage_url(options.storage)))
    record = StudyRecord.load(study)
    if not record.space_text:
        raise HarnessError(f"study {options.study!r} keeps no search space: it was not "
                           "created by `harness sweep`; give --data instead")
    options.tracking_uri = options.tracking_uri or record.tracking_uri or None
    options.experiment = options.experiment or options.study
    space = parse_space(record.space_text, record.space_path or options.study)
    return space.train_config({}, output_dir="unused", tracking_uri=options.tracking_uri)


def _data(options: EvalOptions, config: TrainConfig | None, *, base_model: str) -> EvalData:
    from harness.models import training_tokenizer

    tokenizer = training_tokenizer(base_model)
    if config is not None:
        config.evaluation = _settings(options, config.evaluation)
        return from_study(config, study=str(options.study), split=options.split,
                          tokenizer=tokenizer, cap=options.max_examples)
    assert options.data is not None
    cap = 200 if options.max_examples is None else options.max_examples
    return from_file(options.data, tokenizer=tokenizer, cap=cap,
                     settings=_settings(options, EvaluationSettings()))


def _settings(options: EvalOptions, given: EvaluationSettings) -> EvaluationSettings:
    changes: dict[str, Any] = {"objective": "eval_loss"}
    if options.metrics:
        changes["metrics"] = options.metrics
    if options.max_answers is not None:
        changes["max_answer_examples"] = options.max_answers
    if options.max_new_tokens is not None:
        changes["max_new_tokens"] = options.max_new_tokens
    return dataclasses.replace(given, **changes)


def _record(rows: list[Row], results: list[Scored], data: EvalData, options: EvalOptions,
            store: str) -> str:
    from harness.tracking.evaluation_run import (
        EvaluatedData,
        EvaluatedModel,
        log_evaluation,
    )

    models = [EvaluatedModel(row.label, _figures(row), scored.subject.model_id)
              for row, scored in zip(rows, results, strict=True)]
    _, run_id = log_evaluation(
        models, EvaluatedData(data.name, data.digest, data.source), uri=store,
        experiment=options.experiment or "harness-eval", table=answer_table(results),
        tags={"harness.models": ", ".join(options.models)[:5000]})
    return run_id


def _figures(row: Row) -> dict[str, float]:
    out = {name: value.mean for name, value in row.figures.items()}
    out["perplexity"] = row.perplexity
    out["examples"] = float(row.examples)
    return {k: v for k, v in out.items() if v == v}  # nan is not recorded


def answer_table(results: list[Scored]) -> dict[str, list[Any]]:
    """One row per question: the reference, then each model's answer and scores."""
    first = results[0]
    origins = list(first.asked)
    if not origins:
        return {}
    table: dict[str, list[Any]] = {
        "record": origins, "question": [first.asked[o][0] for o in origins],
        "reference": [first.asked[o][1] for o in origins]}
    for scored in results:
        # what the column holds first: the UI cuts long headers short from the right
        label = scored.subject.label
        table[f"answer: {label}"] = [scored.answers.get(o, "") for o in origins]
        for name, values in scored.scores.items():
            table[f"{name}: {label}"] = [values.get(o) for o in origins]
    return table


def print_evaluation(evaluation: Evaluation, console: Console) -> None:
    """The table, the verdicts in words, and where MLflow holds it."""
    rows = evaluation.rows
    console.print(table(rows, title=f"{evaluation.data.name}: loss on the responses and "
                        "task metrics of greedy answers; each mean with its 95 % interval and "
                        f"its difference from {rows[0].label} (* where the two are told "
                        "apart)"))
    seconds = ", ".join(f"{r.label} {r.seconds:.0f} s" for r in rows)
    console.print(f"scored in {seconds}", highlight=False)
    for line in verdicts(rows):
        console.print(line, highlight=False)
    if evaluation.run_id:
        console.print(f"recorded as MLflow run {evaluation.run_id}", highlight=False)


def json_evaluation(evaluation: Evaluation) -> dict[str, Any]:
    data = evaluation.data
    return as_json(evaluation.rows, data={"name": data.name, "digest": data.digest,
                                          "source": data.source, "raw_text": data.is_raw,
                                          "mlflow_run_id": evaluation.run_id})
