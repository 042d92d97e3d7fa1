"""MLflow for one trial: the run, its parameters, metrics from events, artifacts, final status.

Only the parent writes to MLflow, through an explicit client (no global active run), so a run is
always ended with the status the trial earned, even when the child died by SIGKILL.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config import TrainConfig
from harness.protocol import (
    BaseEval,
    Eval,
    Event,
    Finished,
    HeldOutTest,
    Reason,
    Retention,
    Samples,
    Selected,
    Started,
    Step,
    TrialResult,
)
from harness.tracking.logged_model import LINKED, log_adapter
from harness.tracking.outbox import RUN, Outbox
from harness.tracking.provenance import source_tags
from harness.tracking.store import client_for, experiment_id
from harness.tracking.values import model_params, run_params, short_fingerprint, shown
from harness.trialdir import TrialDir

if TYPE_CHECKING:
    from mlflow.data.dataset_source import DatasetSource

STATUS: dict[str, str] = {"finished": "FINISHED", "killed": "KILLED", "pruned": "KILLED",
                          "interrupted": "KILLED"}
"""A trial run's MLflow status by how the trial ended; anything else is FAILED."""

METRICS: dict[type[Event], dict[str, str]] = {
    Step: {"loss": "train/loss", "learning_rate": "train/learning_rate",
           "grad_norm": "train/grad_norm", "tokens_per_second": "train/tokens_per_second",
           "padding_efficiency": "train/padding_efficiency", "epoch": "train/epoch"},
    Eval: {"loss": "eval/loss", "perplexity": "eval/perplexity",
           "perplexity_ratio_to_base": "eval/perplexity_ratio_to_base",
           "answer_seconds": "eval/answer_seconds"},
    BaseEval: {"loss": "base/eval_loss", "perplexity": "base/perplexity"},
    Selected: {"loss": "selected/eval_loss", "perplexity": "selected/perplexity",
               "epoch": "selected/epoch"},
    HeldOutTest: {"loss": "test/loss", "perplexity": "test/perplexity",
                  "base_loss": "base/test_loss", "base_perplexity": "base/test_perplexity",
                  "ci95": "test/loss_ci95", "examples": "test/examples",
                  "seconds": "test/seconds"},
    Retention: {"loss": "retention/loss", "base_loss": "base/retention_loss",
                "change": "retention/loss_change_vs_base", "ci95": "retention/loss_ci95",
                "examples": "retention/examples", "seconds": "retention/seconds"},
    Finished: {"peak_memory_mb": "memory/peak_mb"},
    Samples: {"rougeL_base": "samples/rougeL_base", "rougeL_adapter": "samples/rougeL_adapter",
              "rougeL_gain": "samples/rougeL_gain"},
}
"""The metric each event's numeric fields are logged as."""

TASK_METRICS: dict[type[Event], dict[str, str]] = {
    Eval: {"answers": "eval/"}, BaseEval: {"answers": "base/eval_"},
    Selected: {"answers": "selected/"},
    HeldOutTest: {"answers": "test/", "base_answers": "base/test_"},
}
"""The prefix each event's task metrics (a dict by metric name) are logged under:
`eval/exact_match`, `test/exact_match`, `base/test_exact_match`, ..."""

ESTIMATED_METRIC = "memory/estimated_mb"
"""A trial's memory estimate made before launch, as its measured `memory/peak_mb` measures:
the tensors on a GPU, the whole process on the CPU (`Estimate.measured_like_mb`)."""
RETRY_TAG = "harness.retry"
"""The tag of a trial run retried after running out of memory (and the Optuna trial's user
attribute): what the retry changed."""

STEP_ZERO = {"loss": "eval/loss", "perplexity": "eval/perplexity"}
"""The base model's eval, also logged as the adapter's eval curve at step 0: LoRA (DoRA and
rsLoRA too) starts as the base model, so every curve shows the improvement from where it began."""

SPLITS = (("", "fingerprint", "training"), (" eval", "eval_fingerprint", "eval"),
          (" test", "test_fingerprint", "test"))
