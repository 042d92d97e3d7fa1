"""Each trial's memory, estimated before it launches and set against what its slot has: a trial
that cannot fit ends as `too_big` without starting a process, and (in a study that records it)
the margin is an Optuna constraint, so the sampler learns where trials stop fitting."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.config import TrainConfig
from harness.errors import HarnessError
from harness.memory.device import device_kind, gpu_memory_mb, limit_mb
from harness.memory.estimate import Device, Estimate, estimate
from harness.memory.shape import ModelShape, model_shape
from harness.study.record import ESTIMATED_ATTR
from harness.sweep.slots import Slot

if TYPE_CHECKING:
    import optuna

MEMORY_CONSTRAINT = "memory_gb"
"""The Optuna constraint: estimated GB above the trial's device (feasible at 0 or below)."""


@dataclass(frozen=True)
class Sized:
    """One trial's estimate against the memory it may use."""

    estimate: Estimate | None
    """None when the base model's shape could not be read (the trial runs unsized)."""
    limit_mb: float
    """What one process of the trial may use: `study.memory_limit_gb`, else its device's."""

    @property
    def too_big(self) -> bool:
        return self.estimate is not None and self.estimate.total_mb > self.limit_mb

    @property
    def margin_gb(self) -> float:
        """Estimated GB above the limit (negative: room to spare)."""
        return 0.0 if self.estimate is None else (self.estimate.total_mb - self.limit_mb) / 1024

    def message(self) -> str:
        assert self.estimate is not None
        return (f"too big: estimated {self.estimate.total_mb:,.0f} MB against "
                f"{self.limit_mb:,.0f} MB ({self.estimate.line()}); lower training."
                "micro_batch_size or data.cutoff_len, quantize, turn on "
                "gradient_checkpointing, or narrow the search space")


def keep_size(trial: optuna.Trial, sized: Sized, *, constrained: bool) -> None:
    """The trial's estimate kept with it and, in a study that records it, its margin as the
    constraint. A trial run unsized counts as fitting (margin 0): it does run, and Optuna's GP
    sampler refuses a study where some trials have the constraint and others not."""
    if sized.estimate is not None:
        trial.set_user_attr(ESTIMATED_ATTR, round(sized.estimate.total_mb))
    if constrained:
        trial.set_constraint(MEMORY_CONSTRAINT, sized.margin_gb)


class Sizing:
    """Estimates for the trials of one process, the base models' shapes read once."""

    def __init__(self, *, limit_gb: float | None, device: Device | None = None,
                 gpus: dict[str, float] | None = None) -> None:
        self.gpus = gpu_memory_mb() if gpus is None else gpus
        """Each GPU's memory in MB, by index."""
        self.device: Device = device or device_kind(self.gpus)
        self.limit_gb = limit_gb
        self.unsized: dict[str, str] = {}
        """Base models whose shape could not be read, with why."""
        self._shapes: dict[str, ModelShape] = {}
        self._lock = threading.Lock()

    def size(self, config: TrainConfig, slot: Slot) -> Sized:
        """``config``'s estimate against what ``slot`` offers one of its processes."""
        shape = self._shape(config.model)
        device = self.device_of(slot)
        found = None if shape is None else estimate(config, shape, device=device)
        return Sized(found, self.limit_mb(slot))

    def device_of(self, slot: Slot) -> Device:
        """A slot given GPUs trains on them, whatever this process can read of them."""
        return "cuda" if slot.gpus or slot.book is not None else self.device

    def limit_mb(self, slot: Slot) -> float:
        """What one process of a trial in ``slot`` may use: the study's limit, then on shared
        GPUs the room of the smallest empty GPU a trial of the slot could be placed on."""
        limit = math.inf if self.limit_gb is None else self.limit_gb * 1024
        if slot.book is not None:
            return min(limit, slot.book.largest_mb(slot.processes))
        if self.device_of(slot) == "cuda" and not self.gpus and self.limit_gb is None:
            return math.inf  # GPUs whose memory cannot be read: nothing to hold a trial to
        return limit_mb(limit_gb=self.limit_gb, device=self.device_of(slot), gpus=self.gpus,
                        held=slot.gpus)

    def _shape(self, model: str) -> ModelShape | None:
        with self._lock:
            if model not in self._shapes and model not in self.unsized:
                try:
                    self._shapes[model] = model_shape(model)
                except HarnessError as err:
                    self.unsized[model] = str(err)
            return self._shapes.get(model)
