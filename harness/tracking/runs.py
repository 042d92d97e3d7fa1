"""MLflow for one trial: the run, its parameters, metrics from events, artifacts, final status.

Only the parent writes to MLflow, through an explicit client (no global active run), so a run is
always ended with the status the trial earned, even when the child died by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.config import TrainConfig
from harness.errors import HarnessError
from harness.sweep.runner import TrialResult
from harness.tracking.logged_model import LINKED, log_adapter
from harness.tracking.outbox import RUN, Outbox
from harness.tracking.provenance import source_tags
from harness.trialdir import TrialDir
from harness.urls import redact, scrub

STATUS = {"finished": "FINISHED", "killed": "KILLED", "pruned": "KILLED",
          "interrupted": "KILLED"}
"""A trial run's MLflow status by how the trial ended; anything else is FAILED."""

METRICS = {
    "step": {"loss": "train/loss", "learning_rate": "train/learning_rate",
             "grad_norm": "train/grad_norm", "tokens_per_second": "train/tokens_per_second",
             "padding_efficiency": "train/padding_efficiency", "epoch": "train/epoch"},
    "eval": {"loss": "eval/loss", "perplexity": "eval/perplexity",
             "perplexity_ratio_to_base": "eval/perplexity_ratio_to_base"},
    "base_eval": {"loss": "base/eval_loss", "perplexity": "base/perplexity"},
    "selected": {"loss": "selected/eval_loss", "perplexity": "selected/perplexity",
                 "epoch": "selected/epoch"},
    "test": {"loss": "test/loss", "perplexity": "test/perplexity",
             "base_loss": "base/test_loss", "base_perplexity": "base/test_perplexity"},
    "retention": {"loss": "retention/loss", "base_loss": "base/retention_loss",
                  "change": "retention/loss_change_vs_base"},
    "finished": {"peak_memory_mb": "system/peak_memory_mb"},
    "samples": {"rougeL_base": "samples/rougeL_base", "rougeL_adapter": "samples/rougeL_adapter",
                "rougeL_gain": "samples/rougeL_gain"},
}

STEP_ZERO = {"loss": "eval/loss", "perplexity": "eval/perplexity"}
"""The base model's eval, also logged as the adapter's eval curve at step 0: LoRA (DoRA and
rsLoRA too) starts as the base model, so every curve shows the improvement from where it began."""


LOCAL_STORE = Path("mlruns")
LOCAL_DB = "mlflow.db"


def tracking_uri(configured: str | None) -> str:
    """The configured URI, else MLFLOW_TRACKING_URI, else the local store under ./mlruns.

    The local store is SQLite (MLflow 3 keeps the file store in maintenance mode and refuses it
    by default) at mlruns/mlflow.db, with artifacts beside it in mlruns/artifacts.
    """
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or local_store_uri()


def local_store_uri() -> str:
    return f"sqlite:///{(LOCAL_STORE / LOCAL_DB).resolve()}"


_ready_stores: set[str] = set()


