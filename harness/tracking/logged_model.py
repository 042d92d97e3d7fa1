"""A complete trial's adapter as an MLflow logged model of its run: the model the run's Models
column and the experiment's Models tab show, with the trial's final figures linked to it (each
with the split it was measured on), and what a registered version points at.

Logging is one write that may be retried whole (the outbox retries it while the tracking server
is away): a model this run already logged is found again and finished, never logged twice.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModel, Metric, Run

NAME = "adapter"
"""The logged model's name when its run has none (else RUN-NAME-adapter, e.g. trial-4-adapter,
so that the experiment's Models tab tells a study's adapters apart)."""
MODEL_TYPE = "peft-lora-adapter"

LINKED = {"selected/eval_loss": "eval", "selected/perplexity": "eval", "eval/loss": "eval",
          "test/loss": "test", "test/perplexity": "test", "retention/loss": None}
"""The final figures linked to the model, and the split (dataset input) each was measured on."""


def log_adapter(client: MlflowClient, run_id: str, *, experiment_id: str, adapter_dir: str,
                params: dict[str, str], metrics: dict[str, float], step: int,
                datasets: dict[str, tuple[str, str]], run_name: str | None = None) -> str:
    """Log ``adapter_dir`` as the run's logged model; its id. ``datasets`` maps a split
    (eval, test) to its dataset input's (name, digest)."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    model = find_adapter(client, experiment_id=experiment_id, run_id=run_id)
    if model is None:
        name = f"{run_name}-{NAME}" if run_name else NAME
        model = client.create_logged_model(experiment_id, name=name, source_run_id=run_id,
                                           params=params, model_type=MODEL_TYPE)
    elif model.status == LoggedModelStatus.READY:
        return model.model_id
    stamp(Path(adapter_dir), model_id=model.model_id, run_id=run_id)
    client.log_model_artifacts(model.model_id, adapter_dir)
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step)])
    linked = linked_metrics(metrics, model_id=model.model_id, step=step, datasets=datasets)
    if linked:
        client.log_batch(run_id, metrics=linked)
    # last, so that READY means every part above was written (a retry skips a READY model)
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return model.model_id


def linked_metrics(metrics: dict[str, float], *, model_id: str, step: int,
                   datasets: dict[str, tuple[str, str]]) -> list[Metric]:
    """``metrics`` as the logged model's, each with the dataset input it was measured on."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    linked = []
    for key, value in metrics.items():
        split: tuple[str | None, str | None] = datasets.get(LINKED.get(key) or "") or (
            None, None)
        dataset, digest = split
        linked.append(Metric(key, value, now, step, model_id=model_id, dataset_name=dataset,
                             dataset_digest=digest))
    return linked


def find_adapter(client: MlflowClient, *, experiment_id: str,
                 run_id: str) -> LoggedModel | None:
    """The adapter model ``run_id`` logged, if it did."""
    found = client.search_logged_models([experiment_id], filter_string=(
        f"source_run_id = '{run_id}'"), max_results=1)
    return found[0] if found else None


def stamp(adapter_dir: Path, *, model_id: str, run_id: str) -> None:
    """The MLmodel file names the logged model and run it belongs to (MLflow's own log_model
    writes both; save_model, which the trial used, cannot know them)."""
    from mlflow.models import Model

    path = adapter_dir / "MLmodel"
    if not path.is_file():
        return
    mlmodel = Model.load(str(path))
    mlmodel.model_id, mlmodel.run_id = model_id, run_id
    mlmodel.save(str(path))


def adapter_model_id(client: MlflowClient, run: Run) -> str | None:
    """The logged adapter model of a finished run (None for runs from before they were
    logged models, whose adapter is the run artifact `adapter`)."""
    outputs = getattr(run, "outputs", None)
    for output in getattr(outputs, "model_outputs", None) or []:
        return output.model_id
    model = find_adapter(client, experiment_id=run.info.experiment_id, run_id=run.info.run_id)
    return model.model_id if model is not None else None


VERSIONS_TAG = "mlflow.modelVersions"
"""The logged model's tag listing its registered versions: the UI reads it for the model's
page ("Registered versions") and the runs table's Registered models column. MLflow's
`register_model` writes it; `create_model_version(model_id=...)` does not."""


def version_model_id(version: object) -> str | None:
    """The logged model a registered version was made from. A SQL registry does not keep a
    version's model_id; its source, models:/ID, names it."""
    import re

    source = str(getattr(version, "source", "") or "")
    found = getattr(version, "model_id", None)
    if found:
        return str(found)
    return source.removeprefix("models:/") if re.fullmatch(r"models:/m-[0-9a-f]+", source) \
        else None


def link_version(client: MlflowClient, model_id: str, *, name: str, version: str | int) -> None:
    """Add version ``name``/``version`` to the logged model's list of versions (once)."""
    import json

    model = client.get_logged_model(model_id)
    try:
        listed = json.loads(model.tags.get(VERSIONS_TAG) or "[]")
    except ValueError:
        listed = []
    entry = {"name": name, "version": str(version)}
    if entry not in listed:
        client.set_logged_model_tags(model_id, {VERSIONS_TAG: json.dumps([*listed, entry])})