"""Each split's dataset input: its name's suffix, its `started` field, its MLflow context."""


class TrialRun:
    """One MLflow run that follows a trial's events. Writes go through an Outbox, so a tracking
    server that drops mid-trial delays them instead of failing the trial."""

    def __init__(self, config: TrainConfig, *, run_name: str | None = None,
                 parent_run_id: str | None = None, tags: dict[str, str] | None = None,
                 experiment: str | None = None, exp_id: str | None = None,
                 searched: dict[str, object] | None = None) -> None:
        self.config = config
        self.searched = searched or {}
        """What the search chose that the config holds only derived (lora.alpha_per_rank,
        of which lora.alpha is the product with the rank): params too."""
        self.client = client_for(config.tracking.uri)
        self.outbox = Outbox(self.client)
        self.experiment_id = exp_id or experiment_id(
            self.client, experiment or config.tracking.experiment)
        self.run_name = run_name or config.tracking.run_name
        self.datasets: dict[str, tuple[str, str]] = {}
        """Each split's dataset input (name, digest), by context (training, eval, test)."""
        self.logged_until = -1
        """A retried trial's steps up to this one were logged by its first run: the retry
        trains the same steps, so they are not logged twice."""
        self.logged_once: set[type[Event]] = set()
        """The once-per-trial events (start, base eval) its first run logged already."""
        self._create(parent_run_id, tags or {})

    def _create(self, parent_run_id: str | None, tags: dict[str, str]) -> None:
        from mlflow.entities import Param

        values, local = run_params(self.config)
        values |= {k: shown(v) for k, v in self.searched.items()}
        all_tags = {"base_model": self.config.model,
                    "quantization": self.config.quantization.mode,
                    **source_tags(), **local, **tags}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        self.outbox.send("create_run", self.experiment_id, run_name=self.run_name,
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

    def log_metric(self, name: str, value: float, *, step: int = 0) -> None:
        """One metric the parent measured or estimated itself."""
        self._log_values({name: value}, at=time.time(), step=step)

    def retried(self, note: str, *, logged_until: int, seen: list[Event]) -> None:
        """The trial runs again from its start (see `harness.launch.retry`); its first run
        logged its steps up to ``logged_until`` and ``seen``'s start and base eval."""
        self.set_tag(RETRY_TAG, note)
        self.logged_until = logged_until
        self.logged_once = {type(e) for e in seen if isinstance(e, Started | BaseEval)}

    def on_event(self, event: Event) -> None:
        if self._logged_already(event):
            return
        names = METRICS.get(type(event))
        if names:
            self._log_metrics(event, names, step=getattr(event, "step", 0))
        for field, prefix in TASK_METRICS.get(type(event), {}).items():
            self._log_values({prefix + k: v for k, v in (getattr(event, field) or {}).items()},
                             at=event.time, step=getattr(event, "step", 0))
        if isinstance(event, BaseEval):
            self._log_metrics(event, STEP_ZERO, step=0)
            # the task metrics' curves start at the base model too
            self._log_values({f"eval/{k}": v for k, v in (event.answers or {}).items()},
                             at=event.time, step=0)
        if isinstance(event, Started):
            self._log_dataset(event)

    def _logged_already(self, event: Event) -> bool:
        if self.logged_until < 0:
            return False
        if isinstance(event, Started | BaseEval):
            return type(event) in self.logged_once
        return isinstance(event, Step | Eval) and event.step <= self.logged_until

    def _log_metrics(self, event: Event, names: dict[str, str], *, step: int) -> None:
        self._log_values({name: getattr(event, field) for field, name in names.items()},
                         at=event.time, step=step)

    def _log_values(self, values: dict[str, object], *, at: float, step: int) -> None:
        """``values`` as metrics at ``step``, timed ``at`` (seconds since the epoch)."""
        from mlflow.entities import Metric

        stamp = int(at * 1000)
        metrics = [Metric(name, float(value), stamp, int(step or 0))
                   for name, value in values.items()
                   if isinstance(value, int | float) and not isinstance(value, bool)]
        if metrics:
            self.outbox.send("log_batch", RUN, metrics=metrics)

    def _log_dataset(self, event: Started) -> None:
        """The train, eval and test splits as the run's dataset inputs, each digest the
        fingerprint its `dataset.*` tag spells the same; the data's profile with the train
        input."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        source_path = str(Path(self.config.data.path).resolve())
        source = dataset_source(source_path)
        name = Path(source_path).name
        inputs = []
        for side, key, context in SPLITS:
            if not getattr(event, key):
                continue
            digest = short_fingerprint(getattr(event, key))
            self.set_tag(f"dataset.{key}", digest)
            profile = json.dumps(event.profile) if context == "training" and \
                event.profile else None
            self.datasets[context] = (f"{name}{side}", digest)
            inputs.append(DatasetInput(Dataset(
                f"{name}{side}", digest, source._get_source_type(), source.to_json(),
                profile=profile), tags=[InputTag("mlflow.data.context", context)]))
        self.outbox.send("log_inputs", RUN, datasets=inputs)
        self.set_tag("device", event.device)

    def finish(self, result: TrialResult, output_dir: Path) -> None:
        """Artifacts that exist, the failure reason if any, and the terminal status."""
        self.set_tag("trial.reason", result.reason)
        try:
            self._log_samples(result.last(Samples))
            adapter = TrialDir(output_dir).adapter
            if result.ok and adapter.is_dir():
                self.outbox.send(log_adapter, RUN, experiment_id=self.experiment_id,
                                 adapter_dir=str(adapter), params=model_params(self.config),
                                 metrics=final_metrics(result), step=final_step(result),
                                 datasets=self.datasets, run_name=self.run_name)
            if not result.ok:
                self._log_ending(result)
        finally:
            self.terminate(status_of(result.reason))

    def _log_samples(self, samples: Samples | None) -> None:
        if samples is None or not samples.rows:
            return
        import pandas as pd

        self.outbox.send("log_table", RUN, data=pd.DataFrame(samples.rows),
                         artifact_file="samples/comparison.json")
        self.outbox.send("log_artifacts", RUN, samples.dir, "samples")

    def _log_ending(self, result: TrialResult) -> None:
        """Why a trial did not finish: its message, and for a failure its log's end (a pruned
        trial did nothing wrong: its log is no failure)."""
        self.set_tag("trial.message", result.message[:5000])
        if result.reason == "pruned":
            self.set_tag("mlflow.note.content", result.message[:5000])
        else:
            self.outbox.send("log_text", RUN, result.log_tail, "failure/log_tail.txt")


def status_of(reason: Reason | str) -> str:
    """The MLflow status of a trial run that ended for ``reason``."""
    return STATUS.get(reason, "FAILED")


def final_metrics(result: TrialResult) -> dict[str, float]:
    """The figures of the adapter a finished trial kept, by metric name: its best epoch's eval
    (else its last eval), its test and general-text losses."""
    found: dict[str, float] = {}
    kinds: tuple[type[Event], ...] = (Selected, HeldOutTest, Retention) if result.last(Selected) \
        else (Eval, HeldOutTest, Retention)
    for kind in kinds:
        event = result.last(kind)
        for field, name in METRICS[kind].items():
            value = getattr(event, field, None)
            if name in LINKED and isinstance(value, int | float):
                found[name] = float(value)
    return found


def final_step(result: TrialResult) -> int:
    """The step the kept adapter was saved at (its epoch's end), else the trial's last."""
    kept = result.last(Selected) or result.last(Eval)
    if kept is not None:
        return kept.step
    started = result.last(Started)
    return started.total_steps if started is not None else 0


def dataset_source(path: str) -> DatasetSource:
    """MLflow's source for a local data path (a file or a directory)."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "can be interpreted in multiple ways"
        return resolve_dataset_source(path)

