"""What the harness keeps in a study besides Optuna's own data: the names of its trial
attributes, and one typed record of the study's settings.

The settings travel with the study so that a `harness worker` on another machine, a resumed
sweep and `harness promote` all read the same ones the creating sweep wrote; the record is the
one place that knows their attribute names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

DATA_CLEANING = "harness.data_cleaning"
"""Study attribute: the near-duplicates and contamination the sweep's data check left out, in
words, repeated by the end-of-sweep summary."""
REASON = "harness.reason"
"""Why a trial ended (finished, pruned, oom, crash, interrupted, ...): a trial user attribute."""
MESSAGE = "harness.message"
"""The trial's own words on how it ended (the `failed` event's message)."""
LOG_TAIL = "harness.log_tail"
"""The end of a failed trial's log."""
RUN_ID = "mlflow_run_id"
"""The trial's MLflow run."""
OUTPUT_DIR = "output_dir"
"""The trial's directory."""
WORKER = "harness.worker"
"""A running trial's worker (host, pid, start time, process group): a system attribute."""
HEARTBEAT = "harness.heartbeat"
"""A running trial's last sign of life on storages without Optuna heartbeats."""
BASELINE = "harness.baseline"
"""An enqueued trial's name (text-generation-webui's defaults, ...): the summary's yardstick."""
TEST_LOSS, BASE_TEST_LOSS = "test_loss", "base_test_loss"
"""A complete trial's loss on the test split, and the base model's (user attributes)."""
RETENTION_CHANGE, SELECTED_EPOCH = "retention_change", "selected_epoch"
"""Its general-text loss against the base model's (+0.02 = 2 % higher), and the epoch kept."""
FINAL_EVAL, FINAL_EVAL_STEP = "final_eval", "final_eval_step"
"""A complete trial's last eval (its objective's value) and the step it was at: the end of its
learning curve, which is its result and so never reported to Optuna as an intermediate value."""
ESTIMATED_ATTR = "harness.estimated_mb"
"""A trial's memory estimate, made before it launched (MB, per process)."""
FINISHED_AT = "harness.finished_at"
"""[finished trials, status] when a worker last finished the study (plots, parent run,
promotion), so that the study is finished once per state, not once per worker."""


def held_out_metric(name: str, *, base: bool = False) -> str:
    """The user attribute of a complete trial's task metric ``name`` on the test split (the
    base model's with ``base``)."""
    return f"{'base_' if base else ''}test_{name}"


@dataclass
class StudyRecord:
    """A study's settings as the creating `harness sweep` stored them."""

    space_path: str = ""
    """The search-space file the study was created from (for messages)."""
    space_text: str = ""
    """That file's text: workers build their search space from it."""
    trials: int = 0
    """The study's total number of trials; a later `harness sweep --trials` changes it."""
    registry_model: str = ""
    """The registered model the study's best adapter is promoted to."""
    registry_margin: float = 0.0
    """How much better than the champion a new version must be to replace it."""
    registry_max_forgetting: float | None = 0.05
    """How far above the base model's a version's general-text loss may be for champion."""
    objectives: list[str] = field(default_factory=lambda: ["eval_loss"])
    """What the study optimizes, first objective first (a loss minimised, eval/METRIC
    maximised)."""
    tracking_uri: str = ""
    """The MLflow tracking URI the study's runs go to."""
    memory_constraint: bool = False
    """Every trial records its estimated memory against its device's as an Optuna constraint
    (`memory_gb`), so the sampler learns where trials stop fitting. Off for a study created
    before the harness estimated memory: Optuna's GP sampler needs the constraint on every
    trial or on none."""

    def save(self, study: optuna.Study) -> None:
        for key, value in asdict(self).items():
            study.set_user_attr(key, value)

    @classmethod
    def load(cls, study: optuna.Study) -> StudyRecord:
        """The record kept in ``study``; fields it lacks (a study not created by `harness
        sweep`, or by an older one) keep their defaults."""
        attrs = study.user_attrs
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in attrs.items() if k in known})

