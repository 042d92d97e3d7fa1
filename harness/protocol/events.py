"""The events a trial writes, one dataclass per kind, and their JSON lines: ``{"event": KIND,
"time": T, FIELD: ...}``."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from harness.protocol.reasons import FAILURES, Failure


@dataclass(frozen=True)
class Event:
    """One line of the events file."""

    kind: ClassVar[str] = ""
    time: float = field(default=0.0, kw_only=True)
    """When the child wrote it (seconds since the epoch)."""


@dataclass(frozen=True)
class Started(Event):
    """Data, model and optimizer are ready; training begins."""

    kind: ClassVar[str] = "started"
    pid: int
    total_steps: int
    train_examples: int
    eval_examples: int
    test_examples: int
    fingerprint: str
    eval_fingerprint: str
    test_fingerprint: str
    profile: dict[str, Any]
    """The data's profile (records, skipped by reason, token lengths)."""
    device: str
    processes: int
    trainable_parameters: int


@dataclass(frozen=True)
class Step(Event):
    """A logged optimizer step."""

    kind: ClassVar[str] = "step"
    step: int
    total_steps: int
    loss: float
    learning_rate: float
    grad_norm: float
    tokens: int
    """Real (not padding) tokens of the step, over all processes."""
    padding_efficiency: float
    tokens_per_second: float
    epoch: float


@dataclass(frozen=True)
class BaseEval(Event):
    """The base model's eval loss (the curve's start, computed once per study)."""

    kind: ClassVar[str] = "base_eval"
    loss: float
    perplexity: float
    cached: bool
    answers: dict[str, float] | None = None
    """Its task metrics on the eval prompts (None: no metrics configured)."""


@dataclass(frozen=True)
class Eval(Event):
    """The adapter's eval loss at a step."""

    kind: ClassVar[str] = "eval"
    step: int
    loss: float
    perplexity: float
    perplexity_ratio_to_base: float
    answers: dict[str, float] | None = None
    """Task metric -> its mean over the eval prompts' answers (at epoch ends, when metrics
    are configured; None elsewhere)."""
    answer_seconds: float | None = None
    """How long generating those answers took."""


@dataclass(frozen=True)
class Selected(Event):
    """The epoch end whose adapter the trial keeps: its value is the trial's."""

    kind: ClassVar[str] = "selected"
    step: int
    epoch: float
    loss: float
    perplexity: float
    last_step: int
    answers: dict[str, float] | None = None
    """That epoch end's task metrics on the eval prompts."""


@dataclass(frozen=True)
class HeldOut(Event):
    """The kept adapter's loss on held-out data, beside the base model's (written as one of
    the two kinds below, never itself)."""

    step: int
    loss: float
    perplexity: float
    base_loss: float
    base_perplexity: float
    change: float
    """Its loss against the base model's (+0.02: 2 % higher)."""
    ci95: float = math.nan
    """Half the width of the adapter's loss's 95 % interval over the examples scored."""
    examples: int = 0
    """The examples scored."""
    seconds: float = 0.0
    """How long scoring them took (the base model's loss included unless cached)."""
    answers: dict[str, float] | None = None
    """The adapter's task metrics on this data's prompts (None: none configured)."""
    base_answers: dict[str, float] | None = None
    """The base model's, on the same prompts."""


@dataclass(frozen=True)
class HeldOutTest(HeldOut):
    """On the test split, which no sweep decides by."""

    kind: ClassVar[str] = "test"


@dataclass(frozen=True)
class Retention(HeldOut):
    """On general text: how much the adapter forgot."""

    kind: ClassVar[str] = "retention"


@dataclass(frozen=True)
class Samples(Event):
    """Base and adapter answers to seeded eval prompts, scored against the references."""

    kind: ClassVar[str] = "samples"
    rows: list[dict[str, Any]]
    dir: str
    base_cached: bool
    rougeL_base: float | None = None
    rougeL_adapter: float | None = None
    rougeL_gain: float | None = None


@dataclass(frozen=True)
class Checkpoint(Event):
    """A checkpoint written, to resume from."""

    kind: ClassVar[str] = "checkpoint"
    step: int
    path: str


@dataclass(frozen=True)
class CheckpointDamaged(Event):
    """A checkpoint `--resume` could not use (it tries the one before)."""

    kind: ClassVar[str] = "checkpoint_damaged"
    checkpoint: str
    message: str


@dataclass(frozen=True)
class Resumed(Event):
    """The trial went on from a checkpoint."""

    kind: ClassVar[str] = "resumed"
    step: int
    checkpoint: str


@dataclass(frozen=True)
class Finished(Event):
    """The adapter is written: the trial's last event."""

    kind: ClassVar[str] = "finished"
    adapter_dir: str
    peak_memory_mb: float


@dataclass(frozen=True)
class Failed(Event):
    """How the trial failed, written by whichever process failed first."""

    kind: ClassVar[str] = "failed"
    reason: Failure
    message: str
    traceback: str | None = None
    where: str | None = None
    """For a full disk: the place that is full."""
    rank: int | None = None
    """The process that failed, when it is not the main one."""

    def __post_init__(self) -> None:
        if self.reason not in FAILURES:
            raise ValueError(f"{self.reason!r} is not a way a trial fails")


@dataclass(frozen=True)
class Garbled(Event):
    """A line the parent could not read as an event (never written by a child)."""

    kind: ClassVar[str] = "garbled"
    line: str


KINDS: dict[str, type[Event]] = {cls.kind: cls for cls in (
    Started, Step, BaseEval, Eval, Selected, HeldOutTest, Retention, Samples, Checkpoint,
    CheckpointDamaged, Resumed, Finished, Failed)}


def encode(event: Event, *, now: float | None = None) -> str:
    """The line for ``event``: its kind, when (``now``, else its own time, else the present),
    then its fields (those left None omitted)."""
    stamp = now if now is not None else event.time or time.time()
    record: dict[str, Any] = {"event": event.kind, "time": stamp}
    for f in fields(event):
        value = getattr(event, f.name)
        if f.name != "time" and value is not None:
            record[f.name] = value
    return json.dumps(record, default=str)


def decode(line: bytes) -> Event:
    """The event a line holds; `Garbled` for one that is not JSON or not a known event."""
    text = line[:200].decode(errors="replace")
    try:
        record = json.loads(line)
    except ValueError:
        return Garbled(line=text)
    kind = record.get("event") if isinstance(record, dict) else None
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return Garbled(line=text)
    given = {f.name: record[f.name] for f in fields(cls) if f.name in record}
    try:
        return cls(**given)
    except (TypeError, ValueError):  # a field missing or wrong: not an event of this harness
        return Garbled(line=text)
