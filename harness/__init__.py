"""harness: a sweep harness for LoRA and QLoRA fine-tuning, tracked in MLflow."""

from __future__ import annotations

__version__ = "0.1.0"