def client_for(uri: str | None) -> Any:
    """An MLflow client (tracking and registry) on ``uri`` (resolved as `tracking_uri` does).
    A local SQLite store is created under a file lock beside it first: processes that start
    together would otherwise race through MLflow's table creation and fail ("table ...
    already exists")."""
    from mlflow import MlflowClient

    uri = tracking_uri(uri)
    if uri.startswith("sqlite:///") and uri not in _ready_stores:
        db = Path(uri.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        with open(db.with_name(f"{db.name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            ready = MlflowClient(uri, registry_uri=uri)
            ready.search_experiments(max_results=1)  # creates the tracking tables
            ready.search_registered_models(max_results=1)  # and the registry's
        _ready_stores.add(uri)
    return MlflowClient(uri, registry_uri=uri)


def check_tracking(uri: str) -> None:
    """Fail before any training when a tracking server is down or refuses the credentials."""
    if not uri.startswith(("http://", "https://")):
        return
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except MlflowException as err:
        shown = redact(uri)
        status = err.get_http_status_code()
        if status == 401:
            raise HarnessError(
                f"the MLflow tracking server at {shown} asks for credentials (401 Unauthorized): "
                "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (basic-auth), or "
                "MLFLOW_TRACKING_TOKEN") from None
        if status == 403:
            user = os.environ.get("MLFLOW_TRACKING_USERNAME", "?")
            raise HarnessError(f"the MLflow tracking server at {shown} refuses user {user!r} "
                               "(403 Forbidden): grant it access, or set other credentials "
                               "in MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD") from None
        why = scrub(err.message.splitlines()[0][:300], uri)
        raise HarnessError(f"cannot use the MLflow tracking server at {shown}: {why}\nStart "
                           "the server, or point --tracking-uri / MLFLOW_TRACKING_URI at one "
                           "that runs. No trial was started.") from None


def artifact_location(uri: str, experiment: str) -> str | None:
    """Artifacts of experiments in a SQLite store live beside it, in artifacts/NAME (so the
    local store keeps them in mlruns/artifacts); a server decides for itself."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    return (db.parent / "artifacts" / experiment).resolve().as_uri()


def experiment_id(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found:
        return found.experiment_id
    if client.tracking_uri == local_store_uri():
        LOCAL_STORE.mkdir(exist_ok=True)
    from harness.tracking.ui import KIND_TAG, TRAINING

    return client.create_experiment(name, artifact_location=artifact_location(
        client.tracking_uri, name), tags={KIND_TAG: TRAINING})


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): shown(value)}


def shown(value: Any) -> str:
    """A param's value as it would be written in the space file: lists as JSON, and a string
    that whitespace or control characters would hide (``"\n\n\n"`` shows blank) quoted."""
    if isinstance(value, list):
        return json.dumps(value)
    if isinstance(value, str) and (value != value.strip() or not value.isprintable()):
        return repr(value)
    return str(value)


MACHINE_LOCAL = {"output_dir": "harness.output_dir"}
"""Config fields that name a place on the machine that ran the trial: tags, not params, so that
comparing runs compares what was trained. (The tracking URI is left out altogether: the run is
in that store, and a server's URI may carry credentials.)"""
LEFT_OUT = {"tracking.uri"}


def run_params(config: TrainConfig) -> tuple[dict[str, str], dict[str, str]]:
    """The trial's params, and its machine-local settings as tags."""
    flat = flatten(asdict(config))
    tags = {MACHINE_LOCAL[k]: v for k, v in flat.items() if k in MACHINE_LOCAL}
    params = {k: v for k, v in flat.items() if k not in MACHINE_LOCAL and k not in LEFT_OUT}
    return params, tags


class TrialRun:
    """One MLflow run that follows a trial's events. Writes go through an Outbox, so a tracking
    server that drops mid-trial delays them instead of failing the trial."""

    def __init__(self, config: TrainConfig, *, run_name: str | None = None,
                 parent_run_id: str | None = None, tags: dict[str, str] | None = None,
                 experiment: str | None = None, exp_id: str | None = None) -> None:
        from mlflow.entities import Param

        self.config = config
        self.client = client_for(config.tracking.uri)
        self.outbox = Outbox(self.client)
        exp_id = exp_id or experiment_id(self.client, experiment or config.tracking.experiment)
        self.experiment_id = exp_id
        self.run_name = run_name or config.tracking.run_name
        self.datasets: dict[str, tuple[str, str]] = {}
        """Each split's dataset input (name, digest), by context (training, eval, test)."""
        values, local = run_params(config)
        all_tags = {"base_model": config.model, "quantization": config.quantization.mode,
                    **source_tags(), **local, **(tags or {})}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        self.outbox.send("create_run", exp_id, run_name=self.run_name,
                         tags=all_tags)
        params = [Param(k, v[:6000]) for k, v in values.items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.outbox.send("log_batch", RUN, params=params[i:i + 100])

    @property
    def run_id(self) -> str | None:
        """None while the tracking server has not been reached yet."""
        return self.outbox.run_id

    def set_tag(self, key: str, value: str) -> None:
        self.outbox.send("set_tag", RUN, key, value)

    def terminate(self, status: str) -> None:
        self.outbox.send("set_terminated", RUN, status)

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        names = METRICS.get(kind or "")
        if names:
            self._log_metrics(event, names)
        if kind == "base_eval":
            self._log_metrics({**event, "step": 0}, STEP_ZERO)
        if kind == "started":
            self._log_dataset(event)

    def _log_metrics(self, event: dict[str, Any], names: dict[str, str]) -> None:
        from mlflow.entities import Metric

        step = int(event.get("step", 0) or 0)
        stamp = int(event.get("time", 0) * 1000)
        metrics = [Metric(names[k], float(event[k]), stamp, step)
                   for k in names if isinstance(event.get(k), int | float)]
        self.outbox.send("log_batch", RUN, metrics=metrics)

    def _log_dataset(self, event: dict[str, Any]) -> None:
        """The train, eval and test splits as the run's dataset inputs, each digest the
        fingerprint its `dataset.*` tag spells the same; the data's profile with the train
        input."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        source_path = str(Path(self.config.data.path).resolve())
        source = _source(source_path)
        name = Path(source_path).name
        inputs = []
        for side, key, context in (("", "fingerprint", "training"),
                                   (" eval", "eval_fingerprint", "eval"),
                                   (" test", "test_fingerprint", "test")):
            if not event.get(key):
                continue
            digest = short_fingerprint(event[key])
            self.set_tag(f"dataset.{key}", digest)
            profile = json.dumps(event["profile"]) if context == "training" and \
                event.get("profile") else None
            self.datasets[context] = (f"{name}{side}", digest)
            inputs.append(DatasetInput(Dataset(
                f"{name}{side}", digest, source._get_source_type(), source.to_json(),
                profile=profile), tags=[InputTag("mlflow.data.context", context)]))
        self.outbox.send("log_inputs", RUN, datasets=inputs)
        self.set_tag("device", event.get("device", ""))

    def finish(self, result: TrialResult, output_dir: Path) -> None:
        """Artifacts that exist, the failure reason if any, and the terminal status."""
        self.set_tag("trial.reason", result.reason)
        try:
            samples = result.last("samples")
            if samples and samples.get("rows"):
                import pandas as pd

                self.outbox.send("log_table", RUN, data=pd.DataFrame(samples["rows"]),
                                 artifact_file="samples/comparison.json")
                self.outbox.send("log_artifacts", RUN, samples["dir"], "samples")
            adapter = TrialDir(output_dir).adapter
            if result.ok and adapter.is_dir():
                self.outbox.send(log_adapter, RUN, experiment_id=self.experiment_id,
                                 adapter_dir=str(adapter), params=model_params(self.config),
                                 metrics=final_metrics(result), step=final_step(result),
                                 datasets=self.datasets, run_name=self.run_name)
            if not result.ok:
                self.set_tag("trial.message", result.message[:5000])
            if result.reason == "pruned":
                self.set_tag("mlflow.note.content", result.message[:5000])
            elif not result.ok:  # a pruned trial did nothing wrong: its log is no failure
                self.outbox.send("log_text", RUN, result.log_tail, "failure/log_tail.txt")
        finally:
            self.terminate(STATUS.get(result.reason, "FAILED"))


MODEL_PARAMS = ("model", "lora.", "quantization.", "training.learning_rate", "training.epochs",
                "data.path", "data.cutoff_len", "data.system_prompt")
"""The params a logged adapter model carries: what it is and how it was trained."""


def model_params(config: TrainConfig) -> dict[str, str]:
    values, _ = run_params(config)
    return {k: v for k, v in values.items() if k.startswith(MODEL_PARAMS)}


def final_metrics(result: TrialResult) -> dict[str, float]:
    """The figures of the adapter a finished trial kept, by metric name: its best epoch's eval
    (else its last eval), its test and general-text losses."""
    found: dict[str, float] = {}
    kinds = ("selected", "test", "retention") if result.last("selected") else (
        "eval", "test", "retention")
    for kind in kinds:
        event = result.last(kind) or {}
        for key, name in METRICS[kind].items():
            if name in LINKED and isinstance(event.get(key), int | float):
                found[name] = float(event[key])
    return found


def final_step(result: TrialResult) -> int:
    """The step the kept adapter was saved at (its epoch's end), else the trial's last."""
    for kind in ("selected", "eval"):
        step = (result.last(kind) or {}).get("step")
        if isinstance(step, int):
            return step
    return int((result.last("started") or {}).get("total_steps", 0))


def short_fingerprint(fingerprint: str) -> str:
    """A split's fingerprint as MLflow shows it everywhere: its first 32 hex digits (MLflow
    keeps at most 36 characters of a dataset's digest)."""
    return fingerprint[:32]


def _source(path: str) -> Any:
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "can be interpreted in multiple ways"
        return resolve_dataset_source(path)


class StudyRun:
    """The parent MLflow run of a study: found again on resume, nested trial runs under it."""

    ROLE_TAG = "harness.role"

    def __init__(self, *, uri: str | None, study: str, space_text: str,
                 params: dict[str, str]) -> None:
        from mlflow.entities import Param

        self.client = client_for(uri)
        self.experiment_id = experiment_id(self.client, study)
        found = self.client.search_runs(
            [self.experiment_id], max_results=1,
            filter_string=f"tags.`{self.ROLE_TAG}` = 'study' and tags.`optuna.study` = '{study}'")
        self.outbox = Outbox(self.client)
        if found:
            self.run_id = self.outbox.run_id = found[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            return
        run = self.client.create_run(self.experiment_id, run_name=f"study {study}", tags={
            self.ROLE_TAG: "study", "optuna.study": study, **source_tags()})
        self.run_id = self.outbox.run_id = run.info.run_id
        self.client.log_batch(self.run_id, params=[Param(k, v[:6000]) for k, v in params.items()])
        self.client.log_text(self.run_id, space_text, "space.yaml")

    def end(self, status: str, *, tags: dict[str, str], metrics: dict[str, float],
            plots: Path | None) -> None:
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        self.outbox.send("log_batch", RUN, tags=[RunTag(k, v) for k, v in tags.items()],
                         metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
        if plots is not None and plots.is_dir() and any(plots.iterdir()):
            self.outbox.send("log_artifacts", RUN, str(plots), "plots")
        self.outbox.send("set_terminated", RUN, status)


def close_left_open(uri: str, study: str, *, ended: dict[int, str]) -> list[str]:
    """End the trial runs of ``study`` still RUNNING in MLflow although their trials ended in
    Optuna (``ended``: trial number -> reason), because their sweep could not end them (it was
    SIGKILLed, or a full disk refused the write); their run ids."""

    client = client_for(uri)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], max_results=10_000, filter_string=(
        f"attributes.status = 'RUNNING' and tags.`optuna.study` = '{study}'"))
    closed = []
    for run in runs:
        number = run.data.tags.get("optuna.trial", "")
        if not number.isdigit() or int(number) not in ended:
            continue
        reason = ended[int(number)]
        client.set_tag(run.info.run_id, "trial.reason", reason)
        client.set_terminated(run.info.run_id, STATUS.get(reason, "FAILED"))
        closed.append(run.info.run_id)
    return closed


def end_lost_run(uri: str, run_id: str | None, *, reason: str) -> None:
    """End FAILED the MLflow run of a trial whose worker died (its runner will never end it).
    Best effort: the tracking server may be down, and the study is the record that counts."""
    if not run_id or not uri:
        return
    with contextlib.suppress(Exception):
        client = client_for(uri)
        client.set_tag(run_id, "trial.reason", reason)
        client.set_tag(run_id, "optuna.state", "FAIL")
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, "FAILED")
