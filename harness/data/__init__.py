"""The data layer: every format a LoRA user brings, parsed safely, checked before training."""

from __future__ import annotations

from harness.data.load import Dataset, load_dataset

__all__ = ["Dataset", "load_dataset"]
